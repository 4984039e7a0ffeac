"""What the runs table shows of one run (no Qt): from a log's summary, or from a live run's points.

A :class:`RunRow` is a row of the Training dock's runs table (:mod:`~draw_studio.gui.runs_table`):
the facts of :class:`draw_studio.runs.RunSummary` that the table shows, plus the row's colour,
its tick and whether it is the open source's run. :func:`live_row` makes one for the run the
window trains, from the points it holds, as the log's summary would say it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..curve_meaning import CLASSIFIER, DRAW, best_valid_text
from ..formatting import duration
from ..runs import RunSummary, run_settings
from .history import TrainingHistory

LIVE_STATES = {"starting": "running", "running": "running", "paused": "paused", "stopping": "running"}


@dataclass
class RunRow:
    """One row of the runs table.

    Attributes
    ----------
    key : str
        What identifies the run: its log's resolved path (``live`` for a run that writes no log).
    name : str
        Shown in the table and in curve item names (``runCurve:NAME:SERIES``); unique among the rows.
    path : str
        The log ("" for a run without one).
    settings : dict
        Hyper-parameters by name, as :func:`draw_studio.runs.run_settings` names them.
    state : str
        ``finished``, ``running``, ``paused``, ``stopped`` or "" (not known yet).
    current : bool
        The run of the open source (the live run, or the log opened or found beside a checkpoint).
    live : bool
        The run the window trains (or trained last); its facts come from its points (:func:`live_row`).
    kind : str
        ``draw``, or ``classifier`` for an attention classifier's run (:mod:`draw_studio.curve_meaning`).
    best_bound, best_error_percent : float or None
        The best validation figure: DRAW's lowest bound (nats per image), or a classifier's lowest error (%).
    """

    key: str
    name: str
    path: str = ""
    preset: str = ""
    settings: dict = field(default_factory=dict)
    step: int = 0
    epochs: float | None = None
    wall_time: float = 0.0
    best_bound: float | None = None
    best_step: int | None = None
    state: str = ""
    colour: str = "#ffffff"
    ticked: bool = True
    current: bool = False
    live: bool = False
    kind: str = DRAW
    best_error_percent: float | None = None

    def cells(self, differing: list[str]) -> list[str]:
        """The table's texts after the name: preset, the differing settings, steps, epochs, wall time,
        best validation figure (a bound in nats, or a classifier's error with %), its step, state."""
        return [self.preset or "-", *(setting_text(self.settings.get(name, "-")) for name in differing),
                f"{self.step:,}", f"{self.epochs:.2f}" if self.epochs is not None else "-",
                duration(self.wall_time),
                best_valid_text(self.kind, self.best_error_percent if self.kind == CLASSIFIER else self.best_bound),
                f"{self.best_step:,}" if self.best_step is not None else "-", self.state or "…"]


HEADERS_BEFORE = ["run", "preset"]
HEADERS_AFTER = ["steps", "epochs", "wall time", "best valid", "at step", "state"]


def headers(differing: list[str]) -> list[str]:
    """The table's column titles for these differing settings."""
    return [*HEADERS_BEFORE, *differing, *HEADERS_AFTER]


def setting_text(value) -> str:
    """A setting as a short cell text (floats to 3 significant digits, structures as compact JSON)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return "-" if value is None else str(value)


def log_key(path: str | Path) -> str:
    """The key of the run whose log is ``path``."""
    return str(Path(path).resolve())


def run_name(path: str | Path) -> str:
    """A log's file name without ``.log.h5``."""
    name = Path(path).name
    return name[:-len(".log.h5")] if name.endswith(".log.h5") else Path(name).stem


def row_from_summary(summary: RunSummary, **changes) -> RunRow:
    """The row of a run summarised from its log (``changes``: colour, ticked, current...)."""
    row = RunRow(key=log_key(summary.path), name=summary.name, path=str(summary.path), preset=summary.preset,
                 settings=summary.settings, step=summary.step, epochs=summary.epochs, wall_time=summary.wall_time,
                 best_bound=summary.best_bound, best_step=summary.best_step, state=summary.state, kind=summary.kind,
                 best_error_percent=summary.best_error_percent)
    return replace(row, **changes)


def live_row(key: str, name: str, history: TrainingHistory, model_config, train_config, state: str,
             total_steps: int | None, **changes) -> RunRow:
    """The row of a run from the points it holds (the window's live run), as its log's summary would say.

    Parameters
    ----------
    model_config, train_config : dataclass or None
        The run's configuration (``to_json()``); None: not known yet.
    state : str
        The training controller's state (``starting``, ``running``, ``paused``, ``stopping``, ``idle``).
    total_steps : int or None
        Steps in all the run was asked for (``idle`` becomes ``finished`` once reached, else ``stopped``).
    """
    steps = history.train.column("step")
    step = int(steps[-1]) if len(steps) else 0
    bounds = history.valid.column("bound")
    finite = np.flatnonzero(np.isfinite(bounds))
    best = int(finite[np.argmin(bounds[finite])]) if len(finite) else None
    settings: dict = {}
    if model_config is not None and train_config is not None:
        configs = {"model_config": json.loads(model_config.to_json()),
                   "train_config": json.loads(train_config.to_json())}
        settings = run_settings(_Configs(**configs))
    if state in LIVE_STATES:
        shown_state = LIVE_STATES[state]
    else:
        shown_state = "finished" if total_steps and step >= total_steps else "stopped"
    per_epoch = history.steps_per_epoch
    wall = history.train.column("wall_time")
    best_value = float(bounds[best]) if best is not None else None
    classifier = history.kind == CLASSIFIER
    row = RunRow(key=key, name=name, preset=str(getattr(train_config, "preset", "") or ""), settings=settings,
                 step=step, epochs=step / per_epoch if per_epoch else None,
                 wall_time=float(wall[-1]) if len(wall) and math.isfinite(wall[-1]) else 0.0,
                 best_bound=None if classifier else best_value,
                 best_step=int(history.valid.column("step")[best]) if best is not None else None,
                 state=shown_state, kind=history.kind, best_error_percent=best_value if classifier else None)
    return replace(row, **changes)


@dataclass
class _Configs:
    """The two configurations :func:`draw_studio.runs.run_settings` reads from a log."""

    model_config: dict
    train_config: dict


def unique_names(rows: list[RunRow]) -> list[RunRow]:
    """The rows with names made unique: a name that several rows share gets its log's folder in front."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.name] = counts.get(row.name, 0) + 1
    named, seen = [], set()
    for row in rows:
        name = row.name
        if counts[name] > 1 and row.path:
            name = f"{Path(row.path).parent.name}/{name}"
        while name in seen:
            name += "'"
        seen.add(name)
        named.append(replace(row, name=name) if name != row.name else row)
    return named
