"""The main window: docks one panel per file and wires them to the shared state.

Nothing here draws: panels draw themselves from the redraw timer (~30 Hz)
when something they show has changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMainWindow, QMessageBox

from ..errors import DrawStudioError
from ..trace import Trace
from ..trace_checks import displayable, nonfinite_fields
from ..trace_file import read_trace
from ..train import default_log_path
from . import configure_pyqtgraph
from .exporting import Exporter
from .gallery_panel import GalleryPanel
from .glimpses_panel import GlimpsesPanel
from .information_panel import InformationPanel
from .latents_panel import LatentsPanel
from .loading import CHECKPOINT, LOG, TRACE, LoadedModel, file_kind, load_checkpoint, startup_model
from .model_service import ModelService, default_data_dir
from .state import StudioState
from .timeline_panel import TimelinePanel
from .training_panel import TrainingPanel

ORGANISATION = "DRAW Studio"
APPLICATION = "DRAW Studio"
LAYOUT_VERSION = 1
MAX_RECENT = 8
REDRAW_INTERVAL_MS = 33  # at most ~30 redraws per second
MIN_SIZE = (1280, 800)


def default_settings() -> QSettings:
    """The user's settings (organisation "DRAW Studio")."""
    return QSettings(ORGANISATION, APPLICATION)


