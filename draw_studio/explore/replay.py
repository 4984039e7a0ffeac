"""One image of a trace, replayed through its model, and runs that continue it from any step.

DRAW's decoder state after step s depends on z_1..z_s alone (eqs 7-8): feeding the trace's own
latents back reproduces every canvas and window of the trace (to float32 rounding; exactly when
the batch is the same). :class:`ImageRun` does that once, keeps the state after every step, and
continues from the state before any step with latents or windows imposed
(:meth:`ImageRun.continue_from`), so an edit of step s costs only steps s..T-1.

Steps are indexed s = 0..T-1 as in traces (the paper's t = s + 1): ``canvas[s + 1]`` is what step
s drew with ``z[s]`` and ``write/params[s]``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import torch

from .. import SOFTWARE
from ..errors import DrawStudioError
from ..model import DRAW, StepRecorder
from ..stepping import RunState, StepControls
from ..trace import Trace

GENERATION_FIELDS = ("canvas", "z", "write_params", "write_patch")
RECONSTRUCTION_FIELDS = GENERATION_FIELDS + ("read_params", "read_glimpse", "mu", "sigma", "kl")
LATER = ("keep", "posterior", "mean")  # what feeds the steps after an intervention (see continue_from)


def check_image(trace: Trace, image: int, what: str = "--image") -> int:
    """``image`` if the trace holds it; else a DrawStudioError naming the range."""
    if not 0 <= int(image) < trace.n:
        raise DrawStudioError(f"{what} {image} is out of range: the trace holds {trace.n} images (0..{trace.n - 1})")
    return int(image)


def check_model(model: DRAW, trace: Trace) -> None:
    """Refuse a trace recorded with a model of other settings."""
    if trace.model_config != model.config:
        theirs, ours = trace.model_config, model.config
        raise DrawStudioError("the trace was recorded with a model of other settings than this checkpoint "
                              f"(T={theirs.steps}, z={theirs.z_size} vs T={ours.steps}, z={ours.z_size}); pass the "
                              "checkpoint it was recorded with")


def _expand(state: RunState, rows: int) -> RunState:
    """``state`` of one row as ``rows`` identical rows (views, no copy)."""
    return RunState(*(value.expand(rows, *value.shape[1:]) for value in state))


class ImageRun:
    """Image ``image`` of ``trace`` replayed through ``model`` from its recorded latents.

    Parameters
    ----------
    model : DRAW
        The trace's model (same settings; see :func:`check_model`).
    trace : Trace
    image : int
        Index of the image in ``trace``.
    encoder : bool
        Run the encoder too (reconstruction traces only): records the read windows, glimpses,
        posteriors and KL, and is needed by :meth:`continue_from` with ``encoder=True``.
    file_image : int, optional
        The image's index in the trace file, when ``trace`` holds only some of its images (reported
        in :meth:`describe`; default ``image``).

    Attributes
    ----------
    z : Tensor, shape (1, T, Z)
        The trace's latents of the image.
    x : Tensor, shape (1, C, H, W), or None
        The image the encoder saw (reconstruction traces).
    noise : Tensor, shape (T, 1, Z), or None
        The noise the trace's posterior samples used, (z - mu) / sigma.
    states : list of RunState
        ``states[s]``: the state before step s (after s steps), for the steps replayed so far. The
        replay is lazy: it runs as far as the steps asked for (:meth:`replay_to`).
    """

    def __init__(self, model: DRAW, trace: Trace, image: int, encoder: bool = True,
                 file_image: int | None = None) -> None:
        check_model(model, trace)
        self.model, self.trace, self.image = model, trace, check_image(trace, image)
        self.file_image = self.image if file_image is None else int(file_image)
        self.device = next(model.parameters()).device
        self.steps = model.config.steps
        self.reconstruction = trace.mode == "reconstruct"
        self.encoder = encoder and self.reconstruction
        self.z = self._row(trace.z)  # (1, T, Z)
        self.x = self._row(trace.input) if self.reconstruction else None  # (1, C, H, W)
        self.noise = None
        if self.reconstruction:
            self.noise = ((self.z - self._row(trace.mu)) / self._row(trace.sigma)).transpose(0, 1)  # (T, 1, Z)
        with torch.inference_mode():
            self.states = [model.start_state(1)]
        self._recorder = StepRecorder()
        self._recorder.add(canvas=self.states[0].canvas)
        self._record: dict[str, torch.Tensor] | None = None

    def _row(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array[self.image:self.image + 1], dtype=np.float32), device=self.device)

    @property
    def replayed(self) -> int:
        """How many steps have been replayed."""
        return len(self.states) - 1

    @torch.inference_mode()
    def replay_to(self, steps: int) -> None:
        """Replay the trace's latents up to step ``steps`` (0..T), if not done already."""
        if steps <= self.replayed:
            return
        run = self.model.run_steps(self.states[-1], self.replayed, steps, x=self.x if self.encoder else None,
                                   controls=StepControls(z=self.z), recorder=self._recorder, keep_states=True)
        self.states += run.states
        self._record = None

    @property
    def record(self) -> dict[str, torch.Tensor]:
        """The whole replay as ``forward(record=True)`` gives it: ``canvas`` (1, T+1, C, H, W), ``z``..."""
        self.replay_to(self.steps)
        if self._record is None:
            self._record = self._recorder.stacked()
        return self._record

    @property
    def bound(self) -> torch.Tensor | None:
        """(1,): L_x + the sum of the step KL of the replay (with the encoder; else None)."""
        if not self.encoder:
            return None
        with torch.inference_mode():
            return self.model.nll(self.record["canvas"][:, -1], self.x) + self.record["kl"].sum(1)

    def fields(self, encoder: bool) -> tuple[str, ...]:
        """The trace fields a run records with or without the encoder (and this model's attention)."""
        cfg = self.model.config
        absent = set() if cfg.write_attention else {"write_params", "write_patch"}
        absent |= set() if cfg.read_attention else {"read_params", "read_glimpse"}
        return tuple(name for name in (RECONSTRUCTION_FIELDS if encoder else GENERATION_FIELDS) if name not in absent)

    def controls_after(self, first: int, later: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The z mask (1, T) and noise (T, 1, Z) or None of steps ``first``.. under policy ``later``.

        ``"keep"``: every z imposed; ``"posterior"``: steps from ``first`` on sample the posterior
        with the trace's own noise; ``"mean"``: they take the posterior mean.
        """
        if later not in LATER:
            raise DrawStudioError(f"unknown policy {later!r} for the later latents; use one of {', '.join(LATER)}")
        mask = torch.ones(1, self.steps, dtype=torch.bool, device=self.device)
        if later == "keep":
            return mask, None
        if not self.reconstruction:
            raise DrawStudioError(f"--later {later} needs the encoder, and this trace was generated from the prior "
                                  "(no image to read); use --later keep")
        mask[:, first:] = False
        return mask, (self.noise if later == "posterior" else torch.zeros_like(self.noise))

    @torch.inference_mode()
    def continue_from(self, first: int, controls: StepControls | None = None, eps: torch.Tensor | None = None,
                      rows: int = 1, encoder: bool | None = None) -> dict[str, torch.Tensor]:
        """Run steps ``first``..T-1 again from the replay's state, and splice them after its steps before.

        Parameters
        ----------
        first : int
            0..T; steps before it are the replay's, unchanged.
        controls : StepControls, optional
            Imposed latents and windows, for ``rows`` rows (absolute steps; see ``DRAW.run_steps``).
        eps : Tensor, shape (T, rows, Z), optional
            Noise of the z's not imposed: prior samples without the encoder, posterior noise with it.
        rows : int
            Continuations run together from the same state.
        encoder : bool, optional
            Run the encoder on the changed canvas (default: for a reconstruction trace).

        Returns
        -------
        dict
            Trace fields by name as tensors of ``rows`` rows (``canvas`` (rows, T+1, C, H, W), ...),
            plus ``nll_x`` and ``bound`` (rows,) with the encoder.
        """
        encoder = self.encoder if encoder is None else (encoder and self.encoder)
        self.replay_to(first)
        recorder = StepRecorder()
        x = self.x.expand(rows, -1, -1, -1) if encoder else None
        run = self.model.run_steps(_expand(self.states[first], rows), first, self.steps, x=x, eps=eps,
                                   controls=controls, recorder=recorder)
        later = recorder.stacked() if first < self.steps else {}
        out = {}
        for name in self.fields(encoder):
            kept = first + 1 if name == "canvas" else first  # c_0..c_first; the other fields of steps < first
            parts = [torch.stack(self._recorder.lists[name][:kept], dim=1)] if kept else []
            parts = [part.expand(rows, *part.shape[1:]) for part in parts]
            out[name] = torch.cat(parts + [later[name]], dim=1) if name in later else parts[0]
        if encoder:
            out["nll_x"] = self.model.nll(run.state.canvas, x)
            out["bound"] = out["nll_x"] + out["kl"].sum(1)
        return out

    def trace_of(self, arrays: dict[str, torch.Tensor], mode: str | None = None, seed: int | None = None,
                 source: str | None = None) -> Trace:
        """A :class:`Trace` of ``arrays`` (from :meth:`continue_from`) with this trace's header.

        The image's ``input``, ``labels`` and ``source_index`` come along in reconstruct mode.
        """
        mode = mode or self.trace.mode
        if "kl" not in arrays:
            mode = "generate"  # a run without the encoder has no posterior to show
        fields = {name: value.float().cpu().numpy() for name, value in arrays.items() if name != "bound"}
        rows = len(fields["canvas"])
        if mode == "reconstruct":
            fields["input"] = np.repeat(self.trace.input[self.image:self.image + 1], rows, axis=0)
            for name in ("labels", "source_index"):
                value = getattr(self.trace, name)
                if value is not None:
                    fields[name] = np.repeat(value[self.image:self.image + 1], rows, axis=0)
        else:
            fields = {name: value for name, value in fields.items() if name in GENERATION_FIELDS}
        return dataclasses.replace(
            self.trace, mode=mode, seed=self.trace.seed if seed is None else int(seed),
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), software=SOFTWARE,
            batch_size=rows, source=self.trace.source if source is None else source,
            **{name: fields.get(name) for name in ("input", "labels", "source_index", "read_params", "read_glimpse",
                                                   "write_params", "write_patch", "mu", "sigma", "kl", "nll_x")},
            canvas=fields["canvas"], z=fields["z"])

    def describe(self) -> dict:
        """What the intervention says about the image: its index, and where it came from."""
        info = {"image": self.file_image, "source": self.trace.source, "source_mode": self.trace.mode,
                "checkpoint_sha256": self.trace.checkpoint_sha256}
        for name in ("source_index", "labels"):
            value = getattr(self.trace, name)
            if value is not None:
                info[name.rstrip("s")] = int(value[self.image])
        return info
