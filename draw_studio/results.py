"""A model's results beside the published ones: its test bound and importance-weighted bounds.

:func:`model_results` computes, on the first ``n`` test images, the variational bound and the
importance-weighted bound (Burda et al.) for each K asked for (default 1, 10, 100, 1000), as a
generator of :class:`ResultsProgress` (so the window can run it in the background and show
progress); :data:`PUBLISHED` holds the paper's and the public reproductions' rows, each with its
binarisation; :func:`results_markdown` writes them all as a Markdown table
(``draw-studio results CKPT --images N --k 1,10,100,1000 --markdown FILE``).

The numbers are those of ``draw-studio eval`` on the same images and seed: the bound is
``eval --limit N``'s, the K >= 2 rows ``eval --limit N --importance-samples K``'s (same batches, same
noise). K = 1 is the one-sample importance-weighted estimate of the variational bound (a sampled KL
instead of the bound's analytic one): equal to the bound in expectation, within noise on N images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import load_model
from .config import TrainConfig
from .data import load_split, model_inputs
from .device import resolve_device
from .errors import DrawStudioError
from .evaluate import evaluate_in_parts
from .files import atomic_write
from .model import DRAW

DEFAULT_KS = (1, 10, 100, 1000)
SALAKHUTDINOV_MURRAY = "fixed binarisation of Salakhutdinov & Murray (2008)"


@dataclass(frozen=True)
class ResultRow:
    """One line of a results table.

    Attributes
    ----------
    model : str
        Whose number it is (ours: the checkpoint's name and step).
    measure : str
        ``"bound"`` or ``"IW bound, K=10"`` ...
    nats : float
        Nats per image, lower is better; for published rows the number as published.
    images : str
        Which images it was measured on (e.g. ``"first 1,000 mnist test images"``).
    binarisation : str
        How the pixels were made binary.
    note : str
        Anything else (e.g. "after 100 epochs", "approximate").
    published : bool
        A published number, not one measured here.
    """

    model: str
    measure: str
    nats: float
    images: str
    binarisation: str
    note: str = ""
    published: bool = False


PUBLISHED = (
    ResultRow("DRAW with attention, Gregor et al. 2015 (Table 2)", "bound", 80.97, "MNIST test set",
              SALAKHUTDINOV_MURRAY, "<= 80.97", True),
    ResultRow("DRAW without attention, Gregor et al. 2015 (Table 2)", "bound", 87.40, "MNIST test set",
              SALAKHUTDINOV_MURRAY, "<= 87.40", True),
    ResultRow("public reproductions, with attention (DRAW-NOTES)", "bound", 90.5, "MNIST test set",
              "not stated by the reproductions", "~90.5 after 100 epochs", True),
    ResultRow("public reproductions, with attention (DRAW-NOTES)", "bound", 81.9, "MNIST test set",
              "not stated by the reproductions", "~81.9 after ~300 epochs", True),
)
PUBLISHED_DATASETS = ("mnist", "binarized-mnist")  # the published rows are MNIST numbers


@dataclass
class ResultsProgress:
    """Where :func:`model_results` stands.

    Attributes
    ----------
    fraction : float
        Share of the work done, 0 to 1 (forward passes weighted by their images x samples).
    stage : str
        What is being computed (``"bound"``, ``"K=10"`` ...).
    images_done, images_total : int
        Images done in this stage, and its images.
    rows : list of ResultRow
        Our rows finished so far (all of them once ``finished``).
    finished : bool
    """

    fraction: float
    stage: str
    images_done: int
    images_total: int
    rows: list[ResultRow] = field(default_factory=list)
    finished: bool = False


def binarisation_text(binarization: str, seed: int | None, split: str = "test") -> str:
    """How the pixels were binarised, in words (from ``data.model_inputs``'s ``binarization`` and seed)."""
    if binarization == "fixed":
        return f"fixed binarisation of the {split} split (numpy PCG64, seed {seed})"
    if binarization == "given":
        return "the dataset's own binary pixels"
    return "none: 256 grey levels (discretised logistic)"


def model_results(model: DRAW, pixels: np.ndarray, ks: Sequence[int] = DEFAULT_KS, *, name: str = "ours",
                  images: str = "", binarisation: str = "", batch_size: int = 500,
                  seed: int = 0) -> Iterator[ResultsProgress]:
    """Compute a model's bound and importance-weighted bounds on ``pixels``, yielding progress.

    Parameters
    ----------
    model : DRAW
    pixels : ndarray, shape (n, C, H, W)
        The images as the model sees them, in [0, 1] (``data.model_inputs``).
    ks : sequence of int
        Samples K of the importance-weighted bounds (each >= 1).
    name, images, binarisation : str
        For the rows (``model``, ``images``, ``binarisation``).
    batch_size : int
        Images per forward pass (divided by K for the weighted bounds, as ``draw-studio eval``).
    seed : int
        Seed of the posterior noise (``draw-studio eval --seed``).

    Yields
    ------
    ResultsProgress
        After every forward pass; the last one has ``finished`` and every row: the bound, then one row
        per K in the order given.

    Raises
    ------
    DrawStudioError
        No image, or a K below 1; a non-finite result (a diverged model).
    """
    ks = [int(k) for k in ks]
    if len(pixels) == 0:
        raise DrawStudioError("no image to evaluate; ask for at least one image")
    if any(k < 1 for k in ks):
        raise DrawStudioError(f"importance samples K must be at least 1, got {min(ks)}")
    n = len(pixels)
    # the bound comes from the K = 1 pass when there is one (same batches and noise as a pass without K)
    stages = ([] if 1 in ks else [0]) + ks
    costs = [n * (1 + k) for k in stages]
    done_cost, rows, by_k = 0.0, [], {}
    for k, cost in zip(stages, costs):
        label = f"K={k}" if k else "bound"
        totals = {}
        for totals in evaluate_in_parts(model, pixels, batch_size, seed, k):
            fraction = (done_cost + cost * totals["images"] / n) / sum(costs)
            yield ResultsProgress(fraction, label, totals["images"], n, list(rows))
        done_cost += cost
        if k in (0, 1):
            rows.append(_row(name, "bound", totals["bound"] / n, images, binarisation))
        if k:
            by_k[k] = _row(name, f"IW bound, K={k}", totals["iw"] / n, images, binarisation,
                           "one-sample estimate of the bound" if k == 1 else "")
    rows += [by_k[k] for k in ks]
    bad = [row for row in rows if not np.isfinite(row.nats)]
    if bad:
        raise DrawStudioError(f"{name} gives a non-finite {bad[0].measure} ({bad[0].nats}) on {n} images: its "
                              "weights have diverged; evaluate an earlier checkpoint")
    yield ResultsProgress(1.0, "done", n, n, rows, finished=True)


def checkpoint_results(checkpoint: str | Path, images: int = 1000, ks: Sequence[int] = DEFAULT_KS, *,
                       split: str = "test", data_dir: str | None = None, download: bool = True,
                       device: str = "auto", batch_size: int = 500,
                       seed: int = 0) -> Iterator[ResultsProgress]:
    """:func:`model_results` of a checkpoint on the first ``images`` images of its dataset's ``split``
    (0: all), as ``draw-studio eval`` sees them (a Bernoulli model: the split's fixed binarisation).

    Raises
    ------
    DrawStudioError
        An unreadable checkpoint, missing data, images of another size.
    """
    device = resolve_device(device)
    model, state = load_model(checkpoint, device)
    train = TrainConfig.from_dict(state.get("train_config") or {})
    dataset = train.dataset
    chosen = load_split(dataset, split, data_dir, train.validation_size, download)
    if images:
        chosen = chosen.subset(slice(0, images))
    cfg = model.config
    if chosen.shape != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"{dataset} images are {chosen.shape}, {checkpoint} expects "
                              f"{(cfg.channels, cfg.height, cfg.width)}")
    pixels, binarization, bin_seed = model_inputs(chosen, cfg.likelihood)
    name = f"ours, {Path(checkpoint).stem} (step {int(state.get('step', 0)):,})"
    where = f"{'first ' if images else 'all '}{len(pixels):,} {dataset} {split} images"
    yield from model_results(model, pixels, ks, name=name, images=where,
                             binarisation=binarisation_text(binarization, bin_seed, split), batch_size=batch_size,
                             seed=seed)


def published_rows(dataset: str = "mnist") -> list[ResultRow]:
    """The published rows to show beside a model trained on ``dataset`` (none for other datasets)."""
    return list(PUBLISHED) if dataset in PUBLISHED_DATASETS else []


def results_markdown(rows: Sequence[ResultRow]) -> str:
    """The rows as a Markdown table (nats per image; published rows as published)."""
    lines = ["| model | measure | nats per image | images | binarisation |", "|---|---|---|---|---|"]
    for row in rows:
        value = row.note if row.published else f"{row.nats:.2f}"
        measure = row.measure + (f" ({row.note})" if row.note and not row.published else "")
        lines.append(f"| {_cell(row.model)} | {_cell(measure)} | {_cell(value)} | {_cell(row.images)} | "
                     f"{_cell(row.binarisation)} |")
    return "\n".join(lines) + "\n"


def write_results_markdown(path: str | Path, rows: Sequence[ResultRow]) -> None:
    """Write :func:`results_markdown` of ``rows`` to ``path`` (atomically)."""
    text = results_markdown(rows)
    atomic_write(path, lambda temp: Path(temp).write_text(text))


def _row(name: str, measure: str, nats: float, images: str, binarisation: str, note: str = "") -> ResultRow:
    return ResultRow(name, measure, float(nats), images, binarisation, note)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")
