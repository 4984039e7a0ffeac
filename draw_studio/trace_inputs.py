"""Which images a trace records: test images by index, picture files, or samples from the prior.

Shared by ``draw-studio trace`` and the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .checkpoint import load_model
from .config import ModelConfig, TrainConfig
from .data import ImageSet, load_split, model_inputs
from .device import resolve_device
from .errors import DrawStudioError
from .files import file_sha256
from .model import DRAW
from .trace import Progress, TraceInputs
from .trace_file import record_trace_file


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
        return TraceInputs.prior(count)
    if indices and image_files:
        raise DrawStudioError("give either --indices (images of a split) or --images (picture files), not both")
    if image_files:
        grey = load_image_files(image_files, cfg)
        pixels, _, _ = model_inputs(ImageSet(grey, None, False, "files"), cfg.likelihood)
        return TraceInputs(images=pixels, source="files")
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
    return TraceInputs(images=pixels[index], labels=labels, source_index=index, source=f"{dataset}/{split}")


def _prepare(checkpoint, device, **selection):
    model, state = load_model(checkpoint, resolve_device(device))
    train = TrainConfig.from_dict(state.get("train_config") or {})
    return model, select_inputs(model, train, **selection), file_sha256(checkpoint)


def save_trace_from_checkpoint(checkpoint: str | Path, out: str | Path, seed: int = 0, batch_size: int = 100,
                               device: str = "auto", progress: Progress | None = None, **selection) -> int:
    """Load a checkpoint and stream a trace into ``out``; returns the number of images traced."""
    model, inputs, sha = _prepare(checkpoint, device, **selection)
    inputs = dataclasses.replace(inputs, seed=seed)
    record_trace_file(out, model, inputs, batch_size, sha, progress)
    return inputs.count
