"""Pictures of a trace: one PNG per step, an animated GIF or an MP4.

Frame s (s = 0..T) shows the mean image sigmoid(c_s) of the trace's images
(all, or those chosen with :func:`select_images`), tiled, with
nearest-neighbour upscaling. With ``windows=True`` frame s >= 1 also shows
the attention windows of the step that produced it, step s - 1: where it
read (red) and where it wrote (green). Frame 0 (the empty canvas) has no
windows. Windows are drawn as the window's timeline draws them
(:mod:`draw_studio.window_style`): by default a thin outline of the filter
grid's extent with the filter width as a translucent band outside it, so the
image stays visible; ``style="border"`` is the paper's border as wide as the
filter. A window that goes past its image is clipped and marked at the edge.

A classify trace (an attention classifier's glimpses, mode ``"classify"``) has one frame per glimpse,
t = 1..T, drawn by :mod:`draw_studio.classify_export`: each image's input with the read window of
glimpse t, the glimpse, and the class probability of the answer then with the label. The same
functions write its PNG frames, GIF and MP4.

A trace of a diverged model holds NaN or infinite values: a non-finite
canvas value is drawn black, and no window is drawn for a step whose
parameters are not all finite.

Every file is written under a temporary name and renamed when complete; a
failure to write (a full disk, a file-size limit, a read-only or forbidden
folder) is one ``DrawStudioError`` line and leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .classify_export import classify_frame_shape, classify_frames
from .errors import DrawStudioError
from .files import atomic_write, write_failure
from .frame_files import FRAME_NAME, WrittenFrames, frame_files, frames_written_text  # noqa: F401 (re-exported)
from .images import tile, to_uint8, upscale
from .trace import Trace
from .window_style import DEFAULT_STYLE, STYLES, paint_window, window_shape

READ_COLOUR = (255, 0, 0)
WRITE_COLOUR = (0, 255, 0)
PADDING = 1

Progress = Callable[[int, int], None]
MAX_CHOSEN = 1_000_000  # images one choice may name (a trace this large would not fit in memory anyway)
def parse_images(text: str) -> list[int]:
    """``"0-9,12"`` -> [0, 1, ..., 9, 12]: indices and inclusive ranges, sorted, each image once.

    Whether each index exists is checked against a trace by :func:`select_images`.

    Raises
    ------
    ValueError
        With a one-line reason, for anything else.
    """
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise ValueError(f"expected comma-separated indices such as 3,17,42 or a range such as 0-9, got {text!r}")
    chosen: set[int] = set()
    for part in parts:
        single, span = re.fullmatch(r"\d+", part), re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if not part:
            raise ValueError(f"an empty entry in {text!r}; write indices like 0-9,12")
        if re.fullmatch(r"-\s*\d+", part):
            raise ValueError(f"index {part} is out of range: indices count images from 0")
        if single is None and span is None:
            raise ValueError(f"{part!r} is neither a whole number nor a range; write indices like 0-9,12")
        first, last = (int(single.group()),) * 2 if single else (int(span.group(1)), int(span.group(2)))
        if first > last:
            raise ValueError(f"the range {part} runs backwards; write {last}-{first}")
        if last - first + 1 + len(chosen) > MAX_CHOSEN:
            raise ValueError(f"{text!r} names more than {MAX_CHOSEN:,} images")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def is_classify(trace) -> bool:
    """``trace`` is an attention classifier's (a ``ClassifyTrace``, mode ``"classify"``), not DRAW's."""
    return getattr(trace, "mode", "") == "classify"


def frame_steps(trace) -> range:
    """The steps that have a frame: 0..T for DRAW (c_0 .. c_T), the glimpses 1..T for a classify trace."""
    return range(1, trace.steps + 1) if is_classify(trace) else range(trace.steps + 1)


def frame_size(trace, scale: int, columns: int | None = None) -> tuple[int, int]:
    """(height, width) in pixels of every frame of ``trace`` at ``scale`` (before any padding for video)."""
    return picture_size(trace.n, trace.model_config, scale, columns, is_classify(trace))


def picture_size(n: int, config, scale: int, columns: int | None = None,
                 classify: bool = False) -> tuple[int, int]:
    """(height, width) in pixels of a frame of ``n`` images of a model of ``config`` (its height and width)."""
    if classify:
        return classify_frame_shape(n, config.height, config.width, scale, columns)
    columns, rows = grid_shape(n, columns)
    return (rows * (config.height + PADDING) + PADDING) * scale, (columns * (config.width + PADDING) + PADDING) * scale


def frame_layout(trace: Trace, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) of the image grid of a frame."""
    return grid_shape(trace.n, columns)


