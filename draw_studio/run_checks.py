"""Checks before a run starts: the files it would replace, the data it resumes on, the log it continues.

* A new run never starts over an existing run: an existing checkpoint at ``--out`` or log at its log
  path is refused unless ``--overwrite`` (or the run continues itself in place with ``--resume``).
* A resumed run checks the data against what its checkpoint records (dataset name, number of
  training images, a SHA-256 fingerprint of their pixels); a difference is refused unless
  ``--allow-data-change``. Checkpoints of older versions record no fingerprint: only the rest is
  checked, and a notice says so.
* A log is continued only by the run that wrote it (same ``run_id``; for checkpoints of older
  versions without one: the same model and data settings), so two runs' rows never mix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import DataError, DrawStudioError
from .files import same_file
from .training_log import TrainingLog
from .training_log_reader import read_training_log

SAME_RUN_SETTINGS = ("preset", "dataset", "seed", "batch_size", "validation_size")


def images_fingerprint(images: np.ndarray) -> str:
    """``"sha256:..."`` of an image array's dtype, shape and bytes (about 0.1 s for MNIST)."""
    array = np.ascontiguousarray(images)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8))
    return "sha256:" + digest.hexdigest()


def refuse_to_replace(out: Path | None, log: Path | None, continuing: Path | None = None) -> None:
    """Refuse a run that would replace an existing checkpoint or log (``--overwrite`` allows it).

    ``continuing``: a log this run continues (so it is not "replaced").
    """
    if out is not None and out.exists():
        raise DrawStudioError(
            f"{out} already exists: a new run would replace it at its first checkpoint. Continue that run with "
            f"--resume {out} --out {out}, replace it with --overwrite, or choose another --out")
    if log is not None and log.exists() and not same_file(log, continuing):
        raise DrawStudioError(
            f"{log} already exists (the training log of an earlier run, or another file): a new run would "
            "replace it. Replace it with --overwrite, choose another --out (or --log), or train without a log "
            "(--no-log)")


def check_resume_data(state: dict, source: str | Path, dataset: str, train_set, fingerprint: str,
                      allow_change: bool) -> tuple[list[str], bool]:
    """Compare the data of a resumed run with what its checkpoint records.

    Returns
    -------
    notices : list of str
        What the user should know (no fingerprint recorded, data changed knowingly).
    changed : bool
        The data differs (and ``allow_change`` let it through).

    Raises
    ------
    DataError
        The data differs and ``allow_change`` is false.
    """
    extra = state.get("extra") or {}
    saved_dataset = (state.get("train_config") or {}).get("dataset") or extra.get("dataset")
    problems = []
    if saved_dataset and saved_dataset != dataset:
        problems.append(f"it was trained on {saved_dataset}, this run asks for {dataset}")
    saved_count = extra.get("train_images")
    if isinstance(saved_count, int) and saved_count != len(train_set):
        problems.append(f"it was trained on {saved_count:,} training images, the data here has {len(train_set):,}")
    saved_fingerprint = extra.get("train_fingerprint")
    if not problems and isinstance(saved_fingerprint, str) and saved_fingerprint != fingerprint:
        problems.append("the training images differ from those it was trained on (same number, other pixels)")
    notices = []
    if problems:
        reason = "; ".join(problems)
        if not allow_change:
            raise DataError(f"refusing to resume {source} on other data: {reason} (data read from "
                            f"{train_set.source}); resume with the data it was trained on (--data-dir), or pass "
                            "--allow-data-change to continue on this data knowingly")
        notices.append(f"continuing {source} on other data (--allow-data-change): {reason}")
    if not isinstance(saved_fingerprint, str):
        counted = f" (their number, {saved_count:,}, matches)" if isinstance(saved_count, int) and not problems else ""
        notices.append(f"{source} records no fingerprint of its training images (written by an older DRAW "
                       f"Studio): the images themselves cannot be checked{counted}")
    return notices, bool(problems)


def same_run_as(state: dict) -> Callable[[TrainingLog], bool]:
    """Whether a log belongs to the run of checkpoint ``state`` (see the module documentation)."""
    run_id = (state.get("extra") or {}).get("run_id") or ""
    train = state.get("train_config") or {}

    def same(log: TrainingLog) -> bool:
        if run_id:
            return log.run_id == run_id
        return (same_model(log.model_config, state.get("model_config"))
                and all(log.train_config.get(key) == train.get(key) for key in SAME_RUN_SETTINGS))

    return same


def same_model(a: dict | None, b: dict | None) -> bool:
    """Whether two stored model configurations describe the same model."""
    try:
        return ModelConfig.from_dict(dict(a or {})) == ModelConfig.from_dict(dict(b or {}))
    except (DrawStudioError, TypeError, ValueError):
        return False


def continuable_log(log: Path | None, state: dict) -> Path | None:
    """``log`` if it is a readable training log of the same model as ``state`` (for ``--init-from``)."""
    if log is None or not log.is_file():
        return None
    try:
        old = read_training_log(log)
    except DrawStudioError:
        return None
    return log if same_model(old.model_config, state.get("model_config")) else None
