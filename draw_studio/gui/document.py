"""What is open: one source (a checkpoint, a training run, a trace file, a training log, an attention
classifier's checkpoint or a classify trace) and what every panel shows of it.

Opening anything replaces the whole document (:meth:`Document.open` emits ``source_changed``):
no panel keeps a trace, a total or a range of the previous source. Panels draw only from here, and
say what a source lacks with :meth:`Document.lacks`.

An attention classifier (a classifier checkpoint, or a classify trace file) is shown through
:attr:`Document.classification` (a :class:`~draw_studio.classify_trace.ClassifyTrace`): the steps are
its glimpses 1..T, the images those it classified. It has no DRAW trace, no samples, no latents and
no KL; the panels that show those say so (:meth:`Document.lacks`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..classify_trace import ClassifyTrace
from ..trace import Trace
from ..trace_checks import displayable, nonfinite_fields
from .classifier_source import LoadedClassifier
from .loading import LoadedModel

NOTHING, CHECKPOINT, TRAINING, TRACE_FILE, LOG_FILE = "nothing", "checkpoint", "training", "trace", "log"
CLASSIFIER, CLASSIFY_TRACE = "classifier", "classify"
CLASSIFIER_KINDS = (CLASSIFIER, CLASSIFY_TRACE)
KIND_NAMES = {NOTHING: "nothing open", CHECKPOINT: "model checkpoint", TRAINING: "training run",
              TRACE_FILE: "trace file", LOG_FILE: "training log", CLASSIFIER: "classifier checkpoint",
              CLASSIFY_TRACE: "classify trace"}
OPEN_SOMETHING = "open a checkpoint, a trace or a training log, or start training"
NOT_CLASSIFIED = "no images classified: the Gallery says why"  # short, for image panes; the long reason: lacks()
# why an attention classifier's training log shows no class probabilities (its classification_note)
CLASSIFIER_LOG_NOTE = "a training log has no model: open its checkpoint to see the classifier's class probabilities"
# what an attention classifier lacks, per quantity a DRAW panel shows
CLASSIFIER_LACKS = {
    "samples": "an attention classifier draws nothing: no samples from a prior",
    "reconstructions": "an attention classifier draws nothing: no reconstructions",
    "trace": "an attention classifier has no canvas, latents or KL: it only reads (glimpses, class probabilities)",
    "kl": "an attention classifier has no latents, so no KL per step",
    "heatmap": "an attention classifier has no KL per step",
}


class Document(QObject):
    """The open source and the selection every panel follows.

    ``step`` runs 0..T: the number of DRAW steps done. The canvas shown at ``step`` is c_step; a
    per-step quantity (KL, latents, glimpses, attention) of that step has index ``step - 1`` in
    the trace (the paper's t = step), and there is none at step 0.

    Attributes
    ----------
    kind : str
        ``nothing``, ``checkpoint``, ``training``, ``trace``, ``log``, ``classifier`` (an attention
        classifier's checkpoint) or ``classify`` (a classify trace file).
    path : str or None
        The file opened, or the checkpoint a training run writes (None: none).
    model : LoadedModel or None
        The model that can run (a checkpoint's, or a training run's once it has finished).
    live : bool
        A training run whose worker is running: samples and reconstructions are asked of it.
    log_path : str or None
        The training log shown with the source (opened, or found beside the checkpoint).
    samples, reconstructions : Trace or None
        The traces derived from the source (generated, and of test or validation images).
    trace : Trace or None
        The trace every panel shows (one of the two above).
    kl_history : list of (int, ndarray (T,))
        A training run's mean KL per step of each live trace, with its training step.
    classifier : LoadedClassifier or None
        An opened classifier checkpoint's model (it classifies more test images on request).
    classification : ClassifyTrace or None
        What an attention classifier did: glimpses and class probabilities of some images.
    classification_note : str
        Why a classifier shows no classification ("" when it does).
    model_steps : int
        T of the source's model (0 when unknown).
    generation : int
        Bumped by every :meth:`open`: a result asked of an earlier source is dropped.

    Signals
    -------
    source_changed : another source was opened (everything must redraw)
    traces_changed : the samples or reconstructions were replaced
    trace_changed : the shown trace was replaced
    image_changed(int) : another image of the trace was selected
    step_changed(int) : the step moved
    """

    source_changed = Signal()
    traces_changed = Signal()
    trace_changed = Signal()
    image_changed = Signal(int)
    step_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self._reset()

    def _reset(self) -> None:
        self.kind = NOTHING
        self.path: str | None = None
        self.model: LoadedModel | None = None
        self.live = False
        self.log_path: str | None = None
        self.samples: Trace | None = None
        self.reconstructions: Trace | None = None
        self.trace: Trace | None = None
        self.kl_history: list[tuple[int, np.ndarray]] = []
        self.model_steps = 0
        self.image_index = 0
        self.step = 0
        self.display_note = ""  # what was changed to draw a trace (non-finite values), else ""
        self.reconstructions_note = ""  # why a model's reconstructions are missing, else ""
        self.classifier: LoadedClassifier | None = None
        self.classification: ClassifyTrace | None = None
        self.classification_note = ""  # why a classifier shows no classification, else ""

    # ------------------------------------------------------------------ the source
    def open(self, kind: str, path: str | Path | None = None, model: LoadedModel | None = None,
             log_path: str | Path | None = None, traces: tuple[Trace, ...] | list[Trace] = (),
             model_steps: int = 0, live: bool = False, reconstructions_note: str = "",
             classifier: LoadedClassifier | None = None, classification: ClassifyTrace | None = None,
             classification_note: str = "") -> None:
        """Replace everything by a new source; the last of ``traces`` is shown, on its last step.

        ``reconstructions_note`` says why a model's reconstructions are missing (e.g. no test images).
        An attention classifier comes as ``classifier`` (a checkpoint's) and/or ``classification`` (shown
        on its last glimpse: the answer), or ``classification_note`` saying why there is none.
        """
        self.generation += 1
        self._reset()
        self.kind = kind
        self.path = str(path) if path is not None else None
        self.model = model
        self.live = live
        self.log_path = str(log_path) if log_path is not None else None
        self.model_steps = int(model_steps or (model.model.config.steps if model is not None else 0))
        self.classifier = classifier
        if classifier is not None and not self.model_steps:
            self.model_steps = classifier.model.config.steps
        if classification is not None:
            self.classification = classification
            self.model_steps = self.model_steps or classification.steps
            self.step = classification.steps
        else:
            self.classification_note = classification_note
        for trace in traces:
            self._keep(trace)
        if self.reconstructions is None:
            self.reconstructions_note = reconstructions_note
        shown = list(traces)
        if shown:
            current = self.samples if shown[-1].mode == "generate" else self.reconstructions
            self._show(current, 0, current.steps)
        self.source_changed.emit()
        self.traces_changed.emit()
        self.trace_changed.emit()

    @property
    def kind_name(self) -> str:
        """``model checkpoint``, ``training run``, ``trace file``, ``training log`` or ``nothing open``."""
        return KIND_NAMES[self.kind]

    def describe(self) -> str:
        """The source in words: its kind and file name (a training run: the checkpoint it writes)."""
        if self.kind == NOTHING:
            return KIND_NAMES[NOTHING]
        if self.kind == TRAINING:
            return f"training run → {self.path}" if self.path else "training run (no checkpoint file)"
        if self.path is None and self.model is not None:
            return self.model.description
        return f"{self.kind_name} {Path(self.path).name}" if self.path else self.kind_name

    def window_title(self) -> str:
        return "DRAW Studio" if self.kind == NOTHING else f"DRAW Studio — {self.describe()}"

    @property
    def is_classifier(self) -> bool:
        """The source is an attention classifier (its checkpoint or a classify trace)."""
        return self.kind in CLASSIFIER_KINDS

    @property
    def can_run_model(self) -> bool:
        """Samples and reconstructions can be recorded (a loaded model, or a running training)."""
        return self.model is not None or (self.kind == TRAINING and self.live)

    # ------------------------------------------------------------------ what the source lacks
    def lacks(self, what: str) -> str:
        """Why this source shows no ``samples``, ``reconstructions``, ``trace``, ``kl`` or ``heatmap`` ("" if it can).

        One wording for every panel, naming what to do instead.
        """
        kind, can_run = self.kind, self.can_run_model
        if kind == NOTHING:
            return OPEN_SOMETHING
        if what == "classification":
            return self._lacks_classification()
        if kind in CLASSIFIER_KINDS and what in CLASSIFIER_LACKS:
            return CLASSIFIER_LACKS[what]
        if kind == LOG_FILE and self.classification_note:  # an attention classifier's training log
            if what == "trace":
                return "a training log has no model: open its checkpoint to see the classifier's glimpses"
            if what in CLASSIFIER_LACKS:
                return CLASSIFIER_LACKS[what]
        if kind == LOG_FILE and what in ("samples", "reconstructions"):
            return "a training log has no model: open its checkpoint to see samples"
        if kind == LOG_FILE and what in ("trace", "kl"):
            return "a training log has no model: open its checkpoint to see its traces"
        if what == "samples":
            if self.samples is not None:
                return ""
            if can_run:
                return "no samples yet: press New samples"
            if kind == TRACE_FILE:
                return "this trace file holds reconstructions only: open its checkpoint to draw samples"
            return "no model to sample from: the run stopped before it had one"
        if what == "reconstructions":
            if self.reconstructions is not None:
                return ""
            if self.reconstructions_note:
                return self.reconstructions_note
            if kind == TRAINING and self.live:
                return "reconstructions of validation images come with the first live trace"
            if can_run:
                return "no reconstructions yet: choose test images and press Reconstruct"
            if kind == TRACE_FILE:
                return ("a generated trace has no posterior: this trace file holds samples only; open its "
                        "checkpoint to reconstruct test images")
            return "no model to reconstruct with: the run stopped before it had one"
        if what == "trace":
            if self.trace is not None:
                return ""
            if kind == TRAINING and self.live:
                return "the first live trace of this run comes within seconds"
            return "no trace to show: " + (self.lacks("reconstructions") or self.lacks("samples"))
        if what == "kl":
            trace = self.trace
            if trace is None:
                return self.lacks("trace")
            if trace.kl is not None:
                return ""
            then = "reconstruct images (Gallery) to see it" if can_run else \
                "open its checkpoint and reconstruct images to see it"
            return f"a generated trace has no posterior, so no KL per step: {then}"
        if what == "heatmap":
            if kind == TRAINING:
                return "" if self.kl_history else "fills in with this run's live traces"
            if kind == LOG_FILE:
                return "a training log keeps no KL per step"
            return "fills in while training runs"
        raise ValueError(f"unknown quantity {what!r}")

    def _lacks_classification(self) -> str:
        """Why no glimpses and class probabilities of a classifier are shown ("" when they are)."""
        if self.classification is not None:
            return ""
        if self.kind in CLASSIFIER_KINDS or self.classification_note:  # a note: e.g. a classifier's training log
            return self.classification_note or "no images classified yet: press Classify (Gallery)"
        return ("a DRAW model does not classify: open an attention classifier's checkpoint or classify trace to "
                "see class probabilities")

    # ------------------------------------------------------------------ traces of the source
    def _keep(self, trace: Trace) -> Trace:
        """Keep ``trace`` (drawable: non-finite values of a diverged model made 0) as samples or reconstructions."""
        shown = displayable(trace)
        if shown is not trace:
            self.display_note = (f"this trace holds non-finite values ({', '.join(nonfinite_fields(trace))}): the "
                                 "model has diverged; they are shown as 0 and their attention windows are not drawn")
        if shown.mode == "generate":
            self.samples = shown
        else:
            self.reconstructions = shown
            self.reconstructions_note = ""
        if not self.model_steps:
            self.model_steps = shown.steps
        return shown

    def add_trace(self, trace: Trace, show: bool = True, image_index: int | None = 0,
                  replace_shown: bool = True) -> Trace:
        """Keep a trace derived from this source (samples or reconstructions).

        It is shown (on image ``image_index``, None: the same index) if ``show``, if nothing is shown,
        or if ``replace_shown`` and it replaces the shown trace. Returns the kept (drawable) trace.
        """
        replaced = self.samples if trace.mode == "generate" else self.reconstructions
        kept = self._keep(trace)
        self.traces_changed.emit()
        if show or self.trace is None or (replace_shown and self.trace is replaced):
            self.set_trace(kept, image_index=image_index if show else None)
        return kept

    def set_model_steps(self, steps: int) -> None:
        """T of the source's model, once known (a training run's, when its trainer is built)."""
        if int(steps) != self.model_steps:
            self.model_steps = int(steps)
            self.traces_changed.emit()

    def finish_run(self, model: LoadedModel | None) -> None:
        """The training run shown here has ended; ``model`` (the trained one, if any) runs from now on."""
        if self.kind != TRAINING:
            return
        self.live = False
        self.model = model
        if model is not None and not self.model_steps:
            self.model_steps = model.model.config.steps
        self.traces_changed.emit()

    def add_kl_row(self, training_step: int, trace: Trace) -> None:
        """Keep the mean KL per step (T,) of a training run's live trace recorded at ``training_step``."""
        if trace.kl is None:
            return
        row = trace.kl.mean(axis=0)  # (T,)
        if self.kl_history and len(self.kl_history[0][1]) != len(row):
            self.kl_history.clear()
        self.kl_history.append((int(training_step), row))
        self.model_steps = len(row)
        self.traces_changed.emit()

    # ------------------------------------------------------------------ the selection
    @property
    def steps(self) -> int:
        """T of the shown trace or classification (0 without either)."""
        if self.trace is not None:
            return self.trace.steps
        return self.classification.steps if self.classification is not None else 0

    @property
    def first_step(self) -> int:
        """The first step the timeline shows: 0 (c_0, nothing done yet) for DRAW, 1 (the first glimpse) for a
        classifier, which has nothing to show before it has read."""
        return 1 if self.classification is not None and self.trace is None else 0

    @property
    def image_count(self) -> int:
        """Images of the shown trace or classification (0 without either)."""
        shown = self.trace if self.trace is not None else self.classification
        return shown.n if shown is not None else 0

    def _show(self, trace: Trace | None, image_index: int, step: int) -> None:
        self.trace = trace
        if trace is None:
            self.image_index = self.step = 0
            return
        self.image_index = min(max(int(image_index), 0), trace.n - 1)
        self.step = min(max(int(step), 0), trace.steps)

    def set_trace(self, trace: Trace, image_index: int | None = None, step: int | None = None) -> None:
        """Show ``trace``; keep the image and step where they still exist unless given (the first trace
        of a source opens on its result)."""
        first = self.trace is None
        index = self.image_index if image_index is None else image_index
        if step is None:
            step = trace.steps if first else self.step
        self._show(trace, index, step)
        self.trace_changed.emit()

    def set_classification(self, classification: ClassifyTrace, image_index: int = 0) -> None:
        """Show another classification of the open classifier (e.g. other test images), on its last glimpse."""
        if self.kind not in CLASSIFIER_KINDS:
            return
        self.classification = classification
        self.classification_note = ""
        self.image_index = min(max(int(image_index), 0), classification.n - 1)
        self.step = classification.steps
        self.traces_changed.emit()
        self.trace_changed.emit()

    def set_image(self, index: int) -> None:
        """Select image ``index`` of the current trace (or classification)."""
        if self.image_count == 0:
            return
        index = min(max(int(index), 0), self.image_count - 1)
        if index != self.image_index:
            self.image_index = index
            self.image_changed.emit(index)

    def set_step(self, step: int) -> None:
        """Move to ``step`` (clamped to 0..T; 1..T for a classifier's glimpses)."""
        step = min(max(int(step), self.first_step), self.steps)
        if step != self.step:
            self.step = step
            self.step_changed.emit(step)