def grid_shape(n: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) of a grid of ``n`` images: ``columns`` wide, or near-square by default."""
    columns = columns or max(1, int(np.ceil(np.sqrt(n))))
    if columns < 1:
        raise DrawStudioError(f"columns must be at least 1, got {columns}")
    return columns, int(np.ceil(n / columns))


def select_images(trace: Trace, images: Sequence[int] | None) -> Trace:
    """A trace of only ``images`` (indices into ``trace``, in that order), or ``trace`` itself for None.

    Raises
    ------
    DrawStudioError
        When no image is chosen or an index is not one of the trace's 0..n-1.
    """
    if images is None:
        return trace
    chosen = [int(i) for i in images]
    if not chosen:
        raise DrawStudioError("no image chosen to export")
    wrong = [i for i in chosen if not 0 <= i < trace.n]
    if wrong:
        raise DrawStudioError(f"image {wrong[0]} does not exist: this trace has images 0..{trace.n - 1}")
    return dataclasses.replace(trace, **{name: value[chosen] for name, value in trace.arrays().items()})


def check_style(style: str) -> None:
    """Raise DrawStudioError unless ``style`` is one of :data:`~draw_studio.window_style.STYLES`."""
    if style not in STYLES:
        raise DrawStudioError(f"unknown window style {style!r}; use one of {', '.join(STYLES)}")


def render_frame(trace: Trace, step: int, scale: int = 4, windows: bool = False,
                 columns: int | None = None, style: str = DEFAULT_STYLE) -> np.ndarray:
    """The picture of frame ``step`` (0..T), windows drawn in ``style`` (``"outline"`` or ``"border"``).

    Returns
    -------
    ndarray, shape (H', W', C'), uint8
        C' is the trace's channels, or 3 when windows are drawn.
    """
    if not 0 <= step <= trace.steps:
        raise DrawStudioError(f"frame {step} does not exist; a trace of {trace.steps} steps has frames "
                              f"0..{trace.steps}")
    if scale < 1:
        raise DrawStudioError(f"scale must be a whole number of at least 1, got {scale}")
    check_style(style)
    columns, _ = frame_layout(trace, columns)
    images = to_uint8(trace.mean_images(step))  # (n, C, H, W)
    if windows and images.shape[1] == 1:
        images = images.repeat(3, axis=1)
    picture = upscale(tile(images, columns, padding=PADDING), scale)
    if windows and step >= 1:
        cfg = trace.model_config
        for params, size, colour in ((trace.read_params, cfg.read_n, READ_COLOUR),
                                     (trace.write_params, cfg.write_n, WRITE_COLOUR)):
            if params is None:
                continue
            for i in range(trace.n):
                shape = window_shape(params[i, step - 1], size, cfg.height, cfg.width)
                if shape is not None:
                    top = (PADDING + (i // columns) * (cfg.height + PADDING)) * scale
                    left = (PADDING + (i % columns) * (cfg.width + PADDING)) * scale
                    region = picture[top:top + cfg.height * scale, left:left + cfg.width * scale]
                    paint_window(region, shape, scale, colour, style)
    return picture


def frames(trace: Trace, scale: int = 4, windows: bool = False, columns: int | None = None,
           multiple: int = 1, style: str = DEFAULT_STYLE) -> Iterator[np.ndarray]:
    """Frames of :func:`frame_steps` (DRAW: 0..T; a classify trace: its glimpses 1..T), each padded at the
    bottom and right to a multiple of ``multiple`` pixels."""
    if is_classify(trace):
        check_style(style)
        yield from classify_frames(trace, scale, windows, columns, multiple, style)
        return
    for step in range(trace.steps + 1):
        picture = render_frame(trace, step, scale, windows, columns, style)
        if multiple > 1:
            h, w = picture.shape[:2]
            pad = ((0, -h % multiple), (0, -w % multiple), (0, 0))
            picture = np.pad(picture, pad, constant_values=64)
        yield picture


def _pil(picture: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(picture[:, :, 0] if picture.shape[2] == 1 else picture))


def export_frames(trace: Trace, out_dir: str | Path, scale: int = 4, windows: bool = False,
                  columns: int | None = None, progress: Progress | None = None,
                  style: str = DEFAULT_STYLE) -> WrittenFrames:
    """Write ``frame_000.png`` .. one PNG per canvas state c_0..c_T into ``out_dir`` (a classify trace:
    ``frame_001.png`` .. one per glimpse).

    The frames are written into a temporary folder inside ``out_dir`` and
    moved in only when all are done, so an interrupted export leaves no
    partial PNG and no new frame. Once they are in, the frames of an earlier
    export that the new set does not replace (files named ``frame_NNN.png``,
    nothing else) are removed, so the folder holds this export's frames only.
    ``progress(done, total)`` is called after each frame. Returns the paths
    written, with the paths removed as ``removed``.
    """
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise DrawStudioError(f"cannot write frames into {out_dir}: folder {out_dir.parent} does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise DrawStudioError(f"cannot write frames into {out_dir}: it is a file, not a folder; give a folder")
    steps = frame_steps(trace)
    total = len(steps)
    digits = max(3, len(str(trace.steps)))
    temp = None
    names: list[str] = []
    try:
        out_dir.mkdir(exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".frames-", dir=out_dir))
        for done, (step, picture) in enumerate(zip(steps, frames(trace, scale, windows, columns, style=style),
                                                   strict=True), start=1):
            name = f"frame_{step:0{digits}d}.png"
            _pil(picture).save(temp / name, format="PNG")
            names.append(name)
            if progress is not None:
                progress(done, total)
        for name in names:
            os.replace(temp / name, out_dir / name)
        kept = set(names)
        stale = [path for path in frame_files(out_dir) if path.name not in kept]
        for path in stale:
            path.unlink()
    except OSError as exc:
        raise DrawStudioError(write_failure(out_dir, exc)) from None
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return WrittenFrames([out_dir / name for name in names], stale)


def export_gif(trace: Trace, path: str | Path, fps: float = 8, loop: int = 0, scale: int = 4,
               windows: bool = False, columns: int | None = None, hold_last: float = 1.0,
               progress: Progress | None = None, style: str = DEFAULT_STYLE) -> None:
    """Write the frames as an animated GIF.

    Parameters
    ----------
    fps : float
        Frames per second.
    loop : int
        0 repeats forever, k plays k + 1 times (Pillow's convention).
    hold_last : float
        Seconds the last frame stays up before the animation starts again.
    """
    if fps <= 0:
        raise DrawStudioError(f"fps must be positive, got {fps}")
    total = len(frame_steps(trace))
    pictures = []
    for step, picture in enumerate(frames(trace, scale, windows, columns, style=style)):
        pictures.append(picture)
        if progress is not None:
            progress(step + 1, total)
    write_gif(pictures, path, fps, loop, hold_last)


def write_gif(pictures: Sequence[np.ndarray], path: str | Path, fps: float = 8, loop: int = 0,
              hold_last: float = 1.0) -> None:
    """Write pictures (each (H, W, C) uint8, C = 1 or 3, all the same size) as an animated GIF, atomically.

    ``fps``, ``loop`` and ``hold_last`` are :func:`export_gif`'s.
    """
    if fps <= 0:
        raise DrawStudioError(f"fps must be positive, got {fps}")
    if not pictures:
        raise DrawStudioError(f"no picture to write into {path}")
    images = [_pil(picture) for picture in pictures]
    duration = [int(round(1000 / fps))] * len(images)
    duration[-1] = max(duration[-1], int(round(1000 * hold_last)))
    atomic_write(path, lambda temp: images[0].save(temp, format="GIF", save_all=True,
                                                   append_images=images[1:], duration=duration,
                                                   loop=int(loop), optimize=False))


def export_mp4(trace: Trace, path: str | Path, fps: float = 8, scale: int = 4, windows: bool = False,
               columns: int | None = None, progress: Progress | None = None, style: str = DEFAULT_STYLE) -> None:
    """Write the frames as an H.264 MP4 (needs the ``imageio-ffmpeg`` package for its ffmpeg).

    Frames are padded to a multiple of 16 pixels (the codec's block size)
    and streamed to ffmpeg one at a time. The file counts as written only
    when ffmpeg exits cleanly: an encoder that fails (e.g. on a full disk
    while it writes the index at the end) is an error, not a broken video.
    """
    if fps <= 0:
        raise DrawStudioError(f"fps must be positive, got {fps}")
    try:
        import imageio_ffmpeg
    except ImportError:
        raise DrawStudioError("MP4 export needs the ffmpeg plugin of imageio; run: pip install imageio-ffmpeg "
                              "(or export a GIF or frames instead)") from None
    total = len(frame_steps(trace))

    def write(temp: str) -> None:
        encoder = None
        with tempfile.TemporaryFile() as log:
            try:
                for step, picture in enumerate(frames(trace, scale, windows, columns, multiple=16, style=style)):
                    if picture.shape[2] == 1:
                        picture = picture.repeat(3, axis=2)
                    if encoder is None:
                        encoder = _start_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe(), temp, picture.shape, fps, log)
                    try:
                        encoder.stdin.write(np.ascontiguousarray(picture).tobytes())
                    except OSError:  # ffmpeg stopped (a broken pipe): its exit status says why
                        break
                    if progress is not None:
                        progress(step + 1, total)
            except BaseException:
                if encoder is not None:
                    encoder.kill()
                    encoder.wait()
                raise
            if encoder is not None:
                _finish_ffmpeg(encoder, log)

    atomic_write(path, write)


def _start_ffmpeg(executable: str, out: str, shape: tuple[int, ...], fps: float, log):
    """ffmpeg reading raw RGB frames of ``shape`` (H, W, 3) on stdin and encoding H.264 into ``out``."""
    import subprocess

    height, width = shape[:2]
    command = [executable, "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}",
               "-pix_fmt", "rgb24", "-r", f"{fps:.12g}", "-i", "-", "-an", "-vcodec", "libx264",
               "-pix_fmt", "yuv420p", "-crf", "25", "-v", "error", "-f", "mp4", out]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)


def _finish_ffmpeg(encoder, log) -> None:
    """Close ffmpeg's input, wait for it, and raise OSError (with the cause's errno when known) if it failed."""
    with contextlib.suppress(OSError):
        encoder.stdin.close()
    code = encoder.wait()
    if code == 0:
        return
    if code == -signal.SIGXFSZ:  # killed for going past the file-size limit (ulimit -f)
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    log.seek(0)
    text = log.read().decode(errors="replace")
    for number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO):
        if os.strerror(number) in text:
            raise OSError(number, os.strerror(number))
    last = (text.strip().splitlines() or [f"exit status {code}"])[-1]
    raise OSError(errno.EIO, f"the video encoder ffmpeg failed ({last[:160]})")
