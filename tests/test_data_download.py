"""The downloader against a real HTTP server on 127.0.0.1 (no other network)."""

import hashlib
import http.server
import io
import tarfile
import threading
from functools import partial

import numpy as np
import pytest

from draw_studio.data import DATASETS, DatasetSpec, load_split, locate
from draw_studio.data.archive import extract_members
from draw_studio.data.download import checksum_kind, download_files
from draw_studio.data.idx import write_idx
from draw_studio.data.mnist import IDX_FILES, load_idx_pair
from draw_studio.errors import DataError

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes: more than one read chunk


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    agents: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).agents.append(self.headers.get("User-Agent", ""))
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on a free port of 127.0.0.1; yields (base URL, served folder)."""
    root = tmp_path / "www"
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    (root / "good" / "blob.bin").write_bytes(PAYLOAD)
    (root / "bad" / "blob.bin").write_bytes(PAYLOAD[:-1] + b"X")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _md5(data):
    return hashlib.md5(data).hexdigest()


def test_right_checksum_downloads_the_file(server, tmp_path):
    base, _ = server
    dest = tmp_path / "dest" / "sub"
    got = download_files(dest, [f"{base}/good/"], {"blob.bin": _md5(PAYLOAD)})
    assert got == [dest / "blob.bin"]
    assert (dest / "blob.bin").read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == ["blob.bin"]  # no temporary file left
    assert _QuietHandler.agents[-1].startswith("draw-studio")


def test_sha256_checksum_is_accepted(server, tmp_path):
    base, _ = server
    assert checksum_kind(hashlib.sha256(PAYLOAD).hexdigest()) == "sha256"
    download_files(tmp_path / "d", [f"{base}/good"], {"blob.bin": hashlib.sha256(PAYLOAD).hexdigest()})
    assert (tmp_path / "d" / "blob.bin").read_bytes() == PAYLOAD


def test_wrong_checksum_raises_and_leaves_nothing(server, tmp_path):
    base, _ = server
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        download_files(dest, [f"{base}/bad/"], {"blob.bin": _md5(PAYLOAD)})
    message = str(info.value)
    assert "blob.bin" in message and f"{base}/bad/blob.bin" in message and "md5" in message
    assert "\n" not in message
    assert list(dest.iterdir()) == []


def test_404_on_first_mirror_falls_back_to_second(server, tmp_path):
    base, _ = server
    dest = tmp_path / "dest"
    download_files(dest, [f"{base}/missing/", f"{base}/good/"], {"blob.bin": _md5(PAYLOAD)})
    assert (dest / "blob.bin").read_bytes() == PAYLOAD
    assert [p.name for p in dest.iterdir()] == ["blob.bin"]


def test_bad_mirror_then_good_mirror(server, tmp_path):
    base, _ = server
    dest = tmp_path / "dest"
    download_files(dest, [f"{base}/bad/", f"{base}/good/"], {"blob.bin": _md5(PAYLOAD)})
    assert (dest / "blob.bin").read_bytes() == PAYLOAD


def test_every_mirror_failing_names_them_all(server, tmp_path):
    base, _ = server
    dead = "http://127.0.0.1:9/"  # discard port: connection refused, no traffic leaves the machine
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        download_files(dest, [f"{base}/missing/", dead], {"blob.bin": _md5(PAYLOAD)}, timeout=3)
    message = str(info.value)
    assert f"{base}/missing/blob.bin (HTTP 404)" in message and "127.0.0.1:9/blob.bin" in message
    assert list(dest.iterdir()) == []


def test_wrong_existing_file_is_replaced_and_right_one_kept(server, tmp_path):
    base, root = server
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "blob.bin").write_bytes(b"stale")
    download_files(dest, [f"{base}/good/"], {"blob.bin": _md5(PAYLOAD)})
    assert (dest / "blob.bin").read_bytes() == PAYLOAD
    (root / "good" / "blob.bin").unlink()  # now only the local copy can satisfy it
    download_files(dest, [f"{base}/good/"], {"blob.bin": _md5(PAYLOAD)})
    assert (dest / "blob.bin").read_bytes() == PAYLOAD


def test_checksum_kind_rejects_other_lengths():
    with pytest.raises(ValueError):
        checksum_kind("abc")


def _tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_tar_extraction_takes_only_the_named_files_flat(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _tarball(archive, {"cifar-10-batches-bin/data_batch_1.bin": b"one", "cifar-10-batches-bin/readme.html": b"x",
                       "../../evil.bin": b"evil"})
    dest = tmp_path / "out"
    dest.mkdir()
    got = extract_members(archive, dest, ["data_batch_1.bin"])
    assert got == [dest / "data_batch_1.bin"] and got[0].read_bytes() == b"one"
    assert [p.name for p in dest.iterdir()] == ["data_batch_1.bin"]
    assert not (tmp_path.parent / "evil.bin").exists()


def test_tar_traversal_member_lands_flat_not_outside(tmp_path):
    archive = tmp_path / "a.tar"
    _tarball(archive, {"../../../outside.bin": b"evil"})
    dest = tmp_path / "out"
    dest.mkdir()
    extract_members(archive, dest, ["outside.bin"])
    assert (dest / "outside.bin").read_bytes() == b"evil"
    assert not (tmp_path / "outside.bin").exists() and not (tmp_path.parent / "outside.bin").exists()


def test_tar_lacking_a_file_is_a_data_error(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _tarball(archive, {"x/data_batch_1.bin": b"one"})
    with pytest.raises(DataError, match="lacks test_batch.bin"):
        extract_members(archive, tmp_path, ["data_batch_1.bin", "test_batch.bin"])


def test_locate_downloads_into_the_cache_when_allowed(server, tmp_path, monkeypatch):
    base, root = server
    md5s = {}
    for prefix, n in (("train", 4), ("t10k", 3)):
        parts = (("images-idx3", np.full((n, 5, 5), 7, np.uint8)), ("labels-idx1", np.arange(n, dtype=np.uint8)))
        for kind, array in parts:
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(root / "good" / name, array)
            md5s[name] = _md5((root / "good" / name).read_bytes())
    spec = DatasetSpec("Tiny", "tiny", IDX_FILES, load_idx_pair,
                       lambda directory: download_files(directory, [f"{base}/missing/", f"{base}/good/"], md5s))
    monkeypatch.setitem(DATASETS, "tiny", spec)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DRAW_STUDIO_DATA", raising=False)
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
    with pytest.raises(DataError, match="downloads are off"):
        locate("tiny")
    monkeypatch.delenv("DRAW_STUDIO_NO_DOWNLOAD")
    target = tmp_path / "cache" / "draw-studio" / "data" / "tiny"
    test = load_split("tiny", "test")
    assert test.images.shape == (3, 1, 5, 5) and test.labels.tolist() == [0, 1, 2]
    assert sorted(p.name for p in target.iterdir()) == sorted(md5s)

    broken = DatasetSpec("Broken", "broken", IDX_FILES, load_idx_pair,
                         lambda directory: download_files(directory, [f"{base}/missing/"], md5s))
    monkeypatch.setitem(DATASETS, "broken", broken)
    with pytest.raises(DataError) as info:
        locate("broken")
    assert "download failed" in str(info.value) and "HTTP 404" in str(info.value)
    assert list((tmp_path / "cache" / "draw-studio" / "data" / "broken").iterdir()) == []
