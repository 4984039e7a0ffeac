"""Fresh clutter (``--clutter fresh``): the classifier's training digits cluttered anew every epoch, on real MNIST."""

import numpy as np
import pytest
import torch
from test_cluttered import rebuilt
from tiny_data import MNIST_DIR, mnist_slice

from draw_studio.classifier import ClassifierConfig
from draw_studio.classifier_checkpoint import read_classifier_checkpoint
from draw_studio.classifier_setup import classifier_train_config, continued_classifier_run, new_classifier_run
from draw_studio.cli import main
from draw_studio.data import ImageSet, fresh_clutter, load_split
from draw_studio.data.cluttered import ClutterSettings, FreshClutter, clutter_digits, split_seed
from draw_studio.errors import DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")
TINY = ClassifierConfig(steps=3, hidden_size=32, read_n=6)
TRAIN_DIGITS = 100  # validation size 59,900: the training split is MNIST's first 100 digits


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The user's cache folder, in tmp_path (nothing is written to the real one); no downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
    return tmp_path / "cache"


def test_each_epoch_has_its_own_clutter_by_the_recipe_and_the_same_again_for_the_same_seed():
    source = mnist_slice("train", 300)
    fresh = FreshClutter(source, ClutterSettings(), run_seed=1)
    first, again, second = fresh.digits(0), fresh.digits(0), fresh.digits(1)
    other_run = FreshClutter(source, ClutterSettings(), run_seed=2).digits(0)
    fixed = clutter_digits(source, split_seed(ClutterSettings().seed, "train"))  # the cached split's stream
    np.testing.assert_array_equal(first.images, again.images)
    for other in (second, other_run, fixed):
        moved = (other.digit_position != first.digit_position).any(axis=1)
        assert moved.mean() > 0.9, moved.mean()  # (a repeat of 2 positions in 73 x 73: ~0.02%)
    for built in (first, second):
        assert built.images.shape == (300, 1, 100, 100) and built.images.dtype == np.uint8
        assert built.digit_position.min() >= 0 and built.digit_position.max() <= 100 - 28  # digit fully inside
        assert built.distractor_source.max() < 300 and not (built.distractor_source == np.arange(300)[:, None]).any()
        for i in range(0, 300, 15):  # rebuilt from the recorded places with the split's own digits alone
            np.testing.assert_array_equal(built.images[i], rebuilt(source.images, built, i))
    np.testing.assert_array_equal(fresh.images(1), second.images)


def test_fresh_clutter_is_only_for_cluttered_datasets(cache_home):
    fresh = fresh_clutter("cluttered-mnist-60", 3, MNIST_DIR, validation_size=59_990, download=False)
    assert len(fresh.source) == 10 and fresh.images(0).shape == (10, 1, 60, 60)  # that dataset's settings
    np.testing.assert_array_equal(fresh.source.images, mnist_slice("train", 10).images)
    with pytest.raises(DataError, match="mnist is not a cluttered dataset; use one of cluttered-mnist, "
                                        "cluttered-mnist-60, or --clutter fixed"):
        fresh_clutter("mnist", 0, MNIST_DIR, download=False)


def small_valid_set() -> ImageSet:
    built = clutter_digits(mnist_slice("test", 32), seed=9)
    return ImageSet(built.images, built.labels, False, "32 cluttered test digits")


def fresh_run(tmp_path, name: str, steps: int, valid: ImageSet):
    config = classifier_train_config("tiny-classifier", clutter="fresh", validation_size=60_000 - TRAIN_DIGITS,
                                     steps=steps, batch_size=25, seed=5, validate_every=0, checkpoint_every=6,
                                     report_every=1)
    return new_classifier_run(TINY, config, data_dir=str(MNIST_DIR), valid_set=valid, download=False,
                              out=tmp_path / name, log=False, device="cpu")


def test_a_run_trains_on_new_clutter_every_epoch_and_resumes_exactly(cache_home, tmp_path):
    valid = small_valid_set()
    straight = fresh_run(tmp_path, "a.ckpt", 10, valid)  # 4 steps per epoch: epochs 0, 1 and 2
    cached = load_split("cluttered-mnist", "train", MNIST_DIR, validation_size=60_000 - TRAIN_DIGITS, download=False)
    fresh = FreshClutter(mnist_slice("train", TRAIN_DIGITS), ClutterSettings(), run_seed=5)
    seen = {}
    for step in (0, 4, 8):
        images, labels = straight.batch(step)
        epoch = step // 4
        np.testing.assert_array_equal(straight.train_images.numpy(), fresh.images(epoch))
        seen[epoch] = straight.train_images.clone()
        assert torch.equal(labels, torch.as_tensor(cached.labels)[straight._order[1][:25]])  # the labels stay
        assert images.shape == (25, 1, 100, 100)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert not np.array_equal(seen[0].numpy(), cached.images)  # not the cached (fixed) training split
    straight._order = None
    list(straight.run())

    list(fresh_run(tmp_path, "b.ckpt", 6, valid).run())  # stopped in epoch 1, then resumed into epoch 2
    resumed = continued_classifier_run(tmp_path / "b.ckpt", 10, data_dir=str(MNIST_DIR), valid_set=valid,
                                       download=False, out=tmp_path / "b.ckpt", log=False, device="cpu")
    list(resumed.run())
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert read_classifier_checkpoint(tmp_path / "b.ckpt")["train_config"]["clutter"] == "fresh"


def test_the_command_line_refuses_clutter_where_it_means_nothing(cache_home, tmp_path, capsys):
    base = ["train", "--data-dir", str(MNIST_DIR), "--steps", "2", "--no-log"]
    assert main([*base, "--preset", "tiny", "--clutter", "fresh", "--out", str(tmp_path / "d.ckpt")]) == 2
    assert "--clutter sets how the attention classifier's training digits are cluttered; DRAW has no such " \
           "setting: drop it" in capsys.readouterr().err
    assert main([*base, "--preset", "tiny-classifier", "--dataset", "mnist", "--clutter", "fresh",
                 "--out", str(tmp_path / "m.ckpt")]) == 2
    assert "mnist is not a cluttered dataset" in capsys.readouterr().err
    assert not (tmp_path / "d.ckpt").exists() and not (tmp_path / "m.ckpt").exists()

    list(fresh_run(tmp_path, "f.ckpt", 2, small_valid_set()).run())
    assert main(["train", "--resume", str(tmp_path / "f.ckpt"), "--data-dir", str(MNIST_DIR), "--steps", "4",
                 "--clutter", "fixed", "--no-log", "--out", str(tmp_path / "f.ckpt")]) == 2
    assert "--clutter fixed differs from the clutter fresh of" in capsys.readouterr().err
    assert read_classifier_checkpoint(tmp_path / "f.ckpt")["step"] == 2  # untouched
