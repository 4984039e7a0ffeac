"""Helpers of the fault suite: run the real command line in a child process, a small disk, a file-size limit.

Faults that can kill a process (a full disk inside HDF5, kill -9) are always provoked in a child
process, so that the test run itself survives whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def cli_env(**extra: str) -> dict:
    """Environment of a child ``draw-studio``: no download, no compile, one thread, no user data folder."""
    env = {k: v for k, v in os.environ.items() if k != "DRAW_STUDIO_DATA"}
    env.update(DRAW_STUDIO_NO_DOWNLOAD="1", DRAW_STUDIO_COMPILE="0", OMP_NUM_THREADS="1",
               QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env.update(extra)
    return env


def _limit_file_size(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def run_cli(*args, cwd: str | Path | None = None, timeout: float = 180, file_size_limit: int | None = None,
            env: dict | None = None, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """Run ``python -m draw_studio ARGS`` in a child process and return its result (text output)."""
    return subprocess.run([sys.executable, "-m", "draw_studio", *map(str, args)], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, stdin=stdin,
                          preexec_fn=_limit_file_size(file_size_limit) if file_size_limit else None)


_SCREENSHOTS_IN_ONE_PROCESS = """
import contextlib, io, json, sys
from pathlib import Path
from draw_studio.cli import main

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
results = {}
for name in sys.argv[3:]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["gui", str(folder / name), "--screenshot", str(out / (name + ".png")),
                     "--settings", str(out / "settings.ini")])
    results[name] = [code, stderr.getvalue()]
print(json.dumps(results))
"""


def screenshots_in_one_process(folder: Path, out: Path, names) -> dict[str, list]:
    """``draw-studio gui FOLDER/NAME --screenshot OUT/NAME.png`` for each name through the command line's
    ``main`` in ONE child process (one start-up instead of one per file): name -> [exit code, stderr]."""
    done = subprocess.run([sys.executable, "-c", _SCREENSHOTS_IN_ONE_PROCESS, str(folder), str(out), *names],
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, no traceback, and a last stderr line ``draw-studio CMD: error: ...`` holding each fragment."""
    stderr = result.stderr.strip()
    assert result.returncode == 2, f"exit {result.returncode}, stderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.splitlines()[-1] if stderr else ""
    assert last.startswith("draw-studio") and ": error: " in last, stderr[-3000:]
    for fragment in fragments:
        assert fragment.lower() in last.lower(), f"{fragment!r} not in {last!r}"
    return last


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int):
    """A tmpfs of ``size_kb`` KiB mounted at ``path`` (yields True), or nothing (yields False) where
    this machine does not allow ``mount`` (then use ``file_size_limit`` of :func:`run_cli`)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave_bytes: int = 0) -> None:
    """Fill the file system holding folder ``path`` until about ``leave_bytes`` are left."""
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize - leave_bytes
    if free > 0:
        with open(path / "filler.bin", "wb") as handle:
            try:
                handle.write(b"\0" * free)
            except OSError:
                pass


def _no_permission_override() -> None:
    """In the child: drop root's power to ignore file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_cli_obeying_permissions(*args, cwd: str | Path | None = None,
                                timeout: float = 180) -> subprocess.CompletedProcess:
    """:func:`run_cli` in a child that obeys file permissions even when the tests run as root (so a
    folder without write permission gives EACCES); raises ``subprocess.SubprocessError`` where the
    capability cannot be dropped."""
    preexec = _no_permission_override if os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "draw_studio", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          preexec_fn=preexec)
