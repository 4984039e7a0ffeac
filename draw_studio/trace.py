"""Traces: everything DRAW did at every step for a few images, in an HDF5 file.

The layout (version 1) is ``shared/spec/trace-format.md`` and
``docs/file-formats.md``. A trace is recorded batch by batch and, when it goes
to a file, each batch is written straight into pre-sized datasets, so memory
stays bounded by one batch however many images are traced. Files are written
under a temporary name and renamed when complete: a trace file is never
half-written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import SOFTWARE
from .attention import PARAM_COLUMNS
from .checkpoint import load_model
from .config import ModelConfig, TrainConfig
from .data import ImageSet, load_split, model_inputs
from .device import resolve_device
from .errors import DrawStudioError, TraceFormatError
from .files import atomic_write, file_sha256
from .hdf5_sink import FailSafeFile
from .model import DRAW
from .seeding import make_generator, mix_seed
from .trace_checks import layout_problem

FORMAT = "draw-studio/trace"
FORMAT_VERSION = 1
MODES = ("reconstruct", "generate")
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
CHUNK_BYTES = 1 << 18  # aim for chunks of about 256 KiB

# Trace field -> (path in the file, axis labels). Fields absent from a trace are absent from the file.
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "input": ("input", ("sample", "channel", "y", "x")),
    "labels": ("labels", ("sample",)),
    "source_index": ("source_index", ("sample",)),
    "canvas": ("canvas", ("sample", "step", "channel", "y", "x")),
    "read_params": ("read/params", ("sample", "step", "param")),
    "read_glimpse": ("read/glimpse", ("sample", "step", "channel", "y", "x")),
    "write_params": ("write/params", ("sample", "step", "param")),
    "write_patch": ("write/patch", ("sample", "step", "channel", "y", "x")),
    "z": ("latent/z", ("sample", "step", "latent")),
    "mu": ("latent/mu", ("sample", "step", "latent")),
    "sigma": ("latent/sigma", ("sample", "step", "latent")),
    "kl": ("kl", ("sample", "step")),
    "nll_x": ("nll_x", ("sample",)),
}
INTEGER_FIELDS = ("labels", "source_index")

Progress = Callable[[int, int], None]


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float32)))).astype(np.float32)


@dataclass
class Trace:
    """One recorded run of DRAW over ``n`` images (see the module docstring).

    Attributes
    ----------
    mode : str
        ``"reconstruct"`` (the encoder saw ``input``) or ``"generate"``.
    model_config : ModelConfig
    seed : int
        Seed of the noise (batch b uses ``mix_seed(seed, b)``).
    checkpoint_sha256, created, software : str
    canvas : ndarray, shape (n, T+1, C, H, W), float32
        c_0 .. c_T before the output non-linearity.
    z : ndarray, shape (n, T, Z)
    input : ndarray, shape (n, C, H, W), or None
    labels, source_index : ndarray, shape (n,), int64, or None
        Class labels; index of each image in its split.
    read_params, write_params : ndarray, shape (n, T, 5), or None
        Columns ``gx, gy, delta, sigma2, gamma`` in 1-based pixel units.
    read_glimpse : ndarray, shape (n, T, 2C, Nr, Nr), or None
    write_patch : ndarray, shape (n, T, C, Nw, Nw), or None
    mu, sigma : ndarray, shape (n, T, Z), or None
    kl : ndarray, shape (n, T), or None
    nll_x : ndarray, shape (n,), or None
    batch_size : int
        Images per forward pass (the noise depends on it); 0 if unknown.
    source : str
        Where the images came from, e.g. ``"mnist/test"``, ``"files"`` or ``"prior"``.
    """

    mode: str
    model_config: ModelConfig
    seed: int
    checkpoint_sha256: str
    created: str
    software: str
    canvas: np.ndarray
    z: np.ndarray
    input: np.ndarray | None = None
    labels: np.ndarray | None = None
    read_params: np.ndarray | None = None
    read_glimpse: np.ndarray | None = None
    write_params: np.ndarray | None = None
    write_patch: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    kl: np.ndarray | None = None
    nll_x: np.ndarray | None = None
    source_index: np.ndarray | None = None
    batch_size: int = 0
    source: str = ""

    @property
    def n(self) -> int:
        """Number of images."""
        return int(self.canvas.shape[0])

    @property
    def steps(self) -> int:
        """Number of steps T (the canvas holds T + 1 states)."""
        return int(self.canvas.shape[1]) - 1

    def mean_images(self, step: int) -> np.ndarray:
        """The mean image sigmoid(c_step), shape (n, C, H, W), for step 0..T.

        Both likelihoods have mean sigmoid(c): the Bernoulli probabilities,
        and the centre of the discretised logistic.
        """
        return _sigmoid(self.canvas[:, step])

    def increment(self, step: int) -> np.ndarray:
        """What step ``step`` (0..T-1) added to the canvas: c_{step+1} - c_step, (n, C, H, W)."""
        return self.canvas[:, step + 1] - self.canvas[:, step]

    def arrays(self) -> dict[str, np.ndarray]:
        """The datasets this trace holds, by field name."""
        return {name: getattr(self, name) for name in DATASETS if getattr(self, name) is not None}


# ---------------------------------------------------------------------- recording
def _batches(model: DRAW, images: np.ndarray | None, generate_n: int | None, seed: int,
             batch_size: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Record the model batch by batch; yields (first image index, arrays of that batch)."""
    if (images is None) == (generate_n is None):
        raise DrawStudioError("give either images to reconstruct or a number of images to generate, not both")
    if batch_size < 1:
        raise DrawStudioError(f"batch size must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    total = len(images) if images is not None else int(generate_n)
    if total < 1:
        raise DrawStudioError("nothing to trace: ask for at least one image")
    was_training = model.training
    model.eval()
    try:
        for index, start in enumerate(range(0, total, batch_size)):
            size = min(batch_size, total - start)
            generator = make_generator(device, mix_seed(seed, index))
            with torch.inference_mode():
                if images is None:
                    _, record = model.generate(size, generator=generator, record=True)
                    extra = {}
                else:
                    x = torch.as_tensor(images[start:start + size], dtype=torch.float32).to(device)  # (b, C, H, W)
                    terms, record = model(x, generator=generator, record=True)
                    extra = {"input": x, "nll_x": terms.nll_x}
            arrays = {name: value.float().cpu().numpy() for name, value in {**record, **extra}.items()
                      if name in DATASETS}
            yield start, arrays
    finally:
        model.train(was_training)


def _check_images(model: DRAW, images: np.ndarray | None) -> np.ndarray | None:
    if images is None:
        return None
    images = np.asarray(images, dtype=np.float32)
    cfg = model.config
    if images.ndim != 4 or images.shape[1:] != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"images of shape {images.shape} do not fit this model, which expects "
                              f"(n, {cfg.channels}, {cfg.height}, {cfg.width})")
    return images


