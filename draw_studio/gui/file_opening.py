"""Opening files into the document: File > Open, Open Recent, drag and drop, and the command line's path.

Every way in ends in :meth:`FileOpener.open_path`: the file's kind is decided from its content
(:func:`draw_studio.file_kinds.inspect_file`; an attention classifier's checkpoint or classify trace is
told apart from DRAW's by its content too), the whole source is loaded, and only then does it
replace the open document. A file that cannot be opened (a text file named ``.h5``, a CSV, a
picture, an empty file, a folder, a truncated HDF5 file, a path that is gone) leaves the document
as it was and becomes one message (:attr:`FileOpener.failed`), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind
from ..classify_trace import read_classify_trace
from ..errors import CheckpointError, DrawStudioError
from ..file_kinds import CHECKPOINT, LOG, TRACE, FileInfo, inspect_file
from ..trace_file import read_trace
from ..training_log import default_log_path
from .background import one_line
from .classifier_source import load_classifier_checkpoint
from .document import CHECKPOINT as CHECKPOINT_SOURCE
from .document import CLASSIFIER, CLASSIFIER_LOG_NOTE, CLASSIFY_TRACE, LOG_FILE, TRACE_FILE, Document
from .loading import LoadedModel, load_checkpoint, startup_model
from .model_service import ModelService, window_wording

MAX_RECENT = 8
OPEN_FILTER = "DRAW Studio files (*.ckpt *.pt *.pth *.h5 *.hdf5);;All files (*)"


def failure_text(path: str | Path, exc: BaseException) -> str:
    """One line for a file that could not be opened: the error's own message when it is ours."""
    if isinstance(exc, DrawStudioError):
        return window_wording(str(exc))
    if isinstance(exc, MemoryError):
        return f"{path} is too large to open in the memory of this machine"
    return f"could not open {path} ({one_line(exc)}); it is damaged or not a DRAW Studio file"


