"""``draw-studio log-export``: a training log's curves as CSV or TensorBoard events, its snapshots as a GIF."""

from __future__ import annotations

from ..errors import DrawStudioError
from ..log_export import export_log_csv, export_snapshots_gif
from ..tensorboard_logs import INSTALL, export_log_tensorboard
from .arguments import integer, real
from .common import command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "log-export", help="a training log as CSV, TensorBoard events or a snapshots GIF",
                       description=(
                           "Convert a training log (X.log.h5): every point of its curves (training bound and "
                           "terms, learning rate, validation bound) to CSV or TensorBoard event files, and its "
                           "snapshots (prior samples and reconstructions every N steps) to a GIF of the model "
                           "learning to draw."))
    p.add_argument("log", help="training log (X.log.h5)")
    p.add_argument("--csv", metavar="FILE", help="write the curves as CSV (one row per point)")
    p.add_argument("--tensorboard", metavar="DIR", help=f"write TensorBoard event files into this new folder "
                   f"(needs {INSTALL})")
    p.add_argument("--snapshots-gif", metavar="FILE", help="write the snapshots as an animated GIF")
    p.add_argument("--fps", type=real(0.0, 1000.0, low_open=True), default=4.0,
                   help="GIF frames (snapshots) per second (default 4)")
    p.add_argument("--scale", type=integer(1, 64), default=2, help="GIF integer nearest-neighbour upscaling")
    p.add_argument("--loop", type=integer(0, 65535, "the GIF format's limit"), default=0,
                   help="GIF repeats: 0 forever, k plays k+1 times")
    p.set_defaults(run=run)


def run(args) -> int:
    if not (args.csv or args.tensorboard or args.snapshots_gif):
        raise DrawStudioError("nothing to export: pass --csv FILE, --tensorboard DIR and/or --snapshots-gif FILE")
    refuse_overwriting_inputs({"--csv": args.csv, "--tensorboard": args.tensorboard,
                               "--snapshots-gif": args.snapshots_gif}, {"log": args.log})
    if args.csv:
        rows = export_log_csv(args.log, args.csv)
        status(f"wrote {rows:,} points to {args.csv}")
    if args.tensorboard:
        points = export_log_tensorboard(args.log, args.tensorboard)
        status(f"wrote {points:,} points to TensorBoard files in {args.tensorboard}")
    if args.snapshots_gif:
        frames = export_snapshots_gif(args.log, args.snapshots_gif, fps=args.fps, loop=args.loop, scale=args.scale)
        status(f"wrote {frames} snapshots to {args.snapshots_gif}")
    return 0
