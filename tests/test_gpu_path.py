"""The GPU path on every device this machine has (CPU always; CUDA and MPS when present, skipped otherwise):
the fast path's numbers, steps decided on the device, the LSTM cell state under bf16 autocast, the compiled
pass's self-check, the device of each process, the graphed step (``--cuda-graphs``: captured on CUDA, run
without capture elsewhere) and its fall-back. ``scripts/gpu-check.sh`` runs this file on a GPU machine.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import h5py
import pytest
import torch
from test_handwritten_step import images, small_model
from tiny_data import mnist_slice

from draw_studio import cuda_graphs, distributed
from draw_studio import handwritten_step as fast
from draw_studio.checkpoint import read_checkpoint
from draw_studio.cli import main
from draw_studio.commands.train import one_line_warnings
from draw_studio.config import TrainConfig, get_preset
from draw_studio.cuda_graphs import graphs_wanted
from draw_studio.device import resolve_device, synchronize
from draw_studio.errors import DrawStudioError
from draw_studio.model import DRAW, lstm_cell_fp32_state
from draw_studio.train import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEVICES = [pytest.param("cpu"),
           pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
           pytest.param("mps", marks=pytest.mark.skipif(
               not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()), reason="no MPS"))]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def test_the_fast_path_matches_plain_autograd_on_the_device(device):
    for read, write, channels, likelihood in [(True, True, 1, "bernoulli"), (False, False, 3, "logistic")]:
        model = small_model(read, write, channels, likelihood).to(device)
        x = images(model).to(device)
        model.zero_grad(set_to_none=True)
        eps = torch.randn(model.config.steps, len(x), model.config.z_size, generator=torch.Generator().manual_seed(2))
        plain = distributed.terms_with_noise(model, x, eps.to(device))
        plain.bound.mean().backward()
        expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        terms = fast.fast_backward(model, x, compile=False, eps=eps.to(device))
        synchronize(device)
        torch.testing.assert_close(terms.bound, plain.bound.detach(), rtol=1e-5, atol=1e-4)
        got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        assert set(got) == set(expected)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def _trainer(device, defer: bool, steps: int = 6, report_every: int = 1) -> Trainer:
    settings = TrainConfig(preset="tiny", batch_size=16, steps=steps, seed=3, validate_every=0, checkpoint_every=0,
                           report_every=report_every, snapshot_every=0)
    torch.manual_seed(settings.seed)
    model = DRAW(get_preset("tiny").model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), betas=(settings.beta1, settings.beta2), fused=True)
    return Trainer(model, optimizer, settings, mnist_slice("train", 200), mnist_slice("valid", 64),
                   defer_checks=defer)


def test_steps_decided_on_the_device_train_as_steps_decided_on_the_host(device):
    losses = {}
    for defer in (False, True):
        run = _trainer(device, defer, report_every=3)
        assert run.defer_checks == defer
        losses[defer] = [row[2] for report in run.run() if report.kind == "step" for row in report.step_losses]
    assert len(losses[True]) == 6 and losses[True] == losses[False]


def test_a_bad_step_decided_on_the_device_is_skipped_reported_and_restored_from(device):
    run = _trainer(device, defer=True, steps=8, report_every=4)
    with torch.no_grad():
        run.model.latent.weight[0, 0] = float("inf")  # the state after construction was good
    reports = list(run.run())
    bad = [r.message for r in reports if r.kind == "nonfinite"]
    assert len(bad) == 4 and "at step 0: update skipped on the device" in bad[0]  # read with the report at step 4
    assert "last good state restored" in bad[2]
    assert [row[0] for r in reports if r.kind == "step" for row in r.step_losses] == [5, 6, 7, 8]
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    with pytest.raises(DrawStudioError, match="fused=True"):
        model = DRAW(get_preset("tiny").model)
        Trainer(model, torch.optim.Adam(model.parameters()), run.config, mnist_slice("train", 200),
                mnist_slice("valid", 64), defer_checks=True)


def test_the_lstm_cell_state_stays_float32_under_bf16_autocast(device):
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(12, 20).to(device)
    inputs, h, c = (torch.randn(5, size, device=device) for size in (12, 20, 20))
    expected_h, expected_c = cell(inputs, (h, c))
    got_h, got_c = lstm_cell_fp32_state(cell, inputs, (h, c))
    torch.testing.assert_close(got_h, expected_h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_c, expected_c, rtol=1e-5, atol=1e-6)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        low_h, low_c = lstm_cell_fp32_state(cell, inputs, (h, c))
    assert low_c.dtype == low_h.dtype == torch.float32
    torch.testing.assert_close(low_c, expected_c, rtol=0.05, atol=0.05)  # the products in bf16, the sum in fp32
    if device.type == "cuda":  # DRAW uses it there: a bf16 training pass carries c in float32
        model = DRAW(get_preset("tiny").model).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            result = model.run_steps(model.start_state(4), 0, 4, x=torch.zeros(4, 1, 28, 28, device=device),
                                     eps=torch.zeros(4, 4, 4, device=device))
        assert result.state.c_enc.dtype == result.state.c_dec.dtype == torch.float32


def test_pass_difference_finds_what_differs_beyond_rounding():
    model = small_model()
    x = images(model)
    terms = fast.fast_backward(model, x, torch.Generator().manual_seed(2), compile=False)
    grads = [p.grad.clone() for p in model.parameters()]
    assert fast.pass_difference((terms, grads), (terms, [g * (1 + 1e-6) for g in grads])) is None
    grads_off = [g.clone() for g in grads]
    grads_off[3][0] += 1e-2 * grads[3].abs().max() + 1e-3
    assert "gradient 3: largest difference" in fast.pass_difference((terms, grads), (terms, grads_off))
    nan = dataclasses.replace(terms, nll_x=terms.nll_x * float("nan"))
    assert fast.pass_difference((terms, grads), (nan, grads)).startswith("bound")


@pytest.mark.parametrize("device", [param for param in DEVICES if param.values[0] != "cpu"], indirect=True)
def test_a_compiled_pass_is_checked_against_the_eager_pass(device, monkeypatch):
    # on a GPU only (the CPU's compiled pass is tested in test_handwritten_step.py; compiling costs 15-40 s)
    monkeypatch.setattr(fast, "_compile_failed", False)
    monkeypatch.setattr(fast, "_checked", set())
    model = small_model().to(device)
    x = images(model).to(device)
    plain_model = small_model().to(device)
    expected = fast.fast_backward(plain_model, x, torch.Generator(device).manual_seed(2), compile=False)
    terms = fast.fast_backward(model, x, torch.Generator(device).manual_seed(2), compile=True)  # checks itself
    assert not fast._compile_failed and fast._check_key(model, x) in fast._checked
    torch.testing.assert_close(terms.bound, expected.bound, rtol=1e-5, atol=1e-4)
    for (name, got), want in zip(model.named_parameters(), plain_model.parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_each_process_takes_its_own_device(monkeypatch):
    two = distributed.Ranks(rank=1, world_size=2, local_rank=1)
    assert distributed.process_device("cpu", two) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "0")
    if torch.cuda.is_available():
        with pytest.raises(DrawStudioError, match="cannot be shared by 2 processes"):
            distributed.process_device("cuda:0", two)
        if torch.cuda.device_count() >= 2:
            assert distributed.process_device("auto", two) == torch.device("cuda", 1)
        assert resolve_device("auto") == torch.device("cuda", 0)  # LOCAL_RANK under torchrun
    else:
        assert distributed.process_device("auto", two) == torch.device("cpu")
        for name in ("cuda", "cuda:0"):
            with pytest.raises(DrawStudioError, match="no CUDA GPU"):
                distributed.process_device(name, two)
        assert resolve_device("auto") == torch.device("cpu")


# ---------------------------------------------------------------------------- the graphed step (--cuda-graphs)
def _graphed_pair(device, steps: int = 6, report_every: int = 1) -> tuple[Trainer, Trainer]:
    """Two runs from the same start: the eager step decided on the device, and the graphed step (captured on CUDA,
    run without capture elsewhere), whose Adam starts plain (not fused: the graphed step makes it so)."""
    eager = _trainer(device, defer=True, steps=steps, report_every=report_every)
    graphed = _trainer(device, defer=False, steps=steps, report_every=report_every)
    graphed.optimizer = torch.optim.Adam(graphed.model.parameters(), betas=(0.5, 0.999))
    graphed._good_state = graphed._snapshot()
    graphed.use_graphed_step(capture=device.type == "cuda")
    return eager, graphed


def _poisoned_after_first_step(run: Trainer) -> list:
    """``run``'s reports; after the report of step 1 a weight is made infinite (in place, as a bad step would)."""
    reports = []
    for report in run.run():
        reports.append(report)
        if report.kind == "step" and report.step == 1:
            with torch.no_grad():
                run.model.latent.weight[0, 0] = float("inf")
    return reports


