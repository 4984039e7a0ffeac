"""The training curves' legend, a line above the plot: what every line is, for DRAW's log or an attention classifier's.

One run in detail: DRAW's bound L and its terms L_x and L_z (train), the validation bound and the
learning rate; an attention classifier's cross-entropy (train) and its validation error in percent
against the right axis (:mod:`draw_studio.curve_meaning`). Several runs (the runs overlay): the
colours are the runs', the line styles say which curve, and the runs not drawn are named.
"""

from __future__ import annotations

from ..curve_meaning import CLASSIFIER, DRAW

# curve name -> (history column, legend label, colour)
TRAIN_CURVES = {"bound": ("bound", "bound L (train)", "#4da6ff"),
                "nll_x": ("nll_x", "L_x (train)", "#ffb000"),
                "kl": ("kl", "L_z (train)", "#5ad17a")}
# an attention classifier's log: its one training curve (its L_x repeats it, its L_z is 0)
CLASSIFIER_CURVES = {"bound": ("bound", "cross-entropy (train), nats / image", "#4da6ff")}
# kind -> training curve name -> its name in the hover read-out
HOVER_LABELS = {DRAW: {name: label.split(" (")[0] for name, (_, label, _) in TRAIN_CURVES.items()},
                CLASSIFIER: {"bound": "cross-entropy"}}
VALID_COLOUR = "#ff5ad0"
LR_COLOUR = "#b0b0b0"
CLASSIFIER_ERROR = "validation error, % (right axis)"


def detail_legend(kind: str, lr: bool) -> str:
    """The legend of one run drawn in detail: a DRAW run's (``lr``: with its learning rate) or an attention
    classifier's (``kind``)."""
    if kind == CLASSIFIER:
        entries = [(colour, "━", label) for _, label, colour in CLASSIFIER_CURVES.values()]
        entries.append((VALID_COLOUR, "●", CLASSIFIER_ERROR))
    else:
        entries = [(colour, "━", label) for _, label, colour in TRAIN_CURVES.values()]
        entries.append((VALID_COLOUR, "●", "bound L (validation)"))
        if lr:
            entries.append((LR_COLOUR, "┅", "learning rate (right axis)"))
    return "&nbsp; ".join(f"<span style='color:{colour}'>{mark}</span>&nbsp;{label}" for colour, mark, label in entries)


def overlay_legend(kind: str, series: str, missing: list[str], others: list[str]) -> str:
    """The legend of several runs of ``kind`` drawn, ``series`` (e.g. ``bound L``) their training curve; ``missing``:
    runs the x axis cannot place; ``others``: runs of the other kind, not drawn."""
    if kind == CLASSIFIER:
        lines = f"━ cross-entropy (train, EMA) &nbsp; ┅● {CLASSIFIER_ERROR}"
    else:
        lines = f"━ {series} (train, EMA) &nbsp; ┅● bound L (validation)"
    other = "DRAW runs" if kind == CLASSIFIER else "attention classifiers"
    return f"<span>colour: run (Runs tab) &nbsp; {lines}</span>" + (
        f" &nbsp; <i>not on this axis: {', '.join(missing)}</i>" if missing else "") + (
        f" &nbsp; <i>not drawn ({other}: other quantities; tick them alone): {', '.join(others)}</i>" if others else "")
