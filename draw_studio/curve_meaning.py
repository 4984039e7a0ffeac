"""What a training log's curves mean: DRAW's bound and its terms, or an attention classifier's cross-entropy and error.

Both models write the same training-log format (:mod:`draw_studio.training_log`), but not the same
quantities. DRAW's ``history/loss`` is the bound L = L_x + L_z in nats per image, ``history/nll_x`` and
``history/kl`` its terms, and ``eval/bound`` the validation bound in nats per image. An attention
classifier's (:mod:`draw_studio.classifier_train`) ``history/loss`` and ``history/nll_x`` both hold the
training cross-entropy (nats per image), ``history/kl`` is 0, and ``eval/bound`` is the validation
error in percent; its model configuration says ``"kind": "classifier"``.

Every place that names a log's curves (the window's curves and runs table, ``draw-studio runs``, the
curves' CSV) asks :func:`log_kind` and names them from :data:`MEANINGS`. This module imports only the
standard library: the CSV's child process and ``draw-studio runs`` stay quick (``draw_studio.classifier``
imports torch).
"""

from __future__ import annotations

from dataclasses import dataclass

DRAW, CLASSIFIER = "draw", "classifier"
CLASSIFIER_KIND = "classifier"  # a classifier's model configuration's "kind" (draw_studio.classifier.CLASSIFIER_KIND)


@dataclass(frozen=True)
class CurveMeaning:
    """The names of a log's curves.

    Attributes
    ----------
    kind : str
        ``draw`` or ``classifier``.
    train : str
        The training curve (``history/loss``): ``bound L`` or ``cross-entropy``.
    train_unit : str
        Its unit.
    terms : bool
        ``history/nll_x`` and ``history/kl`` are curves of their own (DRAW's L_x and L_z); a classifier's
        repeat the loss and hold 0.
    valid : str
        The validation figure (``eval/bound``): ``bound L`` or ``validation error``.
    valid_unit : str
        Its unit: ``nats / image`` (the training curve's) or ``%`` (an axis of its own).
    """

    kind: str
    train: str
    train_unit: str
    terms: bool
    valid: str
    valid_unit: str

    @property
    def shares_axis(self) -> bool:
        """The validation figure is in the training curve's unit (one y axis holds both)."""
        return self.valid_unit == self.train_unit


MEANINGS = {
    DRAW: CurveMeaning(DRAW, "bound L", "nats / image", True, "bound L", "nats / image"),
    CLASSIFIER: CurveMeaning(CLASSIFIER, "cross-entropy", "nats / image", False, "validation error", "%"),
}


def log_kind(model_config) -> str:
    """``classifier`` for a log whose model configuration (a dict) is an attention classifier's, else ``draw``."""
    return CLASSIFIER if isinstance(model_config, dict) and model_config.get("kind") == CLASSIFIER_KIND else DRAW


def best_valid_text(kind: str, value: float | None) -> str:
    """A run's best validation figure as a short cell: ``84.91`` (a bound, nats) or ``3.36%`` (an error); ``-``
    for None."""
    if value is None:
        return "-"
    return f"{value:.2f}%" if kind == CLASSIFIER else f"{value:.2f}"
