"""The error of an attention classifier on a split: what ``draw-studio eval`` prints for a classifier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import AttentionClassifier
from .classifier_checkpoint import load_classifier
from .config import TrainConfig
from .data import ImageSet, load_split
from .device import resolve_device
from .errors import DrawStudioError


@dataclass(frozen=True)
class ClassifierEvaluation:
    """A classifier's result on ``n`` labelled images.

    Attributes
    ----------
    n : int
        Images classified.
    errors : int
        Images whose most probable class is not their label.
    cross_entropy : float
        Mean -log p(label | image), nats per image.
    glimpse_errors : tuple of int
        With ``every_glimpse``: the errors of the answer read after glimpse 1..T (the last is ``errors``);
        else empty.
    """

    n: int
    errors: int
    cross_entropy: float
    glimpse_errors: tuple[int, ...] = ()

    @property
    def error(self) -> float:
        """Test error in percent: 100 errors / n."""
        return 100.0 * self.errors / self.n if self.n else float("nan")

    @property
    def glimpse_error(self) -> list[float]:
        """The error in percent after each glimpse (empty without ``every_glimpse``)."""
        return [100.0 * errors / self.n for errors in self.glimpse_errors]

    def to_dict(self) -> dict:
        out = {"error": self.error, "errors": self.errors, "n": self.n, "cross_entropy": self.cross_entropy}
        if self.glimpse_errors:
            out.update(glimpse_errors=list(self.glimpse_errors), glimpse_error=self.glimpse_error)
        return out


def evaluate_classifier(model: AttentionClassifier, images: torch.Tensor | np.ndarray,
                        labels: torch.Tensor | np.ndarray, batch_size: int = 500,
                        every_glimpse: bool = False) -> ClassifierEvaluation:
    """Classify ``images`` and count the mistakes.

    Parameters
    ----------
    model : AttentionClassifier
        Run in eval mode (its mode is restored), on the device it is on.
    images : Tensor or ndarray, shape (n, C, H, W)
        uint8 grey levels 0..255 (divided by 255 a batch at a time) or floats in [0, 1].
    labels : Tensor or ndarray, shape (n,)
        Class indices.
    batch_size : int
        Images per forward pass.
    every_glimpse : bool
        Also count the errors of the answer after every glimpse (``glimpse_errors``).

    Raises
    ------
    DrawStudioError
        No images, labels that do not fit, or a non-finite result (a diverged model).
    """
    images, labels = torch.as_tensor(images), torch.as_tensor(labels, dtype=torch.int64)
    if len(images) == 0 or len(images) != len(labels):
        raise DrawStudioError(f"cannot classify {len(images)} images with {len(labels)} labels; pass labelled images")
    if int(labels.min()) < 0 or int(labels.max()) >= model.config.classes:
        raise DrawStudioError(f"labels must be 0..{model.config.classes - 1} for this classifier, the data has "
                              f"{int(labels.min())}..{int(labels.max())}; evaluate on the data it was trained on")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    errors = torch.zeros((), dtype=torch.int64, device=device)
    nll = torch.zeros((), dtype=torch.float64, device=device)
    per_glimpse = torch.zeros(model.config.steps, dtype=torch.int64, device=device)  # (T,)
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(device)
                x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()  # (b, C, H, W)
                y = labels[start:start + batch_size].to(device)
                out = model(x, every_glimpse=every_glimpse)
                logits = out.logits  # (b, classes)
                errors += (logits.argmax(1) != y).sum()
                if every_glimpse:
                    per_glimpse += (out.glimpse_logits.argmax(2) != y[:, None]).sum(0)  # (b, T) -> (T,)
                nll += F.cross_entropy(logits, y, reduction="sum").double()
    finally:
        model.train(was_training)
    result = ClassifierEvaluation(len(images), int(errors), float(nll) / len(images),
                                  tuple(int(e) for e in per_glimpse.tolist()) if every_glimpse else ())
    if not math.isfinite(result.cross_entropy):
        raise DrawStudioError("the classifier gives non-finite class probabilities (a diverged model); use an "
                              "earlier checkpoint")
    return result


def classifier_split(state: dict, dataset: str | None, split: str, data_dir: str | Path | None,
                     download: bool = True, limit: int = 0) -> tuple[str, ImageSet]:
    """The labelled images a classifier checkpoint (its ``state``) is evaluated or traced on.

    ``dataset`` None: the one it was trained on. ``limit`` > 0: only the first ``limit`` images.

    Raises
    ------
    DrawStudioError
        Images of another size than the classifier's, or no labels.
    """
    train = TrainConfig.from_dict(state.get("train_config") or {})
    dataset = dataset or train.dataset
    images = load_split(dataset, split, data_dir, train.validation_size, download)
    if limit:
        images = images.subset(slice(0, limit))
    cfg = state["model_config"]
    expected = (cfg["channels"], cfg["height"], cfg["width"])
    if images.shape != expected:
        raise DrawStudioError(f"{dataset} images are {images.shape}, the classifier expects {expected}; use the "
                              "dataset it was trained on")
    if images.labels is None:
        raise DrawStudioError(f"{dataset} has no labels to classify against; use a labelled dataset")
    return dataset, images


def evaluate_classifier_checkpoint(checkpoint: str | Path, dataset: str | None = None, split: str = "test",
                                   data_dir: str | Path | None = None, download: bool = True, limit: int = 0,
                                   batch_size: int = 500, device: str = "auto") -> dict:
    """``draw-studio eval`` of a classifier: error (percent), errors, n and cross-entropy on a split.

    Returns
    -------
    dict
        :meth:`ClassifierEvaluation.to_dict` plus ``dataset``, ``split``, ``checkpoint`` and ``step``.
    """
    model, state = load_classifier(checkpoint, resolve_device(device))
    dataset, images = classifier_split(state, dataset, split, data_dir, download, limit)
    result = evaluate_classifier(model, images.images, images.labels, batch_size)
    return {**result.to_dict(), "dataset": dataset, "split": split, "checkpoint": str(checkpoint),
            "step": int(state.get("step", 0))}
