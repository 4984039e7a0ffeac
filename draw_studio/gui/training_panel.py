"""Training panel: settings, Start / Pause / Stop / Save, progress and the live curves."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..config import PRESETS, TrainConfig, get_preset, resume_changes, train_config_for
from ..data import DATASETS, ImageSet
from ..errors import DrawStudioError
from ..formatting import duration
from ..progress import ReportKind
from ..train import default_log_path
from ..training_log import read_training_log
from .curves import CurvesPlot
from .history import TrainingHistory
from .panel import Panel
from .state import StudioState
from .training_controller import IDLE, PAUSED, RUNNING, STARTING, TrainingController
from .worker import TrainingJob

DEVICES = ("auto", "cpu", "cuda", "mps")


class TrainingPanel(Panel):
    """Set up and run training; shows progress and the curves.

    Signals
    -------
    message(str) : a line for the status bar
    """

    title = "Training"
    dock_name = "trainingDock"
    message = Signal(str)

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.controller = TrainingController(self)
        self.history = TrainingHistory()
        self.given_data: tuple[ImageSet, ImageSet] | None = None
        self.trace_every_s = 5.0
        self.last_report = None

        self.preset = QComboBox(objectName="presetCombo")
        self.preset.addItems(list(PRESETS))
        self.dataset = QComboBox(objectName="datasetCombo")
        self.dataset.addItems(list(DATASETS))
        self.steps = self._spin("stepsSpin", 1, 10_000_000, 20_000)
        self.batch_size = self._spin("batchSizeSpin", 1, 65_536, 64)
        self.lr = QLineEdit("1e-3", objectName="lrEdit")
        self.seed = self._spin("seedSpin", 0, 2 ** 31 - 1, 0)
        self.validate_every = self._spin("validateEverySpin", 0, 10_000_000, 1000)
        self.validate_every.setToolTip("validation bound every this many steps (0: never)")
        self.threads = self._spin("threadsSpin", 0, 256, 0)
        self.threads.setSpecialValueText("all cores")
        self.threads.setToolTip("CPU threads for training. All cores is fastest on an idle machine; when other "
                                "programs compute, use fewer: PyTorch's threads wait for each other and a busy "
                                "core slows every step down several times")
        self.device = QComboBox(objectName="deviceCombo")
        self.device.setEditable(True)
        self.device.addItems(list(DEVICES))
        self.data_dir = QLineEdit(objectName="dataDirEdit")
        self.data_dir.setPlaceholderText("folder with the dataset (or $DRAW_STUDIO_DATA / cache)")
        self.checkpoint = QLineEdit(objectName="checkpointEdit")
        self.checkpoint.setPlaceholderText("empty: no automatic checkpoints")
        self.checkpoint.setToolTip("written every 1000 steps and when training stops")
        self.resume_path: str | None = None
        self._checkpoint_before_resume = ""
        self.continue_run = QCheckBox("continue the opened checkpoint", objectName="continueCheck")
        self.continue_run.toggled.connect(self._on_continue)

        for widget in (self.preset, self.dataset, self.steps, self.batch_size, self.lr, self.seed,
                       self.validate_every, self.device, self.threads):
            widget.setMinimumWidth(70)  # let the dock be narrow; the fields share what there is
        form = QGridLayout()
        form.setHorizontalSpacing(6)
        form.setVerticalSpacing(3)
        pairs = [("preset", self.preset), ("dataset", self.dataset), ("steps", self.steps),
                 ("batch size", self.batch_size), ("learning rate", self.lr), ("seed", self.seed),
                 ("validate every", self.validate_every), ("device", self.device), ("CPU threads", self.threads)]
        for i, (label, widget) in enumerate(pairs):
            form.addWidget(QLabel(label), i // 2, 2 * (i % 2))
            form.addWidget(widget, i // 2, 2 * (i % 2) + 1)
        paths = QFormLayout()
        paths.setContentsMargins(0, 0, 0, 0)
        paths.addRow("data folder", self._with_browse(self.data_dir, folder=True))
        paths.addRow("checkpoint", self._with_browse(self.checkpoint, folder=False))
        paths.addRow("", self.continue_run)

        self.start_button = QPushButton("Start", objectName="startButton")
        self.pause_button = QPushButton("Pause", objectName="pauseButton")
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.save_button = QPushButton("Save…", objectName="saveButton")
        self.save_button.setToolTip("save a checkpoint of the model being trained")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button, self.save_button):
            buttons.addWidget(button)

        self.step_label = QLabel("step –", objectName="trainStepLabel")
        self.epoch_label = QLabel("epoch –", objectName="epochLabel")
        self.speed_label = QLabel("– img/s", objectName="speedLabel")
        self.eta_label = QLabel("ETA –", objectName="etaLabel")
        self.progress = QProgressBar(objectName="trainProgress")
        self.progress.setTextVisible(True)
        self.follow_live = QCheckBox("show live traces", objectName="followLiveCheck")
        self.follow_live.setChecked(True)
        self.follow_live.setToolTip("every few seconds, show the model being trained on a few validation images")
        self.trace_now = QPushButton("Trace now", objectName="traceNowButton")
        self.trace_now.setToolTip("record a live trace of the model being trained at once")
        self.trace_now.clicked.connect(lambda: self.controller.request_live_trace())
        form.addWidget(self.follow_live, (len(pairs) + 1) // 2, 0, 1, 2)
        form.addWidget(self.trace_now, (len(pairs) + 1) // 2, 2, 1, 2)
        self.progress.setMinimumWidth(60)
        for widget in (self.data_dir, self.checkpoint):
            widget.setMinimumWidth(80)
        numbers = QHBoxLayout()
        for label in (self.step_label, self.epoch_label, self.speed_label, self.eta_label):
            numbers.addWidget(label)
        numbers.addWidget(self.progress, 1)

        self.curves = CurvesPlot(self.history)
        self.curves.setObjectName("trainingCurves")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(paths)
        layout.addLayout(buttons)
        layout.addLayout(numbers)
        layout.addWidget(self.curves, 1)

        self.preset.currentTextChanged.connect(self._on_preset)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(lambda: self.controller.stop())
        self.save_button.clicked.connect(self._ask_save)
        self.curves.export_requested.connect(self._ask_export_csv)
        self.controller.state_changed.connect(self._on_state)
        self.controller.reports.connect(self.on_reports)
        self.controller.saved.connect(lambda path: self.message.emit(f"checkpoint saved to {path}"))
        self.controller.finished.connect(self._on_state)
        self.offer_resume(None)

    # ------------------------------------------------------------------ form helpers
    @staticmethod
    def _spin(name: str, low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox(objectName=name)
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setGroupSeparatorShown(True)
        return spin

    def _with_browse(self, edit: QLineEdit, folder: bool) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        browse = QPushButton("…")
        browse.setFixedWidth(28)

        def pick() -> None:
            if folder:
                chosen = QFileDialog.getExistingDirectory(self, "Dataset folder", edit.text())
            else:
                chosen, _ = QFileDialog.getSaveFileName(self, "Checkpoint file", edit.text(),
                                                        "Checkpoints (*.ckpt);;All files (*)")
            if chosen:
                edit.setText(chosen)

        browse.clicked.connect(pick)
        row.addWidget(browse)
        return box

    def _on_preset(self, name: str) -> None:
        self.dataset.setCurrentText(get_preset(name).dataset)

    def set_datasets(self, train_set: ImageSet | None, valid_set: ImageSet | None = None) -> None:
        """Train on these images instead of loading the dataset (None: load it again)."""
        self.given_data = None if train_set is None else (train_set, valid_set or train_set)

    def offer_resume(self, path: str | None) -> None:
        """Offer to continue training ``path`` (a checkpoint with its optimiser state; None: nothing to continue).

        Checked by default: Start then resumes it exactly (same data order and noise as an
        uninterrupted run), writing to the same file, with the learning rate, steps and
        validation interval of the form.
        """
        if self.controller.active:
            return  # the form belongs to the run in progress
        self.continue_run.setChecked(False)
        self.resume_path = str(path) if path else None
        self.continue_run.setEnabled(self.resume_path is not None)
        self.continue_run.setToolTip(
            f"Start continues {self.resume_path} (its data, batch size and seed; the form's learning rate, "
            "steps and validation interval) and writes to it" if self.resume_path else
            "open a training checkpoint (one holding its optimiser state) to continue it; shipped and "
            "published models hold none: start a fresh run")
        self.continue_run.setChecked(self.resume_path is not None)
        self._on_state()

    def _on_continue(self, checked: bool) -> None:
        if checked and self.resume_path:
            self._checkpoint_before_resume = self.checkpoint.text()
            self.checkpoint.setText(self.resume_path)
        elif self.checkpoint.text() == self.resume_path:
            self.checkpoint.setText(self._checkpoint_before_resume)
        self._on_state()  # a continued run keeps the checkpoint's preset, data, batch size and seed

    @property
    def resuming(self) -> bool:
        """Whether Start continues the opened checkpoint."""
        return self.resume_path is not None and self.continue_run.isChecked()

    def load_log(self, path: str | Path) -> None:
        """Show the curves of a training log and its settings."""
        log = read_training_log(path)
        self.history.load(
            {"step": log.step, "wall_time": log.wall_time, "bound": log.loss, "nll_x": log.nll_x,
             "kl": log.kl}, {"step": log.eval_step, "bound": log.eval_bound})
        self.fill_from_configs(log.train_config)
        self.curves.fit()

    def fill_from_configs(self, train_config: dict | None) -> None:
        """Show the settings of a run (from a checkpoint or a training log)."""
        if not train_config:
            return
        config = TrainConfig.from_dict(train_config)
        if config.preset in PRESETS:
            self.preset.setCurrentText(config.preset)
        if config.dataset in DATASETS:
            self.dataset.setCurrentText(config.dataset)
        self.steps.setValue(config.steps)
        self.batch_size.setValue(config.batch_size)
        self.lr.setText(f"{config.lr:g}")
        self.seed.setValue(config.seed)
        self.validate_every.setValue(config.validate_every)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("training/preset", self.preset.currentText())
        settings.setValue("training/dataset", self.dataset.currentText())
        settings.setValue("training/data_dir", self.data_dir.text())
        settings.setValue("training/checkpoint", self.checkpoint.text())
        settings.setValue("training/device", self.device.currentText())
        settings.setValue("training/threads", self.threads.value())

    def restore_settings(self, settings: QSettings, default_data_dir: str = "") -> None:
        preset = str(settings.value("training/preset", "mnist-paper"))
        if preset in PRESETS:
            self.preset.setCurrentText(preset)
        dataset = str(settings.value("training/dataset", self.dataset.currentText()))
        if dataset in DATASETS:
            self.dataset.setCurrentText(dataset)
        self.data_dir.setText(str(settings.value("training/data_dir", default_data_dir) or default_data_dir))
        self.checkpoint.setText(str(settings.value("training/checkpoint", "runs/gui/draw.ckpt")))
        self.device.setCurrentText(str(settings.value("training/device", "auto")))
        try:
            self.threads.setValue(int(settings.value("training/threads", 0)))
        except (TypeError, ValueError):
            self.threads.setValue(0)

    # ------------------------------------------------------------------ actions
    def build_job(self) -> TrainingJob:
        """The training job the form describes; raises DrawStudioError on a bad value."""
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise DrawStudioError(f"learning rate {self.lr.text()!r} is not a number; type e.g. 1e-3") from None
        preset = get_preset(self.preset.currentText())
        train_config = train_config_for(
            self.preset.currentText(), dataset=self.dataset.currentText(), batch_size=self.batch_size.value(),
            steps=self.steps.value(), lr=lr, seed=self.seed.value(), validate_every=self.validate_every.value(),
            report_every=1)
        out = self.checkpoint.text().strip() or None
        if out:
            folder = Path(out).expanduser().resolve().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DrawStudioError(f"cannot create the checkpoint folder {folder}: {exc.strerror}; "
                                      "choose another checkpoint file") from None
        train_set, valid_set = self.given_data or (None, None)
        resume = self.resume_path if self.resuming else None
        changes = (resume_changes(lr=lr, validate_every=self.validate_every.value(), report_every=1)
                   if resume else None)
        return TrainingJob(preset.model, train_config, data_dir=self.data_dir.text().strip() or None,
                           device=self.device.currentText().strip() or "auto", out=out, train_set=train_set,
                           valid_set=valid_set, trace_every_s=self.trace_every_s, resume=resume,
                           resume_changes=changes, threads=self.threads.value())

    def start(self) -> None:
        """Start training with the form's settings (a bad setting becomes a status message)."""
        if self.controller.active:
            return
        try:
            job = self.build_job()
        except DrawStudioError as exc:
            self.message.emit(f"cannot start: {exc}")
            return
        self.history.clear()
        log = default_log_path(job.resume) if job.resume else None
        if log is not None and log.is_file():
            try:
                self.load_log(log)  # the curves so far; the resumed run appends to them (and to the file)
            except DrawStudioError as exc:
                self.message.emit(f"the curves so far were not shown: {exc}")
        self.last_report = None
        self.mark_dirty()
        self.controller.start(job)
        self.message.emit(f"training {job.train_config.preset} on {job.train_config.dataset}…")

    def toggle_pause(self) -> None:
        if self.controller.state == PAUSED:
            self.controller.resume()
        else:
            self.controller.pause()

    def save_checkpoint(self, path: str) -> None:
        """Write a checkpoint of the model being (or last) trained to ``path``."""
        try:
            self.controller.save(path)
        except DrawStudioError as exc:
            self.message.emit(str(exc))

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", self.checkpoint.text() or "model.ckpt",
                                              "Checkpoints (*.ckpt);;All files (*)")
        if path:
            self.save_checkpoint(path)

    def export_csv(self, path: str) -> None:
        """Write every point of every curve to ``path`` (CSV)."""
        try:
            rows = self.history.write_csv(path)
        except DrawStudioError as exc:
            self.message.emit(str(exc))
            return
        self.message.emit(f"wrote {rows} points to {path}")

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", "curves.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    # ------------------------------------------------------------------ reports
    def on_reports(self, reports: list) -> None:
        """Take a coalesced batch of training reports (drawing waits for the redraw timer)."""
        for report in reports:
            if report.kind is ReportKind.STEP:
                self.history.add_steps(report.step_losses)
            else:
                if report.kind is ReportKind.VALIDATION:
                    self.history.add_validation(report.step, report.wall_time, report.bound)
                line = report.describe()
                if line:
                    self.message.emit(" ".join(line.split()))
            if report.kind in (ReportKind.STEP, ReportKind.START, ReportKind.DONE) or self.last_report is None:
                self.last_report = report
        self.mark_dirty()

    def _on_state(self, *_) -> None:
        state = self.controller.state
        busy = state != IDLE
        self.start_button.setEnabled(not busy)
        self.pause_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        finished_model = state == IDLE and self.controller.trainer is not None
        self.save_button.setEnabled(state in (RUNNING, PAUSED) or finished_model)
        self.trace_now.setEnabled(state in (RUNNING, PAUSED))
        for widget in (self.steps, self.lr, self.validate_every, self.device, self.data_dir, self.threads):
            widget.setEnabled(not busy)
        self.continue_run.setEnabled(not busy and self.resume_path is not None)
        for widget in (self.preset, self.dataset, self.batch_size, self.seed, self.checkpoint):
            widget.setEnabled(not busy and not self.resuming)

    def redraw(self) -> None:
        report = self.last_report
        if report is not None:
            self.step_label.setText(f"step {report.step:,} / {report.total_steps:,}")
            self.epoch_label.setText(f"epoch {report.epoch:.2f}")
            if report.images_per_s > 0:
                self.speed_label.setText(f"{report.images_per_s:,.0f} img/s")
                self.eta_label.setText(f"ETA {duration(report.eta_s)}")
            self.progress.setRange(0, max(report.total_steps, 1))
            self.progress.setValue(report.step)
        self.curves.refresh()

    def refresh(self) -> None:
        super().refresh()
        self.curves.refresh()
