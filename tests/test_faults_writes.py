"""Fault suite, writes and the checkpoint loader: every write is all-or-nothing, every failure one line.

Each writer (checkpoint, PNG, GIF, MP4, frames, CSV, trace) is run against a full disk (a small
tmpfs, filled), a file-size limit (RLIMIT_FSIZE: EFBIG), a read-only file system and a folder that
refuses new files (the immutable attribute: EPERM; and, in a child that obeys permissions, a
folder without write permission: EACCES). Each must raise one DrawStudioError line naming the
cause, leave the previous file byte for byte, and leave no temporary file. HDF5 writes on a full
disk could once kill the process (segmentation fault), so they run in a child process through the
real command line. The checkpoint loader is fuzzed (cut and flipped files): every variant either
loads into a model that runs or raises CheckpointError; ``eval`` never prints NaN.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_tools import MNIST, assert_clean_error, cli_env, fill, run_cli, run_cli_obeying_permissions, small_disk

from draw_studio.checkpoint import load_model, save_checkpoint
from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import CheckpointError, DrawStudioError
from draw_studio.export import export_frames, export_gif, export_mp4
from draw_studio.images import save_grid
from draw_studio.model import DRAW
from draw_studio.trace import TraceInputs, record_trace
from draw_studio.trace_file import write_trace

TINY = get_preset("tiny").model
CAUSES = {"disk-full": "disk is full", "file-too-large": "larger than this system allows",
          "read-only": "read-only", "immutable": "permission denied"}
HAS_FFMPEG = importlib.util.find_spec("imageio_ffmpeg") is not None


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return DRAW(TINY)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    save_checkpoint(path, tiny_model, TrainConfig(preset="tiny", dataset="mnist"), step=3)
    return path


@pytest.fixture(scope="module")
def tiny_trace(tiny_model):
    return record_trace(tiny_model, TraceInputs.prior(9, seed=1))


# ---------------------------------------------------------------------- the faults
class Fault:
    """A folder to write into, and :meth:`broken`: while it is active, writing ``target`` fails with ``kind``."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder = kind, folder

    @contextlib.contextmanager
    def broken(self, target: Path):
        if self.kind == "disk-full":
            fill(self.folder, 0)
            yield
        elif self.kind == "file-too-large":
            previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (2048, hard))
            try:
                yield
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
                signal.signal(signal.SIGXFSZ, previous_handler)
        elif self.kind == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True, capture_output=True)
            try:
                yield
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True, capture_output=True)
        else:  # immutable: nothing may be created, renamed or removed in the folder that receives the file
            folder = target if target.is_dir() else target.parent
            subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
            try:
                yield
            finally:
                subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)


@pytest.fixture
def fault(request, tmp_path):
    kind = request.param  # one of CAUSES
    if kind == "file-too-large":
        yield Fault(kind, tmp_path)
        return
    with small_disk(tmp_path / "disk", 512) as mounted:
        if not mounted:
            pytest.skip("this machine does not allow mounting a small tmpfs (file-too-large covers writes)")
        if kind == "immutable" and subprocess.run(["chattr", "+i", str(tmp_path / "disk")],
                                                  capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        subprocess.run(["chattr", "-i", str(tmp_path / "disk")], capture_output=True)
        yield Fault(kind, tmp_path / "disk")


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), the filler of a full disk left out."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler.bin"}


def history_with_rows(rows: int):
    pytest.importorskip("PySide6")
    from draw_studio.gui.history import TrainingHistory

    history = TrainingHistory()
    steps = np.arange(1, rows + 1, dtype=np.float64)
    history.add_steps(np.stack([steps, steps * 0.1, 100 + steps, 90 + steps, 10 + steps], 1).tolist())
    return history


WRITERS = {
    "checkpoint": ("m.ckpt", lambda path, model, trace: save_checkpoint(path, model, TrainConfig(preset="tiny"),
                                                                        step=9)),
    "png": ("s.png", lambda path, model, trace: save_grid(path, np.random.default_rng(0).random((16, 1, 28, 28)),
                                                          scale=8)),
    "gif": ("a.gif", lambda path, model, trace: export_gif(trace, path, scale=8, windows=True)),
    "mp4": ("a.mp4", lambda path, model, trace: export_mp4(trace, path, scale=8, windows=True)),
    "frames": ("frames", lambda path, model, trace: export_frames(trace, path, scale=8, windows=True)),
    "csv": ("curves.csv", lambda path, model, trace: history_with_rows(2000).write_csv(path)),
    "trace": ("t.h5", lambda path, model, trace: write_trace(path, trace)),
}


