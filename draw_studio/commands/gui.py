"""``draw-studio gui``: the desktop window (needs the ``gui`` extra: PySide6 and pyqtgraph)."""

from __future__ import annotations

from .common import add_device, command_parser, refuse_overwriting_inputs


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "gui", help="open the DRAW Studio window", description=(
        "Open the window on a checkpoint, a trace or a training log (default: models/mnist-attention.ckpt "
        "if it exists, else an untrained mnist-paper model)."))
    p.add_argument("file", nargs="?", default=None, metavar="CKPT | TRACE.h5 | LOG.h5",
                   help="checkpoint, trace or training log to open")
    p.add_argument("--screenshot", metavar="FILE.png", default=None,
                   help="render the window (at least 1280x800) to this PNG and exit")
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
    from ..gui.app import offscreen_if_headless, require_qt, run_window

    require_qt()
    if args.screenshot:
        offscreen_if_headless()
    return run_window(args.file, screenshot=args.screenshot, device=args.device, settings_file=args.settings)
