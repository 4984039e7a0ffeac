"""The DRAW network: shapes, the bound's terms, gradients and learning."""

import dataclasses
import math

import pytest
import torch
from tiny_data import mnist_slice

from draw_studio.config import ModelConfig, get_preset
from draw_studio.likelihood import discretized_logistic_nll
from draw_studio.model import DRAW


def tiny(**changes) -> ModelConfig:
    return dataclasses.replace(get_preset("tiny").model, **changes)


def binary_batch(count=8, seed=0):
    grey = torch.as_tensor(mnist_slice("test", count).images).float() / 255
    return torch.bernoulli(grey, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("attention", [True, False])
def test_record_shapes(channels, attention):
    config = tiny(channels=channels, height=12, width=10, read_attention=attention, write_attention=attention,
                  read_n=3, write_n=4)
    model = DRAW(config)
    x = torch.rand(5, channels, 12, 10).round()
    terms, record = model(x, record=True)
    t, z = config.steps, config.z_size
    assert terms.nll_x.shape == terms.kl.shape == (5,)
    assert record["canvas"].shape == (5, t + 1, channels, 12, 10)
    for name in ("mu", "sigma", "z"):
        assert record[name].shape == (5, t, z)
    assert record["kl"].shape == (5, t)
    if attention:
        assert record["read_params"].shape == record["write_params"].shape == (5, t, 5)
        assert record["read_glimpse"].shape == (5, t, 2 * channels, 3, 3)
        assert record["write_patch"].shape == (5, t, channels, 4, 4)
    else:
        assert not {"read_params", "write_params", "read_glimpse", "write_patch"} & set(record)
    images, generated = model.generate(4, record=True)
    assert images.shape == (4, channels, 12, 10)
    assert generated["canvas"].shape == (4, t + 1, channels, 12, 10)
    assert generated["z"].shape == (4, t, z)


def test_loss_is_reconstruction_plus_summed_step_kl():
    model = DRAW(tiny())
    x = binary_batch()
    terms, record = model(x, generator=torch.Generator().manual_seed(1), record=True)
    torch.testing.assert_close(terms.kl, record["kl"].sum(1))
    torch.testing.assert_close(terms.bound, terms.nll_x + terms.kl)
    final = record["canvas"][:, -1]
    expected_nll = torch.nn.functional.binary_cross_entropy_with_logits(final, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(terms.nll_x, expected_nll)


def test_step_kl_matches_monte_carlo_estimate():
    model = DRAW(tiny(z_size=6))
    _, record = model(binary_batch(2), generator=torch.Generator().manual_seed(2), record=True)
    mu, sigma = record["mu"][0, 1].double(), record["sigma"][0, 1].double()  # (Z,)
    samples = mu + sigma * torch.randn(400_000, mu.shape[0], generator=torch.Generator().manual_seed(3),
                                       dtype=torch.float64)
    log_q = torch.distributions.Normal(mu, sigma).log_prob(samples).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(samples).sum(1)
    monte_carlo = (log_q - log_p).mean().item()
    assert record["kl"][0, 1].item() == pytest.approx(monte_carlo, abs=0.02)


def test_fresh_noise_every_step_and_canvas_is_cumulative():
    model = DRAW(tiny())
    _, record = model(binary_batch(3), generator=torch.Generator().manual_seed(4), record=True)
    eps = (record["z"] - record["mu"]) / record["sigma"]  # (n, T, Z)
    for t in range(1, eps.shape[1]):
        assert not torch.allclose(eps[:, t], eps[:, 0])
    _, generated = model.generate(3, generator=torch.Generator().manual_seed(4), record=True)
    assert not torch.allclose(generated["z"][:, 0], generated["z"][:, 1])


def test_gradients_reach_both_attention_layers_separately():
    model = DRAW(tiny())
    terms, _ = model(binary_batch())
    terms.bound.mean().backward()
    read_grad = model.read_head.linear.weight.grad
    write_grad = model.write_head.linear.weight.grad
    assert read_grad is not None and read_grad.abs().sum() > 0
    assert write_grad is not None and write_grad.abs().sum() > 0
    assert not torch.allclose(read_grad, write_grad)  # a shared layer would receive one summed gradient
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    _, record = model(binary_batch(), generator=torch.Generator().manual_seed(5), record=True)
    assert not torch.allclose(record["read_params"], record["write_params"])


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = DRAW(tiny(enc_size=64, dec_size=64, z_size=8, steps=6))
    x = binary_batch(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(5)
    first = None
    for _ in range(150):
        loss = model(x, generator=generator)[0].bound.mean()
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.6 * first, (first, loss.item())


def test_wrong_image_shape_is_a_clear_error():
    from draw_studio.errors import DrawStudioError
    with pytest.raises(DrawStudioError, match="do not fit this model"):
        DRAW(tiny())(torch.zeros(2, 1, 20, 20))


def test_discretized_logistic_is_a_normalised_distribution():
    levels = torch.arange(256, dtype=torch.float64) / 255  # every grey level
    canvas = torch.tensor([-1.3, 0.0, 2.0], dtype=torch.float64)
    for log_scale in (-4.0, -2.0, 0.0):
        targets = levels.view(256, 1, 1, 1).expand(256, 1, 1, 3)
        nll = discretized_logistic_nll(canvas.view(1, 1, 1, 3).expand(256, 1, 1, 3), targets,
                                       torch.tensor([log_scale], dtype=torch.float64))
        # nll sums over the 3 pixels; per pixel the 256 probabilities must sum to one
        per_pixel = torch.stack([discretized_logistic_nll(canvas[i].view(1, 1, 1, 1).expand(256, 1, 1, 1),
                                                          levels.view(256, 1, 1, 1),
                                                          torch.tensor([log_scale], dtype=torch.float64))
                                 for i in range(3)])
        assert torch.exp(-per_pixel).sum(1).tolist() == pytest.approx([1.0] * 3, abs=1e-9)
        assert torch.isfinite(nll).all()


def test_logistic_model_runs_on_colour_images():
    model = DRAW(tiny(channels=3, height=8, width=8, likelihood="logistic"))
    x = torch.randint(0, 256, (4, 3, 8, 8)).float() / 255
    terms, _ = model(x)
    assert torch.isfinite(terms.bound).all()
    assert terms.bound.shape == (4,)
    assert math.isfinite(terms.bound.mean().item())


def test_initial_state_and_layer_weights_name_what_the_first_step_uses():
    """One step by hand from ``initial_state`` and ``layer_weights`` (the hand-written step's view of DRAW)."""
    torch.manual_seed(0)
    config = tiny(read_attention=False, write_attention=False, height=12, width=10, enc_size=24, dec_size=20, z_size=6)
    model = DRAW(config)
    with torch.no_grad():  # a learned initial state that is not zero
        model.state_init.normal_()
        model.canvas_init.normal_()
    x = binary_batch(3)[..., :12, :10]
    _, record = model(x, generator=torch.Generator().manual_seed(1), record=True)
    init, w = model.initial_state(), model.layer_weights()
    assert (init.h_enc.shape, init.h_dec.shape, init.canvas.shape) == ((24,), (20,), (1, 12, 10))
    assert w.read_head is w.write_head is w.read_head_bias is w.write_head_bias is None

    def lstm(gates, cell):
        i, f, g, o = gates.chunk(4, dim=1)
        cell = f.sigmoid() * cell + i.sigmoid() * g.tanh()
        return o.sigmoid() * cell.tanh(), cell

    with torch.no_grad():
        read = torch.cat((x, x - init.canvas.sigmoid()), 1).flatten(1)  # (3, 2 * 120)
        h_enc, _ = lstm(read @ w.encoder_read.T + init.h_dec @ w.encoder_h_dec.T + init.h_enc @ w.encoder_h_enc.T
                        + w.encoder_bias, init.c_enc)
        mu, log_sigma = (h_enc @ w.latent.T + w.latent_bias).chunk(2, dim=1)
        z = record["z"][:, 0]
        h_dec, _ = lstm(z @ w.decoder_z.T + init.h_dec @ w.decoder_h_dec.T + w.decoder_bias, init.c_dec)
        canvas = init.canvas + (h_dec @ w.write.T + w.write_bias).view(3, 1, 12, 10)
    torch.testing.assert_close(mu, record["mu"][:, 0])
    torch.testing.assert_close(log_sigma.exp(), record["sigma"][:, 0])
    torch.testing.assert_close(canvas, record["canvas"][:, 1])
    with_heads = DRAW(tiny()).layer_weights()
    assert with_heads.read_head.shape == with_heads.write_head.shape == (5, tiny().dec_size)
