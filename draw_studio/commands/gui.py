"""``draw-studio gui``: the desktop window (needs the ``gui`` extra: PySide6 and pyqtgraph)."""

from __future__ import annotations

from .common import add_device, command_parser, refuse_overwriting_inputs


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "gui", help="open the DRAW Studio window", description=(
        "Open the window on a checkpoint, a trace or a training log (default: models/mnist-attention.ckpt "
        "if it exists, else an untrained mnist-paper model)."))
    p.add_argument("file", nargs="?", default=None, metavar="CKPT | TRACE.h5 | LOG.h5",
                   help="checkpoint, trace or training log to open")
    p.add_argument("runs", nargs="*", metavar="LOG.h5", help=(
        "more training logs (or folders of them): the runs view shows them beside the first file, curves overlaid"))
    p.add_argument("--screenshot", metavar="FILE.png", default=None,
                   help="render the window (at least 1280x800) to this PNG and exit")
    p.add_argument("--compare", metavar="B.ckpt", default=None,
                   help="also open the Compare dock: the opened model (A) and this checkpoint on the same test images")
    p.add_argument("--settings", metavar="FILE.ini", default=None,
                   help="keep layout and recent files in this INI file instead of the user's settings")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    refuse_overwriting_inputs({"--screenshot": args.screenshot, "--settings": args.settings}, {"file": args.file})
    refuse_overwriting_inputs({"--screenshot": args.screenshot}, {"--settings": args.settings})
    if args.file is not None:
        from ..file_kinds import file_kind

        file_kind(args.file)  # a file that is none of the three is one line, before any window (or Qt) starts
    _check_runs(args)
    if args.compare is not None:
        _check_compare(args)
    from ..gui.app import offscreen_if_headless, require_qt, run_window

    require_qt()
    if args.screenshot:
        offscreen_if_headless()
    return run_window(args.file, screenshot=args.screenshot, device=args.device, settings_file=args.settings,
                      compare=args.compare, runs=args.runs)


def _check_runs(args) -> None:
    """More files after the first must be training logs or folders: one line before any window starts otherwise."""
    from ..errors import DrawStudioError
    from ..file_kinds import LOG, file_kind
    from ..runs import find_logs

    refuse_overwriting_inputs({"--screenshot": args.screenshot}, {"runs": args.runs})
    for path in find_logs(args.runs):
        if file_kind(path) != LOG:
            raise DrawStudioError(f"{path} is not a training log: only the first file may be a checkpoint or a trace; "
                                  "give training logs (X.log.h5) or folders of them after it")


def _check_compare(args) -> None:
    """``--compare`` needs two checkpoints: one line before any window starts otherwise."""
    from ..errors import DrawStudioError
    from ..file_kinds import CHECKPOINT, file_kind

    refuse_overwriting_inputs({"--screenshot": args.screenshot}, {"--compare": args.compare})
    for flag, path in (("--compare", args.compare), ("the first file", args.file)):
        kind = file_kind(path) if path is not None else CHECKPOINT
        if kind != CHECKPOINT:
            raise DrawStudioError(f"--compare compares two models, but {flag} {path} is a {kind} file: "
                                  "give checkpoints (.ckpt)")
