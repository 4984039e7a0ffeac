"""Runs side by side: summaries of real training logs and the settings that differ between them."""

import dataclasses
import os

import numpy as np
import pytest
from tiny_data import REPO, mnist_slice

from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.runs import differing_settings, summarize_run, summarize_runs
from draw_studio.train import Trainer, TrainingControl

TINY = get_preset("tiny").model
BASE = TrainConfig(preset="tiny", batch_size=16, steps=6, seed=2, validate_every=2, checkpoint_every=0,
                   report_every=1, validation_limit=64, snapshot_every=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def train(out, stop_at=None, **changes):
    trainer = Trainer.from_options(TINY, dataclasses.replace(BASE, **changes), train_set=mnist_slice("train", 200),
                                   valid_set=mnist_slice("valid", 64), device="cpu", out=out)
    control = TrainingControl()
    for report in trainer.run(control):
        if stop_at is not None and report.kind == "step" and report.step == stop_at:
            control.stop()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    train(folder / "slow.ckpt", lr=1e-3)
    train(folder / "fast.ckpt", lr=3e-3, stop_at=4)
    return folder


def test_two_runs_that_differ_in_learning_rate_only(two_runs):
    runs = summarize_runs([two_runs])  # a folder, scanned for *.log.h5
    assert [run.name for run in runs] == ["fast", "slow"]
    assert differing_settings(runs) == ["lr"]
    fast, slow = runs
    assert (fast.settings["lr"], slow.settings["lr"]) == (3e-3, 1e-3)
    assert (slow.step, fast.step) == (6, 4) and slow.total_steps == 6
    assert slow.epochs == pytest.approx(6 / 12) and slow.images_seen == 6 * 16  # 200 // 16 = 12 steps an epoch
    assert slow.settings["glimpses"] == 4 and slow.settings["target_steps"] == 6
    assert not {"report_every", "preset", "steps", "target_epochs"} & set(slow.settings)


def test_best_validation_bound_and_state(two_runs):
    path = two_runs / "slow.log.h5"
    later = os.stat(path).st_mtime + 3600
    slow, fast = summarize_run(path, now=later), summarize_run(two_runs / "fast.log.h5", now=later)
    best = int(np.argmin(slow.log.eval_bound))
    assert slow.best_bound == pytest.approx(float(slow.log.eval_bound[best]))
    assert slow.best_step == int(slow.log.eval_step[best]) and slow.best_step in (2, 4, 6)
    assert slow.state == "finished"  # reached the 6 steps asked for
    assert fast.state == "stopped"  # stopped at step 4 an hour ago
    assert summarize_run(two_runs / "fast.log.h5", now=os.stat(two_runs / "fast.log.h5").st_mtime + 1).state == \
        "running"  # written a second ago and not finished


def test_shipped_logs_of_an_older_version(capsys):
    attention, no_attention = summarize_runs([REPO / "models" / "mnist-attention.log.h5",
                                              REPO / "models" / "mnist-noattention.log.h5"])
    differing = set(differing_settings([attention, no_attention]))
    assert {"read_attention", "write_attention", "lr", "target_steps", "target_epochs"} <= differing
    assert attention.steps_per_epoch == 781  # from the checkpoint beside the log (older logs lack it)
    assert attention.epochs == pytest.approx(attention.step / 781)
    assert main(["runs", str(REPO / "models")]) == 0
    out = capsys.readouterr().out
    assert "mnist-attention" in out and "read_attention" in out


def test_a_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(DrawStudioError, match="does not exist"):
        summarize_runs([tmp_path / "nothing.log.h5"])


def test_a_folder_without_logs_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "X.ckpt").write_bytes(b"not a log")
    assert main(["runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"draw-studio runs: error: no training logs (*.log.h5) in {tmp_path}; give training logs " \
                  "(X.log.h5) or folders holding them"
    assert main(["runs", str(tmp_path / "nowhere")]) == 2  # as a missing folder
    assert "does not exist" in capsys.readouterr().err


def test_a_run_shows_only_the_settings_that_apply_to_it(capsys):
    runs = {run.name: run for run in summarize_runs([REPO / "models"])}
    assert runs["cluttered-classifier"].settings["clutter"] == "fresh"  # the classifier's setting
    assert runs["cluttered-classifier"].settings["read_n"] == 12
    assert "clutter" not in runs["two-digit-attention"].settings  # DRAW has no clutter
    assert (runs["mnist-attention"].settings["read_n"], runs["mnist-attention"].settings["write_n"]) == (2, 5)
    assert not {"read_n", "write_n", "clutter"} & set(runs["mnist-noattention"].settings)  # no attention
    assert main(["runs", str(REPO / "models")]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    columns = header.split()
    cells = {row.split()[0]: row.split() for row in rows}
    assert cells["mnist-noattention"][columns.index("read_n")] == "-"
    assert cells["mnist-noattention"][columns.index("write_n")] == "-"
    assert cells["two-digit-attention"][columns.index("clutter")] == "-"
