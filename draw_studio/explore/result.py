"""What an explore tool returns, and its trace file: the spec's layout plus the root attribute ``intervention``.

Every tool of :mod:`draw_studio.explore` returns an :class:`ExploreResult`: an ordinary
:class:`~draw_studio.trace.Trace`, a JSON-able dictionary saying exactly what was changed (tool, image,
step, latent, old and new values, seed...), and for some tools a few extra root datasets (the
commitment curve). :func:`write_result` writes it as a trace file of format version 1 that every
reader of traces (``draw-studio export``, the window) opens as it opens any trace; the layout is in
``docs/file-formats.md``, section "Explore traces".
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DrawStudioError, TraceFormatError
from ..files import atomic_write
from ..trace import Trace
from ..trace_file import open_trace_file, write_trace

INTERVENTION_VERSION = 1


@dataclass
class ExploreResult:
    """The outcome of one explore tool.

    Attributes
    ----------
    trace : Trace
        What the model drew (mode ``"reconstruct"`` or ``"generate"``).
    intervention : dict
        What was changed; written as JSON in the root attribute ``intervention``. Always holds
        ``tool`` and ``version``.
    datasets : dict
        Extra root datasets, name -> (array, axis labels), e.g. ``commitment``.
    """

    trace: Trace
    intervention: dict
    datasets: dict[str, tuple[np.ndarray, tuple[str, ...]]] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write the result to ``path`` (see :func:`write_result`)."""
        write_result(path, self)


def plain(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists, NaN and infinities into None."""
    if isinstance(value, dict):
        return {str(key): plain(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(inner) for inner in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def intervention_json(intervention: dict) -> str:
    """The ``intervention`` attribute's text: strict JSON (no NaN), keys in the order given."""
    return json.dumps(plain({"version": INTERVENTION_VERSION, **intervention}), allow_nan=False)


def write_result(path: str | Path, result: ExploreResult) -> None:
    """Write ``result`` as a trace file with its ``intervention`` attribute and extra datasets, atomically.

    The trace is written by :func:`draw_studio.trace_file.write_trace`; the attribute and the extra
    datasets are then added to the file's bytes in memory, and the whole is renamed into place: a
    file under ``path`` is always complete, and a failed write leaves whatever was there before.
    """
    import h5py

    text = intervention_json(result.intervention)

    def write(temp: str) -> None:
        try:
            write_trace(temp, result.trace)
        except DrawStudioError as exc:  # a failed disk write: report it for ``path``, not the temporary name
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise
        data = io.BytesIO(Path(temp).read_bytes())
        with h5py.File(data, "r+") as f:
            f.attrs["intervention"] = text
            for name, (array, labels) in result.datasets.items():
                dset = f.create_dataset(name, data=np.asarray(array, dtype=np.float32), compression="gzip",
                                        compression_opts=4, shuffle=True)
                for axis, label in enumerate(labels):
                    dset.dims[axis].label = label
        Path(temp).write_bytes(data.getbuffer())

    atomic_write(path, write, kind="trace")


def read_intervention(path: str | Path) -> dict | None:
    """The ``intervention`` of a trace file as a dict, or None for a trace no explore tool wrote.

    Raises
    ------
    TraceFormatError
        The file is not a trace, or its attribute is not a JSON object.
    """
    with open_trace_file(path) as f:
        text = f.attrs.get("intervention")
    if text is None:
        return None
    try:
        value = json.loads(text.decode() if isinstance(text, bytes) else str(text))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise TraceFormatError(f"{path} has a damaged intervention attribute (not a JSON object); "
                               "run the explore tool again")
    return value


def read_extra(path: str | Path, name: str) -> np.ndarray | None:
    """An extra root dataset of an explore trace (e.g. ``commitment``), or None when absent."""
    with open_trace_file(path) as f:
        if name not in f:
            return None
        return np.asarray(f[name][()], dtype=np.float32)
