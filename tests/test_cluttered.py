"""Cluttered MNIST: the generator's recipe checked piece by piece on real MNIST digits, and its disk cache."""

import numpy as np
import pytest
from tiny_data import MNIST_DIR, mnist_slice, mnist_split

from draw_studio.data import DATASETS, ImageSet, load_split
from draw_studio.data.cluttered import (
    ClutterSettings,
    clutter_digits,
    cluttered_cache_dir,
    cluttered_mnist,
    cluttered_split,
    source_fingerprint,
)
from draw_studio.errors import DataError


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The user's cache folder, in tmp_path (nothing is written to the real one)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
    return tmp_path / "cache"


def rebuilt(source: np.ndarray, built, index: int, size: int = 8) -> np.ndarray:
    """Image ``index`` rebuilt pixel by pixel from the recorded positions (an independent paste-and-clip)."""
    canvas = built.images.shape[-1]
    total = np.zeros((source.shape[1], canvas, canvas), dtype=np.int64)
    row, col = built.digit_position[index]
    total[:, row:row + 28, col:col + 28] += source[index]
    for other, (crop_row, crop_col), (row, col) in zip(built.distractor_source[index], built.distractor_crop[index],
                                                       built.distractor_position[index]):
        total[:, row:row + size, col:col + size] += source[other, :, crop_row:crop_row + size, crop_col:crop_col + size]
    return np.clip(total, 0, 255).astype(np.uint8)


def test_same_seed_same_images_other_seed_other_images():
    source = mnist_slice("test", 300)
    first, again, other = (clutter_digits(source, seed) for seed in (5, 5, 6))
    for name in ("images", "digit_position", "distractor_source", "distractor_crop", "distractor_position"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.images, other.images)
    assert first.images.shape == (300, 1, 100, 100) and first.images.dtype == np.uint8
    np.testing.assert_array_equal(first.labels, source.labels)


def test_without_distractors_the_digit_lies_whole_at_its_recorded_place_and_nothing_else():
    source = mnist_slice("test", 400)
    built = clutter_digits(source, seed=11, distractors=0)
    rows, cols = built.digit_position.T
    assert rows.min() >= 0 and cols.min() >= 0 and rows.max() <= 72 and cols.max() <= 72  # fully inside 100
    assert rows.min() < 8 and rows.max() > 64 and cols.min() < 8 and cols.max() > 64  # spread over the canvas
    for i in range(len(source)):
        image = built.images[i, 0].copy()
        np.testing.assert_array_equal(image[rows[i]:rows[i] + 28, cols[i]:cols[i] + 28], source.images[i, 0])
        image[rows[i]:rows[i] + 28, cols[i]:cols[i] + 28] = 0
        assert not image.any()  # nothing outside the digit
        assert built.images[i].sum() == source.images[i].sum()  # the whole digit: no ink cut off


def test_distractors_are_8x8_crops_of_other_digits_of_the_split_and_the_sum_is_clipped():
    source = mnist_slice("test", 2000)
    built = clutter_digits(source, seed=3)
    n = len(source)
    assert built.distractor_source.shape == (n, 8)
    assert built.distractor_source.min() >= 0 and built.distractor_source.max() < n  # the split's own digits
    assert not (built.distractor_source == np.arange(n)[:, None]).any()  # never the digit itself
    assert built.distractor_crop.min() >= 0 and built.distractor_crop.max() <= 28 - 8  # inside the digit
    assert built.distractor_position.min() >= 0 and built.distractor_position.max() <= 100 - 8  # inside the canvas
    clipped = 0
    for i in range(0, n, 10):  # every 10th image, rebuilt from the digits of this split alone
        np.testing.assert_array_equal(built.images[i], rebuilt(source.images, built, i))
        clipped += int((built.images[i] == 255).sum())
    assert clipped > 0  # overlaps do saturate: the clipping is exercised


def test_the_registered_test_split_uses_test_digits_and_keeps_their_labels(cache_home):
    images = load_split("cluttered-mnist", "test", MNIST_DIR, download=False)
    digits = mnist_split("test")
    assert images.images.shape == (10_000, 1, 100, 100) and images.images.dtype == np.uint8
    np.testing.assert_array_equal(images.labels, digits.labels)
    built = cluttered_split(digits, "test")  # the cached split, with its recorded positions
    np.testing.assert_array_equal(built.images, images.images)
    for i in (0, 1, 9_999):
        np.testing.assert_array_equal(images.images[i], rebuilt(digits.images, built, i))
    valid = load_split("cluttered-mnist", "valid", MNIST_DIR, validation_size=100, download=False)
    last = load_split("mnist", "valid", MNIST_DIR, validation_size=100, download=False)  # the last training images
    np.testing.assert_array_equal(valid.labels, last.labels)
    np.testing.assert_array_equal(valid.images, cluttered_split(last, "valid").images)


def test_a_split_is_cached_once_and_a_damaged_cache_is_built_again(cache_home):
    source = mnist_slice("test", 200)
    first = cluttered_split(source, "test")
    files = list(cluttered_cache_dir().iterdir())
    assert [f.name for f in files] == [ClutterSettings().cache_name("test", source_fingerprint(source))]
    assert files[0].stat().st_size < 200 * 100 * 100 / 5  # uint8 and compressed: mostly black
    files[0].write_bytes(b"PK\x03\x04 not really a zip file")
    again = cluttered_split(source, "test")
    np.testing.assert_array_equal(again.images, first.images)
    assert files[0].stat().st_size > 1000  # replaced by a good file
    stamp = files[0].stat().st_mtime_ns
    third = cluttered_split(source, "test")  # read back, not rebuilt
    np.testing.assert_array_equal(third.images, first.images)
    assert files[0].stat().st_mtime_ns == stamp
    other = cluttered_split(source.subset(slice(0, 199)), "test")  # other digits: another cache file
    assert len(list(cluttered_cache_dir().iterdir())) == 2 and len(other.images) == 199


def test_options_size_and_number_of_distractors(cache_home):
    spec = cluttered_mnist(canvas=60, distractors=4, distractor_size=6)
    source = mnist_slice("test", 50)
    images = spec.derive(source, "test")
    assert images.images.shape == (50, 1, 60, 60)
    built = cluttered_split(source, "test", ClutterSettings(60, 4, 6))
    assert built.distractor_source.shape == (50, 4) and built.distractor_crop.max() <= 22
    np.testing.assert_array_equal(images.images[7], rebuilt(source.images, built, 7, size=6))
    assert DATASETS["cluttered-mnist-60"].derive(source, "test").images.shape == (50, 1, 60, 60)
    with pytest.raises(DataError, match="canvas of at least 28"):
        cluttered_mnist(canvas=20)
    with pytest.raises(DataError, match="distractors"):
        clutter_digits(ImageSet(source.images[:1], source.labels[:1], False, "one"), seed=0)
