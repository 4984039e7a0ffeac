"""Fault suite, training and its log: a diverged run, a full disk, a truncated log, a killed run, a reader.

Whatever goes wrong, the last good checkpoint stays byte for byte what it was, the command ends with
one line and exit 2, and the log on disk is a whole file that plain h5py opens. Faults that can kill a
process (a full disk, kill -9) run the real command line in a child process; the others run it in this
process (``draw_studio.cli.main``) or use the engine directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fault_tools import MNIST, assert_clean_error, cli_env, fill, run_cli, small_disk
from tiny_data import mnist_slice

from draw_studio.checkpoint import read_checkpoint
from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.data import ImageSet, load_split
from draw_studio.divergence import (
    EXPLOSION_FACTOR,
    MAX_RESTORES,
    RESTORE_AFTER_BAD_STEPS,
    DivergedError,
    DivergenceGuard,
)
from draw_studio.errors import DataError, DrawStudioError, TrainingLogError
from draw_studio.model_card import trained_lines
from draw_studio.train import Trainer
from draw_studio.training_log_reader import read_training_log

REPO = Path(__file__).resolve().parents[1]
SHIPPED_LOG = REPO / "models" / "mnist-noattention.log.h5"
TINY = get_preset("tiny").model
TINY_CLI = ("--preset", "tiny", "--data-dir", MNIST, "--batch-size", "8", "--threads", "1", "--no-download",
            "--compile", "off", "--validate-every", "0")


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def config(**changes) -> TrainConfig:
    base = TrainConfig(preset="tiny", batch_size=8, steps=6, seed=5, validate_every=0, checkpoint_every=0,
                       report_every=1, validation_limit=64)
    return dataclasses.replace(base, **changes)


def small_run(out: Path, steps: int = 4, train_set: ImageSet | None = None, resume: Path | None = None,
              **kwargs) -> Trainer:
    """A finished tiny run on real MNIST images (the first 200 of the training split), new or resumed."""
    options = dict(out=out, device="cpu", valid_set=mnist_slice("valid", 64),
                   train_set=train_set or mnist_slice("train", 200), **kwargs)
    run = (Trainer.from_checkpoint(resume, steps, **options) if resume
           else Trainer.from_options(TINY, config(steps=steps), **options))
    list(run.run())
    return run


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models train fastest on one thread (and the machine may be busy)."""


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A 20-step tiny run on all of MNIST, as ``draw-studio train`` writes it (checkpoint and log)."""
    folder = tmp_path_factory.mktemp("mnist-run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = Trainer.from_options(TINY, config(steps=20), data_dir=str(MNIST), out=folder / "g.ckpt",
                                   device="cpu", download=False)
        list(run.run())
    finally:
        torch.set_num_threads(threads)
    return folder


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("g.ckpt", "g.log.h5"):
        (target / name).write_bytes((source / name).read_bytes())
    return target / "g.ckpt"


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the command line in this process; returns a CompletedProcess (exit code, stdout, stderr)."""
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
    monkeypatch.setenv("DRAW_STUDIO_COMPILE", "0")
    threads = torch.get_num_threads()

    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    yield run
    torch.set_num_threads(threads)


# ---- the last good state is good -------------------------------------------------------------------

def test_a_diverged_run_leaves_the_good_checkpoint_byte_identical_and_exits_2(mnist_run, tmp_path, cli):
    good = copy_run(mnist_run, tmp_path)
    before = sha(good)
    result = cli("train", "--resume", good, "--data-dir", MNIST, "--lr", "1e6", "--steps", "60",
                 "--checkpoint-every", "5", "--out", good, "--threads", "1", "--no-download")
    last = assert_clean_error(result, "diverged", f"{good} (step 20) is untouched", "--lr")
    assert sha(good) == before
    assert "checkpoint not written" in result.stderr  # the state due at step 25 gave NaN: not written
    assert "finished" not in result.stderr and not re.search(r"^step +\d+ +checkpoint ", result.stderr, re.M)
    assert last == result.stderr.strip().splitlines()[-1]
    log = read_training_log(tmp_path / "g.log.h5")
    assert (np.diff(log.step) > 0).all() and log.step[19] == 20