# HDF5 onto a full disk or past a size limit once killed the process: those run in a child process below
CASES = [(writer, kind) for writer in WRITERS for kind in CAUSES
         if not (writer == "trace" and kind in ("disk-full", "file-too-large"))]


@pytest.mark.parametrize(("writer", "fault"), CASES, indirect=["fault"])
def test_a_failed_write_is_one_line_and_keeps_the_previous_file(writer, fault, tiny_model, tiny_trace):
    if writer == "mp4" and not HAS_FFMPEG:
        pytest.skip("imageio-ffmpeg is not installed")
    name, write = WRITERS[writer]
    target = fault.folder / name
    if writer == "frames":
        target.mkdir()
        (target / "frame_000.png").write_bytes(b"the previous frame")
    else:
        target.write_bytes(b"the previous file")
    before = listing(fault.folder)
    with fault.broken(target):
        with pytest.raises(DrawStudioError) as caught:
            write(target, tiny_model, tiny_trace)
    message = str(caught.value)
    assert "\n" not in message and CAUSES[fault.kind] in message, message
    assert listing(fault.folder) == before  # the previous file untouched, no temporary file left
    assert not [p for p in fault.folder.rglob(".*") if p.name != "filler.bin"]


def test_the_same_writers_succeed_without_a_fault(tmp_path, tiny_model, tiny_trace):
    """The fault cases above fail because of the fault, not because the writers are broken."""
    for writer, (name, write) in WRITERS.items():
        if writer == "mp4" and not HAS_FFMPEG:
            continue
        write(tmp_path / name, tiny_model, tiny_trace)
        assert (tmp_path / name).exists()
    assert len(list((tmp_path / "frames").iterdir())) == tiny_trace.steps + 1
    assert not list(tmp_path.glob(".*"))


# ---------------------------------------------------------------------- through the command line
def test_trace_onto_a_full_disk_is_one_line_and_the_process_survives(tmp_path, tiny_checkpoint):
    """Once: the right line, then a segmentation fault at exit (exit 139) from HDF5's half-closed dataset."""
    disk = tmp_path / "disk"
    with small_disk(disk, 1024) as mounted:
        old = disk / "t.h5"
        old.write_bytes(b"the previous trace")
        if mounted:
            fill(disk, 100_000)  # the trace (3 MB) fills it part of the way through, as in the crash
            result = run_cli("trace", tiny_checkpoint, "--data-dir", MNIST, "-n", 300, "--out", old)
            assert_clean_error(result, "could not write", "disk is full")
        else:
            result = run_cli("trace", tiny_checkpoint, "--data-dir", MNIST, "-n", 300, "--out", old,
                             file_size_limit=200_000)
            assert_clean_error(result, "could not write", "larger than this system allows")
        assert old.read_bytes() == b"the previous trace"
        assert sorted(p.name for p in disk.iterdir() if p.name != "filler.bin") == ["t.h5"]


def test_trace_beyond_a_file_size_limit_is_one_line(tmp_path, tiny_checkpoint):
    out = tmp_path / "t.h5"
    result = run_cli("trace", tiny_checkpoint, "--generate", "-n", 300, "--out", out, file_size_limit=150_000)
    assert_clean_error(result, "could not write", "larger than this system allows")
    assert list(tmp_path.iterdir()) == []


def test_publish_onto_a_full_disk_keeps_the_old_file(tmp_path, tiny_checkpoint):
    """Once: a RuntimeError traceback from torch.save, exit 1."""
    disk = tmp_path / "disk"
    with small_disk(disk, 512) as mounted:
        out = disk / "p.ckpt"
        out.write_bytes(b"the previous checkpoint")
        if mounted:
            fill(disk, 0)
            result = run_cli("publish", tiny_checkpoint, "--out", out)
            assert_clean_error(result, "could not write", "disk is full")
        else:
            result = run_cli("publish", tiny_checkpoint, "--out", out, file_size_limit=4096)
            assert_clean_error(result, "could not write", "larger than this system allows")
        assert out.read_bytes() == b"the previous checkpoint"


