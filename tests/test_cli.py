"""The command line end to end, in a temporary folder, on real MNIST."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from tiny_data import MNIST_DIR, REPO


def draw_studio(*args, cwd, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "DRAW_STUDIO_NO_DOWNLOAD": "1",
           "XDG_CACHE_HOME": str(cwd / "cache"), **(env_extra or {})}
    env.pop("DRAW_STUDIO_DATA", None)
    return subprocess.run([sys.executable, "-m", "draw_studio", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    result = draw_studio("train", "--preset", "tiny", "--data-dir", MNIST_DIR, "--steps", 12, "--batch-size", 16,
                         "--seed", 1, "--out", "X.ckpt", "--validate-every", 6, "--validation-limit", 100,
                         "--report-every", 4, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_train_writes_a_checkpoint_and_reports(trained):
    assert (trained / "X.ckpt").is_file()


def test_eval_json_is_finite_and_repeats_exactly(trained):
    args = ("eval", "X.ckpt", "--data-dir", MNIST_DIR, "--split", "test", "--limit", 100, "--json")
    first, second = draw_studio(*args, cwd=trained), draw_studio(*args, cwd=trained)
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b
    assert a["n"] == 100 and 0 < a["bound"] < 1000
    assert a["bound"] == pytest.approx(a["nll_x"] + a["kl"])
    assert a["binarization"] == "fixed"


def test_threads_option_sets_pytorchs_threads_and_keeps_the_bound(trained, monkeypatch, capsys):
    import torch

    from draw_studio.cli import main

    args = ["eval", str(trained / "X.ckpt"), "--data-dir", str(MNIST_DIR), "--limit", "100", "--json",
            "--no-download"]
    before = torch.get_num_threads()
    monkeypatch.setenv("XDG_CACHE_HOME", str(trained / "cache"))
    try:
        torch.set_num_threads(2)
        assert main(args) == 0
        default = json.loads(capsys.readouterr().out)
        assert torch.get_num_threads() == 2
        assert main(args + ["--threads", "1"]) == 0
        one = json.loads(capsys.readouterr().out)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert one["n"] == default["n"] == 100
    assert one["bound"] == pytest.approx(default["bound"], abs=1e-3)


def test_every_command_that_computes_takes_threads():
    """A command with --device runs PyTorch: it takes --threads too (the window, gui, has its own worker)."""
    import argparse

    from draw_studio.cli import build_parser

    def commands(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, prefix + (name,))
        if prefix:
            yield prefix, {option for action in parser._actions for option in action.option_strings}

    computing = {name: options for name, options in commands(build_parser()) if "--device" in options}
    assert {("eval",), ("trace",), ("sample",), ("train",)} <= set(computing)
    assert [name for name, options in computing.items() if "--threads" not in options] == [("gui",)]


def test_importance_weighted_bound_is_not_looser(trained):
    result = draw_studio("eval", "X.ckpt", "--data-dir", MNIST_DIR, "--limit", 50, "--importance-samples", 8,
                         "--json", cwd=trained)
    values = json.loads(result.stdout)
    assert values["iw_bound"] <= values["bound"] + 1.0


def test_sample_writes_a_grid_png(trained):
    result = draw_studio("sample", "X.ckpt", "-n", 16, "--out", "grid.png", "--scale", 2, cwd=trained)
    assert result.returncode == 0, result.stderr
    with Image.open(trained / "grid.png") as image:
        assert image.size == ((4 * 29 + 1) * 2, (4 * 29 + 1) * 2)


def test_resume_from_the_cli_continues_the_step_count(trained):
    result = draw_studio("train", "--preset", "tiny", "--data-dir", MNIST_DIR, "--steps", 16, "--batch-size", 16,
                         "--out", "Y.ckpt", "--resume", "X.ckpt", "--validate-every", 0, "--report-every", 4,
                         cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "from step 12" in result.stderr and "step      16/16" in result.stderr


def one_line_error(result):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_truncated_checkpoint_is_one_clear_line(trained):
    data = (trained / "X.ckpt").read_bytes()
    (trained / "cut.ckpt").write_bytes(data[:1000])
    line = one_line_error(draw_studio("eval", "cut.ckpt", "--data-dir", MNIST_DIR, "--json", cwd=trained))
    assert "cut.ckpt" in line and "truncated or corrupt" in line


def test_missing_dataset_is_one_clear_line(tmp_path):
    line = one_line_error(draw_studio("train", "--preset", "tiny", "--data-dir", tmp_path / "nowhere",
                                      "--steps", 2, "--out", "Z.ckpt", cwd=tmp_path))
    assert "MNIST not found" in line and "nowhere" in line and "--data-dir" in line
    assert not (tmp_path / "Z.ckpt").exists()


def test_bad_arguments_are_one_clear_line(tmp_path):
    line = one_line_error(draw_studio("train", "--preset", "tiny", "--data-dir", MNIST_DIR, "--batch-size", 0,
                                      "--out", "Z.ckpt", cwd=tmp_path))
    assert "batch size" in line


def test_publish_writes_a_smaller_weights_only_copy(trained):
    result = draw_studio("publish", "X.ckpt", "--out", "small.ckpt", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert (trained / "small.ckpt").stat().st_size < (trained / "X.ckpt").stat().st_size
    args = ("--data-dir", MNIST_DIR, "--limit", 50, "--json")
    full = json.loads(draw_studio("eval", "X.ckpt", *args, cwd=trained).stdout)
    small = json.loads(draw_studio("eval", "small.ckpt", *args, cwd=trained).stdout)
    assert full["bound"] == small["bound"]


def test_resume_can_lower_the_learning_rate(trained):
    result = draw_studio("train", "--preset", "tiny", "--data-dir", MNIST_DIR, "--steps", 14, "--batch-size", 16,
                         "--out", "W.ckpt", "--resume", "X.ckpt", "--lr", "0.0001", "--validate-every", 0,
                         "--report-every", 2, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "lr 1.00e-04" in result.stderr


def training_started(*args, cwd, total: int) -> subprocess.Popen:
    """``draw-studio train`` ``args`` in the background, its stderr piped, once it has printed a step of ``total``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DRAW_STUDIO_NO_DOWNLOAD": "1"}
    process = subprocess.Popen([sys.executable, "-m", "draw_studio", "train", *map(str, args)], cwd=cwd, env=env,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # wait until training runs
        if line.startswith("step") and f"/{total}" in line:
            break
    return process


def test_sigterm_stops_after_the_step_and_writes_the_checkpoint(tmp_path):
    import signal
    import time
    process = training_started("--preset", "tiny", "--data-dir", MNIST_DIR, "--steps", 100000, "--batch-size", 16,
                               "--out", "S.ckpt", "--report-every", 1, "--validate-every", 0, "--checkpoint-every",
                               0, cwd=tmp_path, total=100000)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130
    assert "Traceback" not in rest and "continue with --resume S.ckpt" in rest
    from draw_studio.checkpoint import read_checkpoint
    assert read_checkpoint(tmp_path / "S.ckpt")["step"] > 0


def test_a_run_resumed_without_a_length_ends_where_it_was_meant_to(tmp_path):
    """--resume with neither --steps nor --epochs takes the checkpoint's own length (not the 1,000-step default),
    so the run ends at its planned step on its planned cosine learning rate."""
    import re
    import signal

    from draw_studio.checkpoint import read_checkpoint
    from draw_studio.config import TrainConfig, learning_rate
    common = ("--preset", "tiny", "--data-dir", MNIST_DIR, "--batch-size", 16, "--validate-every", 0,
              "--report-every", 1, "--out", "R.ckpt", "--compile", "off")
    process = training_started(*common, "--steps", 300, "--lr-schedule", "cosine", "--checkpoint-every", 0,
                               cwd=tmp_path, total=300)
    process.send_signal(signal.SIGTERM)  # a few steps in
    process.stderr.read()
    assert process.wait(timeout=60) == 130
    stopped_at = read_checkpoint(tmp_path / "R.ckpt")["step"]
    assert 0 < stopped_at < 300
    resumed = draw_studio("train", *common, "--resume", "R.ckpt", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    saved = read_checkpoint(tmp_path / "R.ckpt")
    assert saved["step"] == 300 and "step     300/300" in resumed.stderr
    config = TrainConfig.from_dict(saved["train_config"])
    printed = {int(step): rate for step, rate in re.findall(r"^step +(\d+)/300 .* lr (\S+)", resumed.stderr, re.M)}
    assert stopped_at + 1 in printed and 300 in printed
    for step in (stopped_at + 1, 300):  # the rate of the step's update, at 300 the schedule's low end
        assert printed[step] in {f"{learning_rate(config, s, 300):.2e}" for s in (step - 1, step)}


def test_publish_fp16_halves_the_file_and_keeps_the_bound(trained):
    assert draw_studio("publish", "X.ckpt", "--out", "full.ckpt", cwd=trained).returncode == 0
    assert draw_studio("publish", "X.ckpt", "--out", "half.ckpt", "--fp16", cwd=trained).returncode == 0
    assert (trained / "half.ckpt").stat().st_size < 0.7 * (trained / "full.ckpt").stat().st_size
    args = ("--data-dir", MNIST_DIR, "--limit", 50, "--json")
    full = json.loads(draw_studio("eval", "full.ckpt", *args, cwd=trained).stdout)
    half = json.loads(draw_studio("eval", "half.ckpt", *args, cwd=trained).stdout)
    assert half["bound"] == pytest.approx(full["bound"], abs=0.05)


def test_card_reports_every_importance_weighted_bound_asked_for(trained):
    result = draw_studio("card", "X.ckpt", "--data-dir", MNIST_DIR, "--out", "X.md", "--importance-weighted", "4:20",
                         "--importance-weighted", "8:10", cwd=trained)
    assert result.returncode == 0, result.stderr
    card = (trained / "X.md").read_text()
    assert "| importance-weighted bound, K=4 | 20 |" in card
    assert "| importance-weighted bound, K=8 | 10 |" in card
    assert "--limit 20 --importance-samples 4" in card and "--limit 10 --importance-samples 8" in card
    assert "## Test results (MNIST test set, fixed binarisation seed 150204623, nats per image" in card
    bad = draw_studio("card", "X.ckpt", "--out", "Y.md", "--importance-weighted", "1:10", cwd=trained)
    assert bad.returncode == 2 and "K must be at least 2" in bad.stderr and not (trained / "Y.md").exists()


def test_a_card_names_the_dataset_whose_test_set_it_measured():
    from draw_studio.commands.card import described_test_set
    assert described_test_set("two-digit-mnist", "fixed", 7) == "`two-digit-mnist` test set, fixed binarisation seed 7"
    assert described_test_set("svhn", "none", None) == "`svhn` test set, grey levels / 255"


def test_curve_draws_the_validation_bound_against_epochs(trained):
    result = draw_studio("curve", "X.log.h5", "--checkpoint", "X.ckpt", "--marks", "mnist-attention",
                         "--out", "curve.png", cwd=trained)
    assert result.returncode == 0, result.stderr
    with Image.open(trained / "curve.png") as image:
        assert image.format == "PNG" and image.size[0] > 400
        colours = image.convert("RGB").getcolors(1 << 20)
    assert any(rgb == (0x1F, 0x77, 0xB4) for _, rgb in colours)  # the validation curve was drawn
