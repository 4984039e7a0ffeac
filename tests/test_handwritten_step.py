"""The fast training step gives the same loss and gradients as autograd through DRAW.forward."""

import dataclasses
import threading

import pytest
import torch

from draw_studio import handwritten_step as fast
from draw_studio.config import get_preset
from draw_studio.handwritten_step import compile_wanted, fast_backward
from draw_studio.model import DRAW

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_model(read=True, write=True, channels=1, likelihood="bernoulli", learned_init=True):
    config = dataclasses.replace(get_preset("tiny").model, channels=channels, height=12, width=10, steps=5,
                                 enc_size=24, dec_size=20, z_size=6, read_n=3, write_n=4, read_attention=read,
                                 write_attention=write, likelihood=likelihood, learned_init=learned_init)
    torch.manual_seed(0)
    return DRAW(config)


def images(model, batch=8, seed=1):
    cfg = model.config
    x = torch.rand(batch, cfg.channels, cfg.height, cfg.width, generator=torch.Generator().manual_seed(seed))
    return x.round() if cfg.likelihood == "bernoulli" else (x * 255).round() / 255


def plain_gradients(model, x, seed=2):
    model.zero_grad(set_to_none=True)
    terms, _ = model(x, generator=torch.Generator().manual_seed(seed))
    terms.bound.mean().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return terms, grads


def assert_fast_matches(model, x, compile, seed=2):
    plain, expected = plain_gradients(model, x, seed)
    fast_terms = fast_backward(model, x, torch.Generator().manual_seed(seed), compile=compile)
    torch.testing.assert_close(fast_terms.bound, plain.bound.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast_terms.kl, plain.kl.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast_terms.log_weight, plain.log_weight.detach(), rtol=1e-5, atol=1e-3)
    got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("read, write", [(True, True), (False, False), (True, False), (False, True)])
@pytest.mark.parametrize("channels, likelihood", [(1, "bernoulli"), (3, "logistic")])
def test_fast_path_matches_plain_autograd(read, write, channels, likelihood):
    model = small_model(read, write, channels, likelihood)
    assert_fast_matches(model, images(model), compile=False)


def test_compiled_fast_path_matches_plain_autograd():
    model = small_model(channels=3, likelihood="logistic")  # the most code paths in one compile (~15 s)
    assert_fast_matches(model, images(model), compile=True)
    assert not fast._compile_failed


def test_without_learned_initial_state_those_parameters_get_no_gradient():
    model = small_model(learned_init=False)
    assert_fast_matches(model, images(model), compile=False)
    assert model.state_init.grad is None and model.canvas_init.grad is None


def test_frozen_parameters_get_no_gradient_and_the_others_the_same():
    model = small_model()
    for param in (model.encoder.weight_ih, model.decoder.bias_hh, model.read_head.linear.weight):
        param.requires_grad_(False)  # part of a fused weight: its other blocks still learn
    assert_fast_matches(model, images(model), compile=False)
    fast_backward(model, images(model), torch.Generator().manual_seed(2), compile=False)
    assert model.encoder.weight_ih.grad is None and model.read_head.linear.weight.grad is None
    assert model.encoder.weight_hh.grad is not None and model.decoder.bias_ih.grad is not None


def test_reused_buffers_give_the_same_numbers_and_gradients_accumulate():
    model = small_model()
    x, other = images(model, batch=8), images(model, batch=5, seed=3)
    first = fast_backward(model, x, torch.Generator().manual_seed(2), compile=False)
    once = {name: p.grad.clone() for name, p in model.named_parameters()}
    fast_backward(model, other, torch.Generator().manual_seed(4), compile=False)  # another size in between
    model.zero_grad(set_to_none=True)
    fast_backward(model, x, torch.Generator().manual_seed(2), compile=False)
    again = fast_backward(model, x, torch.Generator().manual_seed(2), compile=False)
    torch.testing.assert_close(again.bound, first.bound, rtol=0, atol=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2 * once[name], rtol=1e-6, atol=1e-7, msg=name)


def test_a_failing_compile_warns_and_falls_back_to_eager(monkeypatch):
    def broken(*args):
        raise RuntimeError("no C++ compiler")

    for piece in fast._COMPILED.values():
        monkeypatch.setattr(piece, "_compiled", broken)  # made lazily on first use otherwise
    monkeypatch.setattr(fast, "_compile_failed", False)
    model = small_model()
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        assert_fast_matches(model, images(model), compile=True)
    assert fast._compile_failed
    assert not compile_wanted(model, images(model), True)  # not tried again


def test_compile_wanted(monkeypatch):
    monkeypatch.setattr(fast, "_compile_failed", False)
    tiny = small_model()
    x = images(tiny)
    big = DRAW(get_preset("mnist-paper").model)
    batch = torch.zeros(64, 1, 28, 28)
    assert compile_wanted(tiny, x, True) and not compile_wanted(big, batch, False)
    monkeypatch.delenv(fast.COMPILE_ENV, raising=False)
    assert compile_wanted(big, batch) and not compile_wanted(tiny, x)  # auto: only passes worth compiling
    monkeypatch.setenv(fast.COMPILE_ENV, "0")
    assert not compile_wanted(big, batch) and compile_wanted(big, batch, True)  # an explicit request wins
    monkeypatch.setenv(fast.COMPILE_ENV, "1")
    assert compile_wanted(tiny, x) and not compile_wanted(big, batch, False)


def test_passes_in_overlapping_and_finished_threads_give_the_same_gradients():
    """Two threads at once (one borrows the kept buffers, the other gets its own), then threads that end."""
    models = [small_model() for _ in range(3)]
    x = images(models[0])
    expected_terms, expected = plain_gradients(models[0], x)
    results, start = {}, threading.Barrier(2)

    def run(index):
        start.wait() if index < 2 else None
        for _ in range(3):
            models[index].zero_grad(set_to_none=True)
            terms = fast_backward(models[index], x, torch.Generator().manual_seed(2), compile=False)
        results[index] = terms, {name: p.grad.clone() for name, p in models[index].named_parameters()
                                 if p.grad is not None}

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = threading.Thread(target=run, args=(2,))
    finished.start()
    finished.join()
    assert sorted(results) == [0, 1, 2]
    for terms, grads in results.values():
        torch.testing.assert_close(terms.bound, expected_terms.bound.detach(), rtol=1e-5, atol=1e-4)
        for name in expected:
            torch.testing.assert_close(grads[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_released_buffers_are_rebuilt_with_the_same_numbers():
    model = small_model()
    x = images(model)
    assert_fast_matches(model, x, compile=False)
    assert fast._workspaces._workspace is not None  # kept between calls
    fast.release_buffers()
    assert fast._workspaces._workspace is None
    assert_fast_matches(model, x, compile=False)
