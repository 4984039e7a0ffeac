"""An attention classifier for the window, without Qt: its checkpoint loaded, and test images classified by it.

What the classifier did to some images is a :class:`~draw_studio.classify_trace.ClassifyTrace` (the same
type a classify trace file holds), recorded by the core's :func:`~draw_studio.classify_trace.record_classify_trace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classifier import AttentionClassifier
from ..classifier_checkpoint import load_classifier
from ..classify_trace import ClassifyTrace, record_classify_trace
from ..config import TrainConfig
from ..data import ImageSet
from ..errors import DrawStudioError
from ..files import file_sha256

FIRST_COUNT = 64  # test images classified when a classifier checkpoint opens


@dataclass
class LoadedClassifier:
    """An attention classifier to show, with where it came from."""

    model: AttentionClassifier
    train_config: TrainConfig
    sha256: str
    description: str
    path: str | None = None
    step: int = 0
    resumable: bool = False  # the file holds the optimiser state: its training can continue from it
    steps_per_epoch: int | None = None  # of the run that wrote the file, when it records it


def load_classifier_checkpoint(path: str | Path, device: str = "cpu") -> LoadedClassifier:
    """Load a classifier checkpoint's model (eval mode) for the window.

    Raises
    ------
    CheckpointError
        Not a readable classifier checkpoint (one line, from ``classifier_checkpoint``).
    """
    model, state = load_classifier(path, device)
    config = TrainConfig.from_dict(state.get("train_config") or {})
    per_epoch = (state.get("extra") or {}).get("steps_per_epoch")
    step = int(state.get("step", 0))
    return LoadedClassifier(model, config, file_sha256(path), f"{Path(path).name} (step {step:,})", str(path), step,
                            resumable=state.get("optimizer") is not None, steps_per_epoch=per_epoch)


def classify_images(loaded: LoadedClassifier, images: ImageSet, first: int, count: int,
                    source: str) -> ClassifyTrace:
    """Every glimpse and class probability of ``loaded`` for images ``first .. first+count-1`` of ``images``.

    Raises
    ------
    DrawStudioError
        ``first`` outside the images, or images of another size than the classifier's.
    """
    if not 0 <= first < len(images):
        raise DrawStudioError(f"test image #{first} does not exist: {source} has images 0..{len(images) - 1}")
    index = np.arange(first, min(first + count, len(images)))
    chosen = images.subset(index)
    pixels = chosen.images.astype(np.float32) / 255.0  # (n, C, H, W), as training and eval see them
    return record_classify_trace(loaded.model, pixels, labels=chosen.labels, source_index=index, source=source,
                                 checkpoint_sha256=loaded.sha256)
