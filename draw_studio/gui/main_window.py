"""The main window: docks one panel per file and wires them to the open document.

Nothing here draws and nothing here opens files: panels draw themselves from the
document on the redraw timer (~30 Hz) when something they show has changed, and
:mod:`~draw_studio.gui.file_opening` opens files (menu, recent files, drag and drop,
the command line) into the document.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox

from ..trace import Trace
from . import configure_pyqtgraph, dock_layout
from .class_probabilities_panel import ClassProbabilitiesPanel
from .compare_dock import add_compare_dock
from .dock_layout import LAYOUT_VERSION
from .document import TRAINING, Document
from .explore_dock import ExploreDock
from .exporting import Exporter
from .file_opening import FileOpener
from .gallery_panel import GalleryPanel
from .glimpses_panel import GlimpsesPanel
from .information_panel import InformationPanel
from .latents_panel import LatentsPanel
from .loading import LoadedModel
from .model_service import ModelService, default_data_dir, window_wording
from .redraw import PanelRedrawer
from .results_panel import ResultsPanel
from .timeline_panel import TimelinePanel
from .training_panel import TrainingPanel

ORGANISATION = "DRAW Studio"
APPLICATION = "DRAW Studio"
MIN_SIZE = (1280, 800)
SOURCE_LABEL_WIDTH = 420  # pixels of the status bar's source label


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
        self.setDockNestingEnabled(True)
        self.settings = settings or default_settings()
        self.interactive = interactive
        self.close_prompt: Callable[[], str] | None = None  # returns "save", "discard" or "cancel"
        self.document = self.state = Document(self)
        self.last_error: str | None = None  # the text of the last error dialog
        self._hover_shown = ""  # the pixel read-out last put in the status bar

        self.training = TrainingPanel(self.document)
        self.training.interactive = interactive  # read there even when its dock floats
        self.timeline = TimelinePanel(self.document)
        self.information = InformationPanel(self.document)
        self.latents = LatentsPanel(self.document)
        self.glimpses = GlimpsesPanel(self.document)
        self.gallery = GalleryPanel(self.document)
        self.panels = [self.training, self.timeline, self.information, self.latents, self.glimpses, self.gallery]
        self.redrawer = PanelRedrawer(self.panels, self.isVisible, self.show_status, self)
        self.draw_errors = self.redrawer.errors  # panels that failed to draw (see redraw_now)
        self.docks = {panel.dock_name: self._dock(panel) for panel in self.panels}
        self._arrange_docks()
        self.controller = self.training.controller
        self.service = ModelService(self.controller, self.document,
                                    data_dir=lambda: self.training.data_dir.text().strip(),
                                    dataset=lambda: self.training.dataset.currentText())
        self.explore = ExploreDock(self.document, self.service, self.latents)  # a tab beside Training
        self.panels.append(self.explore)
        self.docks[self.explore.dock_name] = self._dock(self.explore)
        self.tab_behind("trainingDock", self.explore.dock_name)
        self.results = ResultsPanel(self.document, self.service.data_dir)  # a tab beside Information
        self.panels.append(self.results)
        self.docks[self.results.dock_name] = self._dock(self.results)
        self.tab_behind("informationDock", self.results.dock_name)
        self.class_probabilities = ClassProbabilitiesPanel(self.document)  # a tab beside Latents, in front for a
        self.panels.append(self.class_probabilities)  # classifier (see _on_source_changed)
        self.docks[self.class_probabilities.dock_name] = self._dock(self.class_probabilities)
        self.tab_behind("latentsDock", self.class_probabilities.dock_name)
        self.gallery.follow_training(self.controller)  # a run's snapshots appear as it takes them
        self.gallery.learning.message.connect(self.show_status)
        self.docks["trainingDock"].raise_()
        self.compare = add_compare_dock(self)  # two models on one image: a tab beside the Timeline
        self.exporter = Exporter(self, self.document)
        self.jobs = self.exporter.jobs
        self.opener = FileOpener(self, self.document, self.service, self.settings, self._show_curves,
                                 lambda: self.controller.active)
        self.source_label = QLabel(objectName="sourceLabel")  # what is open, always in view
        self.statusBar().addPermanentWidget(self.source_label)

        self._build_menus()
        self._wire()
        self.timeline.install_shortcuts(self)
        self.redrawer.start()
        self.default_layout = self.saveState(LAYOUT_VERSION)
        self._layout_restored = self._restore_settings()
        self._on_source_changed()

    # ------------------------------------------------------------------ layout (gui/dock_layout.py)
    def _dock(self, panel) -> QDockWidget:
        return dock_layout.new_dock(self, panel, self.redrawer.catch_up)

    def tab_behind(self, front: str, back: str) -> None:
        """Put the dock ``back`` in a tab behind the dock ``front`` (both names in :attr:`docks`)."""
        dock_layout.tab_behind(self, self.docks[front], self.docks[back])

    def _arrange_docks(self) -> None:
        dock_layout.arrange_docks(self, self.docks)

    def _apply_default_sizes(self) -> None:
        dock_layout.apply_default_sizes(self, self.docks)

    def reset_layout(self) -> None:
        """Put every panel back where it starts."""
        for dock in self.docks.values():
            dock.show()
            dock.setFloating(False)
        self.restore_layout(self.default_layout)

    def restore_layout(self, state: QByteArray) -> bool:
        """Restore a saved dock layout (see :func:`~draw_studio.gui.dock_layout.restore_layout`)."""
        return dock_layout.restore_layout(self, state)

    def bring_floating_docks_forward(self) -> None:
        """Put every floating panel inside the screen and above the window."""
        dock_layout.bring_floating_docks_forward(self, self.docks)

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.opener.add_to_menu(file_menu)
        file_menu.addAction("Add training runs (a folder)…", lambda: (
            self.training.tabs.setCurrentWidget(self.training.runs), self.training.runs.ask_folder()))
        self.recent_menu = self.opener.recent_menu
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

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        self.document.source_changed.connect(self._on_source_changed)
        self.opener.failed.connect(self.show_error)
        self.opener.opened.connect(self._on_opened)
        self.opener.note.connect(self.show_status)
        self.training.message.connect(self.show_status)
        self.timeline.hover_text.connect(self._show_hover)
        self.training.curves.hover_text.connect(self._show_hover)
        self.training.curves.log_failed.connect(self.show_error)
        self.service.message.connect(self.show_status)
        self.service.trace_ready.connect(self._on_trace_ready)
        self.gallery.samples_requested.connect(self.service.request_samples)
        self.gallery.reconstructions_requested.connect(self.service.request_reconstructions)
        self.gallery.classify_requested.connect(self.service.request_classification)
        self.service.classification_ready.connect(self.document.set_classification)
        self.controller.state_changed.connect(self._on_training_state)
        self.controller.live_trace.connect(self._on_live_trace)
        self.controller.failed.connect(lambda text: self.show_error(f"Training stopped: {text}"))
        self.controller.finished.connect(self._on_training_finished)

    def redraw_now(self) -> None:
        """Redraw every panel whose data changed (the timer does this ~30 times a second, one panel per
        event-loop turn). A panel that fails to draw never takes the window down: the failure goes to
        the status bar and :attr:`draw_errors`."""
        self.redrawer.redraw_now()

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(window_wording(text), 12_000)

    def _show_hover(self, text: str) -> None:
        """The value under the cursor of an image pane; cleared when the cursor leaves (other messages stay)."""
        bar = self.statusBar()
        if text:
            bar.showMessage(text, 5_000)
        elif self._hover_shown and bar.currentMessage() == self._hover_shown:
            bar.clearMessage()
        self._hover_shown = text

    def show_error(self, text: str) -> None:
        """A status-bar line and a dialog that does not block the window (kept in :attr:`last_error`)."""
        text = window_wording(text)
        self.last_error = text
        self.statusBar().showMessage(text, 30_000)
        box = QMessageBox(QMessageBox.Icon.Warning, "DRAW Studio", text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ------------------------------------------------------------------ the open source
    def open_path(self, path: str | Path) -> bool:
        """Open a checkpoint, a trace or a training log (see :class:`~draw_studio.gui.file_opening.FileOpener`)."""
        return self.opener.open_path(path)

    def open_startup(self, path: str | None = None) -> bool:
        """Open ``path``, or with none the shipped model (else an untrained mnist-paper model)."""
        return self.opener.open_startup(path)

    def recent_files(self) -> list[str]:
        return self.opener.recent_files()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.opener.drag_enter(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.opener.drop(event)

    @property
    def display_note(self) -> str:
        """What was changed to draw the shown trace (non-finite values), else ""."""
        return self.document.display_note

    def _on_source_changed(self) -> None:
        """The window's title and status bar name the source; the Training panel's form follows it."""
        document = self.document
        self.setWindowTitle(document.window_title())
        self._show_source()
        if document.is_classifier != getattr(self, "_classifier_in_front", False):  # a classifier has no latents:
            self._classifier_in_front = document.is_classifier  # its class probabilities in front instead
            self.docks[self.class_probabilities.dock_name if document.is_classifier else "latentsDock"].raise_()
        if not self.controller.active:
            model = document.model or document.classifier  # a DRAW model's or an attention classifier's settings
            if model is not None and document.kind != TRAINING:
                self.training.fill_from_configs(model.train_config.to_dict(), model.steps_per_epoch)
            self.training.offer_resume(model.path if model is not None and model.resumable else None)

    def _show_source(self) -> None:
        """The status bar's permanent label: the source's kind and file (a long path elided in the middle)."""
        text = self.document.describe()
        self.source_label.setToolTip(text)
        self.source_label.setText(self.source_label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle,
                                                                             SOURCE_LABEL_WIDTH))

    def _on_opened(self, path: str) -> None:
        note = self.document.display_note or self.document.reconstructions_note
        self.show_status(f"opened {self.document.describe()}" + (f"; {note}" if note else ""))
        self.timeline.focus_timeline()

    def _show_curves(self, log: str | None) -> None:
        """The Training panel shows the curves of ``log`` (None: none); a running training keeps its own."""
        self.training.show_log(log)

    def _on_trace_ready(self, purpose: str, trace: Trace) -> None:
        self.document.add_trace(trace, show=purpose == "reconstructions")

    # ------------------------------------------------------------------ training
    def _on_training_state(self, state: str) -> None:
        document = self.document
        if state == "starting":  # a new run is the open source from its first moment
            document.open(TRAINING, self.controller.checkpoint_path, live=True)
            self.show_status(f"showing {document.describe()}")
            self.timeline.focus_timeline()
        elif document.kind == TRAINING and document.live and not document.model_steps:
            config = self.controller.model_config
            if config is not None:
                document.set_model_steps(config.steps)

    def _on_live_trace(self, trace: Trace, training_step: int) -> None:
        document = self.document
        if document.kind != TRAINING:
            return  # another source is open: the run goes on in the background
        document.add_kl_row(training_step, trace)
        document.add_trace(trace, show=self.training.follow_live.isChecked(), image_index=None,
                           replace_shown=False)

    def _on_training_finished(self) -> None:
        trainer = self.controller.trainer
        if self.document.kind != TRAINING or not self.document.live:
            return
        model = None
        if trainer is not None:
            trainer.model.eval()
            model = LoadedModel(trainer.model, trainer.config, "", f"model trained to step {trainer.step:,}",
                                self.document.path)
        self.document.finish_run(model)
        self._show_source()

    # ------------------------------------------------------------------ export
    def export_view_png(self, path: str | Path) -> bool:
        """Save the window as it looks now to a PNG."""
        return self.exporter.view_png(path)

    def export_trace(self, kind: str, path: str | Path, fps: float = 8.0, **options) -> bool:
        """Export the current trace as ``frames``, ``gif``, ``mp4`` or ``trace`` in the background."""
        return self.exporter.trace(kind, path, fps, **options)

    def save_screenshot(self, path: str | Path) -> bool:
        """Render the window at least 1280x800 and save it as a PNG."""
        if self.width() < MIN_SIZE[0] or self.height() < MIN_SIZE[1]:
            self.resize(max(self.width(), MIN_SIZE[0]), max(self.height(), MIN_SIZE[1]))
        QApplication.processEvents()
        self.training.runs.wait()  # logs read and curves computed off the window thread are in the picture
        return self.export_view_png(path)

    # ------------------------------------------------------------------ settings and closing
    def _restore_settings(self) -> bool:
        """Restore form values, window geometry and dock layout; True if a layout was restored."""
        self.training.restore_settings(self.settings, default_data_dir())
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        layout = self.settings.value("window/state")
        return isinstance(layout, QByteArray) and not layout.isEmpty() and self.restore_layout(layout)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._layout_restored and not getattr(self, "_sized", False):
            self._sized = True  # dock sizes only take once the window has its real size
            QTimer.singleShot(0, self._apply_default_sizes)
        QTimer.singleShot(0, self.bring_floating_docks_forward)  # once the window is on screen

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
        self.training.curves.files.cancel()  # a CSV still being written is dropped, never half-written
        self.jobs.wait()
        self.explore.wait()
        self.compare.wait()
        self.results.stop()
        self.results.wait()
        self.gallery.learning.wait()
        self.timeline.play_timer.stop()
        self.redrawer.stop()
        self.save_settings()
        super().closeEvent(event)