def _header(model: DRAW, images, seed, batch_size, checkpoint_sha256, source) -> dict:
    return {"mode": "generate" if images is None else "reconstruct", "model_config": model.config,
            "seed": int(seed), "checkpoint_sha256": checkpoint_sha256,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "software": SOFTWARE,
            "batch_size": int(batch_size), "source": source or ("prior" if images is None else "")}


def record_trace(model: DRAW, images: np.ndarray | None = None, labels: np.ndarray | None = None,
                 generate_n: int | None = None, seed: int = 0, batch_size: int = 100,
                 checkpoint_sha256: str = "", source: str = "",
                 source_index: np.ndarray | None = None) -> Trace:
    """Run the model over ``images`` (or ``generate_n`` prior samples) and keep every step in memory.

    Parameters
    ----------
    model : DRAW
    images : ndarray, shape (n, C, H, W), optional
        Float images in [0, 1] as the model sees them (binary for a
        Bernoulli model). Gives a ``"reconstruct"`` trace.
    labels, source_index : ndarray, shape (n,), optional
    generate_n : int, optional
        Number of samples from the prior, instead of ``images``.
    seed : int
        Noise of batch b comes from ``make_generator(device, mix_seed(seed, b))``.
    batch_size : int
        Images per forward pass.
    checkpoint_sha256, source : str
        Recorded in the trace.

    Returns
    -------
    Trace
    """
    images = _check_images(model, images)
    parts: dict[str, list[np.ndarray]] = {}
    for _, arrays in _batches(model, images, generate_n, seed, batch_size):
        for name, value in arrays.items():
            parts.setdefault(name, []).append(value)
    fields = {name: np.concatenate(values) for name, values in parts.items()}
    for name, value in (("labels", labels), ("source_index", source_index)):
        if value is not None:
            fields[name] = np.asarray(value, dtype=np.int64)
    return Trace(**_header(model, images, seed, batch_size, checkpoint_sha256, source), **fields)


