"""The IDX reader on tiny files made here: raw, gzip, damaged."""

import gzip

import numpy as np
import pytest

from draw_studio.data.idx import read_idx, write_idx
from draw_studio.errors import DataError


def _images(n=5, h=4, w=3):
    return np.arange(n * h * w, dtype=np.uint8).reshape(n, h, w)


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_round_trip_raw_and_gzip(tmp_path, name):
    path = tmp_path / name
    write_idx(path, _images())
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.shape == (5, 4, 3)
    np.testing.assert_array_equal(got, _images())


def test_header_is_the_standard_one(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def test_gzip_detected_from_content_not_name(tmp_path):
    path = tmp_path / "no-suffix"
    write_idx(path, _images(), compress=True)
    np.testing.assert_array_equal(read_idx(path), _images())


def test_wider_types_are_read_big_endian(tmp_path):
    values = np.array([[1, -2], [300, 70000]], dtype=np.int32)
    path = tmp_path / "ints"
    write_idx(path, values)
    got = read_idx(path)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_is_a_data_error(tmp_path, gz):
    full = tmp_path / "full"
    write_idx(full, _images())
    cut = full.read_bytes()[:-7]
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_header_cut_short_is_a_data_error(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_trailing_bytes_are_a_data_error(tmp_path):
    path = tmp_path / "long"
    write_idx(path, _images())
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(path)


@pytest.mark.parametrize("start", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04"])
def test_wrong_magic_is_a_data_error(tmp_path, start):
    path = tmp_path / "bad"
    path.write_bytes(start + bytes(20))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_damaged_gzip_is_a_one_line_data_error(tmp_path):
    path = tmp_path / "bad.gz"
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(range(200)))
    path.write_bytes(good[:12] + b"\xff" * 20 + good[32:])
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")