def test_last_steps_diverged_no_finished_and_no_final_checkpoint(tmp_path):
    run = Trainer.from_options(TINY, config(steps=2), out=tmp_path / "m.ckpt", device="cpu",
                               train_set=mnist_slice("train", 200), valid_set=mnist_slice("valid", 64))
    with torch.no_grad():
        run.model.latent.weight[0, 0] = float("inf")  # both steps bad (fewer than RESTORE_AFTER_BAD_STEPS)
    kinds = []
    with pytest.raises(DivergedError, match="no final checkpoint was written"):
        for report in run.run():
            kinds.append(report.kind)
    assert kinds.count("nonfinite") == 2 and "done" not in kinds and "checkpoint" not in kinds
    assert not (tmp_path / "m.ckpt").exists() and not (tmp_path / "m.log.h5").exists()


def test_nothing_to_train_is_refused(tmp_path):
    for steps in (0, -5):
        with pytest.raises(DrawStudioError, match="nothing to train"):
            Trainer.from_options(TINY, config(steps=steps), out=tmp_path / "m.ckpt", device="cpu",
                                 train_set=mnist_slice("train", 200), valid_set=mnist_slice("valid", 64))
    small_run(tmp_path / "m.ckpt", steps=4)
    with pytest.raises(DrawStudioError, match="already at step 4"):
        Trainer.from_checkpoint(tmp_path / "m.ckpt", 4, out=tmp_path / "m.ckpt", device="cpu",
                                train_set=mnist_slice("train", 200), valid_set=mnist_slice("valid", 64))


def test_divergence_rules():
    guard = DivergenceGuard()
    assert guard.limit() == float("inf")
    guard.good_step(torch.tensor(90.0))
    assert guard.limit() == pytest.approx(90 + EXPLOSION_FACTOR * 90)
    assert [guard.bad_step() for _ in range(RESTORE_AFTER_BAD_STEPS)][-1] is True
    assert [guard.restored() for _ in range(MAX_RESTORES)] == [False] * (MAX_RESTORES - 1) + [True]
    guard.checkpoint_written()
    assert guard.restores == 0


# ---- starting over an existing run ----------------------------------------------------------------

