"""Exports of a trace: frames, windows where the parameters say, GIF, MP4 and atomic writes."""

import importlib.util
import sys

import numpy as np
import pytest
from PIL import Image

from draw_studio.config import get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.export import export_frames, export_gif, export_mp4, render_frame
from draw_studio.trace import Trace

CONFIG = get_preset("tiny").model  # 28x28, T=4, read 2x2, write 3x3
T = CONFIG.steps


def synthetic_trace(n=3) -> Trace:
    """A trace with known windows: read on the left half, write on the right half of every image."""
    rng = np.random.default_rng(0)
    canvas = np.cumsum(rng.normal(size=(n, T + 1, 1, 28, 28)), axis=1).astype(np.float32) - 20
    read = np.tile(np.array([8.0, 10.0, 6.0, 1.0, 1.0], np.float32), (n, T, 1))  # x 5..11, y 7..13
    write = np.tile(np.array([20.0, 18.0, 3.0, 4.0, 1.0], np.float32), (n, T, 1))  # x 17..23, y 15..21
    read[:, :, 0] += np.arange(T)  # the read window moves one pixel right per step
    return Trace(mode="generate", model_config=CONFIG, seed=0, checkpoint_sha256="", created="", software="",
                 canvas=canvas, z=np.zeros((n, T, CONFIG.z_size), np.float32), read_params=read, write_params=write)


def colour_at(picture, image_index, x, y, scale, columns):
    """Colour of 1-based pixel coordinate (x, y) of image ``image_index`` in an exported frame."""
    top = 1 + (image_index // columns) * 29
    left = 1 + (image_index % columns) * 29
    return tuple(picture[int((top + y - 0.5) * scale), int((left + x - 0.5) * scale)][:3])


def test_frames_count_size_and_names(tmp_path):
    trace = synthetic_trace(n=5)
    calls = []
    paths = export_frames(trace, tmp_path / "frames", scale=3, columns=2, progress=lambda d, t: calls.append((d, t)))
    assert [p.name for p in paths] == [f"frame_{s:03d}.png" for s in range(T + 1)]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [p.name for p in paths]  # no temp left
    assert calls[-1] == (T + 1, T + 1) and len(calls) == T + 1
    for step, path in enumerate(paths):
        picture = np.asarray(Image.open(path))
        assert picture.shape == ((3 * 29 + 1) * 3, (2 * 29 + 1) * 3)  # 3 rows x 2 columns of 28 px + padding
        expected = np.clip(1 / (1 + np.exp(-trace.canvas[4, step, 0])), 0, 1) * 255
        got = picture[(2 * 29 + 1) * 3:(2 * 29 + 29) * 3:3, 3:29 * 3:3]  # image 4: row 2, column 0
        np.testing.assert_allclose(got, expected, atol=1)


def test_windows_drawn_where_the_params_say(tmp_path):
    trace = synthetic_trace()
    scale, columns = 4, 2
    paths = export_frames(trace, tmp_path, scale=scale, windows=True, columns=columns)
    first = np.asarray(Image.open(paths[0]))
    assert first.shape[2] == 3 and not ((first == [255, 0, 0]).all(-1)).any()  # frame 0: no windows
    for step in range(1, T + 1):
        picture = np.asarray(Image.open(paths[step]))
        for i in range(trace.n):
            gx = 8.0 + (step - 1)  # frame s shows the windows of step s - 1
            # read 2x2, delta 6: grid x gx-3..gx+3, y 7..13; write 3x3, delta 3: x 17..23, y 15..21
            assert colour_at(picture, i, gx - 3, 10, scale, columns) == (255, 0, 0)  # left edge
            assert colour_at(picture, i, gx + 3, 12, scale, columns) == (255, 0, 0)  # right edge
            assert colour_at(picture, i, gx, 7, scale, columns) == (255, 0, 0)  # top edge
            assert colour_at(picture, i, gx, 13, scale, columns) == (255, 0, 0)  # bottom edge
            assert colour_at(picture, i, gx, 10, scale, columns) != (255, 0, 0)  # inside: the image shows
            assert colour_at(picture, i, gx - 5, 10, scale, columns) != (255, 0, 0)  # outside
            for x, y in ((17, 18), (23, 18), (20, 15), (20, 21)):
                assert colour_at(picture, i, x, y, scale, columns) == (0, 255, 0)
            assert colour_at(picture, i, 20, 18, scale, columns) != (0, 255, 0)
    # the border follows the filter width: sqrt(sigma2) = 2 pixels for write, 1 for read
    row = np.asarray(Image.open(paths[1]))[int((1 + 18 - 0.5) * scale), :29 * scale]
    green = np.flatnonzero((row == [0, 255, 0]).all(-1))
    red = np.flatnonzero((np.asarray(Image.open(paths[1]))[int((1 + 10 - 0.5) * scale), :29 * scale]
                          == [255, 0, 0]).all(-1))
    assert len(green) == 2 * 2 * scale and len(red) == 2 * 1 * scale


def test_gif_and_mp4(tmp_path):
    trace = synthetic_trace()
    export_gif(trace, tmp_path / "a.gif", fps=5, loop=0, scale=2, windows=True)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == T + 1 and gif.info.get("loop") == 0
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        pytest.skip("imageio-ffmpeg is not installed")
    export_mp4(trace, tmp_path / "a.mp4", fps=5, scale=3)
    import imageio.v2 as imageio

    reader = imageio.get_reader(tmp_path / "a.mp4", format="FFMPEG")
    assert reader.count_frames() == T + 1
    height, width = reader.get_data(0).shape[:2]
    assert height % 16 == 0 and width % 16 == 0 and height >= 2 * 29 * 3 and width >= 2 * 29 * 3
    reader.close()


def test_mp4_without_ffmpeg_plugin_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    with pytest.raises(DrawStudioError, match="pip install imageio-ffmpeg"):
        export_mp4(synthetic_trace(), tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_exports_leave_nothing(tmp_path):
    trace = synthetic_trace()

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    out = tmp_path / "frames"
    with pytest.raises(KeyboardInterrupt):
        export_frames(trace, out, progress=stop)
    assert list(out.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        export_gif(trace, tmp_path / "a.gif", progress=stop)
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        with pytest.raises(KeyboardInterrupt):
            export_mp4(trace, tmp_path / "a.mp4", progress=stop)
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
    with pytest.raises(DrawStudioError, match="frames 0..4"):
        render_frame(trace, T + 1)
