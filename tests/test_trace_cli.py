"""``draw-studio trace`` and ``draw-studio export`` end to end on the real MNIST test split."""

import importlib.util

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_data import MNIST_DIR, mnist_split

from draw_studio.checkpoint import save_checkpoint
from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.data import model_inputs
from draw_studio.files import file_sha256
from draw_studio.model import DRAW
from draw_studio.trace_file import read_trace

T = get_preset("tiny").model.steps


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, DRAW(get_preset("tiny").model), TrainConfig(preset="tiny", dataset="mnist"))
    return path


def trace_cli(checkpoint, out, *extra):
    return main(["trace", str(checkpoint), "--data-dir", str(MNIST_DIR), "--no-download", "--device", "cpu",
                 "--out", str(out), *extra])


def test_trace_first_n_and_indices_match_eval_inputs(checkpoint, tmp_path, capsys):
    eval_pixels, _, _ = model_inputs(mnist_split("test"), "bernoulli")  # what draw-studio eval sees
    out = tmp_path / "first.h5"
    assert trace_cli(checkpoint, out, "--split", "test", "-n", "5", "--seed", "7", "--batch-size", "2") == 0
    assert "wrote a trace of 5 images" in capsys.readouterr().err
    trace = read_trace(out)
    assert trace.mode == "reconstruct" and trace.n == 5 and trace.steps == T and trace.seed == 7
    np.testing.assert_array_equal(trace.input, eval_pixels[:5])
    np.testing.assert_array_equal(trace.labels, mnist_split("test").labels[:5])
    assert trace.checkpoint_sha256 == file_sha256(checkpoint) and trace.source == "mnist/test"
    out = tmp_path / "picked.h5"
    assert trace_cli(checkpoint, out, "--indices", "3,17,42") == 0
    trace = read_trace(out)
    np.testing.assert_array_equal(trace.input, eval_pixels[[3, 17, 42]])
    np.testing.assert_array_equal(trace.source_index, [3, 17, 42])


def test_trace_picture_files_and_generate(checkpoint, tmp_path):
    names = []
    for i, image in enumerate(mnist_split("test").images[:2]):
        names.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(image[0]).convert("RGB").save(names[-1])  # colour files become grey
    assert trace_cli(checkpoint, tmp_path / "files.h5", "--images", *names) == 0
    trace = read_trace(tmp_path / "files.h5")
    assert trace.input.shape == (2, 1, 28, 28) and set(np.unique(trace.input)) <= {0.0, 1.0}
    assert trace.source == "files" and trace.labels is None
    assert trace_cli(checkpoint, tmp_path / "gen.h5", "--generate", "-n", "3", "--seed", "1") == 0
    trace = read_trace(tmp_path / "gen.h5")
    assert trace.mode == "generate" and trace.n == 3 and trace.input is None
    with h5py.File(tmp_path / "gen.h5", "r") as f:
        assert "read" not in f and f["write/params"].shape == (3, T, 5)


def test_export_end_to_end(checkpoint, tmp_path, capsys):
    out = tmp_path / "t.h5"
    assert trace_cli(checkpoint, out, "-n", "4") == 0
    frames = tmp_path / "frames"
    args = ["export", str(out), "--frames", str(frames), "--windows", "--scale", "2", "--columns", "2",
            "--gif", str(tmp_path / "t.gif"), "--fps", "4", "--loop", "1"]
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        args += ["--mp4", str(tmp_path / "t.mp4")]
    assert main(args) == 0
    files = sorted(p.name for p in frames.iterdir())
    assert files == [f"frame_{s:03d}.png" for s in range(T + 1)]
    with Image.open(frames / files[-1]) as last:
        assert last.size == ((2 * 29 + 1) * 2, (2 * 29 + 1) * 2) and last.mode == "RGB"
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.n_frames == T + 1
    if "--mp4" in args:
        assert (tmp_path / "t.mp4").stat().st_size > 0
    assert "wrote" in capsys.readouterr().err


def test_user_errors_are_one_line(checkpoint, tmp_path, capsys):
    (tmp_path / "notes.h5").write_text("hello")
    assert main(["export", str(tmp_path / "notes.h5"), "--frames", str(tmp_path / "f")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
    assert trace_cli(checkpoint, tmp_path / "x.h5", "--indices", "3,99999") == 2
    assert "indices must be between 0 and 9999" in capsys.readouterr().err
    assert trace_cli(checkpoint, tmp_path / "x.h5", "--generate", "--indices", "1") == 2
    assert main(["export", str(tmp_path / "notes.h5")]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
