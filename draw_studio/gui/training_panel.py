"""Training panel: settings (:mod:`~draw_studio.gui.training_form`) and the runs
(:mod:`~draw_studio.gui.runs_view`) in two tabs, Start / Pause / Stop / Save, progress and the curves.

The curves show the open source's run (the run being trained, or a training log) in detail, or the
runs ticked in the Runs tab overlaid, one colour per run. :meth:`TrainingPanel.show_log` opens a log
as the open source's run (None: none).

Runs are never lost: after Stop (or the end), Start continues the run from its checkpoint (same
step counter, log and file); a new run writes to a fresh file name, and to the file of an existing
run only once the user confirmed it (the core refuses otherwise, ``Trainer.from_options(overwrite=)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..data import ImageSet
from ..errors import DrawStudioError
from ..formatting import duration
from ..progress import ReportKind
from ..run_checks import refuse_to_replace
from ..training_log import default_log_path
from .curves import CurvesPlot
from .history import TrainingHistory
from .panel import Panel
from .run_rows import live_row
from .runs_view import RunsView
from .state import StudioState
from .training_controller import IDLE, PAUSED, RUNNING, STARTING, TrainingController
from .training_form import TrainingForm
from .worker import TrainingJob


class TrainingPanel(Panel):
    """Set up and run training; shows progress and the curves.

    The form's fields are attributes of the panel too (``preset``, ``steps``, ``checkpoint``,
    ``continue_run``...). The checkpoint field shows the run Start continues ("continue this run"
    ticked: an opened training checkpoint, or the run just stopped) or the file a new run writes.

    Attributes
    ----------
    replace_prompt : callable, optional
        ``replace_prompt(path) -> bool``: whether a new run may replace the run at ``path``. None:
        a dialog asks when :attr:`interactive`, else the run is refused with a message.

    Signals
    -------
    message(str) : a line for the status bar
    """

    title = "Training"
    dock_name = "trainingDock"
    follows_step = False
    message = Signal(str)

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.controller = TrainingController(self)
        self.history = TrainingHistory()
        self.given_data: tuple[ImageSet, ImageSet] | None = None
        self.trace_every_s = 5.0
        self.last_report = None
        self.replace_prompt: Callable[[str], bool] | None = None
        self._interactive: bool | None = None
        self._shown_run: tuple[str, int] | None = None  # (checkpoint, history generation): curves up to it
        self._checkpoint_step: int | None = None  # step of the running job's last checkpoint

        self.form = TrainingForm()
        form = self.form
        self.preset, self.dataset, self.steps, self.batch_size = form.preset, form.dataset, form.steps, form.batch_size
        self.lr, self.seed, self.validate_every, self.threads = form.lr, form.seed, form.validate_every, form.threads
        self.device, self.data_dir, self.checkpoint = form.device, form.data_dir, form.checkpoint
        self.continue_run = form.continue_run

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
        form.add_row(self.follow_live, self.trace_now)
        self.progress.setMinimumWidth(60)
        numbers = QHBoxLayout()  # the numbers on one line, the progress bar on its own: nothing clipped at 1280x800
        for label in (self.step_label, self.epoch_label, self.speed_label, self.eta_label):
            numbers.addWidget(label)
        numbers.addStretch(1)

        self.curves = CurvesPlot(self.history)
        self.curves.setObjectName("trainingCurves")
        self.runs = RunsView(self.history, self.curves)
        self.tabs = QTabWidget(objectName="trainingTabs")
        self.tabs.addTab(form, "Settings")
        self.tabs.addTab(self.runs, "Runs")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)
        layout.addLayout(buttons)
        layout.addLayout(numbers)
        layout.addWidget(self.progress)
        layout.addWidget(self.curves, 1)

        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(lambda: self.controller.stop())
        self.save_button.clicked.connect(self._ask_save)
        self.curves.export_requested.connect(self._ask_export_csv)
        self.runs.message.connect(self.message)
        self.controller.state_changed.connect(self._on_state)
        self.controller.reports.connect(self.on_reports)
        self.controller.saved.connect(lambda path: self.message.emit(f"checkpoint saved to {path}"))
        self.controller.finished.connect(self._on_state)
        self.controller.finished.connect(self._after_run)
        self.controller.finished.connect(self.mark_dirty)  # the run's row says how it ended
        self._on_state()

    # ------------------------------------------------------------------ the form
    @property
    def interactive(self) -> bool:
        """Whether a dialog may ask (default: as the window's ``interactive`` says)."""
        if self._interactive is not None:
            return self._interactive
        return bool(getattr(self.window(), "interactive", True))

    @interactive.setter
    def interactive(self, value: bool) -> None:
        self._interactive = bool(value)

    @property
    def resume_path(self) -> str | None:
        """The run "continue this run" continues (None: none)."""
        return self.form.resume_path

    @property
    def resuming(self) -> bool:
        """Whether Start continues the run at :attr:`resume_path`."""
        return self.form.resuming

    def set_datasets(self, train_set: ImageSet | None, valid_set: ImageSet | None = None) -> None:
        """Train on these images instead of loading the dataset (None: load it again)."""
        self.given_data = None if train_set is None else (train_set, valid_set or train_set)

    def offer_resume(self, path: str | None) -> None:
        """Offer to continue training ``path`` (a checkpoint with its optimiser state; None: nothing to
        continue, and the checkpoint field gets a fresh name for a new run); see
        :meth:`TrainingForm.offer_resume`. Ignored while a run is on: the form is the run's."""
        if not self.controller.active:
            self.form.offer_resume(path)

    def show_log(self, path: str | Path | None) -> None:
        """Open the training log ``path`` as the open source's run: its row in the runs view, its curves, and
        its settings in the form; None: no log (the curves are cleared). Ignored while a run is on (the curves
        and the form are the run's). The run shown before keeps its row in the runs view, unticked.

        A small log is shown at once; a big one is read off the window thread and shown when read
        (``curves.log_loaded``), its failure then going to the status bar and ``curves.log_failed``.

        Raises
        ------
        DrawStudioError
            A small log could not be read.
        """
        if self.controller.active:
            return
        if path is None:
            self.runs.clear_current()
            self.history.clear()
            self.mark_dirty()
            return
        self.runs.set_current_log(path)
        self._read_log(path, fill_form=True)

    load_log = show_log  # the name it had

    def open_runs(self, paths) -> int:
        """Add training logs and folders of them to the runs view and show it; how many runs are new."""
        self.tabs.setCurrentWidget(self.runs)
        return self.runs.add_logs(paths)

    def _read_log(self, path: str | Path, fill_form: bool) -> None:
        def loaded(log) -> None:
            self.runs.log_read(path, log)
            if fill_form and not self.controller.active:
                self.fill_from_configs(log.train_config, log.steps_per_epoch)

        self.curves.open_log(path, loaded=loaded,
                             failed=lambda text: self.message.emit(f"the training log was not shown: {text}"))

    def fill_from_configs(self, train_config: dict | None, steps_per_epoch: int | None = None) -> None:
        """Show the settings of a run (from a checkpoint or a training log): :meth:`TrainingForm.fill_from_configs`."""
        self.form.fill_from_configs(train_config, steps_per_epoch)

    def save_settings(self, settings: QSettings) -> None:
        self.form.save_settings(settings)

    def restore_settings(self, settings: QSettings, default_data_dir: str = "") -> None:
        self.form.restore_settings(settings, default_data_dir)

    # ------------------------------------------------------------------ actions
    def build_job(self) -> TrainingJob:
        """The training job the form describes; raises DrawStudioError on a bad value."""
        return self.form.build_job(self.trace_every_s, self.given_data)

    def start(self) -> None:
        """Start training with the form's settings (a bad setting, or a run it would replace without the
        user's word, becomes a status message).

        With "continue this run" ticked the run goes on from its checkpoint; otherwise a new run
        starts, and replaces an existing run only once :meth:`may_replace` says so.
        """
        if self.controller.active:
            return
        try:
            job = self.build_job()
        except DrawStudioError as exc:
            self.message.emit(f"cannot start: {exc}")
            return
        if job.out and not job.resume:
            try:
                refuse_to_replace(Path(job.out), default_log_path(job.out))  # the core's rule for a new run
            except DrawStudioError:
                if not self.may_replace(job.out):
                    self.message.emit(f"not started: {job.out} (or its training log) holds an earlier run, and a "
                                      "new run never replaces one unasked; tick “continue this run” to go on "
                                      "with it, or choose another checkpoint file")
                    return
                job.overwrite = True
        self.runs.set_current_live(default_log_path(job.out) if job.out else None)
        if job.resume is None or self._shown_run != (str(Path(job.resume).resolve()), self.history.generation):
            self.history.clear()  # the curves shown are not those of this run up to its checkpoint
            log = default_log_path(job.resume) if job.resume else None
            if log is not None and log.is_file():
                try:
                    self._read_log(log, fill_form=False)  # the curves so far; the resumed run appends to them
                except DrawStudioError as exc:
                    self.message.emit(f"the curves so far were not shown: {exc}")
        self.last_report = None
        self._checkpoint_step = None
        if job.out:
            self.form.taken.add(job.out)
            self.form.run_folder = str(Path(job.out).resolve().parent)
        self.mark_dirty()
        self.controller.start(job)
        self.message.emit(f"continuing {job.resume}…" if job.resume else
                          f"training {job.train_config.preset} on {job.train_config.dataset}…")

    def may_replace(self, path: str) -> bool:
        """Whether a new run may replace the run at ``path``: :attr:`replace_prompt`, else a dialog when
        :attr:`interactive`, else no."""
        if self.replace_prompt is not None:
            return bool(self.replace_prompt(path))
        if not self.interactive:
            return False
        box = QMessageBox(QMessageBox.Icon.Warning, "Replace a run?",
                          f"{path} (or its training log) holds an earlier run. A new run replaces it at its first "
                          "checkpoint. Replace it?", QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("replaceRunDialog")
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        return box.clickedButton() is replace

    def _after_run(self) -> None:
        """A run ended: Start now continues it if it wrote its checkpoint, else a new run gets a fresh name."""
        job = self.controller.last_job
        if job is None or not job.out:
            return  # a run without checkpoints: the form stays as it was
        if not Path(job.out).is_file():
            self.offer_resume(None)
            return
        steps = self.history.train.column("step")
        if self.history.train.size and self._checkpoint_step is not None and steps[-1] == self._checkpoint_step:
            self._shown_run = (str(Path(job.out).resolve()), self.history.generation)
        self.offer_resume(job.out)

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
        """Write every point of every curve to ``path`` (CSV): a long history off the window thread, its
        progress and the result in the status bar (``curves.csv_progress``, ``csv_written``, ``csv_failed``)."""
        started = self.curves.export_csv(
            path, written=self.message.emit, failed=self.message.emit,
            progress=lambda rows, total: self.message.emit(f"writing {path}: {rows:,} of {total:,} points…"))
        if not started:
            self.message.emit("a CSV export is still being written; export again when it is done")

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", "curves.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    # ------------------------------------------------------------------ reports
    def on_reports(self, reports: list) -> None:
        """Take a coalesced batch of training reports (drawing waits for the redraw timer)."""
        for report in reports:
            if report.kind is ReportKind.STEP:
                self.history.add_steps(report.step_losses, lr=report.lr)
                if self.history.steps_per_epoch is None and report.epoch > 0:
                    job = self.controller.last_job
                    self.history.set_scales(round(report.step / report.epoch),
                                            job.train_config.batch_size if job is not None else None)
            else:
                if report.kind is ReportKind.VALIDATION:
                    self.history.add_validation(report.step, report.wall_time, report.bound)
                elif report.kind is ReportKind.CHECKPOINT:
                    self._checkpoint_step = report.step
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
        self.form.set_busy(busy)

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
        self._update_live_row()
        self.curves.refresh()

    def _update_live_row(self) -> None:
        """The live run's row in the runs view: its steps, epochs, time, best validation bound and state."""
        current, job = self.runs.current, self.controller.last_job
        if current is None or not current.live or job is None:
            return
        worker = self.controller.worker
        trainer = worker.trainer if worker is not None else self.controller.trainer
        model_config = trainer.model.config if trainer is not None else job.model_config
        train_config = trainer.config if trainer is not None else job.train_config
        total = self.last_report.total_steps if self.last_report is not None else None
        self.runs.update_live(live_row(current.key, current.name, self.history, model_config, train_config,
                                       self.controller.state, total))

    def refresh(self) -> None:
        super().refresh()
        self.curves.refresh()
