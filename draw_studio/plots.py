"""Learning-curve pictures (PNG) from training logs, with published numbers marked.

Uses matplotlib (the optional ``plot`` extra) with its Agg backend: no display,
no Qt, so it runs headless on a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classifier import is_classifier_config
from .errors import DrawStudioError
from .files import atomic_write
from .training_log_reader import read_training_log


@dataclass(frozen=True)
class Mark:
    """A published number drawn on the curve.

    Attributes
    ----------
    label : str
    bound : float
        Nats per image (for a classifier: its error in percent).
    epoch : float or None
        Where it was reached; None draws a horizontal line (a final result).
    classifier : bool
        An attention classifier's error (in percent), not a DRAW model's bound: it fits only a classifier's log.
    """

    label: str
    bound: float
    epoch: float | None = None
    classifier: bool = False


# MNIST test bounds, from Gregor et al. (2015), Table 2, and the public reproductions quoted in DRAW-NOTES.md.
MARKS = {
    "mnist-attention": (Mark("paper, DRAW with attention, test (Table 2): 80.97", 80.97),
                        Mark("public reproductions, test: ~90.5 after 100 epochs", 90.5, 100.0),
                        Mark("public reproductions, test: ~81.9 after ~300 epochs", 81.9, 300.0)),
    "mnist-noattention": (Mark("paper, DRAW without attention, test (Table 2): 87.40", 87.40),),
    # the attention classifier on 100x100 cluttered MNIST, Table 1 (its log's eval/bound is the error in percent)
    "cluttered-classifier": (Mark("paper, differentiable attention, 8 glimpses, test (Table 1): 3.36%", 3.36,
                                  classifier=True),),
}


def marks_problem(marks: tuple[Mark, ...], classifier: bool, log_path: str | Path) -> str | None:
    """Why ``marks`` do not fit the log at ``log_path`` (None if they do): a classifier's error on a DRAW
    model's bound axis, or DRAW bounds on a classifier's error axis.

    Parameters
    ----------
    marks : tuple of Mark
        The marks asked for.
    classifier : bool
        The log is an attention classifier's.
    log_path : str or Path
        The log, for the message.

    Returns
    -------
    str or None
        One line naming the problem and the marks that fit.
    """
    if all(mark.classifier == classifier for mark in marks):
        return None
    given = next((name for name, group in MARKS.items() if group == tuple(marks)), "asked for")
    fitting = " or ".join(sorted(name for name, group in MARKS.items()
                                 if all(mark.classifier == classifier for mark in group)))
    log_kind = "an attention classifier's" if classifier else "a DRAW model's"
    marks_kind = "DRAW's MNIST bounds" if classifier else "an attention classifier's error"
    return (f"the marks {given} are {marks_kind}, but {log_path} is {log_kind} training log; "
            f"use --marks {fitting}, or leave --marks out")


def learning_curve_png(log_path: str | Path, out: str | Path, steps_per_epoch: float | None = None,
                       marks: tuple[Mark, ...] = (), title: str = "", with_training: bool = True) -> Path:
    """Draw a run's validation bound (and smoothed training bound) against epochs into a PNG.

    The log of an attention classifier gives its validation error in percent instead, on a log axis
    (its training rows are cross-entropies, not drawn).

    Parameters
    ----------
    log_path : str or Path
        Training log (``X.log.h5``).
    out : str or Path
        PNG to write (atomically).
    steps_per_epoch : float, optional
        Optimiser steps per epoch; None puts steps on the x axis.
    marks : tuple of Mark
        Published numbers to mark, of the log's model kind.
    title : str
    with_training : bool
        Also draw the training-batch bound, averaged over windows of 1/10 epoch.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DrawStudioError
        No matplotlib, no validation rows in the log, or marks of another model kind (:func:`marks_problem`).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DrawStudioError("drawing a learning curve needs matplotlib: pip install 'draw-studio[plot]'") from None
    log = read_training_log(log_path)
    if len(log.eval_step) == 0:
        raise DrawStudioError(f"{log_path} holds no validation bounds; train with --validate-every N")
    scale = float(steps_per_epoch) if steps_per_epoch else 1.0
    unit = "epochs" if steps_per_epoch else "optimiser steps"
    classifier = is_classifier_config(log.model_config)
    problem = marks_problem(marks, classifier, log_path)
    if problem:
        raise DrawStudioError(problem)
    what, suffix = ("validation error", "%") if classifier else ("validation bound", "")
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    if with_training and len(log.step) and not classifier:
        window = max(int(scale / 10), 1) if steps_per_epoch else max(len(log.step) // 400, 1)
        usable = len(log.step) // window * window
        steps = log.step[:usable].reshape(-1, window).mean(axis=1)  # (windows,)
        losses = log.loss[:usable].reshape(-1, window).mean(axis=1)
        axes.plot(steps / scale, losses, color="#bbbbbb", linewidth=0.8, label="training batches (mean)")
    axes.plot(log.eval_step / scale, log.eval_bound, color="#1f77b4", linewidth=1.6,
              label=f"our run: {what}")
    best = int(np.argmin(log.eval_bound))
    axes.annotate(f"best {log.eval_bound[best]:.2f}{suffix}", (log.eval_step[best] / scale, log.eval_bound[best]),
                  textcoords="offset points", xytext=(-40, -18), fontsize=8, color="#1f77b4")
    colours = iter(["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"])
    for mark in marks:
        colour = next(colours, "black")
        if mark.epoch is None:
            axes.axhline(mark.bound, color=colour, linestyle="--", linewidth=1.0, label=mark.label)
        elif steps_per_epoch:
            axes.plot([mark.epoch], [mark.bound], marker="o", color=colour, linestyle="none", label=mark.label)
    if classifier:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        axes.set_yscale("log")
        low = min([float(log.eval_bound.min())] + [m.bound for m in marks]) / 1.3
        axes.set_ylim(low, 100)
        axes.set_yticks([t for t in (0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100) if t >= low])
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.set_ylabel("error, % (lower is better; log axis)")
    else:
        lowest = min([float(log.eval_bound.min())] + [m.bound for m in marks])
        top = max(lowest + 8, float(np.percentile(log.eval_bound, 90)) + 2)
        low = lowest - max(2.0, 0.07 * (top - lowest))  # room below the lowest point for the "best" label
        axes.set_ylim(low, top)
        axes.set_ylabel("bound, nats per image (lower is better)")
    axes.set_xlabel(unit)
    axes.set_title(title or Path(log_path).name, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    atomic_write(out, lambda temp: figure.savefig(temp, format="png"))
    plt.close(figure)
    return Path(out)