class MainWindow(QMainWindow):
    """DRAW Studio's window.

    Parameters
    ----------
    settings : QSettings, optional
        Where layout, recent files and form values live (default: the
        user's; tests pass an isolated INI file).
    interactive : bool
        False (tests, screenshots): never block on a dialog; closing while
        training then asks :attr:`close_prompt` if set, else saves.
    """

    def __init__(self, settings: QSettings | None = None, interactive: bool = True) -> None:
        super().__init__()
        configure_pyqtgraph()
        self.setObjectName("mainWindow")
        self.setWindowTitle("DRAW Studio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings or default_settings()
        self.interactive = interactive
        self.close_prompt: Callable[[], str] | None = None  # returns "save", "discard" or "cancel"
        self.state = StudioState(self)
        self.last_error: str | None = None  # the text of the last error dialog
        self.draw_errors: list[str] = []  # panels that failed to draw (see redraw_now)
        self.display_note = ""  # what was changed to draw the last trace (non-finite values), else ""

        self.training = TrainingPanel(self.state)
        self.timeline = TimelinePanel(self.state)
        self.information = InformationPanel(self.state)
        self.latents = LatentsPanel(self.state)
        self.glimpses = GlimpsesPanel(self.state)
        self.gallery = GalleryPanel(self.state)
        self.panels = [self.training, self.timeline, self.information, self.latents, self.glimpses, self.gallery]
        self.docks = {panel.dock_name: self._dock(panel) for panel in self.panels}
        self._arrange_docks()
        self.controller = self.training.controller
        self.service = ModelService(self.controller, data_dir=lambda: self.training.data_dir.text().strip())
        self.exporter = Exporter(self, self.state)
        self.jobs = self.exporter.jobs

        self._build_menus()
        self._wire()
        self.timeline.install_shortcuts(self)
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self.redraw_now)
        self.redraw_timer.start()
        self.default_layout = self.saveState(LAYOUT_VERSION)
        self._layout_restored = self._restore_settings()
        self.gallery.set_model_available(False, "open a checkpoint or start training first")

    # ------------------------------------------------------------------ layout
    def _dock(self, panel) -> QDockWidget:
        dock = QDockWidget(panel.title, self)
        dock.setObjectName(panel.dock_name)
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

    def _arrange_docks(self) -> None:
        """Three columns: training and information | timeline and latents | gallery and glimpses."""
        d = self.docks
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["trainingDock"])
        self.splitDockWidget(d["trainingDock"], d["timelineDock"], Qt.Orientation.Horizontal)
        self.splitDockWidget(d["timelineDock"], d["galleryDock"], Qt.Orientation.Horizontal)
        self.splitDockWidget(d["trainingDock"], d["informationDock"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["timelineDock"], d["latentsDock"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["galleryDock"], d["glimpsesDock"], Qt.Orientation.Vertical)
        self.resize(1440, 900)
        self._apply_default_sizes()

    def _apply_default_sizes(self) -> None:
        d = self.docks
        self.resizeDocks([d["trainingDock"], d["timelineDock"], d["galleryDock"]], [440, 580, 420],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([d["trainingDock"], d["informationDock"]], [520, 340], Qt.Orientation.Vertical)
        self.resizeDocks([d["timelineDock"], d["latentsDock"]], [560, 300], Qt.Orientation.Vertical)
        self.resizeDocks([d["galleryDock"], d["glimpsesDock"]], [470, 390], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        """Put every panel back where it starts."""
        for dock in self.docks.values():
            dock.show()
            dock.setFloating(False)
        self.restoreState(self.default_layout, LAYOUT_VERSION)

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._ask_open)
        file_menu.addAction(open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export")
        for text, slot in (("Current view as PNG…", self.exporter.ask_view_png),
                           ("Trace frames (PNG folder)…", lambda: self.exporter.ask_trace("frames")),
                           ("Trace as GIF…", lambda: self.exporter.ask_trace("gif")),
                           ("Trace as MP4…", lambda: self.exporter.ask_trace("mp4")),
                           ("Trace as HDF5…", lambda: self.exporter.ask_trace("trace")),
                           ("Curves as CSV…", self.training.curves.export_requested.emit)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            export_menu.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        reset = QAction("Reset layout", self)
        reset.triggered.connect(self.reset_layout)
        view_menu.addAction(reset)
        self._rebuild_recent_menu()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: str) -> None:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files() if f != path]
        self.settings.setValue("recent_files", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = QAction(path, self)
            action.triggered.connect(lambda checked=False, p=path: self.open_path(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(files))

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        self.training.message.connect(self.show_status)
        self.service.message.connect(self.show_status)
        self.service.trace_ready.connect(self._on_trace_ready)
        self.gallery.samples_requested.connect(self.service.request_samples)
        self.gallery.reconstructions_requested.connect(self.service.request_reconstructions)
        self.controller.state_changed.connect(self._on_training_state)
        self.controller.live_trace.connect(self._on_live_trace)
        self.controller.failed.connect(lambda text: self.show_error(f"Training stopped: {text}"))
        self.controller.finished.connect(self._on_training_finished)

    def redraw_now(self) -> None:
        """Redraw every panel whose data changed (the timer does this ~30 times a second).

        A panel that fails to draw never takes the window down: the failure
        goes to the status bar and :attr:`draw_errors`.
        """
        for panel in self.panels:
            try:
                panel.refresh()
            except Exception as exc:  # noqa: BLE001 - one panel's bug must not crash the window
                text = f"could not draw the {panel.title} panel ({type(exc).__name__}: {exc})"
                self.draw_errors.append(text)
                self.show_status(text)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 12_000)

    def show_error(self, text: str) -> None:
        """A status-bar line and a dialog that does not block the window (kept in :attr:`last_error`)."""
        self.last_error = text
        self.statusBar().showMessage(text, 30_000)
        box = QMessageBox(QMessageBox.Icon.Warning, "DRAW Studio", text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _displayable(self, trace: Trace) -> Trace:
        """``trace``, or a copy with its non-finite values (a diverged model) made drawable, said in the status bar."""
        shown = displayable(trace)
        if shown is not trace:
            self.display_note = (f"this trace holds non-finite values ({', '.join(nonfinite_fields(trace))}): the "
                                 "model has diverged; they are shown as 0 and their attention windows are not drawn")
            self.show_status(self.display_note)
        return shown

    def _on_trace_ready(self, purpose: str, trace: Trace) -> None:
        trace = self._displayable(trace)
        replaced = self.gallery.samples if trace.mode == "generate" else self.gallery.reconstructions
        self.gallery.show_trace(trace)
        if purpose == "reconstructions" or self.state.trace is None or self.state.trace is replaced:
            self.state.set_trace(trace, image_index=0)

    def _on_live_trace(self, trace: Trace, training_step: int) -> None:
        trace = self._displayable(trace)
        self.information.add_training_trace(trace, training_step)
        self.gallery.show_trace(trace)
        if self.training.follow_live.isChecked():
            self.state.set_trace(trace)

    def _on_training_state(self, state: str) -> None:
        if state == "starting":
            self.information.clear_training()
        self.gallery.set_model_available(self.service.available, "open a checkpoint or start training first")

    def _on_training_finished(self) -> None:
        trainer = self.controller.trainer
        if trainer is not None:
            self.service.set_model(trainer.model, trainer.config)
        self.gallery.set_model_available(self.service.available, "open a checkpoint or start training first")

    # ------------------------------------------------------------------ opening files
    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open", "", "DRAW Studio files (*.ckpt *.h5 *.hdf5 *.pt);;"
                                              "All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a checkpoint, a trace or a training log; a bad file becomes an error message."""
        self.display_note = ""
        try:
            kind = file_kind(path)
            if kind == CHECKPOINT:
                self.show_model(load_checkpoint(path))
                self._show_log_beside(path)
            elif kind == TRACE:
                self.show_trace_file(read_trace(path))
                self._show_log_beside(path)
            elif kind == LOG:
                self.show_log(path)
        except DrawStudioError as exc:
            self.show_error(str(exc))
            return False
        except MemoryError:
            self.show_error(f"{path} is too large to open in the memory of this machine")
            return False
        except Exception as exc:  # noqa: BLE001 - a file the window cannot open is a dialog, never a crash
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            self.show_error(f"could not open {path} ({type(exc).__name__}: {first}); it is damaged or not a "
                            "DRAW Studio file")
            return False
        self._remember(str(path))
        self.setWindowTitle(f"DRAW Studio — {Path(path).name}")
        self.show_status(f"opened {kind} {path}" + (f"; {self.display_note}" if self.display_note else ""))
        return True

    def show_log(self, path: str | Path) -> None:
        """Show the curves of a training log (not while training: the curves would mix)."""
        if self.controller.active:
            raise DrawStudioError("stop training before opening a training log (its curves would mix)")
        self.training.load_log(path)

    def _show_log_beside(self, checkpoint: str | Path) -> None:
        """Also show the training log written beside a checkpoint (X.ckpt -> X.log.h5), if there is one."""
        log = default_log_path(checkpoint)
        if log.is_file() and not self.controller.active:
            try:
                self.show_log(log)
            except Exception as exc:  # noqa: BLE001 - a damaged log must not stop the checkpoint from opening
                self.show_status(f"the training log beside the checkpoint was not shown: {exc}")

    def show_model(self, loaded: LoadedModel) -> None:
        """Use ``loaded`` for the gallery and show its first samples and reconstructions."""
        self.service.set_model(loaded.model, loaded.train_config, loaded.sha256)
        self.training.fill_from_configs(loaded.train_config.to_dict())
        self.training.offer_resume(loaded.path if loaded.resumable else None)
        traces = [(purpose, self._displayable(trace)) for purpose, trace in self.service.first_traces()]
        for _, trace in traces:
            self.gallery.show_trace(trace)
        self.state.set_trace(traces[-1][1], image_index=0)
        self.gallery.set_model_available(True)

    def show_trace_file(self, trace: Trace) -> None:
        trace = self._displayable(trace)
        self.gallery.show_trace(trace)
        self.state.set_trace(trace, image_index=0)

    def open_startup(self, path: str | None = None) -> bool:
        """Open ``path``, or with none the shipped model (else an untrained mnist-paper model)."""
        if path:
            return self.open_path(path)
        try:
            loaded = startup_model()
        except DrawStudioError as exc:
            self.show_error(str(exc))
            return False
        self.show_model(loaded)
        if loaded.path:
            self._show_log_beside(loaded.path)
        self.show_status(f"showing {loaded.description}")
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and all(url.isLocalFile() for url in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    # ------------------------------------------------------------------ export
    def export_view_png(self, path: str | Path) -> bool:
        """Save the window as it looks now to a PNG."""
        return self.exporter.view_png(path)

    def export_trace(self, kind: str, path: str | Path, fps: float = 8.0) -> bool:
        """Export the current trace as ``frames``, ``gif``, ``mp4`` or ``trace`` in the background."""
        return self.exporter.trace(kind, path, fps)

    def save_screenshot(self, path: str | Path) -> bool:
        """Render the window at least 1280x800 and save it as a PNG."""
        if self.width() < MIN_SIZE[0] or self.height() < MIN_SIZE[1]:
            self.resize(max(self.width(), MIN_SIZE[0]), max(self.height(), MIN_SIZE[1]))
        QApplication.processEvents()
        return self.export_view_png(path)

    # ------------------------------------------------------------------ settings and closing
    def _restore_settings(self) -> bool:
        """Restore form values, window geometry and dock layout; True if a layout was restored."""
        self.training.restore_settings(self.settings, default_data_dir())
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        layout = self.settings.value("window/state")
        return isinstance(layout, QByteArray) and not layout.isEmpty() and self.restoreState(layout, LAYOUT_VERSION)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._layout_restored and not getattr(self, "_sized", False):
            self._sized = True  # dock sizes only take once the window has its real size
            QTimer.singleShot(0, self._apply_default_sizes)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.training.save_settings(self.settings)
        self.settings.sync()

    def _ask_close(self) -> str:
        """Closing while training: "save", "discard" or "cancel"."""
        if self.close_prompt is not None:
            return self.close_prompt()
        if not self.interactive:
            return "save"
        box = QMessageBox(QMessageBox.Icon.Question, "DRAW Studio",
                          "Training is running. Stop it and save a checkpoint before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.controller.active:
            choice = self._ask_close()
            if choice == "cancel":
                event.ignore()
                return
            if choice == "save" and not self.controller.checkpoint_path and self.interactive:
                path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "model.ckpt",
                                                      "Checkpoints (*.ckpt);;All files (*)")
                if path:
                    self.controller.save(path)
            self.controller.stop(save_final=choice == "save")
            self.show_status("stopping training…")
            self.controller.wait()
        self.jobs.wait()
        self.timeline.play_timer.stop()
        self.redraw_timer.stop()
        self.save_settings()
        super().closeEvent(event)
