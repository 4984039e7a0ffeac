"""Training on the generic :class:`~draw_studio.gui.background.BackgroundWorker`: ``Trainer.run()``'s
reports become Qt signals, and nothing here touches a widget.

The worker owns the model while it trains. Everything else that needs the
model (a live trace, samples, a checkpoint) is asked for with a request that
the worker serves between two optimiser steps, or every 0.1 s while paused.
Reports are coalesced: at most one ``yielded`` signal every
``REPORT_INTERVAL_S`` carries every report since the last one (any report
other than a step's goes at once).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import Signal

from ..config import ModelConfig, TrainConfig
from ..data import ImageSet, model_inputs
from ..errors import DrawStudioError
from ..progress import Report, ReportKind
from ..trace import TraceInputs, record_trace
from ..train import Trainer, TrainingControl
from .background import BackgroundWorker

REPORT_INTERVAL_S = 0.1
URGENT_KINDS = frozenset(ReportKind) - {ReportKind.STEP}  # sent at once; step reports are coalesced


def training_threads() -> int:
    """Torch threads for the training worker: all cores.

    Measured on 2 cores (mnist-paper, batch 64, compiled fast path, ``draw_studio.gui.latency_run``):
    2 threads train at ~360 images/s with an event-loop p99 of ~21 ms; 1 thread (a core kept for
    the window) at ~215 images/s with ~10 ms. Both are within the 50 ms target, so the worker
    takes every core.
    """
    return max(1, os.cpu_count() or 1)


@dataclass
class TrainingJob:
    """Everything the worker needs to build a :class:`~draw_studio.train.Trainer`.

    ``train_set`` / ``valid_set`` (optional) replace loading the dataset.
    ``trace_every_s`` is how often a live trace of ``trace_images``
    validation images is recorded (0: never). ``overwrite``: a new run may
    replace an existing checkpoint or log at ``out`` (False: the core refuses
    to, see ``Trainer.from_options``); the window sets it only after the user
    said so.
    """

    model_config: ModelConfig
    train_config: TrainConfig
    data_dir: str | None = None
    device: str = "auto"
    out: str | None = None
    train_set: ImageSet | None = None
    valid_set: ImageSet | None = None
    download: bool = False
    trace_every_s: float = 5.0
    trace_images: int = 8
    threads: int = 0
    resume: str | None = None  # continue this checkpoint (see Trainer.from_checkpoint and resume_changes)
    resume_changes: dict | None = None
    overwrite: bool = False


class ServingControl(TrainingControl):
    """Pause/stop flags whose wait, while paused, also serves the worker's requests."""

    def __init__(self, serve) -> None:
        super().__init__()
        self._serve = serve

    def wait_while_paused(self, timeout: float = 0.1) -> None:
        self._serve()
        super().wait_while_paused(timeout)


def is_urgent(report: Report) -> bool:
    """Every report but a step's is sent at once."""
    return report.kind in URGENT_KINDS


