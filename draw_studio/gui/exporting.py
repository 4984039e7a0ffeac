"""Exports from the window: the view as PNG, and the current trace as frames, GIF, MP4 or HDF5 (an attention
classifier's: its classification, as a classify trace and its frames, one per glimpse).

Before a trace export, :class:`~draw_studio.gui.export_dialog.ExportDialog`
asks which images, the frames per second, the upscaling and whether to draw
the attention windows. The export then runs as a background job
(:class:`~draw_studio.gui.jobs.JobRunner`) with a progress bar in the status bar.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLabel, QMainWindow, QProgressBar, QWidget

from ..window_style import DEFAULT_STYLE
from .export_dialog import ExportDialog, default_scale
from .jobs import JobRunner
from .state import StudioState

KINDS = ("frames", "gif", "mp4", "trace")
SETTLE_LIMIT_S = 2.0  # the longest a grab waits for widgets that hold their painting for a turn or two
FILTERS = {"gif": "GIF (*.gif)", "mp4": "MP4 (*.mp4)", "trace": "HDF5 trace (*.h5)"}


def settle_painting(window: QWidget, limit_s: float = SETTLE_LIMIT_S) -> None:
    """Run the event loop until no widget of ``window`` holds its painting (at most ``limit_s``).

    Some panels give pyqtgraph their points in one event-loop turn and paint in a later one, with the
    viewport's updates off in between (the curves: ``CurvesWidget._paint_next_turn``); a grab in between
    would show an empty black plot.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and any(
            widget.isVisible() and not widget.updatesEnabled() for widget in window.findChildren(QWidget)):
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


class Exporter(QObject):
    """Export actions of ``window`` (which provides ``show_status``, ``show_error`` and ``redraw_now``)."""

    def __init__(self, window: QMainWindow, state: StudioState) -> None:
        super().__init__(window)
        self.window = window
        self.state = state
        self.jobs = JobRunner(self)
        self.label = QLabel()
        self.progress = QProgressBar(objectName="exportProgress")
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        window.statusBar().addPermanentWidget(self.label)
        window.statusBar().addPermanentWidget(self.progress)
        self.jobs.started.connect(self._on_started)
        self.jobs.progress.connect(self._on_progress)
        self.jobs.done.connect(window.show_status)
        self.jobs.failed.connect(lambda text: window.show_error(f"Export failed: {text}"))
        self.jobs.idle.connect(self._on_idle)

    def view_png(self, path: str | Path) -> bool:
        """Save the window as it looks now (``QWidget.grab``) to a PNG, atomically."""
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice

        from ..errors import DrawStudioError
        from ..files import atomic_write

        self.window.redraw_now()
        settle_painting(self.window)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.window.grab().save(buffer, "PNG"):
            self.window.show_error(f"could not render the view as PNG for {path}")
            return False
        buffer.close()
        try:
            atomic_write(path, lambda temp: Path(temp).write_bytes(data.data()))
        except DrawStudioError as exc:
            self.window.show_error(str(exc))
            return False
        self.window.show_status(f"saved the view to {path}")
        return True

    def trace(self, kind: str, path: str | Path, fps: float = 8.0, images: Sequence[int] | None = None,
              scale: int | None = None, windows: bool | None = None, style: str = DEFAULT_STYLE) -> bool:
        """Export the current trace as ``frames`` (a folder), ``gif``, ``mp4`` or ``trace`` (HDF5).

        Parameters
        ----------
        images : sequence of int, optional
            Only these images of the trace (default: all).
        scale : int, optional
            Upscaling of frames, GIF and MP4 (default: 4, or 2 for images wider than 64 pixels).
        windows : bool, optional
            Draw the attention windows (default: when the trace has them).
        style : str
            How windows are drawn: ``"outline"`` or ``"border"``.

        Returns False if there is no trace, the options are wrong (said in a
        dialog) or another export still runs.
        """
        from .. import export
        from ..classify_trace import write_classify_trace
        from ..errors import DrawStudioError
        from ..trace_file import write_trace

        if kind not in KINDS:
            raise ValueError(f"unknown export kind {kind!r}; use one of {', '.join(KINDS)}")
        trace = self.shown
        if trace is None:
            self.window.show_error("nothing to export: open a checkpoint or a trace first")
            return False
        try:
            trace = export.select_images(trace, images)
            export.check_style(style)
            if scale is not None and scale < 1:
                raise DrawStudioError(f"the upscale factor must be a whole number of at least 1, got {scale}")
            if fps <= 0:
                raise DrawStudioError(f"frames per second must be above 0, got {fps}")
        except DrawStudioError as exc:
            self.window.show_error(f"Export: {exc}")
            return False
        path = str(path)
        has_windows = trace.read_params is not None or getattr(trace, "write_params", None) is not None
        options = {"scale": default_scale(trace) if scale is None else int(scale),
                   "windows": has_windows if windows is None else bool(windows), "style": style}

        def run(progress) -> str:
            if kind == "frames":
                return export.frames_written_text(export.export_frames(trace, path, progress=progress, **options), path)
            if kind == "gif":
                export.export_gif(trace, path, fps=fps, progress=progress, **options)
            elif kind == "mp4":
                export.export_mp4(trace, path, fps=fps, progress=progress, **options)
            elif export.is_classify(trace):
                write_classify_trace(path, trace)
            else:
                write_trace(path, trace, progress=progress)
            return f"wrote {path}"

        if not self.jobs.run(f"exporting {kind}…", run):
            self.window.show_status("another export is still running; wait for it to finish")
            return False
        return True

    @property
    def shown(self):
        """What a trace export writes: the shown trace, or an attention classifier's classification (None: nothing)."""
        return self.state.trace if self.state.trace is not None else self.state.classification

    def ask_view_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save view", "draw-studio.png", "PNG (*.png)")
        if path:
            self.view_png(path)

    def ask_trace(self, kind: str) -> None:
        """Ask the export's options (:class:`ExportDialog`), then where to write, then export in the background."""
        if self.shown is None:
            self.window.show_error("nothing to export: open a checkpoint or a trace first")
            return
        dialog = ExportDialog(self.window, self.shown, kind, self.state.image_index)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        options = dialog.options()
        if kind == "frames":
            path = QFileDialog.getExistingDirectory(self.window, "Folder for the frames")
        else:
            default = f"trace.{'h5' if kind == 'trace' else kind}"
            path, _ = QFileDialog.getSaveFileName(self.window, f"Export {kind}", default, FILTERS[kind])
        if path:
            self.trace(kind, path, fps=options.fps, images=options.images, scale=options.scale,
                       windows=options.windows, style=options.style)

    def _on_started(self, description: str) -> None:
        self.label.setText(description)
        self.progress.setRange(0, 0)
        self.progress.show()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_idle(self) -> None:
        self.label.setText("")
        self.progress.hide()
