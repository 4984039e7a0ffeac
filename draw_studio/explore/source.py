"""Where the explore tools get their model and images: a trace and the checkpoint it names, or a checkpoint.

A trace records the SHA-256 of the checkpoint it came from; a tool that starts from a trace loads
that checkpoint (``--checkpoint``, default the shipped model) and refuses another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import checkpoint_or_default, load_model
from ..config import TrainConfig
from ..device import resolve_device
from ..errors import DrawStudioError
from ..files import file_sha256
from ..model import DRAW
from ..trace import Trace
from ..trace_file import attribute_text, open_trace_file, read_trace
from .replay import check_model


@dataclass
class Loaded:
    """A model and where it came from.

    Attributes
    ----------
    model : DRAW
        In eval mode, on the chosen device.
    checkpoint : Path
    sha256 : str
        Hex SHA-256 of the checkpoint file.
    train_config : TrainConfig
        Its training settings (the dataset it was trained on).
    """

    model: DRAW
    checkpoint: Path
    sha256: str
    train_config: TrainConfig


def load_checkpoint(checkpoint: str | Path | None, device: str = "cpu") -> Loaded:
    """Load ``checkpoint`` (None: the shipped default model) for exploring."""
    path = checkpoint_or_default(checkpoint)
    model, state = load_model(path, resolve_device(device))
    return Loaded(model, path, file_sha256(path), TrainConfig.from_dict(state.get("train_config") or {}))


def trace_length(path: str | Path) -> int:
    """Images in the DRAW trace file at ``path`` (only the shapes are read).

    Raises
    ------
    DrawStudioError
        The file is not a DRAW trace: an attention classifier's, or a damaged one (one line each).
    """
    with open_trace_file(path) as f:
        if attribute_text(f.attrs.get("mode", "")) == "classify":
            raise DrawStudioError(f"{path} is an attention classifier's trace (glimpses only, no canvas); explore "
                                  "needs a DRAW model's trace: record one with draw-studio trace of a DRAW checkpoint")
        canvas = f.get("canvas")
        if canvas is None or not hasattr(canvas, "shape") or len(canvas.shape) != 5:
            raise DrawStudioError(f"{path} is a damaged trace (no canvas); record the trace again")
        return int(canvas.shape[0])


def read_trace_image(path: str | Path, image: int) -> Trace:
    """Image ``image`` of the trace at ``path`` as a one-image Trace (nothing else is read).

    Raises
    ------
    DrawStudioError
        ``image`` is not an index of the trace (one line naming the range).
    """
    n = trace_length(path)
    if not 0 <= int(image) < n:
        raise DrawStudioError(f"--image {image} is out of range: {path} holds {n} images (0..{n - 1})")
    return read_trace(path, samples=[int(image)])


def model_for_trace(trace: Trace, checkpoint: str | Path | None, device: str = "cpu",
                    trace_name: str = "the trace") -> tuple[Loaded, str]:
    """The model ``trace`` was recorded with; returns it and a note for the user ("" when none).

    Raises
    ------
    DrawStudioError
        The checkpoint's SHA-256 differs from the one the trace records, or its settings differ.
    """
    loaded = load_checkpoint(checkpoint, device)
    recorded = trace.checkpoint_sha256
    if recorded and recorded != loaded.sha256:
        given = "--checkpoint" if checkpoint else "the default model"
        raise DrawStudioError(f"{trace_name} was recorded with the checkpoint of sha256 {recorded[:12]}..., not "
                              f"{loaded.checkpoint} ({given}, sha256 {loaded.sha256[:12]}...); pass the checkpoint "
                              "it was recorded with as --checkpoint")
    check_model(loaded.model, trace)
    note = "" if recorded else (f"note: {trace_name} does not name its checkpoint; using {loaded.checkpoint}, whose "
                                "model settings match")
    return loaded, note
