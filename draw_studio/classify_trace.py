"""Classify traces: every glimpse of the attention classifier for some images, in a trace file of mode ``"classify"``.

The file is a DRAW Studio trace (``draw_studio.trace_file``: the same ``format``, ``format_version``
and root attributes) whose ``mode`` is ``"classify"`` and whose ``model_config`` is the classifier's
(``kind`` = ``"classifier"``). It holds the input, the read attention and the glimpse of every step,
the class probabilities after every glimpse, the prediction and the label (``docs/file-formats.md``).
Written batch by batch into pre-sized datasets under a temporary name, renamed when complete, and read
back, by the same code as DRAW's traces (``trace_file.write_trace_batches`` with :data:`CLASSIFY_LAYOUT`,
``trace_file.read_header``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import SOFTWARE
from .attention import PARAM_COLUMNS
from .classifier import AttentionClassifier, ClassifierConfig, is_classifier_config
from .classifier_checkpoint import load_classifier
from .classifier_eval import classifier_split
from .device import resolve_device
from .errors import DrawStudioError, TraceFormatError
from .files import atomic_write, file_sha256
from .trace import Progress
from .trace_file import (
    HEADER_FIELDS,
    TraceLayout,
    attribute_text,
    damaged_trace,
    open_trace_file,
    read_header,
    sample_selection,
    write_trace_batches,
)

CLASSIFY_MODE = "classify"

# Trace field -> (path in the file, axis labels); fields absent from a trace are absent from the file.
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "input": ("input", ("sample", "channel", "y", "x")),
    "labels": ("labels", ("sample",)),
    "source_index": ("source_index", ("sample",)),
    "read_params": ("read/params", ("sample", "step", "param")),
    "read_glimpse": ("read/glimpse", ("sample", "step", "channel", "y", "x")),
    "class_probabilities": ("class_probabilities", ("sample", "step", "class")),
    "prediction": ("prediction", ("sample",)),
}
INTEGER_FIELDS = ("labels", "source_index", "prediction")
REQUIRED = ("input", "read_params", "read_glimpse", "class_probabilities", "prediction")
CLASSIFY_LAYOUT = TraceLayout(DATASETS, INTEGER_FIELDS, "input", (CLASSIFY_MODE,))


@dataclass
class ClassifyTrace:
    """The attention classifier's T glimpses over ``n`` images.

    Attributes
    ----------
    model_config : ClassifierConfig
    checkpoint_sha256, created, software, source : str
    input : ndarray, shape (n, C, H, W), float32 in [0, 1]
    read_params : ndarray, shape (n, T, 5)
        Read attention of step s (from the hidden state after step s-1): ``gx, gy, delta, sigma2, gamma``.
    read_glimpse : ndarray, shape (n, T, C, N, N)
        gamma F_Y x F_X^T of step s (the image only).
    class_probabilities : ndarray, shape (n, T, classes)
        softmax(W h_s + b) after glimpse s; the last row is the classifier's answer.
    prediction : ndarray, shape (n,), int64
        argmax of ``class_probabilities[:, T - 1]``.
    labels, source_index : ndarray, shape (n,), int64, or None
    batch_size : int
        Images per forward pass.
    """

    model_config: ClassifierConfig
    checkpoint_sha256: str
    created: str
    software: str
    input: np.ndarray
    read_params: np.ndarray
    read_glimpse: np.ndarray
    class_probabilities: np.ndarray
    prediction: np.ndarray
    labels: np.ndarray | None = None
    source_index: np.ndarray | None = None
    batch_size: int = 0
    source: str = ""
    mode: str = CLASSIFY_MODE
    seed: int = 0  # no noise: kept for the trace format's root attributes

    @property
    def n(self) -> int:
        return int(self.input.shape[0])

    @property
    def steps(self) -> int:
        return int(self.read_params.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The datasets this trace holds, by field name."""
        return {name: getattr(self, name) for name in DATASETS if getattr(self, name) is not None}


