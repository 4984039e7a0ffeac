"""Fault suite, arguments and data: every bad argument, absurd file and overwrite of an input is one line, exit 2.

The table ``BAD_ARGUMENTS`` runs the real command line in this process (``draw_studio.cli.main``): an
argument error stops in the parser before anything is loaded, so no child process is needed. Each case
must end with exit code 2, no traceback, and a last stderr line ``draw-studio CMD: error: ...`` holding
the expected fragment; good files must stay byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import numpy as np
import pytest
import torch
from fault_tools import MNIST
from PIL import Image
from tiny_data import REPO

from draw_studio.checkpoint import save_checkpoint
from draw_studio.cli import main
from draw_studio.config import ModelConfig, TrainConfig, get_preset
from draw_studio.data.idx import read_idx, write_idx
from draw_studio.errors import DrawStudioError
from draw_studio.model import DRAW

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny checkpoint (with optimiser state, as training writes it), a trace of it, and a second run's file."""
    folder = tmp_path_factory.mktemp("faults-arguments")
    torch.manual_seed(0)
    model = DRAW(get_preset("tiny").model)
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(folder / "X.ckpt", model, TrainConfig(preset="tiny"), optimizer, step=3)
    shutil.copy(folder / "X.ckpt", folder / "other.ckpt")
    assert main(["trace", str(folder / "X.ckpt"), "--generate", "-n", "16", "--device", "cpu",
                 "--out", str(folder / "T.h5")]) == 0
    return folder


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def one_line_error(argv, capsys) -> str:
    """Run the command line; assert exit 2, no traceback and a last line ``draw-studio CMD: error: ...``."""
    capsys.readouterr()
    try:
        code = main([str(word) for word in argv])
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err and err, err[-2000:]
    last = err.splitlines()[-1]
    assert last.startswith(f"draw-studio {argv[0]}: error: "), err[-2000:]
    return last


