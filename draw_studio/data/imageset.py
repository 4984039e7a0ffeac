"""The two records every dataset module shares: :class:`ImageSet` and :class:`DatasetSpec`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass
class ImageSet:
    """Images of one split.

    Attributes
    ----------
    images : ndarray, shape (n, C, H, W), uint8
        Grey levels 0..255, or 0/1 when ``binary`` is true.
    labels : ndarray, shape (n,), int64, or None
    binary : bool
        Pixels are already 0/1 (e.g. the Salakhutdinov-Murray files).
    source : str
        Where the data came from, for messages and logs.

    Raises
    ------
    DataError
        On creation, if ``images`` is not (n, C, H, W) or holds a value
        outside 0..255 (0..1 when ``binary``) or a NaN or infinity; the
        message names the source and the first bad image and pixel.
    """

    images: np.ndarray
    labels: np.ndarray | None
    binary: bool
    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.images, np.ndarray) or self.images.ndim != 4:
            shape = getattr(self.images, "shape", None)
            raise DataError(f"{self.source}: images must be an array (n, channels, height, width), got shape "
                            f"{shape}; replace the data with the original files")
        problem = pixel_problem(self.images, 1 if self.binary else 255)
        if problem:
            raise DataError(f"{self.source}: {problem}; replace the data with the original files")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> ImageSet:
        """The images (and labels) at ``index`` (a slice, or an index array)."""
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.binary, self.source)


def pixel_problem(values: np.ndarray, high: int = 255) -> str | None:
    """Why ``values`` are not pixel values 0..``high``, naming the first bad index, or None.

    uint8 arrays are checked only when ``high`` < 255 (one pass over the data);
    other types are checked for NaN, infinities and the range.
    """
    if values.dtype == np.uint8 and high >= 255:
        return None
    if values.dtype.kind not in "fiub":
        return f"pixel values are of type {values.dtype}, not numbers"
    with np.errstate(invalid="ignore"):
        bad = ~((values >= 0) & (values <= high))  # NaN compares false: it is bad too
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), values.shape))
    value = values[index].item()
    kind = "the non-finite value" if isinstance(value, float) and not np.isfinite(value) else "the value"
    names = {4: ("image", "channel", "row", "column"), 3: ("image", "row", "column")}.get(len(index))
    where = ", ".join(f"{name} {i}" for name, i in zip(names, index)) if names else f"index {list(index)}"
    return f"pixel values must be 0..{high}, but {where} holds {kind} {value!r}"


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset.

    Attributes
    ----------
    pretty : str
        Name shown in messages.
    folder : str
        Sub-folder searched under ``--data-dir``, ``$DRAW_STUDIO_DATA`` and the cache.
    files : tuple of str
        Files (each raw or ``.gz``) that must all be in a folder for it to hold the dataset.
    load : callable
        ``load(directory, part)`` reads part ``"train"`` or ``"test"`` (and ``"valid"``
        when ``has_validation_file``). It may return None for ``"test"``: the dataset
        then has no test part and the validation split stands in for it.
    download : callable or None
        ``download(directory)`` fetches ``files`` into ``directory``; None if it cannot.
    system_dirs : tuple of str
        Folders searched last, e.g. Debian's /usr/share/datasets/...
    has_validation_file : bool
        The dataset ships its own validation part (no split of the training part).
    derive : callable or None
        ``derive(source_split, split)`` builds this dataset's split from the same split
        of the dataset ``load`` reads (e.g. two-digit MNIST from MNIST).
    needs_data_dir : bool
        ``--data-dir`` is the dataset itself (a folder of images); nothing else is searched.
    hint : str
        Where to get the files by hand, added to the "not found" message.
    """

    pretty: str
    folder: str
    files: tuple[str, ...]
    load: Callable[[Path, str], ImageSet | None]
    download: Callable[[Path], None] | None = None
    system_dirs: tuple[str, ...] = ()
    has_validation_file: bool = False
    derive: Callable[[ImageSet, str], ImageSet] | None = None
    needs_data_dir: bool = False
    hint: str = ""
