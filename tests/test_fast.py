"""The fast training step gives the same loss and gradients as autograd through DRAW.forward."""

import dataclasses

import pytest
import torch

from draw_studio.config import get_preset
from draw_studio.fast import fast_backward
from draw_studio.model import DRAW


@pytest.mark.parametrize("read, write", [(True, True), (False, False), (True, False), (False, True)])
@pytest.mark.parametrize("channels, likelihood", [(1, "bernoulli"), (3, "logistic")])
def test_fast_path_matches_plain_autograd(read, write, channels, likelihood):
    config = dataclasses.replace(get_preset("tiny").model, channels=channels, height=12, width=10, steps=5,
                                 enc_size=24, dec_size=20, z_size=6, read_n=3, write_n=4,
                                 read_attention=read, write_attention=write, likelihood=likelihood)
    torch.manual_seed(0)
    model = DRAW(config)
    x = torch.rand(8, channels, 12, 10, generator=torch.Generator().manual_seed(1))
    x = x.round() if likelihood == "bernoulli" else (x * 255).round() / 255
    plain, _ = model(x, generator=torch.Generator().manual_seed(2))
    plain.bound.mean().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    fast = fast_backward(model, x, torch.Generator().manual_seed(2))
    torch.testing.assert_close(fast.bound, plain.bound.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast.kl, plain.kl.detach(), rtol=1e-5, atol=1e-4)
    got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)