def expected_shapes(config: ClassifierConfig, n: int) -> dict[str, tuple[int, ...]]:
    """The shape of every field of a classify trace of ``n`` images."""
    c, t, size = config.channels, config.steps, config.read_n
    return {"input": (n, c, config.height, config.width), "labels": (n,), "source_index": (n,),
            "read_params": (n, t, len(PARAM_COLUMNS)), "read_glimpse": (n, t, c, size, size),
            "class_probabilities": (n, t, config.classes), "prediction": (n,)}


# ---------------------------------------------------------------------- recording
def record_classify_batches(model: AttentionClassifier, images: np.ndarray,
                            batch_size: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Run the classifier batch by batch; yields (first image index, arrays of that batch)."""
    if batch_size < 1:
        raise DrawStudioError(f"batch size must be at least 1, got {batch_size}")
    if len(images) < 1:
        raise DrawStudioError("nothing to trace: ask for at least one image")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            x = torch.as_tensor(images[start:start + batch_size], dtype=torch.float32).to(device)  # (b, C, H, W)
            with torch.inference_mode():
                out = model(x, every_glimpse=True, record=True)
            probabilities = torch.softmax(out.glimpse_logits, dim=-1)  # (b, T, classes)
            arrays = {"input": x, "class_probabilities": probabilities,
                      "prediction": probabilities[:, -1].argmax(-1), **out.record}
            yield start, {name: value.cpu().numpy() for name, value in arrays.items()}
    finally:
        model.train(was_training)


def _header(model: AttentionClassifier, batch_size: int, checkpoint_sha256: str, source: str) -> dict:
    return {"mode": CLASSIFY_MODE, "model_config": model.config, "seed": 0,
            "checkpoint_sha256": checkpoint_sha256 or "",
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "software": SOFTWARE,
            "batch_size": int(batch_size), "source": source or ""}


def _check_images(model: AttentionClassifier, images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    cfg = model.config
    if images.ndim != 4 or images.shape[1:] != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"images of shape {images.shape} do not fit this classifier, which expects "
                              f"(n, {cfg.channels}, {cfg.height}, {cfg.width})")
    return images


def record_classify_trace(model: AttentionClassifier, images: np.ndarray, labels: np.ndarray | None = None,
                          source_index: np.ndarray | None = None, source: str = "", batch_size: int = 100,
                          checkpoint_sha256: str = "") -> ClassifyTrace:
    """Run the classifier over ``images`` (n, C, H, W) in [0, 1] and keep every glimpse in memory."""
    images = _check_images(model, images)
    parts: dict[str, list[np.ndarray]] = {}
    for _, arrays in record_classify_batches(model, images, batch_size):
        for name, value in arrays.items():
            parts.setdefault(name, []).append(value)
    fields = {name: np.concatenate(values) for name, values in parts.items()}
    extras = _extras(labels, source_index)
    return ClassifyTrace(**_header(model, batch_size, checkpoint_sha256, source), **fields, **extras)


def _extras(labels, source_index) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.int64) for name, value in
            (("labels", labels), ("source_index", source_index)) if value is not None}


# ---------------------------------------------------------------------- writing
def write_classify_trace(path: str | Path, trace: ClassifyTrace) -> None:
    """Write ``trace`` to ``path`` atomically."""
    header = {name: getattr(trace, name) for name in HEADER_FIELDS}
    atomic_write(path, lambda temp: write_trace_batches(temp, CLASSIFY_LAYOUT, header, trace.n,
                                                        iter([(0, trace.arrays())]), None), kind="trace")


def record_classify_trace_file(path: str | Path, model: AttentionClassifier, images: np.ndarray,
                               labels: np.ndarray | None = None, source_index: np.ndarray | None = None,
                               source: str = "", batch_size: int = 100, checkpoint_sha256: str = "",
                               progress: Progress | None = None) -> None:
    """Like :func:`record_classify_trace`, but stream each batch straight into the file at ``path``.

    ``progress(done, total)`` is called after each batch; on any failure no file is left at ``path``.
    """
    images = _check_images(model, images)
    header = _header(model, batch_size, checkpoint_sha256, source)

    def batches():
        extras = _extras(labels, source_index)
        if extras:
            yield 0, extras
        yield from record_classify_batches(model, images, batch_size)

    atomic_write(path, lambda temp: write_trace_batches(temp, CLASSIFY_LAYOUT, header, len(images), batches(),
                                                        progress), kind="trace")


# ---------------------------------------------------------------------- reading
def read_classify_trace(path: str | Path, samples: slice | Sequence[int] | None = None) -> ClassifyTrace:
    """Read a classify trace (all images, or ``samples``: a slice or increasing indices).

    Raises
    ------
    TraceFormatError
        Not a readable DRAW Studio trace, a DRAW trace (another mode), or datasets whose shapes do not
        fit the classifier's settings stored with them.
    """
    with open_trace_file(path) as f:
        with damaged_trace(path):
            mode = attribute_text(f.attrs.get("mode", ""))
            if mode != CLASSIFY_MODE:
                raise TraceFormatError(f"{path} is a DRAW trace (mode {mode!r}), not a classifier's; record one with "
                                       "draw-studio trace CLASSIFIER.ckpt")
            config_values = json.loads(attribute_text(f.attrs["model_config"]))
            if not is_classifier_config(config_values):
                raise TraceFormatError(f"{path} is a damaged trace (mode 'classify' without a classifier's "
                                       "settings); record the trace again")
            config = ClassifierConfig.from_dict(config_values)
            present = {name: f[where] for name, (where, _) in DATASETS.items() if where in f}
            missing = [DATASETS[name][0] for name in REQUIRED if name not in present]
            if missing:
                raise TraceFormatError(f"{path} is a damaged trace ({', '.join(missing)} missing); record it again")
            n = present["input"].shape[0]
            wanted = expected_shapes(config, n)
            for name, dset in present.items():
                if getattr(dset, "shape", None) != wanted[name] or dset.dtype.kind not in "fiu":
                    raise TraceFormatError(f"{path} is a damaged trace ({DATASETS[name][0]} has shape "
                                           f"{getattr(dset, 'shape', None)}, expected {wanted[name]}); record it "
                                           "again")
        select = sample_selection(samples, n)
        with damaged_trace(path):
            fields = {name: dset[select] for name, dset in present.items()}
            header = {"model_config": config, **read_header(f)}
    for name, value in fields.items():
        fields[name] = value.astype(np.int64 if name in INTEGER_FIELDS else np.float32, copy=False)
    return ClassifyTrace(**header, **fields)


# ---------------------------------------------------------------------- from a checkpoint
def save_classify_trace_from_checkpoint(checkpoint: str | Path, out: str | Path, n: int | None = None,
                                        indices: Sequence[int] | None = None, dataset: str | None = None,
                                        split: str = "test", data_dir: str | Path | None = None,
                                        download: bool = True, batch_size: int = 100, device: str = "auto",
                                        progress: Progress | None = None) -> int:
    """``draw-studio trace`` of a classifier: the first ``n`` (default 16) or ``indices`` images of a split.

    Returns
    -------
    int
        Images traced.
    """
    model, state = load_classifier(checkpoint, resolve_device(device))
    dataset, images = classifier_split(state, dataset, split, data_dir, download)
    if indices:
        index = np.asarray(list(indices), dtype=np.int64)
        if index.min() < 0 or index.max() >= len(images):
            raise DrawStudioError(f"indices must be between 0 and {len(images) - 1} for {dataset} {split}; "
                                  f"got {index.min()}..{index.max()}")
    else:
        count = 16 if n is None else int(n)
        if not 1 <= count <= len(images):
            raise DrawStudioError(f"-n must be between 1 and {len(images)} ({dataset} {split}), got {count}")
        index = np.arange(count, dtype=np.int64)
    pixels = images.images[index].astype(np.float32) / 255.0  # (n, C, H, W), as eval and training see them
    record_classify_trace_file(out, model, pixels, images.labels[index], index, f"{dataset}/{split}", batch_size,
                               file_sha256(checkpoint), progress)
    return len(index)