# (argv, fragment of the one-line error). {C}: a tiny checkpoint, {T}: a trace of it, {M}: MNIST, {D}: a folder.
TRAIN = ["train", "--preset", "tiny", "--data-dir", "{M}", "--out", "{D}/new.ckpt"]
BAD_ARGUMENTS = [
    (TRAIN + ["--steps", "0"], "--steps: must be a whole number of at least 1"),
    (TRAIN + ["--steps", "-5"], "at least 1, got '-5'"),
    (TRAIN + ["--steps", "abc"], "expected a whole number, got 'abc'"),
    (TRAIN + ["--epochs", "-1"], "--epochs: must be in [0, 1e+06]"),
    (TRAIN + ["--epochs", "1e300"], "--epochs: must be in [0, 1e+06]"),
    (TRAIN + ["--epochs", "nan"], "--epochs: must be a finite number"),
    (TRAIN + ["--epochs", "0"], "--epochs must be above 0; leave it out to train --steps steps"),
    (["train", "--preset", "cluttered-classifier", "--data-dir", "{M}", "--out", "{D}/new.ckpt", "--epochs", "0"],
     "--epochs must be above 0"),  # the attention classifier's training
    (["train", "--resume", "{C}", "--data-dir", "{M}", "--out", "{D}/new.ckpt", "--epochs", "0"],
     "--epochs must be above 0"),
    (["train", "--init-from", "{C}", "--data-dir", "{M}", "--out", "{D}/new.ckpt", "--epochs", "0"],
     "--epochs must be above 0"),
    (TRAIN + ["--no-log", "--log", "{D}/z.log.h5"], "--no-log writes no training log, but --log"),
    (TRAIN + ["--batch-size", "-5"], "the batch size must be a whole number of at least 1"),
    (TRAIN + ["--seed", "-1"], "--seed: a seed must be between 0 and 9223372036854775807"),
    (TRAIN + ["--seed", str(2 ** 70)], "a seed must be between 0"),
    (TRAIN + ["--seed", "2**70"], "expected a whole number, got '2**70'"),
    (TRAIN + ["--lr", "nan"], "--lr: must be a finite number, got 'nan'"),
    (TRAIN + ["--lr", "inf"], "--lr: must be a finite number"),
    (TRAIN + ["--lr", "0"], "--lr: must be greater than 0"),
    (TRAIN + ["--beta1", "1.5"], "--beta1: must be in [0, 1), got '1.5'"),
    (TRAIN + ["--beta2", "-1"], "--beta2: must be in [0, 1)"),
    (TRAIN + ["--beta2", "1"], "--beta2: must be in [0, 1)"),
    (TRAIN + ["--grad-clip", "-1"], "--grad-clip: must be greater than 0"),
    (TRAIN + ["--grad-clip", "0"], "--grad-clip: must be greater than 0"),
    (TRAIN + ["--lr-decay", "-1"], "--lr-decay: must be in (0, 1]"),
    (TRAIN + ["--lr-decay", "0"], "--lr-decay: must be in (0, 1]"),
    (TRAIN + ["--lr-decay-every", "0"], "--lr-decay-every: must be a whole number of at least 1"),
    (TRAIN + ["--lr-schedule", "linear"], "--lr-schedule: invalid choice"),
    (TRAIN + ["--binarization", "otsu"], "--binarization: invalid choice"),
    (TRAIN + ["--precision", "fp8"], "--precision: invalid choice"),
    (TRAIN + ["--compile", "maybe"], "--compile: invalid choice"),
    (TRAIN + ["--preset", "huge"], "--preset: invalid choice"),
    (TRAIN + ["--dataset", "imagenet"], "--dataset: invalid choice"),
    (TRAIN + ["--validation-size", "0"], "--validation-size: must be a whole number of at least 1"),
    (TRAIN + ["--validate-every", "-1"], "--validate-every: must be a whole number of at least 0"),
    (TRAIN + ["--validation-limit", "0"], "--validation-limit: must be a whole number of at least 1"),
    (TRAIN + ["--checkpoint-every", "-1"], "--checkpoint-every: must be a whole number of at least 0"),
    (TRAIN + ["--report-every", "0"], "--report-every: must be a whole number of at least 1"),
    (TRAIN + ["--threads", "-1"], "--threads: must be a whole number of at least 0 and at most 1024"),
    (TRAIN + ["--threads", "100000"], "at most 1024"),
    (TRAIN + ["--device", "meta"], "unknown device 'meta'; this machine has auto, cpu"),
    (TRAIN + ["--device", "foo"], "unknown device 'foo'"),
    (TRAIN + ["--device", "cpu:3"], "device 'cpu:3' does not exist"),
    (TRAIN + ["--device", "cuda:99"], "cuda:99"),
    (["eval", "{C}", "--batch-size", "-5"], "the batch size must be a whole number of at least 1, got '-5'"),
    (["eval", "{C}", "--limit", "-1"], "--limit: must be a whole number of at least 0"),
    (["eval", "{C}", "--importance-samples", "-1"], "--importance-samples: must be 0 (no importance-weighted bound) "
     "or a whole number K of at least 2"),
    (["eval", "{C}", "--importance-samples", "1"], "--importance-samples: must be 0 (no importance-weighted bound) "
     "or a whole number K of at least 2 (one sample is the plain bound), got '1'"),
    (["eval", "{C}", "--seed", "-1"], "--seed: a seed must be between 0"),
    (["eval", "{C}", "--split", "validation"], "--split: invalid choice"),
    (["eval", "{C}", "--dataset", "imagenet"], "--dataset: invalid choice"),
    (["eval", "{C}", "--device", "meta"], "unknown device 'meta'"),
    (["sample", "{C}", "-n", "0", "--out", "{D}/s.png"], "-n: must be a whole number of at least 1"),
    (["sample", "{C}", "--scale", "0", "--out", "{D}/s.png"], "--scale: must be a whole number of at least 1"),
    (["sample", "{C}", "--scale", "5000", "--out", "{D}/s.png"], "at most 1024"),
    (["sample", "{C}", "--seed", "-3", "--out", "{D}/s.png"], "a seed must be between 0"),
    (["sample", "{C}", "--device", "meta", "--out", "{D}/s.png"], "unknown device 'meta'"),
    (["trace", "{C}", "-n", "0", "--out", "{D}/t.h5"], "-n: must be a whole number of at least 1"),
    (["trace", "{C}", "--indices", ",", "--out", "{D}/t.h5"], "--indices: expected comma-separated indices"),
    (["trace", "{C}", "--indices", "1,,2", "--out", "{D}/t.h5"], "an empty entry in '1,,2'"),
    (["trace", "{C}", "--indices", "3,-1", "--out", "{D}/t.h5"], "index -1 is out of range"),
    (["trace", "{C}", "--indices", "99999999999999999999", "--out", "{D}/t.h5"],
     "index 99999999999999999999 is out of range"),
    (["trace", "{C}", "--indices", "3,x", "--out", "{D}/t.h5"], "'x' is not a whole number"),
    (["trace", "{C}", "--batch-size", "0", "--out", "{D}/t.h5"], "the batch size must be"),
    (["trace", "{C}", "--seed", "1.5", "--out", "{D}/t.h5"], "expected a whole number, got '1.5'"),
    (["trace", "{C}", "--split", "all", "--out", "{D}/t.h5"], "--split: invalid choice"),
    (["trace", "{C}", "--device", "meta", "--out", "{D}/t.h5"], "unknown device 'meta'"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--fps", "nan"], "--fps: must be a finite number, got 'nan'"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--fps", "0"], "--fps: must be in (0, 1000]"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--fps", "-1"], "--fps: must be in (0, 1000]"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--fps", "inf"], "--fps: must be a finite number"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--loop", "-1"], "--loop: must be a whole number of at least 0"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--loop", "70000"], "at most 65535"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--scale", "0"], "--scale: must be a whole number of at least 1"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--columns", "0"], "--columns: must be a whole number of at least 1"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--samples", ","], "--samples: expected comma-separated indices"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--samples", "-2"], "index -2 is out of range"),
    (["bench", "--threads", "-1"], "--threads: must be a whole number of at least 0"),
    (["bench", "--device", "meta"], "unknown device 'meta'"),
    (["card", "{C}", "--out", "{D}/c.md", "--importance-weighted", "1:10"], "K must be at least 2"),
    (["card", "{C}", "--out", "{D}/c.md", "--importance-weighted", "x"], "expected K:N"),
    (["card", "{C}", "--out", "{D}/c.md", "--device", "meta"], "unknown device 'meta'"),
    (["curve", "{D}/X.log.h5", "--out", "{D}/c.png", "--steps-per-epoch", "0"],
     "--steps-per-epoch: must be greater than 0"),
    (["curve", "{D}/X.log.h5", "--out", "{D}/c.png", "--steps-per-epoch", "nan"], "must be a finite number"),
    (["gui", "--device", "meta"], "unknown device 'meta'"),
    (["publish", "{C}"], "the following arguments are required: --out"),
]
if NO_CUDA:
    BAD_ARGUMENTS.append((TRAIN + ["--device", "cuda"], "this PyTorch sees no CUDA GPU; this machine has auto, cpu"))


