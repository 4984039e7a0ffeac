"""The Training panel's settings form: the run's settings, where it writes, and whether it continues a run.

The checkpoint field always shows what Start will write: with "continue this run" ticked, the
run it continues (an opened training checkpoint, or the run just stopped); otherwise the file of
a new run, a fresh name (:func:`~draw_studio.gui.training_controller.fresh_checkpoint_path`) in
:attr:`TrainingForm.run_folder` unless the user types another. Earlier runs' paths are never a
new run's default, in this launch or the next (the path itself is not kept in the settings).

The window trains DRAW models. An attention classifier's settings (an opened classifier checkpoint, or a
classifier preset chosen) are shown too, but Start never launches them as a DRAW run: it answers with
the ``draw-studio train`` command that trains (or continues) the classifier (:func:`classifier_command`).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Collection
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..classifier import CLASSIFIER_PRESETS
from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind
from ..config import PRESETS, TrainConfig, get_preset, length_in_steps, resume_changes, train_config_for
from ..data import DATASETS, ImageSet
from ..errors import DrawStudioError
from ..training_log import default_log_path
from .training_controller import default_run_folder, fresh_checkpoint_path
from .worker import TrainingJob

DEVICES = ("auto", "cpu", "cuda", "mps")
CLASSIFIER_NOTE = ("an attention classifier: the window shows its settings but trains DRAW models only; Start "
                   "gives the draw-studio train command that trains it")


def preset_dataset(name: str) -> str:
    """The dataset a DRAW or classifier preset was designed for."""
    return CLASSIFIER_PRESETS[name].dataset if name in CLASSIFIER_PRESETS else get_preset(name).dataset


def classifier_command(preset: str, train_config: TrainConfig, resume: str | None, out: str | None,
                       data_dir: str) -> str:
    """The ``draw-studio train`` command line that trains what the form shows for a classifier: continues
    ``resume`` (its data, batch size and seed), or starts a new run of classifier preset ``preset``."""
    parts = ["draw-studio", "train"]
    if resume:
        parts += ["--resume", resume, "--out", out or resume]  # in place, as the checkpoint field says
    else:
        parts += ["--preset", preset, "--dataset", train_config.dataset, "--batch-size", str(train_config.batch_size),
                  "--seed", str(train_config.seed)]
        if out:
            parts += ["--out", out]
    parts += ["--steps", str(train_config.steps), "--lr", f"{train_config.lr:g}",
              "--validate-every", str(train_config.validate_every)]
    if data_dir:
        parts += ["--data-dir", data_dir]
    return " ".join(shlex.quote(part) for part in parts)


class TrainingForm(QWidget):
    """The fields of a training run; :meth:`build_job` turns them into a :class:`TrainingJob`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset = QComboBox(objectName="presetCombo")
        self.preset.addItems(list(PRESETS))
        self.preset.insertSeparator(self.preset.count())
        for name, classifier in CLASSIFIER_PRESETS.items():  # shown for a classifier; Start gives its command line
            self.preset.addItem(name)
            self.preset.setItemData(self.preset.count() - 1, f"{classifier.description}. {CLASSIFIER_NOTE}",
                                    Qt.ItemDataRole.ToolTipRole)
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
        self.continue_run = QCheckBox("continue this run", objectName="continueCheck")
        self.resume_path: str | None = None
        self._resume_kind: str | None = None  # a DRAW or a classifier checkpoint: read at Start, once
        self.run_folder = default_run_folder()  # where fresh names go: the folder of the last run started
        self.taken: set[str] = set()  # checkpoint paths of runs started in this launch: never a new run's default
        self.busy = False
        self._fresh_path = ""  # the last name made up for a new run

        for widget in (self.preset, self.dataset, self.steps, self.batch_size, self.lr, self.seed,
                       self.validate_every, self.device, self.threads):
            widget.setMinimumWidth(70)  # let the dock be narrow; the fields share what there is
        for widget in (self.data_dir, self.checkpoint):
            widget.setMinimumWidth(80)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(3)
        pairs = [("preset", self.preset), ("dataset", self.dataset), ("steps", self.steps),
                 ("batch size", self.batch_size), ("learning rate", self.lr), ("seed", self.seed),
                 ("validate every", self.validate_every), ("device", self.device), ("CPU threads", self.threads)]
        for i, (label, widget) in enumerate(pairs):
            self.grid.addWidget(QLabel(label), i // 2, 2 * (i % 2))
            self.grid.addWidget(widget, i // 2, 2 * (i % 2) + 1)
        self._free_row = (len(pairs) + 1) // 2
        paths = QFormLayout()
        paths.setContentsMargins(0, 0, 0, 0)
        paths.addRow("data folder", self._with_browse(self.data_dir, folder=True))
        paths.addRow("checkpoint", self._with_browse(self.checkpoint, folder=False))
        paths.addRow("", self.continue_run)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.grid)
        layout.addLayout(paths)

        self.preset.currentTextChanged.connect(self._on_preset)
        self.continue_run.toggled.connect(self._on_continue)
        self.offer_resume(None)
        self.use_fresh_path()

    def add_row(self, left: QWidget, right: QWidget) -> None:
        """Two widgets on a row of their own under the settings."""
        self.grid.addWidget(left, self._free_row, 0, 1, 2)
        self.grid.addWidget(right, self._free_row, 2, 1, 2)
        self._free_row += 1

    # ------------------------------------------------------------------ helpers
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

    # ------------------------------------------------------------------ which run, which file
    def _on_preset(self, name: str) -> None:
        self.dataset.setCurrentText(preset_dataset(name))
        self.preset.setToolTip(CLASSIFIER_NOTE if name in CLASSIFIER_PRESETS else "")
        if not self.resuming and self.checkpoint.text() == self._fresh_path:
            self.use_fresh_path()  # the made-up name follows the preset

    def use_fresh_path(self, taken: Collection[str] = ()) -> str:
        """Put a fresh file name for a new run in the checkpoint field (never an earlier run's); return it."""
        self._fresh_path = fresh_checkpoint_path(self.run_folder, self.preset.currentText(), {*self.taken, *taken})
        self.checkpoint.setText(self._fresh_path)
        return self._fresh_path

    def offer_resume(self, path: str | None) -> None:
        """Offer to continue training ``path`` (a checkpoint with its optimiser state; None: nothing to continue).

        Checked by default: Start then resumes it exactly (same data order and noise as an
        uninterrupted run), writing to the same file, with the learning rate, steps and
        validation interval of the form. Unchecked (or None), the checkpoint field gets a fresh
        name for a new run.
        """
        self.resume_path = str(path) if path else None
        self._resume_kind = None
        self.continue_run.setToolTip(
            f"Start continues {self.resume_path} (its data, batch size and seed; the form's learning rate, "
            "steps and validation interval) and writes to it; untick for a new run in a new file"
            if self.resume_path else
            "open a training checkpoint (one holding its optimiser state) to continue it; shipped and "
            "published models hold none: start a fresh run")
        self.continue_run.blockSignals(True)
        self.continue_run.setChecked(self.resume_path is not None)
        self.continue_run.blockSignals(False)
        self._on_continue(self.continue_run.isChecked())

    def _on_continue(self, checked: bool) -> None:
        if checked and self.resume_path:
            self.checkpoint.setText(self.resume_path)
        elif not self._new_run_file(self.checkpoint.text()):  # never the file of an earlier run
            self.use_fresh_path([self.resume_path] if self.resume_path else [])
        self.set_busy(self.busy)  # a continued run keeps the checkpoint's preset, data, batch size and seed

    def _new_run_file(self, text: str) -> bool:
        """Whether ``text`` (the field) may stay a new run's file: empty (no checkpoints), or a path the user
        chose that holds no run (not the run offered to continue, nor one started here, nor an existing file)."""
        text = text.strip()
        if not text:
            return True
        path = Path(text).expanduser()
        return (text != self.resume_path and text not in self.taken and str(path) not in self.taken
                and not path.exists() and not default_log_path(path).exists())

    @property
    def resuming(self) -> bool:
        """Whether Start continues the run at :attr:`resume_path`."""
        return self.resume_path is not None and self.continue_run.isChecked()

    @property
    def trains_classifier(self) -> bool:
        """Whether Start would train an attention classifier (the window only shows its command line): the
        run continued is a classifier's checkpoint, or a new run's preset is a classifier preset."""
        if self.resuming:
            if self._resume_kind is None:
                self._resume_kind = checkpoint_kind(self.resume_path)
            return self._resume_kind == CLASSIFIER_KIND
        return self.preset.currentText() in CLASSIFIER_PRESETS

    def set_busy(self, busy: bool) -> None:
        """Enable what may change now: nothing while a run is on; a continued run's own settings never."""
        self.busy = busy
        for widget in (self.steps, self.lr, self.validate_every, self.device, self.data_dir, self.threads):
            widget.setEnabled(not busy)
        self.continue_run.setEnabled(not busy and self.resume_path is not None)
        for widget in (self.preset, self.dataset, self.batch_size, self.seed, self.checkpoint):
            widget.setEnabled(not busy and not self.resuming)

    # ------------------------------------------------------------------ the job
    def build_job(self, trace_every_s: float = 5.0,
                  given_data: tuple[ImageSet, ImageSet] | None = None) -> TrainingJob:
        """The training job the form describes; raises DrawStudioError on a bad value.

        ``overwrite`` stays False: the core refuses to replace an existing run unless the caller
        sets it (after asking the user).
        """
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise DrawStudioError(f"learning rate {self.lr.text()!r} is not a number; type e.g. 1e-3") from None
        name = self.preset.currentText()
        settings = dict(dataset=self.dataset.currentText(), batch_size=self.batch_size.value(),
                        steps=self.steps.value(), lr=lr, seed=self.seed.value(),
                        validate_every=self.validate_every.value())
        resume = self.resume_path if self.resuming else None
        out = self.checkpoint.text().strip() or None
        if self.trains_classifier:
            config = dataclasses.replace(TrainConfig(), preset=name, **settings)
            raise DrawStudioError(
                "the window trains DRAW models, not attention classifiers; train this one on the command line: "
                + classifier_command(name, config, resume, out, self.data_dir.text().strip()))
        preset = get_preset(name)
        train_config = train_config_for(name, report_every=1, **settings)
        if out:
            out = str(Path(out).expanduser())
            folder = Path(out).resolve().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DrawStudioError(f"cannot create the checkpoint folder {folder}: {exc.strerror}; "
                                      "choose another checkpoint file") from None
        train_set, valid_set = given_data or (None, None)
        changes = (resume_changes(lr=lr, validate_every=self.validate_every.value(), report_every=1)
                   if resume else None)
        return TrainingJob(preset.model, train_config, data_dir=self.data_dir.text().strip() or None,
                           device=self.device.currentText().strip() or "auto", out=out, train_set=train_set,
                           valid_set=valid_set, trace_every_s=trace_every_s, resume=resume,
                           resume_changes=changes, threads=self.threads.value())

    def fill_from_configs(self, train_config: dict | None, steps_per_epoch: int | None = None) -> None:
        """Show the settings of a run (from a checkpoint or a training log); a run planned in epochs shows the
        steps they make when ``steps_per_epoch`` is known, so that continuing it ends where it was meant to."""
        if not train_config:
            return
        config = length_in_steps(TrainConfig.from_dict(train_config), steps_per_epoch)
        if config.preset in PRESETS or config.preset in CLASSIFIER_PRESETS:
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
        settings.setValue("training/run_folder", self.run_folder)
        settings.remove("training/checkpoint")  # earlier versions kept the path, and the next launch reused it
        settings.setValue("training/device", self.device.currentText())
        settings.setValue("training/threads", self.threads.value())

    def restore_settings(self, settings: QSettings, default_data_dir: str = "") -> None:
        preset = str(settings.value("training/preset", "mnist-paper"))
        if preset in PRESETS or preset in CLASSIFIER_PRESETS:
            self.preset.setCurrentText(preset)
        dataset = str(settings.value("training/dataset", self.dataset.currentText()))
        if dataset in DATASETS:
            self.dataset.setCurrentText(dataset)
        remembered = str(settings.value("training/data_dir", "") or "")
        # a folder deleted since (a moved clone, a temporary one) would fail the next Start: the default instead
        self.data_dir.setText(remembered if remembered and Path(remembered).is_dir() else default_data_dir)
        self.run_folder = str(settings.value("training/run_folder", "") or "") or default_run_folder()
        if not self.resuming:
            self.use_fresh_path()  # a fresh name in the remembered folder, never a run of an earlier launch
        self.device.setCurrentText(str(settings.value("training/device", "auto")))
        try:
            self.threads.setValue(int(settings.value("training/threads", 0)))
        except (TypeError, ValueError):
            self.threads.setValue(0)
