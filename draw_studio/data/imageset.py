"""The two records every dataset module shares: :class:`ImageSet` and :class:`DatasetSpec`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


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
    """

    images: np.ndarray
    labels: np.ndarray | None
    binary: bool
    source: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageSet":
        """The images (and labels) at ``index`` (a slice, or an index array)."""
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.binary, self.source)


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
