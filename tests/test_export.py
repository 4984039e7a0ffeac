"""Exports of a trace: frames, windows where the parameters say (never hiding the image), options, GIF, MP4."""

import dataclasses
import importlib.util
import shutil
import sys

import numpy as np
import pytest
from PIL import Image
from tiny_data import REPO

from draw_studio.config import get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.export import export_frames, export_gif, export_mp4, parse_images, render_frame, select_images
from draw_studio.trace import Trace
from draw_studio.trace_file import write_trace
from draw_studio.window_style import BAND_ALPHA, window_shape

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


def image_region(picture, image_index, scale, columns):
    """The (28*scale, 28*scale, 3) part of a frame that shows image ``image_index``."""
    top, left = (1 + (image_index // columns) * 29) * scale, (1 + (image_index % columns) * 29) * scale
    return picture[top:top + 28 * scale, left:left + 28 * scale]


def test_paper_border_style_drawn_where_the_params_say(tmp_path):
    trace = synthetic_trace()
    scale, columns = 4, 2
    paths = export_frames(trace, tmp_path, scale=scale, windows=True, columns=columns, style="border")
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


def test_default_windows_outline_the_grid_and_leave_the_pixels_under_it_unchanged():
    trace = synthetic_trace()
    scale, columns, step = 4, 2, 2
    plain = render_frame(trace, step, scale, windows=False, columns=columns).repeat(3, axis=2)
    drawn = render_frame(trace, step, scale, windows=True, columns=columns)
    for i in range(trace.n):
        before, after = image_region(plain, i, scale, columns), image_region(drawn, i, scale, columns)
        for params, n, colour in ((trace.read_params[i, step - 1], 2, (255, 0, 0)),
                                  (trace.write_params[i, step - 1], 3, (0, 255, 0))):
            shape = window_shape(params, n, 28, 28)
            x0, x1, y0, y1 = (round(v * scale) for v in shape.grid)
            np.testing.assert_array_equal(after[y0:y1, x0:x1], before[y0:y1, x0:x1])  # every pixel under the grid
            assert tuple(after[(y0 + y1) // 2, x0 - 1]) == colour  # a thin outline just outside the left edge
            assert tuple(after[y0 - 1, (x0 + x1) // 2]) == colour  # and the top edge
            # the filter width: a translucent band sigma pixels wide outside the outline, the image seen through it
            out = round((shape.x0 - shape.sigma / 2) * scale)  # half way out in the band
            expected = before[(y0 + y1) // 2, out] * (1 - BAND_ALPHA) + np.array(colour) * BAND_ALPHA
            np.testing.assert_allclose(after[(y0 + y1) // 2, out], expected, atol=1)
            beyond = round((shape.x0 - shape.sigma) * scale) - 2  # past the band: untouched
            np.testing.assert_array_equal(after[(y0 + y1) // 2, beyond], before[(y0 + y1) // 2, beyond])


def _one_window(read):
    """A one-image trace whose read window is ``read`` at every step and has no write window."""
    trace = synthetic_trace(n=1)
    return dataclasses.replace(trace, read_params=np.tile(np.asarray(read, np.float32), (1, T, 1)),
                               write_params=None)


def test_a_window_wider_than_the_image_is_clipped_and_marked_at_both_edges():
    scale = 4
    trace = _one_window([14.5, 14.5, 40.0, 1.0, 1.0])  # grid -5.5..34.5 (1-based): past all four edges
    plain = image_region(render_frame(trace, 1, scale, windows=False, columns=1).repeat(3, axis=2), 0, scale, 1)
    drawn = image_region(render_frame(trace, 1, scale, windows=True, columns=1), 0, scale, 1)
    red = (drawn == [255, 0, 0]).all(-1)
    assert red[:, 0].sum() > 28 * scale // 3 and red[:, -1].sum() > 28 * scale // 3  # dashed on the left, right
    assert red[0].sum() > 28 * scale // 3 and red[-1].sum() > 28 * scale // 3  # and top, bottom edges
    middle = slice(6 * scale, 22 * scale)
    np.testing.assert_array_equal(drawn[middle, middle], plain[middle, middle])  # the image itself untouched
    assert window_shape(trace.read_params[0, 0], 2, 28, 28).note("read") == (
        "read window extends past the image (left, right, top, bottom)")


def test_a_window_wholly_outside_leaves_an_arrow_on_the_edge_facing_it():
    scale = 4
    trace = _one_window([40.0, 14.0, 2.0, 1.0, 1.0])  # right of the image
    drawn = image_region(render_frame(trace, 1, scale, windows=True, columns=1), 0, scale, 1)
    red = (drawn == [255, 0, 0]).all(-1)
    columns = np.flatnonzero(red.any(axis=0))
    assert red.any() and columns.min() > 24 * scale  # only an arrow at the right edge
    assert red[:, -1].any()  # its tip touches the edge
    assert window_shape(trace.read_params[0, 0], 2, 28, 28).note("read") == (
        "read window wholly outside the image (right)")


def test_windows_off_draw_nothing_and_a_grey_trace_stays_grey():
    trace = synthetic_trace()
    assert render_frame(trace, 2, 2, windows=False).shape[2] == 1


def test_export_options_choose_the_images_the_size_and_the_frames(tmp_path):
    trace = synthetic_trace(n=5)
    assert parse_images("3, 0-1,1") == [0, 1, 3]
    for bad, says in (("2-1", "runs backwards"), ("x", "neither a whole number nor a range"), (",", "expected"),
                      ("-1", "out of range")):
        with pytest.raises(ValueError, match=says):
            parse_images(bad)
    chosen = select_images(trace, [4, 1])
    np.testing.assert_array_equal(chosen.canvas, trace.canvas[[4, 1]])
    assert chosen.read_params.shape == (2, T, 5)
    with pytest.raises(DrawStudioError, match="image 7 does not exist"):
        select_images(trace, [7])
    paths = export_frames(chosen, tmp_path / "f", scale=2, windows=False)
    assert len(paths) == T + 1
    assert np.asarray(Image.open(paths[0])).shape == ((29 + 1) * 2, (2 * 29 + 1) * 2)  # 2 images side by side


def test_export_command_options(tmp_path, capsys):
    from draw_studio.cli import main

    path = tmp_path / "t.h5"
    write_trace(path, synthetic_trace(n=5))
    assert main(["export", str(path), "--frames", str(tmp_path / "f"), "--images", "1-3", "--scale", "3",
                 "--windows", "--window-style", "border"]) == 0
    frames = sorted((tmp_path / "f").glob("*.png"))
    assert len(frames) == T + 1
    picture = np.asarray(Image.open(frames[1]))
    assert picture.shape == ((2 * 29 + 1) * 3, (2 * 29 + 1) * 3, 3)  # 3 images: a 2 x 2 grid
    assert main(["export", str(path), "--gif", str(tmp_path / "a.gif"), "--fps", "4", "--no-windows",
                 "--images", "0"]) == 0
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.size == ((29 + 1) * 4, (29 + 1) * 4)  # one image at the default scale 4
        assert gif.info["duration"] >= 250 and gif.mode != "RGB"  # 4 per second; grey: no windows drawn
    for argv, says in ((["--images", "3-1"], "runs backwards"), (["--images", "9"], "between 0 and 4"),
                       (["--scale", "0"], "at least 1"), (["--fps", "0"], "(0, 1000]"),
                       (["--window-style", "thick"], "invalid choice")):
        capsys.readouterr()
        try:
            code = main(["export", str(path), "--gif", str(tmp_path / "b.gif"), *argv])
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and says in err and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "b.gif").exists()


def test_frames_exported_into_a_folder_replace_the_earlier_export_s(tmp_path, capsys):
    from draw_studio.cli import main

    long_trace, short_trace, folder = tmp_path / "long.h5", tmp_path / "short.h5", tmp_path / "ff"
    assert main(["trace", str(REPO / "models" / "mnist-attention.ckpt"), "--generate", "-n", "1", "--device", "cpu",
                 "--out", str(long_trace)]) == 0  # T = 64: 65 frames
    assert main(["export", str(long_trace), "--frames", str(folder)]) == 0
    assert len(list(folder.glob("frame_*.png"))) == 65
    (folder / "notes.txt").write_text("mine")  # not a frame's name: never touched
    (folder / "frame_1.png").write_text("mine")
    write_trace(short_trace, synthetic_trace())
    capsys.readouterr()
    assert main(["export", str(short_trace), "--frames", str(folder)]) == 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"wrote {T + 1} frames to {folder} (removed {65 - (T + 1)} frames of an earlier export)"
    assert sorted(p.name for p in folder.iterdir()) == \
        [f"frame_{s:03d}.png" for s in range(T + 1)] + ["frame_1.png", "notes.txt"]
    assert main(["export", str(short_trace), "--frames", str(folder)]) == 0  # the same again: nothing to remove
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"wrote {T + 1} frames to {folder}"
    shutil.copy(short_trace, folder / "frame_070.png")  # a trace named like an earlier frame is not removed
    assert main(["export", str(folder / "frame_070.png"), "--frames", str(folder)]) == 2
    assert "would overwrite trace" in capsys.readouterr().err
    assert (folder / "frame_070.png").read_bytes() == short_trace.read_bytes()