class FileOpener(QObject):
    """Opens checkpoints, traces and training logs into ``document``, and keeps the recent files.

    Parameters
    ----------
    window : QWidget
        The window files are dropped on and dialogs belong to.
    document : Document
    service : ModelService
        Records a checkpoint's first samples and reconstructions.
    settings : QSettings
        Where the recent files are kept.
    show_curves : callable(str or None)
        Shows a training log's curves, or none (raises DrawStudioError for a damaged log).
    training_active : callable() -> bool
        A training run is going on (its curves own the Training panel: no log opens then).

    Signals
    -------
    failed(str) : a file could not be opened (one line, for an error dialog)
    opened(str) : a file was opened and is now the document
    note(str) : a line for the status bar (e.g. a log beside a checkpoint that could not be shown)
    """

    failed = Signal(str)
    opened = Signal(str)
    note = Signal(str)

    def __init__(self, window: QWidget, document: Document, service: ModelService, settings: QSettings,
                 show_curves: Callable[[str | None], None], training_active: Callable[[], bool]) -> None:
        super().__init__(window)
        self.window = window
        self.document = document
        self.service = service
        self.settings = settings
        self.show_curves = show_curves
        self.training_active = training_active
        self.recent_menu: QMenu | None = None
        window.setAcceptDrops(True)

    # ------------------------------------------------------------------ menu
    def add_to_menu(self, menu: QMenu) -> None:
        """Add "Open…" (Ctrl+O) and "Open Recent" to ``menu``."""
        action = QAction("&Open…", self.window, shortcut=QKeySequence.StandardKey.Open)
        action.setObjectName("openAction")
        action.triggered.connect(self.ask_open)
        menu.addAction(action)
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.setObjectName("recentMenu")
        self._rebuild_recent_menu()

    def ask_open(self) -> None:
        """Ask for a file and open it."""
        path, _ = QFileDialog.getOpenFileName(self.window, "Open", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """The files opened last, newest first."""
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def remember(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self._store([path] + [f for f in self.recent_files() if f != path])

    def forget(self, path: str | Path) -> None:
        self._store([f for f in self.recent_files() if f != str(path)])

    def _store(self, files: list[str]) -> None:
        self.settings.setValue("recent_files", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = QAction(path, self.window)
            action.triggered.connect(lambda checked=False, p=path: self.open_recent(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(files))

    def open_recent(self, path: str) -> bool:
        """Open a recent file; one that is gone leaves the list (after its message)."""
        opened = self.open_path(path)
        if not opened and not Path(path).exists():
            self.forget(path)
        return opened

    # ------------------------------------------------------------------ drag and drop
    def drag_enter(self, event) -> None:
        """Accept a drag of local files (the window's ``dragEnterEvent``)."""
        data = event.mimeData()
        urls = data.urls() if data.hasUrls() else []
        if urls and all(url.isLocalFile() for url in urls):
            event.acceptProposedAction()

    def drop(self, event) -> bool:
        """Open the first local file dropped (the window's ``dropEvent``): one source at a time."""
        data = event.mimeData()
        local = [url.toLocalFile() for url in (data.urls() if data.hasUrls() else []) if url.isLocalFile()]
        if not local:
            return False
        event.acceptProposedAction()
        opened = self.open_path(local[0])
        if len(local) > 1:
            self.note.emit(f"opened {Path(local[0]).name} only: the window shows one file at a time")
        return opened

    # ------------------------------------------------------------------ opening
    def open_path(self, path: str | Path) -> bool:
        """Open a checkpoint, a trace or a training log as the new document; a bad file is one message."""
        try:
            info = inspect_file(path)
            if info.kind == CHECKPOINT:
                self._open_any_checkpoint(path)
            elif info.kind == TRACE and info.classifier:
                self._open_classify_trace(path)
            elif info.kind == TRACE:
                self._open_trace(path, info)
            elif info.kind == LOG:
                self._open_log(path, info)
        except Exception as exc:  # noqa: BLE001 - a file the window cannot open is a dialog, never a crash
            self.failed.emit(failure_text(path, exc))
            return False
        self.remember(path)
        self.opened.emit(str(path))
        return True

    def open_startup(self, path: str | Path | None = None) -> bool:
        """Open ``path``, or with none the shipped model (else an untrained mnist-paper model)."""
        if path:
            return self.open_path(path)
        try:
            self._open_checkpoint(startup_model())
        except Exception as exc:  # noqa: BLE001 - as open_path
            self.failed.emit(failure_text("the startup model", exc))
            return False
        self.opened.emit(self.document.path or "")
        return True

    def _log_beside(self, path: str | Path | None) -> str | None:
        """The training log written beside ``path`` (X.ckpt -> X.log.h5), if there is one."""
        log = default_log_path(path) if path else None
        return str(log) if log is not None and log.is_file() else None

    def _show_log_beside(self) -> None:
        """The curves of the document's log (found beside its file), or none; a damaged log is a note."""
        log = self.document.log_path
        try:
            self.show_curves(log)
        except Exception as exc:  # noqa: BLE001 - a damaged log must not stop the file from opening
            self.document.log_path = None
            self.show_curves(None)
            self.note.emit(f"the training log beside {Path(self.document.path or '').name} was not shown: "
                           f"{failure_text(log, exc)}")

    def _open_checkpoint(self, loaded: LoadedModel) -> None:
        traces, note = self.service.first_traces(loaded)
        self.document.open(CHECKPOINT_SOURCE, loaded.path, model=loaded, log_path=self._log_beside(loaded.path),
                           traces=traces, reconstructions_note=note)
        self._show_log_beside()

    def _open_any_checkpoint(self, path: str | Path) -> None:
        """A DRAW model's checkpoint, or an attention classifier's (told apart when DRAW's loader refuses it)."""
        try:
            loaded = load_checkpoint(path)
        except CheckpointError:
            if checkpoint_kind(path) != CLASSIFIER_KIND:
                raise
            self._open_classifier(path)
            return
        self._open_checkpoint(loaded)

    def _open_classifier(self, path: str | Path) -> None:
        """An attention classifier's checkpoint: its glimpses of the first test images (when they are found)."""
        loaded = load_classifier_checkpoint(path)
        classification, note = self.service.first_classification(loaded)
        self.document.open(CLASSIFIER, path, log_path=self._log_beside(path), classifier=loaded,
                           classification=classification, classification_note=note)
        self._show_log_beside()

    def _open_classify_trace(self, path: str | Path) -> None:
        """A classify trace file: the glimpses and class probabilities it holds."""
        classification = read_classify_trace(path)
        self.document.open(CLASSIFY_TRACE, path, log_path=self._log_beside(path), classification=classification)
        self._show_log_beside()

    def _open_trace(self, path: str | Path, info: FileInfo) -> None:
        trace = read_trace(path)
        self.document.open(TRACE_FILE, path, log_path=self._log_beside(path), traces=[trace],
                           model_steps=trace.steps)
        self._show_log_beside()

    def _open_log(self, path: str | Path, info: FileInfo) -> None:
        if self.training_active():
            raise DrawStudioError(f"cannot open {path} while training runs: the Training panel shows the run's "
                                  "curves; stop training first")
        self.show_curves(str(path))  # a damaged log fails here, before the document changes
        self.document.open(LOG_FILE, path, log_path=path, model_steps=info.model_steps,
                           classification_note=CLASSIFIER_LOG_NOTE if info.classifier else "")
