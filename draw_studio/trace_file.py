"""Trace files: the HDF5 layout (version 1) of ``shared/spec/trace-format.md`` and ``docs/file-formats.md``.

A trace is recorded batch by batch and, when it goes to a file, each batch is written straight into
pre-sized datasets, so memory stays bounded by one batch however many images are traced. Files are
written under a temporary name and renamed when complete: a trace file is never half-written.

The attention classifier's traces (``draw_studio.classify_trace``, mode ``"classify"``) are written and
read by the same pieces here (:class:`TraceLayout`, :func:`write_trace_batches`, :func:`read_header`,
:func:`sample_selection`), with their own datasets.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .attention import PARAM_COLUMNS
from .config import ModelConfig
from .errors import DrawStudioError, TraceFormatError, first_line
from .files import atomic_write, require_file
from .hdf5_sink import FailSafeFile
from .model import DRAW
from .trace import (
    DATASETS,
    INTEGER_FIELDS,
    MODES,
    Progress,
    Trace,
    TraceInputs,
    check_trace_images,
    record_batches,
    trace_header,
)
from .trace_checks import layout_problem

FORMAT = "draw-studio/trace"
FORMAT_VERSION = 1
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
CHUNK_BYTES = 1 << 18  # aim for chunks of about 256 KiB

def record_trace_file(path: str | Path, model: DRAW, inputs: TraceInputs, batch_size: int = 100,
                      checkpoint_sha256: str = "", progress: Progress | None = None) -> None:
    """Like :func:`~draw_studio.trace.record_trace`, but stream each batch straight into the file at ``path``.

    Memory stays bounded by one batch. ``progress(done, total)`` is called
    after each batch; if anything fails (including ``progress`` raising) no
    file is left under ``path``.
    """
    images = check_trace_images(model, inputs.images)
    header = trace_header(model, images, inputs.seed, batch_size, checkpoint_sha256, inputs.source)
    extras = inputs.extra_fields()

    def batches():
        if extras:
            yield 0, extras
        yield from record_batches(model, images, inputs.generate_n, inputs.seed, batch_size)

    total = inputs.count
    atomic_write(path, lambda temp: write_trace_batches(temp, DRAW_LAYOUT, header, total, batches(), progress),
                 kind="trace")


# ---------------------------------------------------------------------- writing
def write_trace(path: str | Path, trace: Trace, progress: Progress | None = None) -> None:
    """Write ``trace`` to ``path`` in the version-1 layout, atomically."""
    header = {name: getattr(trace, name) for name in HEADER_FIELDS}
    atomic_write(path, lambda temp: write_trace_batches(temp, DRAW_LAYOUT, header, trace.n,
                                                       iter([(0, trace.arrays())]), progress), kind="trace")


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Whole samples per chunk, about CHUNK_BYTES each."""
    per_sample = max(int(np.prod(shape[1:], dtype=np.int64)) * itemsize, 1)
    return (int(min(max(CHUNK_BYTES // per_sample, 1), max(shape[0], 1))),) + tuple(shape[1:])


@dataclass(frozen=True)
class TraceLayout:
    """Which datasets a kind of trace file holds: DRAW's (:data:`DRAW_LAYOUT`) or the attention classifier's
    (``draw_studio.classify_trace.CLASSIFY_LAYOUT``). Both share the root attributes, chunking and compression.

    Attributes
    ----------
    datasets : dict
        Trace field -> (path in the file, axis labels).
    integer_fields : tuple of str
        Fields stored as int64 (the others as float32).
    counted : str
        The field whose batches count the images done (every batch of images holds it).
    modes : tuple of str
        The values the root attribute ``mode`` may take.
    """

    datasets: dict[str, tuple[str, tuple[str, ...]]]
    integer_fields: tuple[str, ...]
    counted: str
    modes: tuple[str, ...]


DRAW_LAYOUT = TraceLayout(DATASETS, INTEGER_FIELDS, "canvas", MODES)
HEADER_FIELDS = ("mode", "model_config", "seed", "checkpoint_sha256", "created", "software", "batch_size", "source")


def write_trace_batches(path: str | Path, layout: TraceLayout, header: dict, total: int, batches,
                        progress: Progress | None) -> None:
    """Create a trace file of ``layout`` and write each (start, arrays) batch into datasets of ``total`` samples.

    ``header`` holds :data:`HEADER_FIELDS` (``model_config`` has ``to_json()``). Called with a temporary
    name by ``files.atomic_write``: any failure leaves no file under the final name.

    Raises
    ------
    DrawStudioError
        An unknown mode, fewer than ``total`` images written, or the disk failed (``FailSafeFile``).
    """
    import h5py

    if header["mode"] not in layout.modes:
        raise DrawStudioError(f"unknown trace mode {header['mode']!r}; use one of {', '.join(layout.modes)}")
    with FailSafeFile(path) as sink:  # HDF5 never sees a failed write: it could crash after one
        _write_hdf5(h5py.File(sink, "w"), sink, layout, header, total, batches, progress)
        if sink.error is not None:
            raise sink.error


def _write_hdf5(file, sink: FailSafeFile, layout: TraceLayout, header: dict, total: int, batches,
                progress: Progress | None) -> None:
    with file as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["mode"] = header["mode"]
        f.attrs["model_config"] = header["model_config"].to_json()
        f.attrs["checkpoint_sha256"] = header["checkpoint_sha256"] or ""
        f.attrs["seed"] = np.int64(header["seed"])
        f.attrs["created"] = header["created"]
        f.attrs["software"] = header["software"]
        f.attrs["batch_size"] = np.int64(header["batch_size"])
        f.attrs["source"] = header["source"] or ""
        done = 0
        for start, arrays in batches:
            for name, value in arrays.items():
                dtype = np.int64 if name in layout.integer_fields else np.float32
                value = np.asarray(value, dtype=dtype)
                dset = f.get(layout.datasets[name][0])
                if dset is None:
                    dset = _create(f, layout, name, (total,) + value.shape[1:], dtype)
                dset[start:start + len(value)] = value
            if sink.error is not None:
                return  # the disk failed: stop now, the caller reports it
            if layout.counted in arrays:
                done = start + len(arrays[layout.counted])
                if progress is not None:
                    progress(done, total)
        if layout.datasets[layout.counted][0] not in f or done != total:
            raise DrawStudioError(f"trace recording stopped after {done} of {total} images; nothing was written")


def _create(f, layout: TraceLayout, name: str, shape: tuple[int, ...], dtype):
    """A chunked, compressed dataset with its axis labels (and ``columns`` / ``to_image`` attributes)."""
    import h5py

    where, labels = layout.datasets[name]
    dset = f.create_dataset(where, shape=shape, dtype=dtype, chunks=_chunks(shape, np.dtype(dtype).itemsize),
                            **COMPRESSION)
    for axis, label in enumerate(labels):
        dset.dims[axis].label = label
    if name.endswith("_params"):
        dset.attrs.create("columns", list(PARAM_COLUMNS), dtype=h5py.string_dtype())
    if name == "canvas":
        dset.attrs["to_image"] = "sigmoid"
    return dset


# ---------------------------------------------------------------------- reading
def attribute_text(value) -> str:
    """An HDF5 string attribute as str (h5py gives bytes or str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def open_trace_file(path: str | Path):
    """Open ``path`` read-only as a trace (h5py.File), checking format and version.

    Raises
    ------
    TraceFormatError
        Missing file, a folder, not HDF5, not a trace, or another format version.
    """
    import h5py

    path = require_file(path, TraceFormatError,
                        f"{path} is a folder, not a trace; pass a trace file written by draw-studio trace",
                        f"trace file {path} does not exist; record one with draw-studio trace")
    try:
        hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise TraceFormatError(f"could not read {path}: {exc.strerror or exc}; check the file") from None
    if not hdf5:
        raise TraceFormatError(f"{path} is not an HDF5 file; pass a trace written by draw-studio trace")
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail inside HDF5 in many ways
        raise TraceFormatError(f"{path} cannot be opened as HDF5 ({first_line(exc, 120)}); record the trace "
                               "again") from None
    try:
        fmt = attribute_text(f.attrs.get("format", ""))
        version = f.attrs.get("format_version")
        version = int(version) if version is not None else None
    except Exception as exc:  # noqa: BLE001
        f.close()
        raise TraceFormatError(f"{path} is a damaged HDF5 file ({first_line(exc, 120)}); record the trace "
                               "again") from None
    if fmt != FORMAT:
        f.close()
        raise TraceFormatError(f"{path} is an HDF5 file but not a DRAW Studio trace (format {fmt!r}, expected "
                               f"{FORMAT!r}); pass a file written by draw-studio trace")
    if version != FORMAT_VERSION:
        f.close()
        raise TraceFormatError(f"{path} is trace format version {version}, this DRAW Studio reads version "
                               f"{FORMAT_VERSION}; use a matching DRAW Studio or record the trace again")
    return f


@contextlib.contextmanager
def damaged_trace(path):
    """Turn any failure to read attributes or data of an open trace into one TraceFormatError line."""
    try:
        yield
    except (TraceFormatError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - damaged attributes or data can fail in many ways
        detail = str(exc) if isinstance(exc, DrawStudioError) else f"{type(exc).__name__}: {first_line(exc, 120)}"
        raise TraceFormatError(f"{path} is a damaged trace ({detail}); record the trace again") from None


def read_header(f) -> dict:
    """The root attributes every trace file has besides ``mode`` and ``model_config`` (of an open file)."""
    return {"seed": int(f.attrs["seed"]), "checkpoint_sha256": attribute_text(f.attrs["checkpoint_sha256"]),
            "created": attribute_text(f.attrs["created"]), "software": attribute_text(f.attrs["software"]),
            "batch_size": int(f.attrs.get("batch_size", 0)), "source": attribute_text(f.attrs.get("source", ""))}


def trace_mode(path: str | Path) -> str:
    """The ``mode`` of a trace file: ``reconstruct`` or ``generate`` (DRAW), ``classify`` (the attention classifier).

    Raises
    ------
    TraceFormatError
        Not a readable DRAW Studio trace (:func:`open_trace_file`), or no readable mode.
    """
    with open_trace_file(path) as f:
        with damaged_trace(path):
            return attribute_text(f.attrs["mode"])


def read_trace(path: str | Path, samples: slice | Sequence[int] | None = None) -> Trace:
    """Read a trace file (version 1).

    The datasets' shapes are checked against each other and the model
    settings stored with them (:func:`draw_studio.trace_checks.layout_problem`)
    before anything is read. Non-finite values (a diverged model) are
    returned as they are; see :func:`draw_studio.trace_checks.displayable`.

    Parameters
    ----------
    path : str or Path
    samples : slice or sequence of int, optional
        Read only these images (e.g. ``slice(0, 16)``), in increasing order; default all.

    Raises
    ------
    TraceFormatError
        The file is not a readable DRAW Studio trace of version 1.
    """
    with open_trace_file(path) as f:
        with damaged_trace(path):
            mode = attribute_text(f.attrs["mode"])
            if mode == "classify":  # an attention classifier's trace: draw_studio.classify_trace reads it
                raise TraceFormatError(f"{path} is a classify trace (an attention classifier's glimpses), not a "
                                       "DRAW trace; this reads DRAW traces only (classify traces: "
                                       "draw_studio.classify_trace)")
            if mode not in MODES:
                raise TraceFormatError(f"{path} is a damaged trace (mode {mode!r}); record the trace again")
            config = ModelConfig.from_dict(json.loads(attribute_text(f.attrs["model_config"])))
            present = {name: f[where] for name, (where, _) in DATASETS.items() if where in f}
            if not all(hasattr(dset, "shape") for dset in present.values()):
                raise TraceFormatError(f"{path} is a damaged trace (a group where a dataset belongs); "
                                       "record the trace again")
            problem = layout_problem({name: dset.shape for name, dset in present.items()},
                                     {name: dset.dtype.kind for name, dset in present.items()}, config,
                                     {name: where for name, (where, _) in DATASETS.items()})
            if problem:
                raise TraceFormatError(f"{path} is a damaged trace ({problem}); record the trace again")
        select = sample_selection(samples, present["canvas"].shape[0])
        with damaged_trace(path):
            fields = {name: dset[select] for name, dset in present.items()}
            header = {"mode": mode, "model_config": config, **read_header(f)}
    for name in INTEGER_FIELDS:
        if name in fields:
            fields[name] = fields[name].astype(np.int64)
    for name in set(fields) - set(INTEGER_FIELDS):
        fields[name] = fields[name].astype(np.float32, copy=False)
    return Trace(**header, **fields)


def sample_selection(samples, n: int):
    """An h5py selection (a slice or sorted unique indices) for ``samples``."""
    if samples is None:
        return slice(None)
    if isinstance(samples, slice):
        return samples
    index = np.unique(np.asarray(samples, dtype=np.int64))
    if index.size == 0 or index[0] < 0 or index[-1] >= n:
        raise DrawStudioError(f"sample indices must be between 0 and {n - 1}; the trace holds {n} images")
    return index


# ---------------------------------------------------------------------- from a checkpoint