def test_the_graphed_step_trains_as_the_eager_step_and_restores_in_place(device):
    eager, graphed = _graphed_pair(device, steps=8)
    runs = {name: _poisoned_after_first_step(run) for name, run in (("eager", eager), ("graphed", graphed))}
    kinds = {name: [(r.kind.value, r.step) for r in reports if r.kind in ("step", "nonfinite")]
             for name, reports in runs.items()}
    assert kinds["graphed"] == kinds["eager"]
    assert [step for kind, step in kinds["graphed"] if kind == "nonfinite"] == [2, 3, 4]  # then restored
    losses = {name: [row[2] for r in reports if r.kind == "step" for row in r.step_losses]
              for name, reports in runs.items()}
    assert len(losses["graphed"]) == 5 and all(map(math.isfinite, losses["graphed"]))
    exact = device.type == "cpu"  # without capture the same operations in the same order: bit for bit
    if exact:
        assert losses["graphed"] == losses["eager"]
    else:
        assert losses["graphed"] == pytest.approx(losses["eager"], rel=1e-5)
    for (name, got), want in zip(graphed.model.named_parameters(), eager.model.parameters()):
        if exact:
            assert torch.equal(got, want), name
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=name)
    # the restore copied into the tensors the graph reads; what is saved is the plain Adam it was given
    adam = graphed._graphed.adam
    for param, kept in adam.pinned.items():
        assert all(graphed.optimizer.state[param][key] is tensor for key, tensor in kept.items())
    saved = graphed.optimizer.state_dict()
    assert (saved["param_groups"][0]["fused"], saved["param_groups"][0]["capturable"]) == (None, False)
    assert type(saved["param_groups"][0]["lr"]) is float
    assert saved["state"].keys() == eager.optimizer.state_dict()["state"].keys()
    assert graphed.graphs_record.startswith("on" if device.type == "cuda" else "off (the graph's static-buffer")


