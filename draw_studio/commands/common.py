"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DrawStudioError
from ..files import same_file


def command_parser(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """The sub-parser of command ``name`` (``kwargs`` as for ``add_parser``), whose errors are one line.

    A bad argument prints ``draw-studio NAME: error: argument --x: REASON``
    on stderr, without the usage text, and exits with code 2.
    """
    parser = subparsers.add_parser(name, **kwargs)

    def one_line_error(message: str):
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(message).split())}\n")

    parser.error = one_line_error
    return parser


def add_device(parser: argparse.ArgumentParser) -> None:
    from .arguments import device

    parser.add_argument("--device", default="auto", type=device,
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")


def add_threads(parser: argparse.ArgumentParser, default: int = 0, why: str = "") -> None:
    """``--threads N``: PyTorch's CPU threads for the command (``draw_studio.cli.main`` applies it; 0 leaves
    PyTorch's choice). ``why`` ends the help text."""
    from .arguments import threads

    shown = "0: PyTorch's choice" if default == 0 else f"{default}; 0: PyTorch's choice"
    parser.add_argument("--threads", type=threads, default=default, help=(
        f"CPU threads for PyTorch (default {shown}). Where other programs compute, fewer threads than cores "
        "is often several times faster" + (f"; {why}" if why else "")))


def add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the dataset files (searched before $DRAW_STUDIO_DATA and the cache)")
    parser.add_argument("--no-download", action="store_true", help="never download a missing dataset")


def refuse_overwriting_inputs(outputs: dict, inputs: dict) -> None:
    """Raise DrawStudioError if an output path is one of the input files.

    Parameters
    ----------
    outputs, inputs : dict
        Flag (e.g. ``"--out"``) -> a path, a list of paths, or None (absent).
        Paths are compared resolved (``..``, symbolic links) and by inode
        (hard links), so no spelling of an input can be written over.
    """
    def paths(table: dict):
        for flag, value in table.items():
            for path in value if isinstance(value, (list, tuple)) else [value]:
                if path:
                    yield flag, Path(path).expanduser()

    for out_flag, out in paths(outputs):
        for in_flag, given in paths(inputs):
            if same_file(out, given):
                raise DrawStudioError(f"{out_flag} {out} would overwrite {in_flag} {given}; write to another file")


def status(message: str) -> None:
    """Progress text for people goes to stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)


def json_text(value) -> str:
    """``value`` as strict JSON: NaN and infinities (never valid JSON) become null."""
    import json
    import math

    def finite(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: finite(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [finite(inner) for inner in item]
        return item

    return json.dumps(finite(value), allow_nan=False)