def fill(argv, files):
    names = {"{C}": files / "X.ckpt", "{T}": files / "T.h5", "{M}": MNIST, "{D}": files}
    out = []
    for word in argv:
        for key, value in names.items():
            word = word.replace(key, str(value))
        out.append(word)
    return out


@pytest.mark.parametrize("argv, fragment", BAD_ARGUMENTS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_ARGUMENTS])
def test_bad_argument_is_one_line_in_the_parser(argv, fragment, files, capsys):
    before = digest(files / "X.ckpt")
    started = time.perf_counter()
    last = one_line_error(fill(argv, files), capsys)
    assert fragment in last, last
    assert time.perf_counter() - started < 5  # refused before anything heavy runs
    assert digest(files / "X.ckpt") == before and not (files / "new.ckpt").exists()


def test_argument_errors_print_no_usage_block(files, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(files / "X.ckpt"), "--batch-size", "-5"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == ("draw-studio eval: error: argument --batch-size: the batch size must be a "
                                       "whole number of at least 1, got '-5'\n")


# Requests that would allocate far beyond any machine's memory: refused up front with the estimate.
TOO_BIG = [
    (["sample", "{C}", "-n", "100000000", "--out", "{D}/s.png"], "use a smaller -n"),
    (["sample", "{C}", "-n", "64", "--scale", "1024", "--out", "{D}/s.png"], "use a smaller -n or --scale"),
    (["trace", "{C}", "--generate", "-n", "100000000", "--out", "{D}/t.h5"], "use a smaller -n"),
    (["trace", "{C}", "--generate", "-n", "100000000", "--batch-size", "100000000", "--out", "{D}/t.h5"],
     "use a smaller --batch-size"),
    (["eval", "{C}", "--data-dir", "{M}", "--limit", "10", "--importance-samples", "100000000000"],
     "use a smaller --batch-size or --importance-samples"),
    (TRAIN + ["--batch-size", "100000000"], "use a smaller --batch-size"),
    (["card", "{C}", "--data-dir", "{M}", "--out", "{D}/c.md", "--importance-weighted", "100000000000:10"],
     "use a smaller K"),
    (["export", "{T}", "--gif", "{D}/a.gif", "--scale", "1024"], "use a smaller --scale or fewer --samples"),
]


@pytest.mark.parametrize("argv, fix", TOO_BIG, ids=[a[0] + " " + a[-1] for a, _ in TOO_BIG])
def test_requests_beyond_memory_are_refused_with_the_estimate(argv, fix, files, capsys):
    last = one_line_error(fill(argv, files), capsys)
    assert "would need ~" in last and "GB of memory" in last and "GB available" in last and fix in last, last
    assert not any((files / name).exists() for name in ("s.png", "t.h5", "a.gif", "c.md", "new.ckpt"))


def test_no_command_overwrites_its_input(files, capsys, tmp_path):
    ckpt, trace = files / "X.ckpt", files / "T.h5"
    link = tmp_path / "link.ckpt"
    link.symlink_to(ckpt)
    hard = tmp_path / "hard.h5"
    os.link(trace, hard)
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(trace, frames / "frame_000.png")  # a trace where export would write its first frame
    before = {path: digest(path) for path in (ckpt, trace, files / "other.ckpt")}
    cases = [
        (["trace", ckpt, "--generate", "--out", ckpt], f"--out {ckpt} would overwrite checkpoint {ckpt}"),
        (["trace", ckpt, "--generate", "--out", link], "would overwrite checkpoint"),
        (["trace", ckpt, "--images", trace, "--out", trace], "would overwrite --images"),
        (["export", trace, "--gif", trace], f"--gif {trace} would overwrite trace {trace}"),
        (["export", trace, "--mp4", hard], "would overwrite trace"),
        (["export", trace, "--frames", trace], "--frames"),
        (["export", frames / "frame_000.png", "--frames", frames], "frame_000.png would overwrite trace"),
        (["publish", ckpt, "--out", ckpt], "would overwrite checkpoint"),
        (["publish", ckpt, "--out", files / ".." / files.name / "X.ckpt"], "would overwrite checkpoint"),
        (["publish", ckpt, "--out", files / "other.ckpt"], "is a training checkpoint (step 3, with its optimiser "
                                                          "state)"),
        (["sample", ckpt, "--out", ckpt], "would overwrite checkpoint"),
        (["card", ckpt, "--out", ckpt], "would overwrite checkpoint"),
        (["curve", trace, "--out", trace], "would overwrite log"),
        (["gui", ckpt, "--screenshot", ckpt], "--screenshot"),
        (["train", "--preset", "tiny", "--data-dir", MNIST, "--log", ckpt, "--out", ckpt], "--log"),
        (["train", "--preset", "tiny", "--data-dir", MNIST, "--init-from", ckpt, "--out", ckpt],
         "would overwrite --init-from"),
    ]
    for argv, fragment in cases:
        last = one_line_error(argv, capsys)
        assert fragment in last, (argv, last)
    assert {path: digest(path) for path in before} == before
    assert sorted(p.name for p in frames.iterdir()) == ["frame_000.png"]


@pytest.mark.parametrize("command", [
    ["sample", "{F}", "--out", "{D}/s.png"], ["eval", "{F}"], ["trace", "{F}", "--generate", "--out", "{D}/t.h5"],
    ["card", "{F}", "--out", "{D}/c.md"], ["publish", "{F}", "--out", "{D}/p.ckpt"], ["results", "{F}"],
    ["explore", "compare", "{F}", "{C}"], ["train", "--resume", "{F}", "--data-dir", "{M}", "--out", "{D}/r.ckpt"],
    ["train", "--init-from", "{F}", "--data-dir", "{M}", "--out", "{D}/r.ckpt"],
], ids=lambda argv: " ".join(word for word in argv if not word.startswith("{")))
def test_a_log_or_trace_given_as_a_checkpoint_says_what_it_is(command, files, capsys, tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    cases = [(REPO / "models" / "mnist-attention.log.h5", "is a training log, not a checkpoint; pass the run's .ckpt"),
             (REPO / "models" / "cluttered-classifier.log.h5", "is an attention classifier's training log, not a "
                                                                "checkpoint"),
             (files / "T.h5", "is a trace, not a checkpoint; pass the .ckpt file of the model that recorded it"),
             (tmp_path / "other.h5", "is an HDF5 file, not a checkpoint; pass a .ckpt file")]
    for path, fragment in cases:
        argv = [word.replace("{F}", str(path)).replace("{D}", str(tmp_path)) for word in command]
        last = one_line_error(fill(argv, files), capsys)
        assert f"{path} {fragment}" in last, last
    assert [p.name for p in tmp_path.iterdir()] == ["other.h5"]


def test_curve_marks_of_another_model_kind_are_refused(capsys, tmp_path):
    models = REPO / "models"
    draw_log, classifier_log = models / "mnist-attention.log.h5", models / "cluttered-classifier.log.h5"
    last = one_line_error(["curve", draw_log, "--marks", "cluttered-classifier", "--out", tmp_path / "c.png"], capsys)
    assert f"the marks cluttered-classifier are an attention classifier's error, but {draw_log} is a DRAW model's " \
           "training log; use --marks mnist-attention or mnist-noattention" in last, last
    last = one_line_error(["curve", classifier_log, "--marks", "mnist-attention", "--out", tmp_path / "c.png"], capsys)
    assert "the marks mnist-attention are DRAW's MNIST bounds" in last and "use --marks cluttered-classifier" in last
    assert not list(tmp_path.iterdir())
    out = tmp_path / "c.png"
    assert main(["curve", str(classifier_log), "--marks", "cluttered-classifier", "--out", str(out)]) == 0


def test_publish_writes_beside_its_input(files, capsys):
    assert main(["publish", str(files / "X.ckpt"), "--out", str(files / "small.ckpt")]) == 0
    assert main(["publish", str(files / "X.ckpt"), "--out", str(files / "small.ckpt"), "--fp16"]) == 0  # not a
    # training checkpoint: a published copy may be replaced


def test_checkpoint_with_absurd_settings_is_refused_at_once(files, capsys, tmp_path):
    state = torch.load(files / "X.ckpt", weights_only=True)
    state["model_config"]["steps"] = 10 ** 7  # reproduction 11: a 92 KB file declaring T = 10^7
    torch.save(state, tmp_path / "bigT.ckpt")
    for argv in (["sample", tmp_path / "bigT.ckpt", "--out", tmp_path / "s.png"],
                 ["trace", tmp_path / "bigT.ckpt", "--generate", "--out", tmp_path / "t.h5"]):
        started = time.perf_counter()
        last = one_line_error(argv, capsys)
        assert "bigT.ckpt" in last and "steps = 10000000" in last and "1..1024" in last, last
        assert time.perf_counter() - started < 5
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "t.h5").exists()


@pytest.mark.parametrize("settings, fragment", [
    ({"steps": 10 ** 7}, "steps = 10000000 is outside DRAW Studio's bounds 1..1024"),
    ({"height": 5000}, "height = 5000 is outside DRAW Studio's bounds 1..4096"),
    ({"enc_size": 10 ** 6}, "enc_size = 1000000"),
    ({"z_size": 0}, "z_size = 0"),
    ({"write_n": 300}, "write_n = 300 is outside DRAW Studio's bounds 1..256"),
    ({"steps": "64"}, "steps must be a whole number, got '64'"),
    ({"read_attention": 1}, "read_attention must be true or false"),
    ({"channels": 2}, "1 or 3 channels"),
    ({"height": 4096, "width": 4096, "read_attention": False, "enc_size": 1024}, "more than DRAW Studio's bound"),
])
def test_model_settings_have_documented_bounds(settings, fragment):
    with pytest.raises(DrawStudioError) as error:
        ModelConfig(**settings)
    assert fragment in str(error.value)


def test_every_preset_is_within_the_bounds():
    for name in ("mnist-paper", "mnist-noattn", "two-digit-mnist", "svhn-paper", "cifar10-paper", "tiny"):
        config = get_preset(name).model
        assert config.parameter_count() == sum(p.numel() for p in DRAW(config).parameters())


@pytest.mark.parametrize("settings, fragment", [
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"beta1": 1.5}, "beta1 = 1.5 is outside [0, 1)"),
    ({"grad_clip": 0.0}, "grad_clip = 0 is outside (0, inf)"),
    ({"lr_decay": -1.0}, "lr_decay = -1 is outside (0, 1]"),
    ({"checkpoint_every": -1}, "checkpoint_every = -1"),
    ({"validation_limit": 0}, "validation_limit = 0"),
    ({"seed": 2 ** 70}, "seed = 1180591620717411303424"),
    ({"binarization": "otsu"}, "binarization 'otsu'"),
])
def test_training_settings_are_checked_wherever_they_come_from(settings, fragment):
    with pytest.raises(DrawStudioError) as error:
        TrainConfig(**settings)
    assert fragment in str(error.value)


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """The first 60 training and 20 test images of MNIST as IDX files, as floats (IDX type 0x0D)."""
    folder = tmp_path_factory.mktemp("idx")
    for prefix, count in (("train", 60), ("t10k", 20)):
        images = read_idx(next(MNIST.glob(f"{prefix}-images-idx3-ubyte*")))[:count].astype(np.float32)
        labels = read_idx(next(MNIST.glob(f"{prefix}-labels-idx1-ubyte*")))[:count]
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
        np.save(folder / f"{prefix}.npy", images)
    return folder