class TrainingWorker(BackgroundWorker):
    """Runs one training job: the generic worker with ``Trainer.run`` as its generator, plus requests.

    ``Trainer.run`` watches :attr:`control` itself (it reports a pause, and on a stop writes its
    final checkpoint unless :meth:`skip_final_save`).

    Signals
    -------
    yielded(list) : coalesced :class:`~draw_studio.train.Report` objects (from :class:`BackgroundWorker`)
    live_trace(Trace, int) : a trace of validation images and the step it was taken at
    trace_ready(str, Trace) : a requested trace, with the request's purpose
    saved(str) : a checkpoint was written on request
    request_failed(str, str) : a request (its purpose, or "save") failed with this message
    failed(str) : training stopped with this message (the last checkpoint is intact)
    finished() : the worker is done (after ``failed`` if it failed)
    """

    live_trace = Signal(object, int)
    trace_ready = Signal(str, object)
    saved = Signal(str)
    request_failed = Signal(str, str)

    def __init__(self, job: TrainingJob) -> None:
        super().__init__(self._train, control=ServingControl(self._serve_requests), honours_control=True,
                         coalesce_s=REPORT_INTERVAL_S, urgent=is_urgent)
        self.job = job
        self.trainer: Trainer | None = None
        self._lock = threading.Lock()
        self._trace_requests: list[tuple[str, TraceInputs]] = []
        self._save_requests: list[str] = []
        self._live_now = False
        self._last_trace = 0.0
        self._last_wall = 0.0
        self._trace_pixels: np.ndarray | None = None  # (k, C, H, W) validation images for live traces
        self._trace_labels: np.ndarray | None = None

    # ------------------------------------------------------------------ requests (any thread)
    def request_trace(self, purpose: str, inputs: TraceInputs) -> None:
        """Record a trace of ``inputs`` between two steps and emit ``trace_ready(purpose, trace)``."""
        with self._lock:
            self._trace_requests.append((purpose, inputs))

    def request_save(self, path: str) -> None:
        """Write a checkpoint to ``path`` between two steps and emit ``saved``."""
        with self._lock:
            self._save_requests.append(str(path))

    def request_live_trace(self) -> None:
        """Record a live trace now rather than at the next interval."""
        with self._lock:
            self._live_now = True

    def skip_final_save(self) -> None:
        """Do not write the final checkpoint when stopped (the periodic ones stay): a flag the loop reads."""
        self.control.skip_final_save()

    # ------------------------------------------------------------------ the generator (worker thread)
    def _train(self, control: TrainingControl) -> Iterator[Report]:
        """Build the trainer (loading the data), then yield its reports, serving requests between them."""
        job = self.job
        torch.set_num_threads(job.threads or training_threads())
        options = dict(data_dir=job.data_dir, out=job.out, device=job.device, train_set=job.train_set,
                       valid_set=job.valid_set, download=job.download, overwrite=job.overwrite)
        if job.resume:
            self.trainer = Trainer.from_checkpoint(job.resume, job.train_config.steps, epochs=job.train_config.epochs,
                                                   changes=job.resume_changes, **options)
        else:
            self.trainer = Trainer.from_options(job.model_config, job.train_config, **options)
        count = min(job.trace_images, len(self.trainer.valid_set))
        if job.trace_every_s > 0 and count > 0:
            chosen = self.trainer.valid_set.subset(slice(0, count))
            self._trace_pixels, _, _ = model_inputs(chosen, self.trainer.model.config.likelihood)
            self._trace_labels = chosen.labels
        for report in self.trainer.run(control):
            self._last_wall = report.wall_time
            yield report  # the worker sends it (the last report, "done", at once) before we go on
            self._serve_requests()
        if self._trace_pixels is not None:
            self.request_live_trace()  # a last look at the trained model
            self._serve_requests()

    def _serve_requests(self) -> None:
        """Serve saves, requested traces and the periodic live trace (worker thread only)."""
        trainer = self.trainer
        if trainer is None:
            return
        with self._lock:
            saves, self._save_requests = self._save_requests, []
            traces, self._trace_requests = self._trace_requests, []
            live_now, self._live_now = self._live_now, False
        for path in saves:
            try:
                trainer.save(path, wall_time=self._last_wall)
            except DrawStudioError as exc:
                self.request_failed.emit("save", str(exc))
                continue
            self.saved.emit(path)
        for purpose, inputs in traces:
            try:
                trace = record_trace(trainer.model, inputs)
            except DrawStudioError as exc:
                self.request_failed.emit(purpose, str(exc))
                continue
            self.trace_ready.emit(purpose, trace)
        due = self.job.trace_every_s > 0 and time.perf_counter() - self._last_trace >= self.job.trace_every_s
        if self._trace_pixels is not None and (due or live_now):
            self._last_trace = time.perf_counter()
            trace = record_trace(trainer.model, TraceInputs(images=self._trace_pixels, labels=self._trace_labels,
                                                            source=f"{trainer.config.dataset}/valid"))
            self.live_trace.emit(trace, int(trainer.step))
