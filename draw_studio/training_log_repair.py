"""Rewriting a training log as a plain HDF5 file: ``python -m draw_studio.training_log repair LOG...``.

Logs written by earlier versions in HDF5's SWMR mode, and left so by a killed run, open only in
SWMR mode; :func:`repair_training_log` reads one (``draw_studio.training_log`` reads them) and
writes it again the way logs are written now, a whole, closed file that any h5py reader opens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DrawStudioError
from .training_log import RUN_SIZES, TrainingLogWriter
from .training_log_reader import read_training_log
from .training_snapshots import read_snapshots


def repair_training_log(path: str | Path) -> int:
    """Rewrite a log (e.g. one left by a killed SWMR writer of an older version) as a plain file.

    Only for a log that no run is writing. Returns the number of training rows kept.
    """
    log = read_training_log(path)
    writer = TrainingLogWriter(path, log.model_config, log.train_config, run_id=log.run_id, pending=True)
    writer.attrs["started"] = log.started
    writer.attrs.update({key: getattr(log, key) for key in RUN_SIZES if getattr(log, key)})
    writer.snapshots.keep_until(read_snapshots(path))
    writer.append_steps(zip(log.step, log.wall_time, log.loss, log.nll_x, log.kl, log.lr))
    for step, bound in zip(log.eval_step, log.eval_bound):
        writer.append_eval(step, bound)
    writer.commit()
    return len(log.step)


def main(argv: list[str] | None = None) -> int:
    """``python -m draw_studio.training_log repair LOG...``: rewrite logs as plain HDF5 files."""
    parser = argparse.ArgumentParser(prog="python -m draw_studio.training_log", description=(
        "Rewrite training logs as plain HDF5 files that any h5py reader opens (for logs left by a killed "
        "run of an older DRAW Studio, which open only in SWMR mode). Only for logs no run is writing."))
    parser.add_argument("action", choices=("repair",))
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args(argv)
    for path in args.logs:
        try:
            rows = repair_training_log(path)
        except DrawStudioError as exc:
            print(f"draw-studio training-log: error: {exc}", file=sys.stderr)
            return 2
        print(f"{path}: rewritten, {rows} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
