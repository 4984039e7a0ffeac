"""Compare, second tab: the two models' runs learning to draw, at the same training step.

When both compared checkpoints have a training log beside them holding snapshots
(:mod:`draw_studio.training_snapshots`), one training-step slider runs over every step at which either
run took one, and each run shows the prior samples of its last snapshot at or before that step
(:func:`draw_studio.explore.compare.snapshot_steps`). The logs are read in the background; a run
without snapshots is named, with why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ..explore.compare import snapshot_steps, snapshots_beside
from ..training_snapshots import Snapshots
from .compare_plots import COLOUR_A, COLOUR_B
from .document import Document
from .explore_common import LatestRun, grey_label
from .image_view import TileGrid
from .in_view_panel import InViewPanel

NOTHING = "training snapshots of the two runs show here when both compared checkpoints have a training log " \
          "beside them (X.ckpt → X.log.h5) that holds snapshots"
COLUMNS = 4


class CompareSnapshotsPanel(InViewPanel):
    """Both runs' prior samples at one training step (see the module docstring).

    Attributes
    ----------
    snapshots : tuple of (Snapshots, Snapshots) or None
        Run A's and run B's snapshots, when both have some.
    steps : ndarray, shape (k,)
        The slider's training steps.
    """

    title = "Training snapshots"
    dock_name = "compareSnapshots"

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        for signal in (state.traces_changed, state.trace_changed, state.image_changed, state.step_changed):
            signal.disconnect(self.mark_dirty)  # draws from the two logs only
        self.snapshots: tuple[Snapshots, Snapshots] | None = None
        self.steps = np.zeros(0, np.int64)
        self._paths: tuple[str, str] | None = None
        self.runs = LatestRun(self)
        self.runs.done.connect(self._on_read)
        self.runs.failed.connect(lambda text: self._say(f"training snapshots not shown: {text}"))
        self.message = grey_label(NOTHING, "compareSnapshotsMessage")
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="compareSnapshotSlider")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(lambda _: self.mark_dirty())
        self.step_label = QLabel("", objectName="compareSnapshotStep")
        self.grids = {"A": TileGrid("A: samples"), "B": TileGrid("B: samples")}
        for side, colour in (("A", COLOUR_A), ("B", COLOUR_B)):
            self.grids[side].setObjectName(f"compareSnapshots{side}")
            self.grids[side].title.setStyleSheet(f"color: {colour};")
        row = QHBoxLayout()
        row.addWidget(QLabel("training step"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.step_label)
        grids = QHBoxLayout()
        for grid in self.grids.values():
            grids.addWidget(grid, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message)
        layout.addLayout(row)
        layout.addLayout(grids, 1)

    def set_models(self, path_a: str | None, path_b: str | None) -> None:
        """Read the snapshots beside checkpoints ``path_a`` and ``path_b`` (in the background)."""
        paths = (path_a, path_b) if path_a and path_b else None
        if paths == self._paths:
            return
        self._paths, self.snapshots, self.steps = paths, None, np.zeros(0, np.int64)
        self.mark_dirty()
        if paths is None:
            return self._say(NOTHING)
        self.runs.submit("reading the runs' snapshots", lambda: tuple(snapshots_beside(p) for p in paths), tag=paths)

    def _on_read(self, paths, read) -> None:
        if paths != self._paths:
            return
        (first, why_a), (second, why_b) = read
        if why_a or why_b:
            return self._say("; ".join(f"{side}: {why}" for side, why in (("A", why_a), ("B", why_b)) if why))
        self.snapshots, self.steps = (first, second), snapshot_steps(first, second)
        self.slider.setRange(0, len(self.steps) - 1)
        self.slider.setValue(len(self.steps) - 1)
        self._say(f"{len(first)} and {len(second)} snapshots; each run shows its last at or before the step")
        self.mark_dirty()

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def set_training_step(self, step: int) -> None:
        """Move the slider to the last snapshot step at or before ``step``."""
        if len(self.steps):
            self.slider.setValue(max(int(np.searchsorted(self.steps, step, side="right")) - 1, 0))

    def wait(self, timeout_ms: int = 60_000) -> None:
        self.runs.wait(timeout_ms)

    def redraw(self) -> None:
        if self.snapshots is None:
            for grid in self.grids.values():
                grid.show_message("no snapshots to show")
            self.step_label.setText("")
            return
        step = int(self.steps[self.slider.value()])
        self.step_label.setText(f"{step:,}")
        for side, snapshots, path in zip("AB", self.snapshots, self._paths):
            index = snapshots.index_at(step)
            self.grids[side].show_tiles(snapshots.samples[index].astype(np.float32) / 255.0, COLUMNS)
            self.grids[side].set_title(f"{side}: {Path(path).stem}, samples at step {int(snapshots.step[index]):,}")

    def shown_steps(self) -> dict[str, int]:
        """The training step of the snapshot each run shows now."""
        if self.snapshots is None:
            return {}
        step = int(self.steps[self.slider.value()])
        return {side: int(s.step[s.index_at(step)]) for side, s in zip("AB", self.snapshots)}
