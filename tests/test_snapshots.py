"""Snapshots in the training log ("learning to draw"): the right steps, exact across a resume, old logs, GIF."""

import dataclasses
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image
from tiny_data import REPO, mnist_slice

from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.log_export import export_snapshots_gif
from draw_studio.train import Trainer, TrainingControl
from draw_studio.training_log_reader import read_training_log
from draw_studio.training_log_repair import repair_training_log
from draw_studio.training_snapshots import RECONSTRUCTIONS, SAMPLES, read_snapshots

TINY = get_preset("tiny").model
TRAIN, VALID = mnist_slice("train", 200), mnist_slice("valid", 64)


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def config(**changes) -> TrainConfig:
    base = TrainConfig(preset="tiny", batch_size=16, steps=10, seed=3, validate_every=0, checkpoint_every=4,
                       report_every=1, validation_limit=64, snapshot_every=3)
    return dataclasses.replace(base, **changes)


def run(trainer: Trainer, stop_at: int | None = None, skip_final_save: bool = False) -> None:
    control = TrainingControl()
    for report in trainer.run(control):
        if stop_at is not None and report.kind == "step" and report.step == stop_at:
            if skip_final_save:
                control.skip_final_save()
            control.stop()


def new_run(out, **changes) -> Trainer:
    return Trainer.from_options(TINY, config(**changes), train_set=TRAIN, valid_set=VALID, device="cpu", out=out)


def going_on(checkpoint, steps: int = 10) -> Trainer:
    return Trainer.from_checkpoint(checkpoint, steps, train_set=TRAIN, valid_set=VALID, device="cpu", out=checkpoint)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    run(new_run(folder / "whole.ckpt"))
    return folder / "whole.log.h5"


def test_snapshots_are_taken_at_step_0_every_n_steps_and_at_the_end(uninterrupted):
    snapshots = read_snapshots(uninterrupted)
    assert snapshots.step.tolist() == [0, 3, 6, 9, 10]
    assert snapshots.samples.shape == (5, SAMPLES, 1, 28, 28) and snapshots.samples.dtype == np.uint8
    assert snapshots.reconstructions.shape == (5, RECONSTRUCTIONS, 1, 28, 28)
    assert set(np.unique(snapshots.inputs)) <= {0, 255}  # the fixed binarisation of the first validation images
    assert not np.array_equal(snapshots.samples[0], snapshots.samples[-1])  # the model changed in between
    with h5py.File(uninterrupted, "r") as f:  # plain HDF5 with labelled axes
        assert [d.label for d in f["snapshots/samples"].dims] == ["snapshot", "sample", "channel", "y", "x"]


def test_a_run_killed_after_its_checkpoint_goes_on_without_duplicate_or_gap(uninterrupted, tmp_path):
    # stopped at step 7 without its final checkpoint: the log holds snapshots 0, 3, 6, 7, the checkpoint step 4
    run(new_run(tmp_path / "a.ckpt"), stop_at=7, skip_final_save=True)
    assert read_snapshots(tmp_path / "a.log.h5").step.tolist() == [0, 3, 6, 7]
    run(going_on(tmp_path / "a.ckpt"))
    resumed, whole = read_snapshots(tmp_path / "a.log.h5"), read_snapshots(uninterrupted)
    assert resumed.step.tolist() == [0, 3, 6, 9, 10]
    assert np.array_equal(resumed.samples, whole.samples)  # bit for bit the uninterrupted run's
    assert np.array_equal(resumed.reconstructions, whole.reconstructions)


def test_a_stopped_run_keeps_its_last_snapshot_and_goes_on_after_it(uninterrupted, tmp_path):
    run(new_run(tmp_path / "b.ckpt"), stop_at=5)  # final checkpoint and snapshot at step 5
    run(going_on(tmp_path / "b.ckpt"))
    snapshots, whole = read_snapshots(tmp_path / "b.log.h5"), read_snapshots(uninterrupted)
    assert snapshots.step.tolist() == [0, 3, 5, 6, 9, 10]
    kept = [0, 1, 3, 4, 5]  # every step the uninterrupted run has
    assert np.array_equal(snapshots.samples[kept], whole.samples)
    assert read_training_log(tmp_path / "b.log.h5").step.tolist() == list(range(1, 11))


def test_logs_without_snapshots_read_as_empty_and_repair_keeps_them(uninterrupted, tmp_path):
    run(new_run(tmp_path / "c.ckpt", snapshot_every=0, steps=4))
    with h5py.File(tmp_path / "c.log.h5", "r") as f:
        assert "snapshots" not in f
    assert len(read_snapshots(tmp_path / "c.log.h5")) == 0
    assert len(read_snapshots(REPO / "models" / "mnist-noattention.log.h5")) == 0  # a shipped log of an older version
    shutil.copy(uninterrupted, tmp_path / "copy.log.h5")
    repair_training_log(tmp_path / "copy.log.h5")
    repaired, whole = read_snapshots(tmp_path / "copy.log.h5"), read_snapshots(uninterrupted)
    assert repaired.step.tolist() == whole.step.tolist() and np.array_equal(repaired.samples, whole.samples)
    assert read_training_log(tmp_path / "copy.log.h5").total_steps == 10


def test_snapshots_export_as_a_gif_and_a_log_without_them_says_so(uninterrupted, tmp_path, capsys):
    assert main(["log-export", str(uninterrupted), "--snapshots-gif", str(tmp_path / "learn.gif"), "--scale", "1"]) == 0
    with Image.open(tmp_path / "learn.gif") as gif:
        assert gif.n_frames == 5
    run(new_run(tmp_path / "d.ckpt", snapshot_every=0, steps=4))
    with pytest.raises(DrawStudioError, match="no snapshots"):
        export_snapshots_gif(tmp_path / "d.log.h5", tmp_path / "none.gif")
    assert not (tmp_path / "none.gif").exists()
