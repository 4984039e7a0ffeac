"""Runs the current model for the panels: samples, reconstructions, and the first traces of a file.

While training runs the worker owns the model, so a trace is asked of it
(served between two steps); otherwise the model runs here, in the GUI thread
(a few images of a small network: well under a second).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..config import TrainConfig
from ..data import ImageSet, load_split, model_inputs
from ..errors import DrawStudioError
from ..model import DRAW
from ..trace import Trace, record_trace
from .training_controller import TrainingController
from .worker import TraceRequest


class ModelService(QObject):
    """The window's access to a model and to the test images.

    Signals
    -------
    trace_ready(str, Trace) : purpose (``samples``, ``reconstructions``) and the trace
    message(str) : a line for the status bar (e.g. why a request failed)
    """

    trace_ready = Signal(str, object)
    message = Signal(str)

    def __init__(self, controller: TrainingController, data_dir=lambda: None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.data_dir = data_dir  # callable: the data folder the Training panel names now
        self.model: DRAW | None = None
        self.train_config = TrainConfig()
        self.checkpoint_sha256 = ""
        self._test_cache: dict[tuple, ImageSet] = {}
        controller.trace_ready.connect(self.trace_ready)
        controller.request_failed.connect(lambda purpose, text: self.message.emit(f"{purpose}: {text}"))

    @property
    def available(self) -> bool:
        """A model can run now (a loaded one, or the one being trained)."""
        return self.model is not None or self.controller.active

    def set_model(self, model: DRAW | None, train_config: TrainConfig | None = None, sha256: str = "") -> None:
        """Use ``model`` (on any device) from now on; None: no model."""
        self.model = model
        self.train_config = train_config or TrainConfig()
        self.checkpoint_sha256 = sha256

    # ------------------------------------------------------------------ images
    def test_images(self, dataset: str | None = None) -> ImageSet:
        """The test split of the model's dataset (cached); never downloads."""
        dataset = dataset or self.train_config.dataset
        folder = self.data_dir() or None
        key = (dataset, folder, self.train_config.validation_size)
        if key not in self._test_cache:
            self._test_cache[key] = load_split(dataset, "test", folder, self.train_config.validation_size,
                                               download=False)
        return self._test_cache[key]

    def reconstruction_request(self, first: int, count: int, model_likelihood: str) -> TraceRequest:
        """Images ``first .. first+count-1`` of the test split as the model sees them."""
        images = self.test_images()
        if not 0 <= first < len(images):
            raise DrawStudioError(f"test image #{first} does not exist: the {self.train_config.dataset} test split "
                                  f"has images 0..{len(images) - 1}")
        index = np.arange(first, min(first + count, len(images)))
        chosen = images.subset(index)
        pixels, _, _ = model_inputs(chosen, model_likelihood)
        return TraceRequest("reconstructions", images=pixels, labels=chosen.labels, source_index=index,
                            source=f"{self.train_config.dataset}/test")

    # ------------------------------------------------------------------ requests
    def request_samples(self, seed: int, count: int = 16) -> None:
        """Record ``count`` samples from the prior with ``seed``; the trace arrives by ``trace_ready``."""
        self._run(TraceRequest("samples", generate_n=count, seed=seed, source="prior"))

    def request_reconstructions(self, first: int, count: int) -> None:
        """Reconstruct test images ``first .. first+count-1``."""
        likelihood = self._likelihood()
        if likelihood is None:
            self.message.emit("no model: open a checkpoint or start training first")
            return
        try:
            request = self.reconstruction_request(first, count, likelihood)
        except DrawStudioError as exc:
            self.message.emit(f"cannot reconstruct: {exc}")
            return
        self._run(request)

    def _likelihood(self) -> str | None:
        if self.controller.active:
            config = self.controller.model_config
            return config.likelihood if config is not None else None
        return self.model.config.likelihood if self.model is not None else None

    def _run(self, request: TraceRequest) -> None:
        if self.controller.request_trace(request):
            return
        if self.model is None:
            self.message.emit("no model: open a checkpoint or start training first")
            return
        try:
            trace = self.record(request)
        except DrawStudioError as exc:
            self.message.emit(f"{request.purpose}: {exc}")
            return
        self.trace_ready.emit(request.purpose, trace)

    def record(self, request: TraceRequest) -> Trace:
        """Record ``request`` with the loaded model, here and now."""
        return record_trace(self.model, request.images, request.labels, request.generate_n, request.seed,
                            checkpoint_sha256=self.checkpoint_sha256, source=request.source,
                            source_index=request.source_index)

    def first_traces(self, samples: int = 16, reconstructions: int = 8) -> list[tuple[str, Trace]]:
        """Samples and, when the test images are found, reconstructions of the loaded model."""
        traces = [("samples", self.record(TraceRequest("samples", generate_n=samples, seed=0, source="prior")))]
        try:
            request = self.reconstruction_request(0, reconstructions, self.model.config.likelihood)
        except DrawStudioError as exc:
            self.message.emit(f"no reconstructions: {exc}")
            return traces
        try:
            traces.append(("reconstructions", self.record(request)))
        except DrawStudioError as exc:
            self.message.emit(f"no reconstructions: {exc}")
        return traces


def default_data_dir() -> str:
    """A sensible first data folder: $DRAW_STUDIO_DATA, else ../shared/data next to the working folder."""
    import os

    env = os.environ.get("DRAW_STUDIO_DATA")
    if env:
        return env
    shared = Path.cwd().parent / "shared" / "data"
    return str(shared) if shared.is_dir() else ""
