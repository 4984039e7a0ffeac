"""``draw-studio export``: frames, GIF or MP4 of a trace (DRAW's, or an attention classifier's classify trace)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..classify_trace import CLASSIFY_MODE, read_classify_trace
from ..errors import DrawStudioError
from ..export import (
    export_frames,
    export_gif,
    export_mp4,
    frame_files,
    frame_size,
    frame_steps,
    frames_written_text,
    parse_images,
)
from ..memory import check_fits
from ..trace_checks import nonfinite_fields
from ..trace_file import open_trace_file, read_trace, trace_mode
from ..window_style import DEFAULT_STYLE, STYLES
from .arguments import integer, positive_int, real
from .common import command_parser, refuse_overwriting_inputs, status


def image_choice(text: str) -> list[int]:
    """The argument type of ``--images``: :func:`draw_studio.export.parse_images`."""
    try:
        return parse_images(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "export", help="PNG frames, GIF or MP4 of a trace", description=(
        "Pictures of a trace file: frame s shows sigmoid(c_s) of every image; with --windows frame s also "
        "shows where step s-1 read (red) and wrote (green): by default an outline of the filter grid's extent "
        "with the filter width as a translucent band outside it; a window past the image's edge is clipped and "
        "marked by an arrow. A classify trace (an attention classifier's) has one frame per glimpse t = 1..T: "
        "each image's input with the read window of glimpse t, the glimpse, and a line such as "
        "'glimpse 3/8: p(7)=0.93, label 7'."))
    p.add_argument("trace", help="trace file written by draw-studio trace")
    p.add_argument("--frames", metavar="DIR", help="write frame_000.png ... into this folder (the frame_NNN.png "
                   "files of an earlier export there are replaced: those beyond the new ones are removed)")
    p.add_argument("--gif", metavar="FILE", help="write an animated GIF")
    p.add_argument("--mp4", metavar="FILE", help="write an MP4 video (needs pip install imageio-ffmpeg)")
    p.add_argument("--windows", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the read (red) and write (green) attention windows (default: --no-windows for a "
                        "DRAW trace, --windows for a classify trace)")
    p.add_argument("--window-style", choices=STYLES, default=DEFAULT_STYLE,
                   help="outline: the grid's extent outlined, the filter width a translucent band outside it "
                        "(the image stays visible); border: the paper's border as wide as the filter")
    p.add_argument("--scale", type=integer(1, 1024), default=None,
                   help="integer nearest-neighbour upscaling (default: 4; 2 for a classify trace)")
    p.add_argument("--columns", type=positive_int, default=None,
                   help="images per row (default: a near-square grid)")
    p.add_argument("--images", "--samples", dest="samples", type=image_choice, default=None,
                   help="only these images of the trace: indices and ranges, e.g. 0-9,12 (default: all)")
    p.add_argument("--fps", type=real(0.0, 1000.0, low_open=True), default=8.0,
                   help="frames per second of the GIF / MP4 (above 0, at most 1000)")
    p.add_argument("--loop", type=integer(0, 65535, "the GIF format's limit"), default=0,
                   help="GIF repeats: 0 forever, k plays k+1 times")
    p.set_defaults(run=run)


def run(args) -> int:
    if not (args.frames or args.gif or args.mp4):
        raise DrawStudioError("nothing to export: pass --frames DIR, --gif FILE and/or --mp4 FILE")
    refuse_overwriting_inputs({"--frames": args.frames, "--gif": args.gif, "--mp4": args.mp4}, {"trace": args.trace})
    check_fits(_stored_bytes(args.trace), f"reading the trace {args.trace}", "export fewer images with --samples")
    classify = trace_mode(args.trace) == CLASSIFY_MODE
    trace = read_classify_trace(args.trace, args.samples) if classify else read_trace(args.trace, args.samples)
    windows = classify if args.windows is None else args.windows
    scale = (2 if classify else 4) if args.scale is None else args.scale
    steps = frame_steps(trace)
    if args.frames:
        digits = max(3, len(str(trace.steps)))
        names = [Path(args.frames) / f"frame_{step:0{digits}d}.png" for step in steps]
        # the earlier export's frames are removed once the new ones are in: the trace must not be one of them
        refuse_overwriting_inputs({"--frames": names + frame_files(args.frames)}, {"trace": args.trace})
    height, width = frame_size(trace, scale, args.columns)
    frame = 3 * height * width  # bytes of one RGB frame
    check_fits(frame * (len(steps) if args.gif else 2), f"frames of {trace.n} images at --scale {scale}"
               + (" (a GIF holds all of them)" if args.gif else ""), "use a smaller --scale or fewer --samples")
    if windows and trace.read_params is None and getattr(trace, "write_params", None) is None:
        status("note: this trace has no attention windows to draw")
    if nonfinite_fields(trace):
        status(f"note: this trace holds non-finite values ({', '.join(nonfinite_fields(trace))}): the model had "
               "diverged; they are drawn black and no attention window is drawn for those steps")
    options = {"scale": scale, "windows": windows, "columns": args.columns, "style": args.window_style}

    def progress(done: int, total: int) -> None:
        if done == total or done % 16 == 0:
            status(f"  frame {done}/{total}")

    if args.frames:
        status(frames_written_text(export_frames(trace, args.frames, progress=progress, **options), args.frames))
    if args.gif:
        export_gif(trace, args.gif, fps=args.fps, loop=args.loop, progress=progress, **options)
        status(f"wrote {args.gif}")
    if args.mp4:
        export_mp4(trace, args.mp4, fps=args.fps, progress=progress, **options)
        status(f"wrote {args.mp4}")
    return 0


def _stored_bytes(path: str) -> int:
    """Bytes of all the datasets of a trace file once read (nothing is read but the shapes)."""
    sizes = []
    with open_trace_file(path) as f:
        try:
            f.visititems(lambda name, item: sizes.append(item.size * item.dtype.itemsize)
                         if hasattr(item, "dtype") else None)
        except Exception:  # noqa: BLE001 - a damaged file: read_trace names the problem
            return 0
    return sum(sizes)
