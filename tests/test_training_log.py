"""Training logs: the spec's layout, resuming, and a second process reading while the run appends."""

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import TrainingLogError
from draw_studio.train import Report
from draw_studio.training_log import TrainingLogWriter
from draw_studio.training_log_reader import read_training_log

REPO = Path(__file__).resolve().parents[1]
MODEL = get_preset("tiny").model


def rows(first, count):
    return [(s, 0.5 * s, 500.0 - s, 450.0 - s, 50.0) for s in range(first, first + count)]


def test_layout_and_round_trip(tmp_path):
    path = tmp_path / "log.h5"
    with TrainingLogWriter(path, MODEL, TrainConfig(steps=50)) as log:
        log.append_steps(rows(1, 10))
        log.append_eval(10, 321.5)
        log.handle(Report(kind="step", step=12, total_steps=50, step_losses=rows(11, 2)))
        log.handle(Report(kind="validation", step=12, total_steps=50, bound=300.25))
        log.handle(Report(kind="checkpoint", step=12, total_steps=50))
        assert len(read_training_log(path).step) == 12  # readable in-process while the writer is open
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "draw-studio/training-log" and f.attrs["format_version"] == 1
        assert f.attrs["started"].endswith("Z") and f.attrs["software"].startswith("draw-studio ")
        types = {"history/step": np.int64, "history/wall_time": np.float64, "history/loss": np.float32,
                 "history/nll_x": np.float32, "history/kl": np.float32, "eval/step": np.int64,
                 "eval/bound": np.float32}
        for name, dtype in types.items():
            assert f[name].dtype == dtype and f[name].maxshape == (None,) and f[name].chunks is not None
    log = read_training_log(path)
    np.testing.assert_array_equal(log.step, np.arange(1, 13))
    np.testing.assert_allclose(log.loss, 500.0 - log.step)
    np.testing.assert_allclose(log.wall_time, 0.5 * log.step)
    np.testing.assert_array_equal(log.eval_step, [10, 12])
    np.testing.assert_allclose(log.eval_bound, [321.5, 300.25])
    assert log.model_config == MODEL.to_dict() and log.train_config["steps"] == 50


CRASH = """
import os, sys
from draw_studio.config import TrainConfig, get_preset
from draw_studio.training_log import TrainingLogWriter
log = TrainingLogWriter(sys.argv[1], get_preset("tiny").model, TrainConfig())
log.append_steps([(s, 0.5 * s, 500.0 - s, 450.0 - s, 50.0) for s in range(1, 31)])
log.append_eval(10, 1.0)
log.append_eval(30, 2.0)
os._exit(1)  # killed: never closed, the file keeps HDF5's "open for writing" mark
"""


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.h5"
    subprocess.run([sys.executable, "-c", CRASH, str(path)], cwd=REPO, check=False, timeout=60)
    assert len(read_training_log(path).step) == 30  # a crashed run's log is readable
    started = read_training_log(path).started
    with TrainingLogWriter(path, MODEL, TrainConfig(), resume_step=20) as again:
        again.append_steps(rows(21, 5))
    back = read_training_log(path)
    np.testing.assert_array_equal(back.step, np.arange(1, 26))
    np.testing.assert_array_equal(back.eval_step, [10])
    assert back.started == started
    with TrainingLogWriter(path, MODEL, TrainConfig()):  # no resume: a new log
        pass
    assert len(read_training_log(path).step) == 0


def test_repair_rewrites_a_log_with_every_row_and_setting(tmp_path):
    from draw_studio.training_log_repair import repair_training_log

    path = tmp_path / "log.h5"
    with TrainingLogWriter(path, MODEL, TrainConfig(steps=50), run_id="abc") as log:
        log.append_steps(rows(1, 6), lr=1e-3)
        log.append_steps(rows(7, 6), lr=5e-4)
        log.append_eval(5, 321.5)
        log.append_eval(10, 300.25)
    before = read_training_log(path)
    assert repair_training_log(path) == 12
    after = read_training_log(path)
    for name in ("step", "wall_time", "loss", "nll_x", "kl", "lr", "eval_step", "eval_bound"):
        np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
        assert getattr(after, name).dtype == getattr(before, name).dtype
    assert (after.model_config, after.train_config, after.started, after.run_id) == (
        before.model_config, before.train_config, before.started, "abc")


def test_non_logs_are_refused(tmp_path):
    text = tmp_path / "log.h5"
    text.write_bytes(b"\x00" * 64)
    with pytest.raises(TrainingLogError, match="not an HDF5 file"):
        read_training_log(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "draw-studio/trace"
    with pytest.raises(TrainingLogError, match="not a DRAW Studio training log"):
        read_training_log(other)
    with pytest.raises(TrainingLogError):
        TrainingLogWriter(other, MODEL, TrainConfig(), resume_step=3)  # never overwrites a foreign file


READER = """
import sys, time
from draw_studio.training_log_reader import read_training_log
path, want = sys.argv[1], int(sys.argv[2])
seen, deadline = [], time.time() + 60
while time.time() < deadline:
    log = read_training_log(path)
    n = len(log.step)
    assert (log.step == range(1, n + 1)).all(), "rows out of order or not whole"
    assert (log.loss == 500.0 - log.step).all() and (log.kl == 50.0).all(), "partial row"
    if not seen or seen[-1] != n:
        seen.append(n)
        print(n, flush=True)  # the writer waits for the first of these before it goes on
    if n >= want:
        break
    time.sleep(0.02)
"""


def test_second_process_reads_while_appending(tmp_path):
    path = tmp_path / "log.h5"
    log = TrainingLogWriter(path, MODEL, TrainConfig())
    log.append_steps(rows(1, 10))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), "200"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = reader.stdout.readline()  # the reader has the file open and has seen the first rows
        step = 11
        while step <= 200:
            log.append_steps(rows(step, 10))
            step += 10
            time.sleep(0.03)
        # read through the same buffered stream as readline() above (communicate() would bypass its buffer)
        out = first + reader.stdout.read()
        reader.wait(timeout=60)
        err = reader.stderr.read()
    finally:
        reader.kill()
        log.close()
    assert reader.returncode == 0, err
    seen = [int(v) for v in out.split()]
    assert seen[-1] == 200 and len(seen) >= 2  # saw the log grow, whole rows only
