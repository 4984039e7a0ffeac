"""Runs the open source's model for the panels: samples, reconstructions, and the first traces of a checkpoint;
for an attention classifier, what it makes of test images (:meth:`ModelService.classify`).

While the open source is a running training, the worker owns the model, so a trace is asked of it
(served between two steps); otherwise the document's model runs here, in the GUI thread (a few
images of a small network: well under a second). A trace asked of an earlier source is dropped
when it arrives after another source was opened.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..classify_trace import ClassifyTrace
from ..config import TrainConfig
from ..data import ImageSet, load_split, model_inputs
from ..errors import DrawStudioError
from ..model import DRAW
from ..trace import Trace, TraceInputs, record_trace
from .classifier_source import FIRST_COUNT, LoadedClassifier, classify_images
from .document import TRAINING, Document
from .loading import LoadedModel
from .training_controller import TrainingController

NO_MODEL = "no model: open a checkpoint or start training first"
# the core's fixes name command-line options; the window names its own fields instead
WINDOW_WORDS = ((re.compile(r"pass --data-dir (FOLDER|to a folder)"),
                 "set the data folder (Training panel) to a folder"),
                (re.compile(r"--data-dir was given"), "a data folder was given"),
                (re.compile(r"\(--data-dir\)"), "(the data folder)"),
                (re.compile(r"--data-dir (\S+) is"), r"the data folder \1 is"),
                (re.compile(r"--data-dir"), "the data folder (Training panel)"),
                (re.compile(r"pass a larger --steps \(or --epochs\)"), "set a larger 'steps' (Training panel)"),
                (re.compile(r"pass --steps \(or --epochs\) above 0"), "set 'steps' (Training panel) above 0"),
                (re.compile(r"use a smaller --batch-size"), "set a smaller 'batch size' (Training panel)"),
                (re.compile(r"Lower --lr \(or --grad-clip\)"), "Lower the 'learning rate' (Training panel)"),
                (re.compile(r"continue from its weights with --init-from instead of --resume"),
                 "untick 'continue this run' to start a new run from its weights"),
                (re.compile(r"pass another --log"), "choose another checkpoint file"),
                (re.compile(r"--resume"), "'continue this run'"),
                (re.compile(r"--overwrite"), "confirming the replacement"))


def window_wording(text: str) -> str:
    """A core message (written for the command line) in the window's words: ``--data-dir`` is the
    Training panel's data folder field, ``--steps`` its 'steps' field, and so on."""
    for pattern, words in WINDOW_WORDS:
        text = pattern.sub(words, text)
    return text