@pytest.mark.parametrize("bad, binarization, fragment", [
    (np.nan, "dynamic", "holds the non-finite value nan"),
    (np.nan, "none", "holds the non-finite value nan"),
    (np.inf, "fixed", "holds the non-finite value inf"),
    (300.0, "dynamic", "holds the value 300.0"),
    (-1.0, "dynamic", "holds the value -1.0"),
])
def test_pixels_outside_the_format_are_one_line_naming_file_and_index(small_mnist, tmp_path, capsys, bad,
                                                                       binarization, fragment):
    data = tmp_path / "data"
    data.mkdir()
    for prefix in ("train", "t10k"):
        shutil.copy(small_mnist / f"{prefix}-labels-idx1-ubyte", data)
        images = np.load(small_mnist / f"{prefix}.npy")
        images[7, 3, 4] = bad
        write_idx(data / f"{prefix}-images-idx3-ubyte", images)
    last = one_line_error(["train", "--preset", "tiny", "--data-dir", data, "--steps", "2", "--batch-size", "4",
                           "--validation-size", "10", "--binarization", binarization, "--no-log",
                           "--out", tmp_path / "Z.ckpt"], capsys)
    assert "train-images-idx3-ubyte" in last and "image 7, row 3, column 4" in last and fragment in last, last
    assert "must be 0..255" in last
    assert not (tmp_path / "Z.ckpt").exists()