def test_a_new_run_refuses_to_replace_an_existing_run_and_overwrite_waits_for_its_first_checkpoint(tmp_path, cli):
    small_run(tmp_path / "a.ckpt")
    before = {name: sha(tmp_path / name) for name in ("a.ckpt", "a.log.h5")}
    result = cli("train", *TINY_CLI, "--steps", "4", "--out", tmp_path / "a.ckpt")
    assert_clean_error(result, "already exists", "--resume", "--overwrite")
    (tmp_path / "b.log.h5").write_bytes(b"junk left by something else")
    result = cli("train", *TINY_CLI, "--steps", "4", "--out", tmp_path / "b.ckpt")
    assert_clean_error(result, "b.log.h5 already exists", "--overwrite", "--no-log")
    # --overwrite: nothing is touched before the new run's first checkpoint (here it diverges first)
    run = Trainer.from_options(TINY, config(steps=2), out=tmp_path / "a.ckpt", device="cpu", overwrite=True,
                               train_set=mnist_slice("train", 200), valid_set=mnist_slice("valid", 64))
    with torch.no_grad():
        run.model.latent.weight[0, 0] = float("nan")
    with pytest.raises(DivergedError, match="no checkpoint was written by this run"):
        list(run.run())
    assert {name: sha(tmp_path / name) for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt", "a.log.h5", "b.log.h5"]
    # a junk log beside a new run is replaced with --overwrite
    assert cli("train", *TINY_CLI, "--steps", "3", "--out", tmp_path / "b.ckpt", "--overwrite").returncode == 0
    np.testing.assert_array_equal(read_training_log(tmp_path / "b.log.h5").step, [1, 2, 3])
    assert read_checkpoint(tmp_path / "b.ckpt")["step"] == 3


def test_resume_never_mixes_two_runs_rows(tmp_path):
    small_run(tmp_path / "a.ckpt", steps=4)
    small_run(tmp_path / "b.ckpt", steps=6, train_set=mnist_slice("train", 200))
    # a new run's checkpoint beside an older run's log (killed between the two writes)
    (tmp_path / "a.ckpt").write_bytes((tmp_path / "b.ckpt").read_bytes())
    old_rows = read_training_log(tmp_path / "a.log.h5").step
    run = small_run(tmp_path / "a.ckpt", steps=8, resume=tmp_path / "a.ckpt")
    assert any("another run" in notice for notice in run.notices)
    np.testing.assert_array_equal(read_training_log(tmp_path / "a.log.h5").step, [7, 8])  # its own rows only
    kept = tmp_path / "a.log.other-run-1.h5"
    np.testing.assert_array_equal(read_training_log(kept).step, old_rows)  # set aside, not lost


# ---- resume checks the data ------------------------------------------------------------------------

def test_resume_on_other_data_is_refused_unless_allowed(tmp_path):
    train = mnist_slice("train", 200)
    small_run(tmp_path / "m.ckpt", steps=4, train_set=train)
    inverted = ImageSet(255 - train.images, train.labels, False, "inverted MNIST")
    fewer = train.subset(slice(0, 150))
    for other, reason in ((inverted, "other pixels"), (fewer, "200 training images, the data here has 150")):
        with pytest.raises(DataError, match=reason) as info:
            Trainer.from_checkpoint(tmp_path / "m.ckpt", 8, out=tmp_path / "m.ckpt", device="cpu",
                                    train_set=other, valid_set=mnist_slice("valid", 64))
        assert "--allow-data-change" in str(info.value) and "\n" not in str(info.value)
    run = small_run(tmp_path / "m.ckpt", steps=6, train_set=inverted, resume=tmp_path / "m.ckpt",
                    allow_data_change=True)
    assert any("--allow-data-change" in notice for notice in run.notices)
    state = read_checkpoint(tmp_path / "m.ckpt")
    assert state["step"] == 6 and state["extra"]["lineage"][-1]["data_changed_at_step"] == 4
    assert trained_lines(state["step"], state["extra"])[1:] == []  # a card names only where the weights came from


def test_an_old_checkpoint_without_fingerprint_still_resumes_and_says_so(tmp_path):
    small_run(tmp_path / "m.ckpt", steps=4)
    state = read_checkpoint(tmp_path / "m.ckpt")
    for key in ("train_fingerprint", "run_id"):
        del state["extra"][key]  # as the previous version wrote it
    torch.save(state, tmp_path / "m.ckpt")
    run = small_run(tmp_path / "m.ckpt", steps=6, resume=tmp_path / "m.ckpt")
    assert any("no fingerprint" in notice and "200" in notice for notice in run.notices)
    np.testing.assert_array_equal(read_training_log(tmp_path / "m.log.h5").step, np.arange(1, 7))


def test_resume_with_another_preset_is_refused(mnist_run, tmp_path, cli):
    good = copy_run(mnist_run, tmp_path)
    result = cli("train", "--resume", good, "--out", good, "--preset", "mnist-paper", "--steps", "30",
                 "--data-dir", MNIST, "--no-download", "--threads", "1")
    assert_clean_error(result, "--preset mnist-paper differs", "tiny")


def test_resume_and_init_from_together_are_refused(tmp_path, cli):
    small_run(tmp_path / "m.ckpt", steps=4)
    result = cli("train", *TINY_CLI, "--steps", "8", "--out", tmp_path / "n.ckpt", "--resume", tmp_path / "m.ckpt",
                 "--init-from", tmp_path / "m.ckpt")
    assert_clean_error(result, "either --resume", "--init-from", "not both")
    assert not (tmp_path / "n.ckpt").exists()


def test_a_learning_rate_warm_up_without_init_from_is_refused(tmp_path, cli):
    small_run(tmp_path / "m.ckpt", steps=4)
    for start in ([], ["--resume", tmp_path / "m.ckpt"]):
        result = cli("train", *TINY_CLI, "--steps", "8", "--out", tmp_path / "m.ckpt", *start, "--lr-warmup", "100")
        assert_clean_error(result, "--lr-warmup", "--init-from", "drop --lr-warmup")
    assert read_checkpoint(tmp_path / "m.ckpt")["step"] == 4


def test_an_explicit_data_dir_never_falls_back_to_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAW_STUDIO_DATA", str(MNIST.parent))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="--data-dir was given"):
        load_split("mnist", "test", tmp_path / "empty", download=False)
    assert len(load_split("mnist", "test", None, download=False)) == 10_000  # without --data-dir it is used


# ---- logs that survive -----------------------------------------------------------------------------

LEGACY_WRITER = """
import os, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w", libver="latest")
f.attrs["format"], f.attrs["format_version"] = "draw-studio/training-log", 1
f.attrs["model_config"], f.attrs["train_config"] = sys.argv[2], sys.argv[3]
f.attrs["started"], f.attrs["software"] = "2026-01-01T00:00:00Z", "draw-studio 0.9"
columns = {"history/step": np.int64, "history/wall_time": np.float64, "history/loss": np.float32,
           "history/nll_x": np.float32, "history/kl": np.float32, "eval/step": np.int64, "eval/bound": np.float32}
for name, dtype in columns.items():
    f.create_dataset(name, data=np.zeros(0, dtype), maxshape=(None,), chunks=(1024,),
                     fillvalue=-1 if dtype == np.int64 else np.nan)
f.swmr_mode = True
for name in columns:
    if name.startswith("history"):
        f[name].resize((int(sys.argv[4]),))
        f[name][:] = np.arange(1, int(sys.argv[4]) + 1)
f.flush()
os._exit(1)  # killed: the file keeps HDF5's "open for writing" marks
"""


def legacy_killed_log(path: Path, rows: int, model_config: dict | None = None, train_config: dict | None = None):
    """A log as the previous version's SWMR writer left it when killed."""
    import json

    subprocess.run([sys.executable, "-c", LEGACY_WRITER, str(path), json.dumps(model_config or TINY.to_dict()),
                    json.dumps(train_config or {}), str(rows)], check=False, timeout=60)
    with pytest.raises(OSError):
        h5py.File(path, "r").close()  # plain h5py refuses it: "file is already open for write"
    return path


def test_truncated_logs_give_one_line_errors_quickly(tmp_path):
    legacy = legacy_killed_log(tmp_path / "legacy.log.h5", 3000)
    for source in (SHIPPED_LOG, legacy):
        data = source.read_bytes()
        for fraction in (0.0005, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
            cut = tmp_path / "cut.log.h5"
            cut.write_bytes(data[:int(len(data) * fraction)])
            started = time.perf_counter()
            with pytest.raises(TrainingLogError, match="truncated") as info:
                read_training_log(cut)
            assert time.perf_counter() - started < 2.0, (source, fraction)
            assert "\n" not in str(info.value)


def test_a_resume_over_a_truncated_log_is_one_line(mnist_run, tmp_path, cli):
    good = copy_run(mnist_run, tmp_path)
    log = tmp_path / "g.log.h5"
    log.write_bytes(log.read_bytes()[: log.stat().st_size * 9 // 10])
    before = sha(good), sha(log)
    result = cli("train", "--resume", good, "--out", good, "--steps", "30", "--data-dir", MNIST, "--no-download",
                 "--threads", "1")
    assert_clean_error(result, "truncated", "move it away")
    assert (sha(good), sha(log)) == before


def test_a_killed_writers_log_reads_continues_and_is_repaired(tmp_path):
    small_run(tmp_path / "m.ckpt", steps=4)
    state = read_checkpoint(tmp_path / "m.ckpt")
    for key in ("train_fingerprint", "run_id"):
        del state["extra"][key]
    torch.save(state, tmp_path / "m.ckpt")  # a run of the previous version, killed at step 6, checkpoint at 4
    legacy_killed_log(tmp_path / "m.log.h5", 6, state["model_config"], state["train_config"])
    assert len(read_training_log(tmp_path / "m.log.h5").step) == 6
    other = legacy_killed_log(tmp_path / "other.log.h5", 5)
    repaired = subprocess.run([sys.executable, "-m", "draw_studio.training_log", "repair", str(other)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
    assert repaired.returncode == 0, repaired.stderr
    with h5py.File(other, "r") as f:  # plain h5py, no SWMR
        assert f["history/step"].shape == (5,)
    small_run(tmp_path / "m.ckpt", steps=7, resume=tmp_path / "m.ckpt")  # continues the legacy log
    with h5py.File(tmp_path / "m.log.h5", "r") as f:
        np.testing.assert_array_equal(f["history/step"][()], np.arange(1, 8))


# ---- faults that may kill a process: in a child ------------------------------------------------------

def popen_train(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "draw_studio", "train", *map(str, args)], env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_line(process: subprocess.Popen, fragment: str, count: int = 1, timeout: float = 90) -> list[str]:
    lines, seen, deadline = [], 0, time.time() + timeout
    while seen < count and time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        seen += fragment in line
    assert seen >= count, "".join(lines)[-3000:]
    return lines


def test_kill_9_during_checkpoint_and_log_writes_leaves_files_that_load(tmp_path):
    out = tmp_path / "k.ckpt"
    child = popen_train(*TINY_CLI, "--steps", "100000", "--checkpoint-every", "1", "--report-every", "1",
                        "--out", out)
    try:
        wait_for_line(child, "checkpoint", count=5)
        time.sleep(0.013)  # somewhere in the next steps' checkpoint and log writes
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stderr.close()
    step = read_checkpoint(out)["step"]
    with h5py.File(tmp_path / "k.log.h5", "r") as f:  # a whole file, for plain h5py
        assert f["history/step"].shape[0] >= step  # the log reaches each checkpoint before it is written
    resumed = Trainer.from_checkpoint(out, step + 3, data_dir=str(MNIST), out=out, device="cpu", download=False)
    assert [r.kind for r in resumed.run()][-2:] == ["checkpoint", "done"]
    np.testing.assert_array_equal(read_training_log(tmp_path / "k.log.h5").step, np.arange(1, step + 4))


READER = """
import os, sys, time, h5py
from draw_studio.training_log_reader import read_training_log
deadline, reads = time.time() + 120, 0
while time.time() < deadline and not os.path.exists(sys.argv[2]):
    with h5py.File(sys.argv[1], "r") as f:  # plain h5py with its default file locking, held open a moment
        f["history/step"][()]
        time.sleep(0.005)
    read_training_log(sys.argv[1])
    reads += 1
print(reads)
"""


def test_a_reader_never_blocks_a_resuming_run(mnist_run, tmp_path):
    good = copy_run(mnist_run, tmp_path)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "g.log.h5"), str(stop)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        resumed = run_cli("train", "--resume", good, "--out", good, "--steps", "60", "--checkpoint-every", "4",
                          "--data-dir", MNIST, "--threads", "1", "--validate-every", "0")
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert reader.returncode == 0, err[-3000:]
    assert int(out) > 10
    np.testing.assert_array_equal(read_training_log(tmp_path / "g.log.h5").step, np.arange(1, 61))


def test_a_full_disk_while_the_log_is_written_is_one_line_and_keeps_the_checkpoint(mnist_run, tmp_path):
    with small_disk(tmp_path / "disk", 512) as mounted:
        if mounted:
            good = copy_run(mnist_run, tmp_path / "disk")
            before = sha(good)
            child = popen_train("--resume", good, "--out", good, "--steps", "5000", "--checkpoint-every", "600",
                                "--data-dir", MNIST, "--threads", "1", "--validate-every", "0")
            try:
                wait_for_line(child, "training on")  # the log is open; the disk fills while the run goes on
                fill(tmp_path / "disk")
                _, stderr = child.communicate(timeout=120)
            finally:
                child.kill()
            result = subprocess.CompletedProcess(child.args, child.returncode, "", stderr)
            assert_clean_error(result, "g.log.h5", "disk is full", f"{good} (step 20) is untouched")
            assert sha(good) == before
            with h5py.File(tmp_path / "disk" / "g.log.h5", "r") as f:
                assert f["history/step"].shape[0] >= 20
            read_training_log(tmp_path / "disk" / "g.log.h5")
    # a file-size limit (EFBIG) instead of a full disk: the log outgrows it
    good = copy_run(mnist_run, tmp_path / "limit")
    before = sha(good), sha(tmp_path / "limit" / "g.log.h5")
    result = run_cli("train", "--resume", good, "--out", good, "--steps", "30", "--data-dir", MNIST,
                     "--threads", "1", file_size_limit=(tmp_path / "limit" / "g.log.h5").stat().st_size - 4096)
    assert_clean_error(result, "g.log.h5", "file-size limit", "untouched")
    assert (sha(good), sha(tmp_path / "limit" / "g.log.h5")) == before
