"""Pictures of a trace: one PNG per step, an animated GIF or an MP4.

Frame s (s = 0..T) shows the mean image sigmoid(c_s) of every image of the
trace, tiled, with nearest-neighbour upscaling. With ``windows=True`` frame
s >= 1 also shows the attention windows of the step that produced it, step
s - 1: where it read (red) and where it wrote (green). Frame 0 (the empty
canvas) has no windows. A window is drawn as the extent of its filter grid,
gx +- delta (N - 1) / 2 by gy +- delta (N - 1) / 2 (the outer filter centres,
1-based pixel coordinates, pixel a centred on a), with a border as wide as
the filters: sqrt(sigma2) picture pixels at scale 1 (at least 1 pixel).

A trace of a diverged model holds NaN or infinite values: a non-finite
canvas value is drawn black, and no window is drawn for a step whose
parameters are not all finite.

Every file is written under a temporary name and renamed when complete; a
failure to write (a full disk, a file-size limit, a read-only or forbidden
folder) is one ``DrawStudioError`` line and leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .attention import window_extent
from .errors import DrawStudioError
from .files import atomic_write, write_failure
from .images import tile, to_uint8, upscale
from .trace import Trace
from .trace_checks import finite_window

READ_COLOUR = (255, 0, 0)
WRITE_COLOUR = (0, 255, 0)
PADDING = 1

Progress = Callable[[int, int], None]


def frame_layout(trace: Trace, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) of the image grid of a frame."""
    columns = columns or max(1, int(np.ceil(np.sqrt(trace.n))))
    if columns < 1:
        raise DrawStudioError(f"columns must be at least 1, got {columns}")
    return columns, int(np.ceil(trace.n / columns))


def render_frame(trace: Trace, step: int, scale: int = 4, windows: bool = False,
                 columns: int | None = None) -> np.ndarray:
    """The picture of frame ``step`` (0..T).

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
    columns, _ = frame_layout(trace, columns)
    images = to_uint8(trace.mean_images(step))  # (n, C, H, W)
    if windows and images.shape[1] == 1:
        images = images.repeat(3, axis=1)
    picture = upscale(tile(images, columns, padding=PADDING), scale)
    if windows and step >= 1:
        for params, size, colour in ((trace.read_params, trace.model_config.read_n, READ_COLOUR),
                                     (trace.write_params, trace.model_config.write_n, WRITE_COLOUR)):
            if params is not None:
                for i in range(trace.n):
                    if finite_window(params[i, step - 1]):
                        _draw_window(picture, i, columns, trace, params[i, step - 1], size, scale, colour)
    return picture


def border_width(sigma2: float, scale: int) -> int:
    """Border of a window in picture pixels: the filter width sqrt(sigma2) times ``scale``, at least 1."""
    return max(1, int(round(np.sqrt(max(float(sigma2), 0.0)) * scale)))


def _draw_window(picture: np.ndarray, index: int, columns: int, trace: Trace, params: np.ndarray, n: int,
                 scale: int, colour: tuple[int, int, int]) -> None:
    """Paint the border of one window onto image ``index`` of the tiled picture, clipped to that image."""
    cfg = trace.model_config
    top = (PADDING + (index // columns) * (cfg.height + PADDING)) * scale
    left = (PADDING + (index % columns) * (cfg.width + PADDING)) * scale
    x0, x1, y0, y1 = window_extent(params, n)
    # 1-based coordinate u maps to picture offset (u - 0.5) * scale inside the image (pixel a covers a +- 0.5)
    x0, x1, y0, y1 = ((v - 0.5) * scale for v in (x0, x1, y0, y1))
    half = border_width(params[3], scale) / 2
    xs = np.arange(cfg.width * scale) + 0.5  # pixel centres of the image's picture columns
    ys = np.arange(cfg.height * scale) + 0.5
    in_x = (xs >= x0 - half) & (xs <= x1 + half)
    in_y = (ys >= y0 - half) & (ys <= y1 + half)
    inner_x = (xs > x0 + half) & (xs < x1 - half)
    inner_y = (ys > y0 + half) & (ys < y1 - half)
    band = (in_y[:, None] & in_x[None, :]) & ~(inner_y[:, None] & inner_x[None, :])  # (H*scale, W*scale)
    region = picture[top:top + cfg.height * scale, left:left + cfg.width * scale]
    region[band] = colour


def frames(trace: Trace, scale: int = 4, windows: bool = False, columns: int | None = None,
           multiple: int = 1) -> Iterator[np.ndarray]:
    """Frames 0..T, each padded at the bottom and right to a multiple of ``multiple`` pixels."""
    for step in range(trace.steps + 1):
        picture = render_frame(trace, step, scale, windows, columns)
        if multiple > 1:
            h, w = picture.shape[:2]
            pad = ((0, -h % multiple), (0, -w % multiple), (0, 0))
            picture = np.pad(picture, pad, constant_values=64)
        yield picture


def _pil(picture: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(picture[:, :, 0] if picture.shape[2] == 1 else picture))


def export_frames(trace: Trace, out_dir: str | Path, scale: int = 4, windows: bool = False,
                  columns: int | None = None, progress: Progress | None = None) -> list[Path]:
    """Write ``frame_000.png`` .. one PNG per canvas state c_0..c_T into ``out_dir``.

    The frames are written into a temporary folder inside ``out_dir`` and
    moved in only when all are done, so an interrupted export leaves no
    partial PNG and no new frame. ``progress(done, total)`` is called after
    each frame. Returns the paths written.
    """
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise DrawStudioError(f"cannot write frames into {out_dir}: folder {out_dir.parent} does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise DrawStudioError(f"cannot write frames into {out_dir}: it is a file, not a folder; give a folder")
    total = trace.steps + 1
    digits = max(3, len(str(trace.steps)))
    temp = None
    names: list[str] = []
    try:
        out_dir.mkdir(exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".frames-", dir=out_dir))
        for step, picture in enumerate(frames(trace, scale, windows, columns)):
            name = f"frame_{step:0{digits}d}.png"
            _pil(picture).save(temp / name, format="PNG")
            names.append(name)
            if progress is not None:
                progress(step + 1, total)
        for name in names:
            os.replace(temp / name, out_dir / name)
    except OSError as exc:
        raise DrawStudioError(write_failure(out_dir, exc)) from None
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return [out_dir / name for name in names]


def export_gif(trace: Trace, path: str | Path, fps: float = 8, loop: int = 0, scale: int = 4,
               windows: bool = False, columns: int | None = None, hold_last: float = 1.0,
               progress: Progress | None = None) -> None:
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
    total = trace.steps + 1
    pictures = []
    for step, picture in enumerate(frames(trace, scale, windows, columns)):
        pictures.append(_pil(picture))
        if progress is not None:
            progress(step + 1, total)
    duration = [int(round(1000 / fps))] * total
    duration[-1] = max(duration[-1], int(round(1000 * hold_last)))
    atomic_write(path, lambda temp: pictures[0].save(temp, format="GIF", save_all=True,
                                                     append_images=pictures[1:], duration=duration,
                                                     loop=int(loop), optimize=False))


def export_mp4(trace: Trace, path: str | Path, fps: float = 8, scale: int = 4, windows: bool = False,
               columns: int | None = None, progress: Progress | None = None) -> None:
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
    total = trace.steps + 1

    def write(temp: str) -> None:
        encoder = None
        with tempfile.TemporaryFile() as log:
            try:
                for step, picture in enumerate(frames(trace, scale, windows, columns, multiple=16)):
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
