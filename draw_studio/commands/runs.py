"""``draw-studio runs``: several training runs side by side, with the settings that differ between them."""

from __future__ import annotations

from pathlib import Path

from ..curve_meaning import best_valid_text
from ..errors import DrawStudioError
from ..formatting import duration
from ..runs import LOG_PATTERN, differing_settings, summarize_runs
from .common import command_parser, json_text


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "runs", help="compare training runs (logs) in a table", description=(
        "One line per training log: name, preset, the hyper-parameters that differ between the runs given, "
        "steps, epochs, wall time, best validation figure and its step (DRAW: the lowest validation bound, nats "
        "per image; an attention classifier: the lowest validation error, shown with %), and state (finished: "
        "its last step reached the steps asked for; running: not finished and written in the last minute or so; "
        "stopped: neither)."))
    p.add_argument("logs", nargs="+", help="training logs (X.log.h5) and folders holding them")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    for folder in filter(Path.is_dir, map(Path, args.logs)):
        if not any(folder.glob(LOG_PATTERN)):
            raise DrawStudioError(f"no training logs ({LOG_PATTERN}) in {folder}; give training logs (X.log.h5) "
                                  "or folders holding them")
    runs = summarize_runs(args.logs)  # refuses a path that does not exist
    differing = differing_settings(runs)
    if args.json:
        print(json_text({"differing": differing, "runs": [
            {"path": str(run.path), "name": run.name, "preset": run.preset, "settings": run.settings,
             "step": run.step, "total_steps": run.total_steps, "epochs": run.epochs, "wall_time": run.wall_time,
             "kind": run.kind, "best_bound": run.best_bound, "best_error_percent": run.best_error_percent,
             "best_step": run.best_step, "state": run.state, "run_id": run.run_id}
            for run in runs]}))
        return 0
    header = ["name", "preset", *differing, "steps", "epochs", "wall time", "best valid", "at step", "state"]
    rows = [[run.name, run.preset, *(str(run.settings.get(name, "-")) for name in differing), f"{run.step:,}",
             f"{run.epochs:.1f}" if run.epochs is not None else "-", duration(run.wall_time),
             best_valid_text(run.kind, run.best_valid),
             f"{run.best_step:,}" if run.best_step is not None else "-", run.state] for run in runs]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0
