"""The curves CSV written by a child process (what the window does) is the file written in the thread, byte for
byte; a cancel or a failure leaves nothing behind and says why."""

import numpy as np
import pytest

from draw_studio.curves_csv import ExportCancelled, write_curves_csv, write_curves_csv_in_process
from draw_studio.errors import DrawStudioError

ROWS = 30_000


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(5)
    steps = np.arange(1, ROWS + 1, dtype=np.float64)  # (ROWS,)
    bound = 100.0 + rng.normal(0.0, 3.0, ROWS)
    lr = np.where(steps < ROWS // 2, np.nan, 1e-3 / steps)  # not recorded in the first half
    train = {"step": steps, "wall_time": 0.01 * steps + rng.random(ROWS), "bound": bound, "nll_x": bound - 20.0,
             "kl": np.full(ROWS, 20.0) + rng.random(ROWS), "lr": lr}
    every = np.arange(1000, ROWS + 1, 1000, dtype=np.float64)  # (30,)
    valid = {"step": every, "wall_time": 0.01 * every, "bound": 101.0 + rng.random(len(every))}
    return train, valid


def test_the_child_process_writes_the_same_bytes_with_progress(curves, tmp_path):
    train, valid = curves
    here, there = tmp_path / "thread.csv", tmp_path / "child.csv"
    assert write_curves_csv(here, train, valid) == ROWS + 30
    seen: list[tuple[int, int]] = []
    assert write_curves_csv_in_process(there, train, valid, lambda done, total: seen.append((done, total))) \
        == ROWS + 30
    assert there.read_bytes() == here.read_bytes()
    assert seen[-1] == (ROWS + 30, ROWS + 30) and len(seen) > 10
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["child.csv", "thread.csv"]


def test_a_cancel_stops_the_child_and_leaves_the_previous_file(curves, tmp_path):
    train, valid = curves
    target = tmp_path / "curves.csv"
    target.write_text("the previous export\n")
    with pytest.raises(ExportCancelled):  # at the child's first progress line: 29 of its 30 chunks to go
        write_curves_csv_in_process(target, train, valid, cancelled=lambda: True)
    assert target.read_text() == "the previous export\n"
    assert [path.name for path in tmp_path.iterdir()] == ["curves.csv"]  # the child's temporary file is gone


def test_a_missing_folder_is_one_clear_line_from_the_child(curves, tmp_path):
    train, valid = curves
    with pytest.raises(DrawStudioError, match=r"folder .*nowhere does not exist; create it first"):
        write_curves_csv_in_process(tmp_path / "nowhere" / "curves.csv", train, valid)