class ModelService(QObject):
    """The window's access to the open source's model and to the test images.

    Signals
    -------
    trace_ready(str, Trace) : purpose (``samples``, ``reconstructions``) and the trace, for the open source
    classification_ready(ClassifyTrace) : the open classifier's glimpses of the test images asked for
    message(str) : a line for the status bar (e.g. why a request failed)
    """

    trace_ready = Signal(str, object)
    classification_ready = Signal(object)
    message = Signal(str)

    def __init__(self, controller: TrainingController, document: Document, data_dir=lambda: None,
                 dataset=lambda: "mnist", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.document = document
        self.data_dir = data_dir  # callable: the data folder the Training panel names now
        self.dataset = dataset  # callable: the dataset of the run being trained (the form's, locked while it runs)
        self._test_cache: dict[tuple, ImageSet] = {}
        self._asked: dict[str, list[int]] = {}  # purpose -> the document generations asked for, in order
        controller.trace_ready.connect(self._on_worker_trace)
        controller.request_failed.connect(self._on_worker_failure)

    @property
    def model(self) -> DRAW | None:
        """The open source's model (None: it has none, or it is being trained)."""
        return self.document.model.model if self.document.model is not None else None

    @property
    def train_config(self) -> TrainConfig:
        """How the open source's model was trained (its dataset gives the test images)."""
        if self.document.model is not None:
            return self.document.model.train_config
        return TrainConfig(dataset=self.dataset())

    @property
    def available(self) -> bool:
        """A model can run now (the open source's, or the one being trained)."""
        return self.document.can_run_model

    @property
    def _from_worker(self) -> bool:
        return self.document.kind == TRAINING and self.document.live and self.controller.active

    # ------------------------------------------------------------------ images
    def test_images(self, config: TrainConfig | None = None) -> ImageSet:
        """The test split of the model's dataset (cached); never downloads."""
        config = config or self.train_config
        folder = self.data_dir() or None
        key = (config.dataset, folder, config.validation_size)
        if key not in self._test_cache:
            self._test_cache[key] = load_split(config.dataset, "test", folder, config.validation_size,
                                               download=False)
        return self._test_cache[key]

    def reconstruction_inputs(self, first: int, count: int, model_likelihood: str,
                              config: TrainConfig | None = None) -> TraceInputs:
        """Images ``first .. first+count-1`` of the test split as the model sees them."""
        config = config or self.train_config
        images = self.test_images(config)
        if not 0 <= first < len(images):
            raise DrawStudioError(f"test image #{first} does not exist: the {config.dataset} test split "
                                  f"has images 0..{len(images) - 1}")
        index = np.arange(first, min(first + count, len(images)))
        chosen = images.subset(index)
        pixels, _, _ = model_inputs(chosen, model_likelihood)
        return TraceInputs(images=pixels, labels=chosen.labels, source_index=index, source=f"{config.dataset}/test")

    # ------------------------------------------------------------------ requests
    def request_samples(self, seed: int, count: int = 16) -> None:
        """Record ``count`` samples from the prior with ``seed``; the trace arrives by ``trace_ready``."""
        self._run("samples", TraceInputs.prior(count, seed))

    def request_reconstructions(self, first: int, count: int) -> None:
        """Reconstruct test images ``first .. first+count-1``."""
        likelihood = self._likelihood()
        if likelihood is None:
            self.message.emit(self.document.lacks("reconstructions") or NO_MODEL)
            return
        try:
            inputs = self.reconstruction_inputs(first, count, likelihood)
        except DrawStudioError as exc:
            self.message.emit(window_wording(f"cannot reconstruct: {exc}"))
            return
        self._run("reconstructions", inputs)

    def _likelihood(self) -> str | None:
        if self._from_worker:
            config = self.controller.model_config
            return config.likelihood if config is not None else None
        return self.model.config.likelihood if self.model is not None else None

    def _run(self, purpose: str, inputs: TraceInputs) -> None:
        if self._from_worker and self.controller.request_trace(purpose, inputs):
            self._asked.setdefault(purpose, []).append(self.document.generation)
            return
        if self.model is None:
            self.message.emit(self.document.lacks("samples") or NO_MODEL)
            return
        try:
            trace = self.record(inputs)
        except DrawStudioError as exc:
            self.message.emit(f"{purpose}: {exc}")
            return
        self.trace_ready.emit(purpose, trace)

    def _on_worker_trace(self, purpose: str, trace: Trace) -> None:
        """A trace the worker recorded: passed on only if the source it was asked for is still open."""
        asked = self._asked.get(purpose)
        if asked and asked.pop(0) == self.document.generation:  # the worker serves requests in order
            self.trace_ready.emit(purpose, trace)

    def _on_worker_failure(self, purpose: str, text: str) -> None:
        asked = self._asked.get(purpose)
        if asked:
            asked.pop(0)
        self.message.emit(window_wording(f"{purpose}: {text}"))

    def record(self, inputs: TraceInputs, loaded: LoadedModel | None = None) -> Trace:
        """Record a trace of ``inputs`` with ``loaded`` (default: the open source's model), here and now."""
        loaded = loaded or self.document.model
        if loaded is None:
            raise DrawStudioError(NO_MODEL)
        return record_trace(loaded.model, inputs, checkpoint_sha256=loaded.sha256)

    def first_traces(self, loaded: LoadedModel, samples: int = 16,
                     reconstructions: int = 8) -> tuple[list[Trace], str]:
        """Samples and, when the test images are found, reconstructions of ``loaded``; with why there
        are no reconstructions ("" when there are)."""
        traces = [self.record(TraceInputs.prior(samples), loaded)]
        try:
            inputs = self.reconstruction_inputs(0, reconstructions, loaded.model.config.likelihood,
                                                loaded.train_config)
            traces.append(self.record(inputs, loaded))
        except DrawStudioError as exc:
            return traces, window_wording(f"no reconstructions: {exc}")
        return traces, ""


    # ------------------------------------------------------------------ an attention classifier
    def classify(self, loaded: LoadedClassifier, first: int, count: int) -> ClassifyTrace:
        """``loaded``'s glimpses of test images ``first .. first+count-1`` of its dataset, here and now.

        Raises
        ------
        DrawStudioError
            The test images are not found (never downloaded here) or do not fit the classifier.
        """
        images = self.test_images(loaded.train_config)
        return classify_images(loaded, images, first, count, f"{loaded.train_config.dataset}/test")

    def first_classification(self, loaded: LoadedClassifier,
                             count: int = FIRST_COUNT) -> tuple[ClassifyTrace | None, str]:
        """The first ``count`` test images classified by ``loaded``, or None and why not (in the window's words)."""
        try:
            return self.classify(loaded, 0, count), ""
        except DrawStudioError as exc:
            return None, window_wording(f"no test images to classify: {exc}")

    def request_classification(self, first: int, count: int) -> None:
        """Classify test images ``first .. first+count-1`` with the open classifier; the result arrives by
        ``classification_ready`` (a failure is a status line)."""
        loaded = self.document.classifier
        if loaded is None:
            self.message.emit(self.document.lacks("classification") or
                              "no classifier to run: open a classifier checkpoint")
            return
        try:
            classification = self.classify(loaded, first, count)
        except DrawStudioError as exc:
            self.message.emit(window_wording(f"cannot classify: {exc}"))
            return
        self.classification_ready.emit(classification)


def default_data_dir() -> str:
    """A sensible first data folder: $DRAW_STUDIO_DATA, else ../shared/data next to the working folder."""
    import os

    env = os.environ.get("DRAW_STUDIO_DATA")
    if env:
        return env
    shared = Path.cwd().parent / "shared" / "data"
    return str(shared) if shared.is_dir() else ""
