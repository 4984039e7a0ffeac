"""Datasets: where they are found, how splits are cut, and every format's reader (no network)."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from draw_studio.data import (
    DATASETS,
    FIXED_BINARIZATION_SEED,
    SPLITS,
    ImageSet,
    fixed_binary_images,
    get_dataset,
    load_split,
    locate,
)
from draw_studio.data.idx import read_idx, write_idx
from draw_studio.data.locate import candidate_dirs
from draw_studio.errors import DataError

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache, no $DRAW_STUDIO_DATA, no downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DRAW_STUDIO_DATA", raising=False)
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")


def make_idx_set(folder, n_train=12, n_test=6, fill=0, gz=True, size=28):
    """Tiny MNIST-like files: image i of a part is a bar of value ``fill + i``; label i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, size, size), dtype=np.uint8)
        for i in range(n):
            images[i, 5 + i % 10, 4:size - 4] = fill + i + 1
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return folder


def real_mnist():
    if not all((REAL_MNIST / f"{name}.gz").is_file() for name in MNIST_NAMES):
        pytest.skip(f"real MNIST not in {REAL_MNIST}")
    return REAL_MNIST


# ---- search order and errors -------------------------------------------------------------------

def test_registered_names():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "binarized-mnist", "two-digit-mnist", "cluttered-mnist",
                             "cluttered-mnist-60", "svhn", "cifar10", "folder"}
    assert SPLITS == ("train", "valid", "test")


def test_data_dir_beats_env_beats_cache(tmp_path, monkeypatch):
    make_idx_set(tmp_path / "cache" / "draw-studio" / "data" / "mnist", fill=100)
    make_idx_set(tmp_path / "env" / "mnist", fill=50)
    make_idx_set(tmp_path / "given", fill=0, gz=False)

    def first_pixel_max(data_dir):
        return int(load_split("mnist", "test", data_dir).images[0].max())

    monkeypatch.setenv("DRAW_STUDIO_DATA", str(tmp_path / "env"))
    assert locate("mnist", tmp_path / "given") == tmp_path / "given"
    assert first_pixel_max(tmp_path / "given") == 1
    assert locate("mnist") == tmp_path / "env" / "mnist"
    assert first_pixel_max(None) == 51
    monkeypatch.delenv("DRAW_STUDIO_DATA")
    assert locate("mnist") == tmp_path / "cache" / "draw-studio" / "data" / "mnist"
    assert first_pixel_max(None) == 101


def test_data_dir_sub_folder_is_searched_before_data_dir_itself(tmp_path):
    make_idx_set(tmp_path / "root", fill=0)
    make_idx_set(tmp_path / "root" / "fashion-mnist", fill=30)
    assert locate("fashion-mnist", tmp_path / "root") == tmp_path / "root" / "fashion-mnist"
    assert locate("mnist", tmp_path / "root") == tmp_path / "root"


def test_missing_dataset_with_downloads_off_names_every_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAW_STUDIO_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        load_split("mnist", "train", tmp_path / "given")
    message = str(info.value)
    for folder in (tmp_path / "given", tmp_path / "given" / "mnist", tmp_path / "env" / "mnist",
                   tmp_path / "cache" / "draw-studio" / "data" / "mnist"):
        assert str(folder) in message
    assert "downloads are off" in message and "--data-dir" in message and "\n" not in message


def test_download_argument_false_also_turns_downloads_off(tmp_path, monkeypatch):
    monkeypatch.delenv("DRAW_STUDIO_NO_DOWNLOAD")
    with pytest.raises(DataError, match="downloads are off"):
        locate("cifar10", tmp_path, download=False)