def record_trace_file(path: str | Path, model: DRAW, images: np.ndarray | None = None,
                      labels: np.ndarray | None = None, generate_n: int | None = None, seed: int = 0,
                      batch_size: int = 100, checkpoint_sha256: str = "", source: str = "",
                      source_index: np.ndarray | None = None, progress: Progress | None = None) -> None:
    """Like :func:`record_trace`, but stream each batch straight into the file at ``path``.

    Memory stays bounded by one batch. ``progress(done, total)`` is called
    after each batch; if anything fails (including ``progress`` raising) no
    file is left under ``path``.
    """
    images = _check_images(model, images)
    header = _header(model, images, seed, batch_size, checkpoint_sha256, source)
    total = len(images) if images is not None else int(generate_n or 0)
    extras = {name: np.asarray(value, dtype=np.int64)
              for name, value in (("labels", labels), ("source_index", source_index)) if value is not None}

    def batches():
        if extras:
            yield 0, extras
        yield from _batches(model, images, generate_n, seed, batch_size)

    atomic_write(path, lambda temp: _write_file(temp, header, total, batches(), progress))


# ---------------------------------------------------------------------- writing
def write_trace(path: str | Path, trace: Trace, progress: Progress | None = None) -> None:
    """Write ``trace`` to ``path`` in the version-1 layout, atomically."""
    header = {name: getattr(trace, name) for name in ("mode", "model_config", "seed", "checkpoint_sha256",
                                                       "created", "software", "batch_size", "source")}
    atomic_write(path, lambda temp: _write_file(temp, header, trace.n, iter([(0, trace.arrays())]), progress))


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Whole samples per chunk, about CHUNK_BYTES each."""
    per_sample = max(int(np.prod(shape[1:], dtype=np.int64)) * itemsize, 1)
    return (int(min(max(CHUNK_BYTES // per_sample, 1), max(shape[0], 1))),) + tuple(shape[1:])


def _write_file(path: str, header: dict, total: int, batches, progress: Progress | None) -> None:
    """Create the file, then write each (start, arrays) batch into datasets sized for ``total`` samples."""
    import h5py

    if header["mode"] not in MODES:
        raise DrawStudioError(f"unknown trace mode {header['mode']!r}; use one of {', '.join(MODES)}")
    with FailSafeFile(path) as sink:  # HDF5 never sees a failed write: it could crash after one
        _write_hdf5(h5py.File(sink, "w"), sink, header, total, batches, progress)
        if sink.error is not None:
            raise sink.error


def _write_hdf5(file, sink: FailSafeFile, header: dict, total: int, batches, progress: Progress | None) -> None:
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
                dtype = np.int64 if name in INTEGER_FIELDS else np.float32
                value = np.asarray(value, dtype=dtype)
                dset = f.get(DATASETS[name][0])
                if dset is None:
                    dset = _create(f, name, (total,) + value.shape[1:], dtype)
                dset[start:start + len(value)] = value
            if sink.error is not None:
                return  # the disk failed: stop now, the caller reports it
            if "canvas" in arrays:
                done = start + len(arrays["canvas"])
                if progress is not None:
                    progress(done, total)
        if "canvas" not in f or done != total:
            raise DrawStudioError(f"trace recording stopped after {done} of {total} images; nothing was written")


def _create(f, name: str, shape: tuple[int, ...], dtype):
    """A chunked, compressed dataset with its axis labels (and ``columns`` / ``to_image`` attributes)."""
    import h5py

    where, labels = DATASETS[name]
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
def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_trace_file(path: str | Path):
    """Open ``path`` read-only as a trace (h5py.File), checking format and version.

    Raises
    ------
    TraceFormatError
        Missing file, a folder, not HDF5, not a trace, or another format version.
    """
    import h5py

    path = Path(path)
    if path.is_dir():
        raise TraceFormatError(f"{path} is a folder, not a trace; pass a trace file written by draw-studio trace")
    if not path.is_file():
        raise TraceFormatError(f"trace file {path} does not exist; record one with draw-studio trace")
    try:
        hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise TraceFormatError(f"could not read {path}: {exc.strerror or exc}; check the file") from None
    if not hdf5:
        raise TraceFormatError(f"{path} is not an HDF5 file; pass a trace written by draw-studio trace")
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail inside HDF5 in many ways
        raise TraceFormatError(f"{path} cannot be opened as HDF5 ({_first_line(exc)}); record the trace "
                               "again") from None
    try:
        fmt = _text(f.attrs.get("format", ""))
        version = f.attrs.get("format_version")
        version = int(version) if version is not None else None
    except Exception as exc:  # noqa: BLE001
        f.close()
        raise TraceFormatError(f"{path} is a damaged HDF5 file ({_first_line(exc)}); record the trace "
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return ((text.splitlines() or [""])[0] or type(exc).__name__)[:120]


@contextlib.contextmanager
def _damaged_trace(path):
    """Turn any failure to read attributes or data of an open trace into one TraceFormatError line."""
    try:
        yield
    except (TraceFormatError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - damaged attributes or data can fail in many ways
        detail = str(exc) if isinstance(exc, DrawStudioError) else f"{type(exc).__name__}: {_first_line(exc)}"
        raise TraceFormatError(f"{path} is a damaged trace ({detail}); record the trace again") from None


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
        with _damaged_trace(path):
            mode = _text(f.attrs["mode"])
            if mode not in MODES:
                raise TraceFormatError(f"{path} is a damaged trace (mode {mode!r}); record the trace again")
            config = ModelConfig.from_dict(json.loads(_text(f.attrs["model_config"])))
            present = {name: f[where] for name, (where, _) in DATASETS.items() if where in f}
            if not all(hasattr(dset, "shape") for dset in present.values()):
                raise TraceFormatError(f"{path} is a damaged trace (a group where a dataset belongs); "
                                       "record the trace again")
            problem = layout_problem({name: dset.shape for name, dset in present.items()},
                                     {name: dset.dtype.kind for name, dset in present.items()}, config,
                                     {name: where for name, (where, _) in DATASETS.items()})
            if problem:
                raise TraceFormatError(f"{path} is a damaged trace ({problem}); record the trace again")
        select = _selection(samples, present["canvas"].shape[0])
        with _damaged_trace(path):
            fields = {name: dset[select] for name, dset in present.items()}
            header = {"mode": mode, "model_config": config, "seed": int(f.attrs["seed"]),
                      "checkpoint_sha256": _text(f.attrs["checkpoint_sha256"]),
                      "created": _text(f.attrs["created"]), "software": _text(f.attrs["software"]),
                      "batch_size": int(f.attrs.get("batch_size", 0)), "source": _text(f.attrs.get("source", ""))}
    for name in INTEGER_FIELDS:
        if name in fields:
            fields[name] = fields[name].astype(np.int64)
    for name in set(fields) - set(INTEGER_FIELDS):
        fields[name] = fields[name].astype(np.float32, copy=False)
    return Trace(**header, **fields)


def _selection(samples, n: int):
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
def load_image_files(files: Sequence[str | Path], config: ModelConfig) -> np.ndarray:
    """Read picture files (PNG, JPEG...) as uint8 (n, C, H, W) in the model's channels and size.

    Grey pictures are converted to RGB for a colour model and colour ones to
    grey for a grey model. A picture of another size is resized when its
    aspect ratio matches the model's; otherwise it is refused.
    """
    from PIL import Image, UnidentifiedImageError

    pictures = []
    for name in files:
        try:
            with Image.open(name) as image:
                image = image.convert("L" if config.channels == 1 else "RGB")
        except FileNotFoundError:
            raise DrawStudioError(f"image file {name} does not exist; check the path") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DrawStudioError(f"{name} is not a readable picture ({exc}); use a PNG or JPEG file") from None
        width, height = image.size
        if (width, height) != (config.width, config.height):
            if abs(width * config.height - height * config.width) > 0.01 * width * config.height:
                raise DrawStudioError(f"{name} is {width}x{height} pixels but the model draws "
                                      f"{config.width}x{config.height}; crop it to that aspect ratio first")
            image = image.resize((config.width, config.height), Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.uint8)
        pictures.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))  # (C, H, W)
    return np.stack(pictures)


@dataclass
class TraceInputs:
    """What a trace is recorded from: images (or a sample count) and where they came from."""

    images: np.ndarray | None
    labels: np.ndarray | None
    source_index: np.ndarray | None
    generate_n: int | None
    source: str


def select_inputs(model: DRAW, train_config: TrainConfig, generate: bool = False, n: int | None = None,
                  indices: Sequence[int] | None = None, image_files: Sequence[str | Path] | None = None,
                  dataset: str | None = None, split: str = "test", data_dir: str | Path | None = None,
                  download: bool = True) -> TraceInputs:
    """Choose the inputs of a trace as ``draw-studio trace`` does.

    A reconstruction uses the images exactly as ``draw-studio eval`` feeds
    them (``model_inputs`` of the whole split: its fixed binarisation for a
    Bernoulli model), then picks the first ``n`` or ``indices``; or the
    pictures ``image_files``, prepared the same way.
    """
    cfg = model.config
    if generate:
        if indices or image_files:
            raise DrawStudioError("--generate draws from the prior: drop --indices / --images")
        count = 16 if n is None else int(n)
        if count < 1:
            raise DrawStudioError(f"-n must be at least 1, got {count}")
        return TraceInputs(None, None, None, count, "prior")
    if indices and image_files:
        raise DrawStudioError("give either --indices (images of a split) or --images (picture files), not both")
    if image_files:
        grey = load_image_files(image_files, cfg)
        pixels, _, _ = model_inputs(ImageSet(grey, None, False, "files"), cfg.likelihood)
        return TraceInputs(pixels, None, None, None, "files")
    dataset = dataset or train_config.dataset
    images = load_split(dataset, split, data_dir, train_config.validation_size, download)
    if images.shape != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"{dataset} images are {images.shape}, the model expects "
                              f"{(cfg.channels, cfg.height, cfg.width)}; trace on the dataset it was trained on")
    pixels, _, _ = model_inputs(images, cfg.likelihood)  # the whole split, exactly as eval sees it
    if indices:
        index = np.asarray(list(indices), dtype=np.int64)
        if index.min() < 0 or index.max() >= len(pixels):
            raise DrawStudioError(f"indices must be between 0 and {len(pixels) - 1} for {dataset} {split}; "
                                  f"got {index.min()}..{index.max()}")
    else:
        count = 16 if n is None else int(n)
        if not 1 <= count <= len(pixels):
            raise DrawStudioError(f"-n must be between 1 and {len(pixels)} ({dataset} {split}), got {count}")
        index = np.arange(count, dtype=np.int64)
    labels = images.labels[index] if images.labels is not None else None
    return TraceInputs(pixels[index], labels, index, None, f"{dataset}/{split}")


def _prepare(checkpoint, device, **selection):
    model, state = load_model(checkpoint, resolve_device(device))
    train = TrainConfig.from_dict(state.get("train_config") or {})
    return model, select_inputs(model, train, **selection), file_sha256(checkpoint)


def save_trace_from_checkpoint(checkpoint: str | Path, out: str | Path, seed: int = 0, batch_size: int = 100,
                               device: str = "auto", progress: Progress | None = None, **selection) -> int:
    """Load a checkpoint and stream a trace into ``out``; returns the number of images traced."""
    model, inputs, sha = _prepare(checkpoint, device, **selection)
    record_trace_file(out, model, inputs.images, inputs.labels, inputs.generate_n, seed, batch_size, sha,
                      inputs.source, inputs.source_index, progress)
    return len(inputs.images) if inputs.images is not None else int(inputs.generate_n)