def test_publish_into_a_folder_without_write_permission(tmp_path, tiny_checkpoint):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "p.ckpt").write_bytes(b"the previous checkpoint")
    locked.chmod(0o555)
    try:
        result = run_cli_obeying_permissions("publish", tiny_checkpoint, "--out", locked / "p.ckpt")
    except subprocess.SubprocessError:
        pytest.skip("cannot make a child process obey file permissions here")
    finally:
        locked.chmod(0o755)
    assert_clean_error(result, "could not write", "permission denied")
    assert listing(locked) == {"p.ckpt": b"the previous checkpoint"}


# ---------------------------------------------------------------------- the checkpoint loader
def fuzzed_variants(data: bytes, seed: int = 11) -> list[tuple[str, bytes]]:
    """Cuts at 120 points and 240 one-byte flips (160 in the pickled dictionary at the start)."""
    rng = random.Random(seed)
    head = min(2600, len(data) // 2)
    variants = [(f"cut at {cut}", data[:cut]) for cut in sorted(rng.sample(range(len(data)), 120))]
    for position in sorted(rng.sample(range(head), 160) + rng.sample(range(head, len(data)), 80)):
        changed = bytearray(data)
        changed[position] ^= rng.randrange(1, 256)
        variants.append((f"byte {position} flipped", bytes(changed)))
    return variants


def test_every_damaged_checkpoint_loads_and_runs_or_is_a_checkpoint_error(tmp_path, tiny_checkpoint,
                                                                         one_torch_thread):
    """Once 70 of 768 such files escaped as KeyError, IndexError or struct.error."""
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "fuzzed.ckpt"
    outcomes = {"loaded": 0, "refused": 0}
    for label, blob in fuzzed_variants(data):
        path.write_bytes(blob)
        try:
            model, _ = load_model(path)
        except CheckpointError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), (label, str(exc))
            outcomes["refused"] += 1
            continue
        cfg = model.config
        x = torch.rand(2, cfg.channels, cfg.height, cfg.width, generator=torch.Generator().manual_seed(0)).round()
        with torch.inference_mode():
            model(x, generator=torch.Generator().manual_seed(0))
            model.generate(1, generator=torch.Generator().manual_seed(0))
        outcomes["loaded"] += 1
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 20, outcomes


def test_damaged_checkpoints_through_eval_are_one_line(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    hello = tmp_path / "h.ckpt"
    hello.write_bytes(b"hello")  # once: KeyError: 101, exit 1
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[:1500])
    for path in (hello, cut):
        with pytest.raises(CheckpointError):
            load_model(path)
        result = run_cli("eval", path, "--data-dir", MNIST, "--limit", 20)
        assert_clean_error(result, path.name, "not a readable checkpoint")


# ---------------------------------------------------------------------- eval never prints NaN
def test_eval_of_a_diverged_model_is_an_error_naming_the_checkpoint(tmp_path, tiny_model):
    """Finite weights (x 1e6) that give NaN: once ``bound nan`` with exit 0 and a bare NaN in --json."""
    diverged = DRAW(TINY)
    diverged.load_state_dict(tiny_model.state_dict())
    with torch.no_grad():
        for parameter in diverged.parameters():
            parameter.mul_(1e6)
    path = tmp_path / "diverged.ckpt"
    save_checkpoint(path, diverged, TrainConfig(preset="tiny", dataset="mnist"))
    result = run_cli("eval", path, "--data-dir", MNIST, "--limit", 20, "--json")
    assert_clean_error(result, "diverged.ckpt", "non-finite")
    assert "NaN" not in result.stdout and result.stdout.strip() == ""


def test_eval_json_is_strict_json(tmp_path, tiny_checkpoint):
    result = run_cli("eval", tiny_checkpoint, "--data-dir", MNIST, "--limit", 20, "--json")
    assert result.returncode == 0, result.stderr

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    values = json.loads(result.stdout, parse_constant=refuse)
    assert np.isfinite(values["bound"]) and values["n"] == 20


def test_kill_9_during_a_trace_write_leaves_the_previous_trace_whole(tmp_path, tiny_checkpoint):
    from draw_studio.trace_file import read_trace

    target = tmp_path / "t.h5"
    first = run_cli("trace", tiny_checkpoint, "--generate", "-n", 4, "--seed", 1, "--out", target, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = target.read_bytes()
    child = subprocess.Popen([sys.executable, "-m", "draw_studio", "trace", str(tiny_checkpoint), "--data-dir",
                              str(MNIST), "--split", "test", "-n", "10000", "--out", str(target)], cwd=tmp_path,
                             env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".t.h5.") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, "the trace never started writing"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # the killed write never reached the trace's own name
    assert read_trace(target).z.shape[0] == 4
