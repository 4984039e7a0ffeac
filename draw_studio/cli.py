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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
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
