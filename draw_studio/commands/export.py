"""``draw-studio export``: frames, GIF or MP4 of a trace."""

from __future__ import annotations

from ..errors import DrawStudioError
from ..export import export_frames, export_gif, export_mp4
from ..trace import read_trace
from .common import status
from .trace import parse_indices


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="PNG frames, GIF or MP4 of a trace", description=(
        "Pictures of a trace file: frame s shows sigmoid(c_s) of every image; with --windows frame s also "
        "shows where step s-1 read (red) and wrote (green)."))
    p.add_argument("trace", help="trace file written by draw-studio trace")
    p.add_argument("--frames", metavar="DIR", help="write frame_000.png ... into this folder")
    p.add_argument("--gif", metavar="FILE", help="write an animated GIF")
    p.add_argument("--mp4", metavar="FILE", help="write an MP4 video (needs pip install imageio-ffmpeg)")
    p.add_argument("--windows", action="store_true", help="draw the read (red) and write (green) windows")
    p.add_argument("--scale", type=int, default=4, help="integer nearest-neighbour upscaling")
    p.add_argument("--columns", type=int, default=None, help="images per row (default: a near-square grid)")
    p.add_argument("--samples", default=None, help="only these images of the trace, e.g. 0,1,5")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second of the GIF / MP4")
    p.add_argument("--loop", type=int, default=0, help="GIF repeats: 0 forever, k plays k+1 times")
    p.set_defaults(run=run)


def run(args) -> int:
    if not (args.frames or args.gif or args.mp4):
        raise DrawStudioError("nothing to export: pass --frames DIR, --gif FILE and/or --mp4 FILE")
    if args.scale < 1:
        raise DrawStudioError(f"--scale must be at least 1, got {args.scale}")
    if args.columns is not None and args.columns < 1:
        raise DrawStudioError(f"--columns must be at least 1, got {args.columns}")
    trace = read_trace(args.trace, parse_indices(args.samples))
    if args.windows and trace.read_params is None and trace.write_params is None:
        status("note: this trace has no attention windows to draw")
    options = {"scale": args.scale, "windows": args.windows, "columns": args.columns}

    def progress(done: int, total: int) -> None:
        if done == total or done % 16 == 0:
            status(f"  frame {done}/{total}")

    if args.frames:
        paths = export_frames(trace, args.frames, progress=progress, **options)
        status(f"wrote {len(paths)} frames to {args.frames}")
    if args.gif:
        export_gif(trace, args.gif, fps=args.fps, loop=args.loop, progress=progress, **options)
        status(f"wrote {args.gif}")
    if args.mp4:
        export_mp4(trace, args.mp4, fps=args.fps, progress=progress, **options)
        status(f"wrote {args.mp4}")
    return 0
