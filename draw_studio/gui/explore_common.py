"""What the Explore dock's tool panels share: the model behind the shown trace, and background runs.

The tools run the core (:mod:`draw_studio.explore`) on the open source's model. A checkpoint's
model is the document's; a trace file's is the shipped model when the trace names its SHA-256
(else the panel says to open the checkpoint). Every run goes through :class:`LatestRun`: one run
at a time on the generic background worker (:mod:`~draw_studio.gui.background`); a run asked for
while one is running waits, and only the latest one asked for runs next, so a dragged slider or
window never queues up work, and the window never waits for the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDockWidget, QLabel, QWidget

from ..checkpoint import default_checkpoint
from ..data import model_inputs
from ..errors import DrawStudioError
from ..files import file_sha256
from ..trace import Trace
from .background import BackgroundWorker, WorkerThread
from .document import TRAINING, Document
from .loading import LoadedModel, load_checkpoint

NO_TRACE = "nothing to explore yet: open a checkpoint or a trace"
_threads_lock = threading.Lock()
_threads_state = {"runs": 0, "saved": 0}


@contextmanager
def one_torch_thread():
    """PyTorch on one thread while explore runs are running (the window may have set more, for training).

    One image's small steps run fastest on one thread; on a busy 2-core machine two threads made a
    regeneration ~10x slower (2.5 s instead of 0.22 s). The count is restored when the last run ends.
    """
    import torch

    with _threads_lock:
        if _threads_state["runs"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_state["runs"] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_state["runs"] -= 1
            if _threads_state["runs"] == 0:
                torch.set_num_threads(_threads_state["saved"])


class ModelFinder:
    """The model a trace of the open document was recorded with, or why there is none."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self._shipped: tuple[str, LoadedModel] | None = None  # (sha256, model) of the shipped checkpoint

    def loaded(self) -> tuple[LoadedModel | None, str]:
        """The document's model (or the shipped one for a trace it names); else None and why."""
        document = self.document
        if document.model is not None:
            return document.model, ""
        if document.kind == TRAINING and document.live:
            return None, "the model is being trained: explore it once training has stopped, or open a checkpoint"
        trace = document.trace
        if trace is None:
            return None, document.lacks("trace") if document.kind != "nothing" else NO_TRACE
        shipped = self._shipped_model()
        if shipped is not None and trace.checkpoint_sha256 and shipped.sha256 == trace.checkpoint_sha256:
            return shipped, ""
        return None, ("this trace's model is not open: open the checkpoint it was recorded with (File ▸ Open) "
                      "to explore it")

    def for_trace(self, trace: Trace | None) -> tuple[LoadedModel | None, str]:
        """:meth:`loaded`, refused when its settings differ from ``trace``'s."""
        loaded, why = self.loaded()
        if loaded is None or trace is None:
            return loaded, why or NO_TRACE
        if loaded.model.config != trace.model_config:
            return None, "the shown trace was recorded with a model of other settings: open its checkpoint"
        return loaded, ""

    def _shipped_model(self) -> LoadedModel | None:
        path = default_checkpoint()
        if path is None:
            return None
        if self._shipped is None or self._shipped[0] != str(path):
            try:
                self._shipped = (str(path), load_checkpoint(path))
            except (OSError, DrawStudioError):
                return None
        return self._shipped[1]


def test_pixels(service, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The test split of ``loaded``'s dataset as the model sees it (n, C, H, W), its labels, its name.

    Raises
    ------
    DrawStudioError
        The test images are not found (the data folder of the Training panel) or do not fit the model.
    """
    images = service.test_images(loaded.train_config)
    cfg = loaded.model.config
    if images.shape != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"the {loaded.train_config.dataset} test images are {images.shape}, the model "
                              f"draws {(cfg.channels, cfg.height, cfg.width)}")
    pixels, _, _ = model_inputs(images, cfg.likelihood)
    return pixels, images.labels, f"{loaded.train_config.dataset}/test"


class LatestRun(QObject):
    """Runs functions in the background one at a time; of those asked for meanwhile, only the latest.

    Signals
    -------
    busy(str) : a run began (its description)
    done(object, object) : the tag it was asked with, and what the function returned
    failed(str) : one line: why the run failed
    idle() : nothing runs and nothing waits
    progress(int, int) : (done, total) as the running function reports it through :meth:`report`
    """

    busy = Signal(str)
    done = Signal(object, object)
    failed = Signal(str)
    idle = Signal()
    progress = Signal(int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: WorkerThread | None = None
        self._waiting: tuple[str, Callable[[], Any], Any] | None = None
        self._tag: Any = None
        self.last_seconds = 0.0  # wall time of the last run that finished

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def pending(self) -> bool:
        """A run is running or waiting."""
        return self._thread is not None or self._waiting is not None

    def submit(self, description: str, function: Callable[[], Any], tag: Any = None) -> None:
        """Run ``function()`` now, or after the running one (replacing any run still waiting)."""
        self._waiting = (description, function, tag)
        if self._thread is None:
            self._start_waiting()

    def report(self, done: int, total: int) -> None:
        """Say how far the running function is (callable from its thread: ``progress`` is queued to this one)."""
        self.progress.emit(int(done), int(total))

    def cancel_waiting(self) -> None:
        """Drop the run still waiting (the running one finishes; its result still arrives)."""
        self._waiting = None

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the running run has ended (tests, closing)."""
        return self._thread is None or self._thread.wait(timeout_ms)

    def _start_waiting(self) -> None:
        description, function, tag = self._waiting
        self._waiting = None
        self._tag = tag

        def generator(control):
            started = time.perf_counter()
            with one_torch_thread():
                value = function()
            return value, time.perf_counter() - started
            yield  # a generator with no yields: the run is one piece

        worker = BackgroundWorker(generator)
        worker.returned.connect(self._on_returned)
        worker.failed.connect(self.failed)
        thread = WorkerThread(worker, self, name="exploreThread")
        thread.ended.connect(self._on_ended)
        self._thread = thread
        self.busy.emit(description)
        thread.start()

    def _on_returned(self, outcome) -> None:
        value, self.last_seconds = outcome
        self.done.emit(self._tag, value)

    def _on_ended(self) -> None:
        if self._thread is not None:
            self._thread.deleteLater()
            self._thread = None
        if self._waiting is not None:
            self._start_waiting()
        else:
            self.idle.emit()


def same_base(first, second) -> bool:
    """Whether two (trace, image) pairs name the same image of the same trace object (traces by identity)."""
    return first is not None and second is not None and first[0] is second[0] and first[1] == second[1]


def grey_label(text: str = "", object_name: str = "") -> QLabel:
    """A grey, wrapping line of explanation."""
    label = QLabel(text, objectName=object_name)
    label.setStyleSheet("color: #9a9a9a;")
    label.setWordWrap(True)
    label.setMinimumWidth(20)
    return label


def raise_dock_of(widget: QWidget) -> None:
    """Show and raise the dock that holds ``widget`` (e.g. when a latent cell was clicked elsewhere)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    if parent is not None:
        parent.show()
        parent.raise_()


def sha_of(loaded: LoadedModel) -> str:
    """The checkpoint SHA-256 of ``loaded`` ("" for an untrained model)."""
    if loaded.sha256 or not loaded.path:
        return loaded.sha256
    try:
        return file_sha256(loaded.path)
    except OSError:
        return ""
