"""The GPU path on every device this machine has (CPU always; CUDA and MPS when present, skipped otherwise):
the fast path's numbers, steps decided on the device, the LSTM cell state under bf16 autocast, the compiled
pass's self-check, the device of each process. ``scripts/gpu-check.sh`` runs this file on a GPU machine.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_handwritten_step import images, small_model
from tiny_data import mnist_slice

from draw_studio import distributed
from draw_studio import handwritten_step as fast
from draw_studio.config import TrainConfig, get_preset
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