def test_binarized_mnist_says_it_cannot_be_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv("DRAW_STUDIO_NO_DOWNLOAD")
    with pytest.raises(DataError) as info:
        locate("binarized-mnist", tmp_path)
    assert "cannot be downloaded automatically" in str(info.value)
    assert "binarized_mnist_train.amat" in str(info.value)


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(DataError, match="choose one of mnist"):
        get_dataset("imagenet")
    make_idx_set(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_split("mnist", "dev", tmp_path)


def test_validation_size_out_of_range(tmp_path):
    make_idx_set(tmp_path, n_train=12)
    with pytest.raises(DataError, match="between 1 and 11"):
        load_split("mnist", "valid", tmp_path, validation_size=12)


def test_fashion_mnist_also_searched_where_debian_installs_it():
    dirs = candidate_dirs(get_dataset("fashion-mnist").folder, None, get_dataset("fashion-mnist").system_dirs)
    assert dirs[-1] == Path("/usr/share/datasets/fashion-mnist")
    if not (dirs[-1] / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    test = load_split("fashion-mnist", "test")
    assert test.images.shape == (10000, 1, 28, 28) and test.source == str(dirs[-1])


# ---- real MNIST: splits and fixed binarisation ------------------------------------------------

def test_real_mnist_train_valid_split():
    folder = real_mnist()
    train = load_split("mnist", "train", folder)
    valid = load_split("mnist", "valid", folder)
    assert train.images.shape == (50000, 1, 28, 28) and valid.images.shape == (10000, 1, 28, 28)
    assert len(train.labels) == 50000 and len(valid.labels) == 10000
    whole = read_idx(folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(np.concatenate([train.images, valid.images])[:, 0], whole)
    assert not set(map(bytes, train.images)) & set(map(bytes, valid.images))
    smaller = load_split("mnist", "valid", folder, validation_size=5000)
    np.testing.assert_array_equal(smaller.images, valid.images[5000:])


def test_fixed_binarization_is_fixed_and_faithful():
    test = load_split("mnist", "test", real_mnist())
    first, again = fixed_binary_images(test), fixed_binary_images(test)
    other = fixed_binary_images(test, FIXED_BINARIZATION_SEED + 1)
    np.testing.assert_array_equal(first, again)
    assert first.shape == test.images.shape and first.dtype == np.uint8
    assert set(np.unique(first)) == {0, 1}
    assert (first != other).mean() > 0.01
    assert abs(first.mean() - test.images.mean() / 255) < 0.002
    assert not first[test.images == 0].any() and first[test.images == 255].all()


# ---- binarized MNIST (.amat) -------------------------------------------------------------------

def write_amat(path, bits):
    path.write_text("".join(" ".join(str(b) for b in row) + "\n" for row in bits.reshape(len(bits), -1)))


def test_amat_files_with_their_own_validation_part(tmp_path):
    rng = np.random.default_rng(0)
    parts = {part: rng.integers(0, 2, size=(n, 784)).astype(np.uint8)
             for part, n in (("train", 4), ("valid", 3), ("test", 2))}
    for part, bits in parts.items():
        write_amat(tmp_path / f"binarized_mnist_{part}.amat", bits)
    for part, bits in parts.items():
        got = load_split("binarized-mnist", part, tmp_path)
        assert got.binary and got.labels is None and got.images.shape == (len(bits), 1, 28, 28)
        np.testing.assert_array_equal(got.images.reshape(len(bits), -1), bits)
        assert fixed_binary_images(got) is got.images


@pytest.mark.parametrize("text, problem", [("0 1 2" + " 0" * 781 + "\n", "other than"),
                                           ("0 1 01" + " 0" * 781 + "\n", "other than"),
                                           ("0 1" + " 0" * 700 + "\n", "image 1 has 702 values")])
def test_bad_amat_is_a_data_error(tmp_path, text, problem):
    for part in ("train", "valid", "test"):
        (tmp_path / f"binarized_mnist_{part}.amat").write_text(text)
    with pytest.raises(DataError, match=problem):
        load_split("binarized-mnist", "test", tmp_path)


# ---- CIFAR-10 binary ---------------------------------------------------------------------------

def write_cifar_batch(path, labels, first_value):
    records = []
    for k, label in enumerate(labels):
        planes = np.stack([np.full((32, 32), first_value + k + c * 50, dtype=np.uint8) for c in range(3)])
        planes[0, 0, 1] = 255  # row 0, column 1 of the red plane
        records.append(bytes([label]) + planes.tobytes())
    path.write_bytes(b"".join(records))


def test_cifar_binary_batches(tmp_path):
    for i in range(1, 6):
        write_cifar_batch(tmp_path / f"data_batch_{i}.bin", [i, (i + 1) % 10], first_value=10 * i)
    write_cifar_batch(tmp_path / "test_batch.bin", [3, 4, 5], first_value=0)
    train = load_split("cifar10", "train", tmp_path, validation_size=2)
    valid = load_split("cifar10", "valid", tmp_path, validation_size=2)
    test = load_split("cifar10", "test", tmp_path)
    assert train.images.shape == (8, 3, 32, 32) and valid.images.shape == (2, 3, 32, 32)
    assert list(train.labels) == [1, 2, 2, 3, 3, 4, 4, 5] and list(valid.labels) == [5, 6]
    assert list(test.labels) == [3, 4, 5]
    image = test.images[1]  # second record: value 1, 51, 101 in the R, G, B planes
    assert image[:, 5, 5].tolist() == [1, 51, 101] and image[0, 0, 1] == 255 and image[0, 1, 0] == 1


def test_cifar_wrong_size_is_a_data_error(tmp_path):
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (tmp_path / name).write_bytes(bytes(3073 * 2 - 1))
    with pytest.raises(DataError, match="whole number of 3073-byte records"):
        load_split("cifar10", "test", tmp_path)


# ---- SVHN ------------------------------------------------------------------------------------

def svhn_arrays(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # MATLAB's (H, W, C, n)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
    y[0] = 10
    return x, y


def test_svhn_matlab_v5(tmp_path):
    savemat = pytest.importorskip("scipy.io").savemat
    for part, n in (("train", 5), ("test", 3)):
        x, y = svhn_arrays(n, n)
        savemat(tmp_path / f"{part}_32x32.mat", {"X": x, "y": y})
    test = load_split("svhn", "test", tmp_path)
    x, y = svhn_arrays(3, 3)
    assert test.images.shape == (3, 3, 32, 32) and test.labels[0] == 0
    np.testing.assert_array_equal(test.images, x.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(test.labels, y[:, 0] % 10)
    assert len(load_split("svhn", "train", tmp_path, validation_size=1)) == 4


def test_svhn_matlab_v73_hdf5(tmp_path):
    x, y = svhn_arrays(4, 7)
    for part in ("train", "test"):
        with h5py.File(tmp_path / f"{part}_32x32.mat", "w", userblock_size=512) as f:
            f["X"] = x.transpose(3, 2, 1, 0)  # column-major storage: h5py sees the axes reversed
            f["y"] = y.T
    test = load_split("svhn", "test", tmp_path)
    np.testing.assert_array_equal(test.images, x.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(test.labels, y[:, 0] % 10)


def test_svhn_damaged_file_is_a_data_error(tmp_path):
    for part in ("train", "test"):
        (tmp_path / f"{part}_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(DataError, match="test_32x32.mat"):
        load_split("svhn", "test", tmp_path)


# ---- two-digit MNIST ---------------------------------------------------------------------------

def test_two_digit_shape_labels_and_determinism(tmp_path):
    make_idx_set(tmp_path, n_train=30, n_test=10)
    first = load_split("two-digit-mnist", "train", tmp_path, validation_size=10)
    again = load_split("two-digit-mnist", "train", tmp_path, validation_size=10)
    valid = load_split("two-digit-mnist", "valid", tmp_path, validation_size=10)
    test = load_split("two-digit-mnist", "test", tmp_path)
    assert first.images.shape == (20, 1, 60, 60) and first.images.dtype == np.uint8
    assert valid.images.shape == (10, 1, 60, 60) and test.images.shape == (10, 1, 60, 60)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(valid.images, test.images)  # other source digits, other seed
    # each digit i of the tiny set is one bar of value i + 1 (train) with label i % 10: the two bars
    # drawn must be the two digits the label names, and come from that split only
    for image, label in zip(valid.images, valid.labels):
        values = set(np.unique(image)) - {0}
        assert values <= set(range(21, 31))  # training digits 20..29 are the validation split
        assert {v - 1 for v in values} <= {20 + label // 10, 20 + label % 10} and len(values) >= 1


def test_two_digit_from_real_mnist_test_split():
    folder = real_mnist()
    test = load_split("two-digit-mnist", "test", folder)
    assert test.images.shape == (10000, 1, 60, 60)
    assert test.labels.min() >= 0 and test.labels.max() <= 99
    mnist = load_split("mnist", "test", folder)
    np.testing.assert_array_equal(test.images, load_split("two-digit-mnist", "test", folder).images)
    assert abs(test.images.astype(float).sum() / mnist.images.astype(float).sum() - 2) < 0.2


# ---- a folder of images ------------------------------------------------------------------------

def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_of_grey_pngs(tmp_path):
    for i in range(5):
        save_png(tmp_path / f"img{i}.png", np.full((6, 8), 40 * i, dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    train = load_split("folder", "train", tmp_path, validation_size=2)
    valid = load_split("folder", "valid", tmp_path, validation_size=2)
    test = load_split("folder", "test", tmp_path, validation_size=2)
    assert train.images.shape == (3, 1, 6, 8) and train.labels is None
    assert [int(im.max()) for im in train.images] == [0, 40, 80]
    assert [int(im.max()) for im in valid.images] == [120, 160]
    np.testing.assert_array_equal(test.images, valid.images)  # no test/ folder: test is the validation split


def test_folder_in_colour_with_a_test_folder(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    save_png(tmp_path / "b.png", rgb)
    save_png(tmp_path / "a.png", np.full((4, 4), 9, dtype=np.uint8))
    save_png(tmp_path / "c.jpg", np.full((4, 4, 3), 128, dtype=np.uint8))
    save_png(tmp_path / "test" / "t.png", np.full((4, 4), 77, dtype=np.uint8))
    train = load_split("folder", "train", tmp_path, validation_size=1)
    test = load_split("folder", "test", tmp_path, validation_size=1)
    assert train.images.shape == (2, 3, 4, 4)
    assert train.images[0, :, 0, 0].tolist() == [9, 9, 9] and train.images[1, :, 0, 0].tolist() == [200, 0, 0]
    assert test.images.shape == (1, 3, 4, 4) and test.images[0, :, 2, 2].tolist() == [77, 77, 77]


def test_folder_size_mismatch_names_the_file(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((6, 8), dtype=np.uint8))
    save_png(tmp_path / "b.png", np.zeros((6, 8), dtype=np.uint8))
    save_png(tmp_path / "c.png", np.zeros((5, 8), dtype=np.uint8))
    save_png(tmp_path / "d.png", np.zeros((7, 7), dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_split("folder", "train", tmp_path, validation_size=1)
    message = str(info.value)
    assert str(tmp_path / "c.png") in message and "8x5" in message and "8x6" in message
    assert "d.png" not in message and "\n" not in message


def test_folder_needs_data_dir_and_images(tmp_path):
    with pytest.raises(DataError, match="pass --data-dir"):
        load_split("folder", "train")
    with pytest.raises(DataError, match="no images"):
        load_split("folder", "train", tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_split("folder", "train", tmp_path)


def test_imageset_subset_keeps_labels():
    images = ImageSet(np.arange(24, dtype=np.uint8).reshape(6, 1, 2, 2), np.arange(6), False, "x")
    part = images.subset(slice(4, None))
    assert len(part) == 2 and part.shape == (1, 2, 2) and part.labels.tolist() == [4, 5]
