"""A training log as CSV and TensorBoard events (converted, and written live by a run)."""

import csv
import sys

import numpy as np
import pytest
from tiny_data import MNIST_DIR, mnist_slice

from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.log_export import export_log_csv
from draw_studio.tensorboard_logs import TensorBoardSink, export_log_tensorboard
from draw_studio.train import Trainer
from draw_studio.training_log_reader import read_training_log

TINY = get_preset("tiny").model
TAGS = {"train/bound": "loss", "train/nll_x": "nll_x", "train/kl": "kl", "train/lr": "lr"}


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def run_log(tmp_path_factory):
    """A tiny real run with a cosine schedule and validation every 3 steps; its reports, and its log."""
    folder = tmp_path_factory.mktemp("logs")
    config = TrainConfig(preset="tiny", batch_size=16, steps=8, seed=5, validate_every=3, checkpoint_every=0,
                         report_every=2, validation_limit=64, lr_schedule="cosine", snapshot_every=0)
    trainer = Trainer.from_options(TINY, config, train_set=mnist_slice("train", 200),
                                   valid_set=mnist_slice("valid", 64), device="cpu", out=folder / "run.ckpt")
    reports = list(trainer.run())
    return reports, folder / "run.log.h5"


def test_csv_holds_every_point_of_the_log_exactly(run_log, tmp_path):
    _, path = run_log
    log = read_training_log(path)
    assert main(["log-export", str(path), "--csv", str(tmp_path / "curves.csv")]) == 0
    with open(tmp_path / "curves.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [row for row in rows if row["split"] == "train"]
    valid = [row for row in rows if row["split"] == "valid"]
    assert len(train) == 8 and len(valid) == 2  # steps 1..8, validation at 3 and 6
    assert [int(row["step"]) for row in train] == log.step.tolist()
    for column, name in (("bound", "loss"), ("nll_x", "nll_x"), ("kl", "kl"), ("lr", "lr"), ("wall_time", "wall_time")):
        values = np.array([float(row[column]) for row in train])
        assert np.array_equal(values.astype(getattr(log, name).dtype), getattr(log, name)), column
    assert len(set(row["lr"] for row in train)) > 1  # the cosine schedule moved
    assert [int(row["step"]) for row in valid] == log.eval_step.tolist() == [3, 6]
    assert np.array_equal(np.array([float(row["bound"]) for row in valid], np.float32), log.eval_bound)
    assert all(row["kl"] == "" for row in valid)
    assert export_log_csv(path, tmp_path / "again.csv") == 10


def test_tensorboard_export_reads_back_with_tensorboards_own_reader(run_log, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, path = run_log
    log = read_training_log(path)
    assert main(["log-export", str(path), "--tensorboard", str(tmp_path / "tb")]) == 0
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    for tag, column in TAGS.items():
        points = events.Scalars(tag)
        assert [p.step for p in points] == log.step.tolist(), tag
        assert np.array_equal(np.array([p.value for p in points], np.float32), getattr(log, column)), tag
    valid = events.Scalars("valid/bound")
    assert [p.step for p in valid] == [3, 6]
    assert np.array_equal(np.array([p.value for p in valid], np.float32), log.eval_bound)
    with pytest.raises(DrawStudioError, match="already holds TensorBoard event files"):
        export_log_tensorboard(path, tmp_path / "tb")


def test_a_live_run_writes_the_same_scalars(run_log, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reports, path = run_log
    log = read_training_log(path)
    with TensorBoardSink(tmp_path / "live") as sink:
        for report in reports:
            sink.handle(report)
    events = EventAccumulator(str(tmp_path / "live"), size_guidance={"scalars": 0})
    events.Reload()
    bound = events.Scalars("train/bound")
    assert [p.step for p in bound] == log.step.tolist()
    assert np.array_equal(np.array([p.value for p in bound], np.float32), log.loss)
    assert [p.step for p in events.Scalars("train/lr")] == [2, 4, 6, 8]  # one per report
    assert [p.step for p in events.Scalars("valid/bound")] == [3, 6]


def test_without_tensorboard_the_error_says_how_to_install_it(run_log, tmp_path, monkeypatch, capsys):
    for name in [name for name in sys.modules if name == "tensorboard" or name.startswith(("tensorboard.",
                                                                                          "torch.utils.tensorboard"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    _, path = run_log
    assert main(["log-export", str(path), "--tensorboard", str(tmp_path / "tb")]) == 2
    assert 'pip install "draw-studio[tensorboard]"' in capsys.readouterr().err
    assert not (tmp_path / "tb").exists()


def test_train_on_the_command_line_writes_snapshots_and_live_tensorboard_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from draw_studio.training_snapshots import read_snapshots

    assert main(["train", "--preset", "tiny", "--data-dir", str(MNIST_DIR), "--no-download", "--steps", "5",
                 "--batch-size", "16", "--validation-limit", "64", "--validate-every", "0", "--snapshot-every", "2",
                 "--out", str(tmp_path / "cli.ckpt"), "--tensorboard", str(tmp_path / "tb"), "--device", "cpu"]) == 0
    assert read_snapshots(tmp_path / "cli.log.h5").step.tolist() == [0, 2, 4, 5]
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    assert [p.step for p in events.Scalars("train/bound")] == [1, 2, 3, 4, 5]


def test_a_classifiers_run_names_its_cross_entropy_and_error_in_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from draw_studio.classifier import ClassifierConfig
    from draw_studio.classifier_setup import classifier_train_config, new_classifier_run
    from draw_studio.curve_meaning import CLASSIFIER
    from draw_studio.data import ImageSet
    from draw_studio.data.cluttered import clutter_digits

    built = clutter_digits(mnist_slice("test", 48), seed=3)
    data = ImageSet(built.images, built.labels, False, "cluttered test digits")
    config = classifier_train_config("tiny-classifier", steps=4, batch_size=16, validate_every=2,
                                     validation_limit=32, checkpoint_every=0, report_every=2, seed=1)
    trainer = new_classifier_run(ClassifierConfig(steps=2, hidden_size=16, read_n=4), config, train_set=data,
                                 valid_set=data, out=tmp_path / "c.ckpt", device="cpu")
    with TensorBoardSink(tmp_path / "live", kind=CLASSIFIER) as sink:
        for report in trainer.run():
            sink.handle(report)
    log = read_training_log(tmp_path / "c.log.h5")
    assert export_log_tensorboard(tmp_path / "c.log.h5", tmp_path / "converted") > 0
    for folder in ("live", "converted"):
        events = EventAccumulator(str(tmp_path / folder), size_guidance={"scalars": 0})
        events.Reload()
        assert set(events.Tags()["scalars"]) == {"train/cross_entropy", "train/lr", "valid/error_percent"}, folder
        loss = events.Scalars("train/cross_entropy")
        assert [p.step for p in loss] == log.step.tolist()
        assert np.array_equal(np.array([p.value for p in loss], np.float32), log.loss)
        error = events.Scalars("valid/error_percent")
        assert [p.step for p in error] == [2, 4]
        assert np.array_equal(np.array([p.value for p in error], np.float32), log.eval_bound)  # percent
