"""The export dialog: which images, frames per second, upscaling and attention windows, before an export runs.

The trace is DRAW's or an attention classifier's (a ``ClassifyTrace``: one frame per glimpse)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..export import frame_steps, is_classify, parse_images, picture_size
from ..trace import Trace
from ..window_style import DEFAULT_STYLE, STYLE_NAMES, STYLES

MAX_SCALE = 64
MAX_FPS = 1000.0
PICTURE_KINDS = ("frames", "gif", "mp4")


def default_scale(trace: Trace) -> int:
    """Upscaling that makes a small image legible: 4 up to 64 pixels wide, else 2 (a classify trace: 2)."""
    return 4 if trace.model_config.width <= 64 and not is_classify(trace) else 2


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes.

    Attributes
    ----------
    images : list of int, or None
        Indices of the trace's images to export (None: all).
    fps : float
        Frames per second of a GIF or MP4.
    scale : int
        Nearest-neighbour upscaling factor.
    windows : bool
        Draw the attention windows.
    style : str
        How windows are drawn (:data:`draw_studio.window_style.STYLES`).
    """

    images: list[int] | None = None
    fps: float = 8.0
    scale: int = 4
    windows: bool = True
    style: str = DEFAULT_STYLE


class ExportDialog(QDialog):
    """Choose the options of exporting ``trace`` as ``kind`` (frames, gif, mp4 or trace).

    ``selected`` is the image selected in the window. :meth:`options` reads
    the choice; :meth:`problem` says what is wrong with it ("" when nothing).
    """

    def __init__(self, parent: QWidget | None, trace: Trace, kind: str, selected: int = 0) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle(f"Export {kind}")
        self.trace, self.kind, self.selected = trace, kind, int(selected)
        pictures = kind in PICTURE_KINDS
        self.all_images = QRadioButton(f"all {trace.n} images", objectName="exportAll")
        self.selected_image = QRadioButton(f"the selected image ({self.selected})", objectName="exportSelected")
        self.range_images = QRadioButton("images:", objectName="exportRange")
        self.range_text = QLineEdit(f"0-{min(trace.n, 16) - 1}", objectName="exportRangeText")
        self.range_text.setToolTip(f"indices and ranges, e.g. 0-9,12 (the trace has images 0..{trace.n - 1})")
        group = QButtonGroup(self)
        for button in (self.all_images, self.selected_image, self.range_images):
            group.addButton(button)
        self.all_images.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.range_images)
        row.addWidget(self.range_text, 1)
        images = QVBoxLayout()
        for widget in (self.all_images, self.selected_image):
            images.addWidget(widget)
        images.addLayout(row)

        self.fps = QDoubleSpinBox(objectName="exportFps")
        self.fps.setRange(0.1, MAX_FPS)
        self.fps.setDecimals(1)
        self.fps.setValue(8.0)
        self.scale = QSpinBox(objectName="exportScale")
        self.scale.setRange(1, MAX_SCALE)
        self.scale.setValue(default_scale(trace))
        self.scale.setSuffix(" ×")
        has_windows = trace.read_params is not None or getattr(trace, "write_params", None) is not None
        self.windows = QCheckBox("draw the attention windows", objectName="exportWindows")
        self.windows.setChecked(has_windows)
        self.windows.setEnabled(has_windows)
        if not has_windows:
            self.windows.setToolTip("this trace has no attention windows")
        self.style = QComboBox(objectName="exportWindowStyle")
        for style in STYLES:
            self.style.addItem(STYLE_NAMES[style], style)
        self.summary = QLabel(objectName="exportSummary")
        self.summary.setStyleSheet("color: #9a9a9a;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Images", images)
        if kind in ("gif", "mp4"):
            form.addRow("Frames per second", self.fps)
        if pictures:
            form.addRow("Upscale", self.scale)
            form.addRow("Windows", self.windows)
            form.addRow("Window style", self.style)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        for signal in (group.buttonToggled, self.range_text.textChanged, self.scale.valueChanged,
                       self.windows.toggled):
            signal.connect(self._update)
        self._update()

    def chosen_images(self) -> list[int] | None:
        """The chosen indices (None: all). Raises ValueError with the reason for a bad range."""
        if self.all_images.isChecked():
            return None
        if self.selected_image.isChecked():
            return [self.selected]
        chosen = parse_images(self.range_text.text())
        if chosen[-1] >= self.trace.n:
            raise ValueError(f"image {chosen[-1]} does not exist: the trace has images 0..{self.trace.n - 1}")
        return chosen

    def problem(self) -> str:
        """Why the choice cannot be exported, or ""."""
        try:
            self.chosen_images()
        except ValueError as exc:
            return str(exc)
        return ""

    def options(self) -> ExportOptions:
        """The options chosen (raises ValueError when :meth:`problem` is not empty)."""
        return ExportOptions(images=self.chosen_images(), fps=float(self.fps.value()), scale=int(self.scale.value()),
                             windows=self.windows.isEnabled() and self.windows.isChecked(),
                             style=self.style.currentData())

    def _update(self, *_) -> None:
        self.range_text.setEnabled(self.range_images.isChecked())
        self.style.setEnabled(self.windows.isEnabled() and self.windows.isChecked())
        problem = self.problem()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not problem)
        if problem:
            self.summary.setText(problem)
            return
        images = self.chosen_images()
        count = self.trace.n if images is None else len(images)
        if self.kind not in PICTURE_KINDS:
            self.summary.setText(f"{count} image(s), every step")
            return
        height, width = picture_size(count, self.trace.model_config, self.scale.value(),
                                     classify=is_classify(self.trace))
        self.summary.setText(f"{len(frame_steps(self.trace))} frames of {count} image(s), {width} × {height} pixels")