def test_float_pixels_in_range_still_train(small_mnist, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for prefix in ("train", "t10k"):
        shutil.copy(small_mnist / f"{prefix}-labels-idx1-ubyte", data)
        write_idx(data / f"{prefix}-images-idx3-ubyte", np.load(small_mnist / f"{prefix}.npy"))
    assert main(["train", "--preset", "tiny", "--data-dir", str(data), "--steps", "2", "--batch-size", "4",
                 "--validation-size", "10", "--validate-every", "0", "--no-log", "--threads", "1",
                 "--out", str(tmp_path / "Z.ckpt")]) == 0
    assert (tmp_path / "Z.ckpt").is_file()


@pytest.mark.parametrize("side", [5000, 20000])
def test_giant_picture_in_a_folder_is_refused_before_decoding(tmp_path, capsys, side):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(folder / f"a{i}.png")
    Image.new("1", (side, side)).save(folder / "b.png")  # a few KB on disk, side^2 pixels once decoded
    started = time.perf_counter()
    last = one_line_error(["train", "--preset", "tiny", "--dataset", "folder", "--data-dir", folder, "--steps", "1",
                           "--validation-size", "1", "--no-log", "--out", tmp_path / "Z.ckpt"], capsys)
    assert f"b.png is {side}x{side} pixels, larger than DRAW Studio reads (4096x4096 at most)" in last, last
    assert time.perf_counter() - started < 5
    last = one_line_error(["trace", "--images", folder / "b.png", "--out", tmp_path / "t.h5"], capsys)
    assert f"{side}x{side}" in last and "--images" in last


def test_no_command_replaces_a_checkpoint_log_or_trace_with_another_kind_of_file(files, capsys, tmp_path):
    from draw_studio.training_log import TrainingLogWriter

    ckpt, trace, other = files / "X.ckpt", files / "T.h5", files / "other.ckpt"
    log = tmp_path / "run.log.h5"
    with TrainingLogWriter(log, get_preset("tiny").model, TrainConfig(preset="tiny", steps=5)) as writer:
        writer.append_steps([(s, 0.1 * s, 300.0 - s, 280.0 - s, 20.0) for s in range(1, 6)])
    before = {path: digest(path) for path in (ckpt, trace, other, log)}
    cases = [  # a typo in an output's name must never destroy a run
        (["sample", ckpt, "-n", 4, "--out", other], f"{other} is a PyTorch checkpoint; the output written there"),
        (["sample", ckpt, "-n", 4, "--out", log], "is a DRAW Studio training log; the output written there"),
        (["log-export", log, "--csv", other], "is a PyTorch checkpoint"),
        (["publish", ckpt, "--out", log], "is a DRAW Studio training log; a checkpoint written there"),
        (["trace", ckpt, "--generate", "-n", 2, "--out", log], "a trace written there would destroy it"),
        (["export", trace, "--gif", other], "is a PyTorch checkpoint"),
        (["card", ckpt, "--data-dir", MNIST, "--out", log], "is a DRAW Studio training log"),
        (["results", ckpt, "--data-dir", MNIST, "--markdown", trace], "is a DRAW Studio trace"),
        (["curve", log, "--out", trace], "is a DRAW Studio trace"),
        (["gui", ckpt, "--screenshot", log], "is a DRAW Studio training log"),
        (["train", "--preset", "tiny", "--data-dir", MNIST, "--out", tmp_path / "new.ckpt", "--log", trace],
         "a training log written there would destroy it"),
    ]
    for argv, fragment in cases:
        last = one_line_error(argv, capsys)
        assert fragment in last and "choose another file name" in last, (argv, last)
    assert {path: digest(path) for path in before} == before
    # the same kind replaces its own: a trace written again, a picture over a picture
    assert main(["trace", str(ckpt), "--generate", "-n", "2", "--device", "cpu", "--out", str(tmp_path / "t.h5")]) == 0
    assert main(["trace", str(ckpt), "--generate", "-n", "2", "--device", "cpu", "--out", str(tmp_path / "t.h5")]) == 0


def test_outputs_that_cannot_be_written_are_refused_before_anything_is_computed_or_written(files, capsys, tmp_path):
    ckpt, trace = files / "X.ckpt", files / "T.h5"
    unwritable = "/proc/draw-studio-test"  # a folder that takes no new file, for root too
    cases = [
        (["train", "--preset", "tiny", "--data-dir", MNIST, "--steps", 3, "--out", f"{unwritable}.ckpt",
          "--log", tmp_path / "a.log.h5"], tmp_path / "a.log.h5"),
        (["train", "--preset", "tiny", "--data-dir", MNIST, "--steps", 3, "--out", tmp_path / "b.ckpt",
          "--log", f"{unwritable}.log.h5"], tmp_path / "b.ckpt"),
        (["export", trace, "--frames", tmp_path / "frames", "--gif", f"{unwritable}.gif"], tmp_path / "frames"),
        (["explore", "compare", ckpt, files / "other.ckpt", "--data-dir", MNIST, "--images", 2,
          "--trace-out", tmp_path / "a.h5", f"{unwritable}.h5"], tmp_path / "a.h5"),
        (["card", ckpt, "--data-dir", MNIST, "--out", f"{unwritable}.md"], None),
        (["results", ckpt, "--data-dir", MNIST, "--markdown", tmp_path / "no folder" / "r.md"], None),
    ]
    for argv, not_written in cases:
        last = one_line_error(argv, capsys)
        assert "could not write /proc/" in last or "does not exist; create it first" in last, (argv, last)
        assert not_written is None or not not_written.exists(), (argv, not_written)


def test_debug_may_follow_the_command(files, tmp_path):
    argv = ["sample", str(files / "X.ckpt"), "-n", "2", "--out", str(tmp_path / "s.png"), "--device", "cpu"]
    assert main([*argv, "--debug"]) == 0 and (tmp_path / "s.png").is_file()
    with pytest.raises(DrawStudioError, match="folder"):  # the traceback, not one line
        main([*argv[:-4], "--out", str(tmp_path / "none" / "s.png"), "--debug"])
    assert main(["explore", "fork", str(files / "T.h5"), "--checkpoint", str(files / "X.ckpt"), "--at", "1",
                 "--out", str(tmp_path / "f.h5"), "--debug"]) == 0