def test_a_graph_that_cannot_be_captured_falls_back_in_one_warning(tmp_path):
    # a real failure: capturing a CUDA graph of a CPU step (this PyTorch may have no CUDA at all)
    eager = _trainer(torch.device("cpu"), defer=True, steps=3, report_every=3)
    graphed = _trainer(torch.device("cpu"), defer=True, steps=3, report_every=3)
    graphed.out, graphed.log_path = tmp_path / "g.ckpt", tmp_path / "g.log.h5"
    graphed.use_graphed_step(capture=True)
    with pytest.warns(RuntimeWarning, match=r"^CUDA graphs off: capturing the step failed \(.*\); training goes on "
                                            "with the eager step$") as caught:
        reports = list(graphed.run())
    assert len([w for w in caught if "CUDA graphs" in str(w.message)]) == 1
    want = [row[2] for r in eager.run() if r.kind == "step" for row in r.step_losses]
    assert [row[2] for r in reports if r.kind == "step" for row in r.step_losses] == want
    assert not graphed.cuda_graphs and graphed.graphs_record.startswith("off (fell back at step 0: capturing")
    assert read_checkpoint(graphed.out)["extra"]["cuda_graphs"] == graphed.graphs_record
    with h5py.File(graphed.log_path, "r") as log:
        assert log.attrs["cuda_graphs"] == graphed.graphs_record
    assert graphed.optimizer.param_groups[0]["fused"] is True and not graphed.optimizer.param_groups[0]["capturable"]


def test_cuda_graphs_are_chosen_where_they_apply_and_refused_in_one_line(tmp_path, capsys):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not graphs_wanted("auto", cpu) and not graphs_wanted("off", cuda) and graphs_wanted("on", cuda)
    assert graphs_wanted("auto", cuda) is cuda_graphs.AUTO_USES_GRAPHS  # off until measured on a GPU
    assert not graphs_wanted("auto", cuda, processes=2) and not graphs_wanted("auto", cuda, precision="bf16")
    with pytest.raises(DrawStudioError, match="needs one process"):
        graphs_wanted("on", cuda, processes=2)
    with pytest.raises(DrawStudioError, match="needs the fast path in fp32"):
        graphs_wanted("on", cuda, fast=False)
    if torch.cuda.is_available():
        return
    # refused before any data loads (the data folder does not exist), in one line
    code = main(["train", "--preset", "tiny", "--data-dir", str(tmp_path / "none"), "--no-download", "--steps", "1",
                 "--cuda-graphs", "on", "--device", "auto", "--out", str(tmp_path / "m.ckpt")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines == ["draw-studio train: error: --cuda-graphs on needs a CUDA GPU; this run trains on "
                                   "cpu: drop --cuda-graphs"]
    assert not any(tmp_path.iterdir())


def test_a_fall_back_warning_is_one_line_naming_the_process(capsys):
    with warnings.catch_warnings(), one_line_warnings(distributed.Ranks(1, 2, 1, "nccl")):
        warnings.simplefilter("always")
        warnings.warn("CUDA graphs off: capturing the step failed (RuntimeError: a\n  b); training goes on with the "
                      "eager step", RuntimeWarning, stacklevel=1)
    assert capsys.readouterr().err == ("draw-studio train: warning: rank 1 of 2: CUDA graphs off: capturing the step "
                                       "failed (RuntimeError: a b); training goes on with the eager step\n")
