"""The ``draw-studio`` command line: every feature of the window, headless.

Each sub-command lives in ``draw_studio.commands``. Errors the user can fix
print one line on stderr and exit with code 2 (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import DrawStudioError

COMMANDS = ("train", "eval", "sample", "trace", "explore", "export", "bench", "publish", "card", "curve", "runs",
            "results", "log-export", "gui")
# (command, argument) -> what the command writes there, checked before it computes (draw_studio.files.check_output):
# a checkpoint, trace or log may replace a file of its own kind only; None (a picture, GIF, CSV, card) replaces none
# of them; "folder": a folder that is, or will be made in, an existing folder that takes files
OUTPUTS = {("train", "out"): "checkpoint", ("train", "log"): "log", ("train", "tensorboard"): "folder",
           ("publish", "out"): "checkpoint", ("trace", "out"): "trace", ("explore", "out"): "trace",
           ("explore", "trace_out"): "trace", ("sample", "out"): None, ("card", "out"): None, ("curve", "out"): None,
           ("results", "markdown"): None, ("log-export", "csv"): None, ("log-export", "snapshots_gif"): None,
           ("log-export", "tensorboard"): "folder", ("export", "gif"): None, ("export", "mp4"): None,
           ("export", "frames"): "folder", ("gui", "screenshot"): None}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    import importlib

    parser = argparse.ArgumentParser(prog="draw-studio", description=(
        "Train, evaluate, sample and trace DRAW (Gregor et al., 2015)."))
    parser.add_argument("--version", action="version", version=f"draw-studio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = "evaluate" if name == "eval" else name.replace("-", "_")
        importlib.import_module(f".commands.{module_name}", __package__).add_parser(subparsers)
    _debug_anywhere(subparsers)
    return parser


def _debug_anywhere(subparsers) -> None:
    """Let ``--debug`` also follow a command (``draw-studio sample ... --debug``), as its error messages suggest."""
    for parser in subparsers.choices.values():
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show full tracebacks on errors")
        for action in parser._actions:  # a command's own sub-commands (explore's tools)
            if isinstance(action, argparse._SubParsersAction):
                _debug_anywhere(action)


def check_outputs(args: argparse.Namespace) -> None:
    """Check every output path of the command ``args`` names before it computes (see ``OUTPUTS``).

    Raises
    ------
    DrawStudioError
        An output cannot be written there, or would replace a file of another kind.
    """
    import os

    from .files import check_output, same_file

    def paths(value) -> list[str]:
        return [path for path in (value if isinstance(value, (list, tuple)) else [value])
                if isinstance(path, str) and path]

    given = [(name, path) for name, value in vars(args).items() for path in paths(value) if os.path.isfile(path)]
    for (command, name), kind in OUTPUTS.items():
        for path in paths(getattr(args, name, None)) if command == args.command else []:
            if not any(other != name and same_file(path, file) for other, file in given):
                check_output(path, None if kind == "folder" else kind, folder=kind == "folder")
            # else: another of its arguments names that file, and the command says "--x would overwrite --y"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        check_outputs(args)
        use_threads(getattr(args, "threads", 0))
        return int(args.run(args) or 0)
    except DrawStudioError as exc:
        if args.debug:
            raise
        print(f"draw-studio {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"draw-studio {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"draw-studio {args.command}: error: {type(exc).__name__}: {one_line(str(exc))} "
              "(run again with --debug for details)", file=sys.stderr)
        return 2


def use_threads(count: int) -> None:
    """Give PyTorch ``count`` CPU threads (a command's ``--threads``); 0 leaves its choice."""
    if count:
        import torch

        torch.set_num_threads(count)


def one_line(text: str) -> str:
    """``text`` on one line (a message quoting a library's multi-line error keeps only its words)."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
