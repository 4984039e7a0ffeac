"""The filterbank and the read/write operations against the paper's equations."""

import math

import pytest
import torch

from draw_studio.attention import attention_params, filterbank_1d, filterbanks, read_glimpse, write_patch


def brute_force_filterbank(gx, gy, delta, sigma2, n, width, height):
    """Eqs 19-26 written as plain loops over 1-based indices."""
    fx = [[0.0] * width for _ in range(n)]
    fy = [[0.0] * height for _ in range(n)]
    for i in range(1, n + 1):
        mu_x = gx + (i - n / 2 - 0.5) * delta
        row = [math.exp(-((a - mu_x) ** 2) / (2 * sigma2)) for a in range(1, width + 1)]
        fx[i - 1] = [v / sum(row) for v in row]
    for j in range(1, n + 1):
        mu_y = gy + (j - n / 2 - 0.5) * delta
        row = [math.exp(-((b - mu_y) ** 2) / (2 * sigma2)) for b in range(1, height + 1)]
        fy[j - 1] = [v / sum(row) for v in row]
    return torch.tensor(fx, dtype=torch.float64), torch.tensor(fy, dtype=torch.float64)


@pytest.mark.parametrize("n, width, height", [(2, 28, 28), (5, 28, 28), (3, 60, 40), (12, 32, 32)])
def test_filterbank_matches_brute_force_loops(n, width, height):
    generator = torch.Generator().manual_seed(n * 100 + width)
    params = torch.stack([
        torch.rand(4, generator=generator, dtype=torch.float64) * width + 1,       # gx
        torch.rand(4, generator=generator, dtype=torch.float64) * height + 1,      # gy
        torch.rand(4, generator=generator, dtype=torch.float64) * 3 + 0.2,         # delta
        torch.rand(4, generator=generator, dtype=torch.float64) * 2 + 0.3,         # sigma2
        torch.ones(4, dtype=torch.float64)], dim=1)
    fx, fy = filterbanks(params, height, width, n)
    for b in range(4):
        gx, gy, delta, sigma2, _ = params[b].tolist()
        ref_x, ref_y = brute_force_filterbank(gx, gy, delta, sigma2, n, width, height)
        torch.testing.assert_close(fx[b], ref_x, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(fy[b], ref_y, rtol=1e-10, atol=1e-12)


def test_rows_sum_to_one():
    params = attention_params(torch.randn(16, 5, generator=torch.Generator().manual_seed(0)), 28, 28, 5)
    fx, fy = filterbanks(params, 28, 28, 5)
    torch.testing.assert_close(fx.sum(-1), torch.ones(16, 5))
    torch.testing.assert_close(fy.sum(-1), torch.ones(16, 5))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_zero_offset_puts_grid_centre_at_one_based_middle(n):
    width, height = 28, 20
    raw = torch.tensor([[0.0, 0.0, math.log(0.5), 0.0, 0.0]])  # gx~ = gy~ = 0
    params = attention_params(raw, height, width, n)
    assert params[0, 0].item() == pytest.approx((width + 1) / 2)
    assert params[0, 1].item() == pytest.approx((height + 1) / 2)
    fx, fy = filterbanks(params, height, width, n)
    pixels_x = torch.arange(1, width + 1, dtype=torch.float32)
    pixels_y = torch.arange(1, height + 1, dtype=torch.float32)
    # The filters' centres of mass, averaged over the grid, sit at (A+1)/2 and (B+1)/2.
    assert (fx[0] @ pixels_x).mean().item() == pytest.approx((width + 1) / 2, abs=1e-3)
    assert (fy[0] @ pixels_y).mean().item() == pytest.approx((height + 1) / 2, abs=1e-3)


def test_delta_follows_eq_24():
    raw = torch.tensor([[0.3, -0.2, 0.0, math.log(0.7), math.log(2.0)]])
    params = attention_params(raw, 40, 60, 5)
    gx, gy, delta, sigma2, gamma = params[0].tolist()
    assert gx == pytest.approx(61 / 2 * 1.3)
    assert gy == pytest.approx(41 / 2 * 0.8)
    assert delta == pytest.approx((60 - 1) / 4 * 0.7)
    assert sigma2 == pytest.approx(1.0)
    assert gamma == pytest.approx(2.0)


def test_filterbank_uses_its_own_axis_centre():
    fx = filterbank_1d(torch.tensor([5.0]), torch.tensor([1.0]), torch.tensor([0.5]), 1, 28)
    fy = filterbank_1d(torch.tensor([20.0]), torch.tensor([1.0]), torch.tensor([0.5]), 1, 28)
    assert fx[0, 0].argmax().item() + 1 == 5
    assert fy[0, 0].argmax().item() + 1 == 20


@pytest.mark.parametrize("channels", [1, 3])
def test_read_and_write_shapes_and_values(channels):
    batch, height, width, n = 3, 12, 16, 4
    generator = torch.Generator().manual_seed(channels)
    images = torch.rand(batch, channels, height, width, generator=generator, dtype=torch.float64)
    params = attention_params(torch.randn(batch, 5, generator=generator, dtype=torch.float64), height, width, n)
    fx, fy = filterbanks(params, height, width, n)
    glimpse = read_glimpse(images, fx, fy, params[:, 4])
    assert glimpse.shape == (batch, channels, n, n)
    patch = torch.rand(batch, channels, n, n, generator=generator, dtype=torch.float64)
    written = write_patch(patch, fx, fy, params[:, 4])
    assert written.shape == (batch, channels, height, width)
    for b in range(batch):
        for c in range(channels):
            expected_read = params[b, 4] * fy[b] @ images[b, c] @ fx[b].T
            torch.testing.assert_close(glimpse[b, c], expected_read)
            expected_write = fy[b].T @ patch[b, c] @ fx[b] / params[b, 4]
            torch.testing.assert_close(written[b, c], expected_write)


def test_window_extent_is_where_the_outermost_filters_sit():
    from draw_studio.attention import filterbanks, window_extent

    params = torch.tensor([[14.3, 13.7, 2.5, 1.0, 1.0]])  # gx, gy, delta, sigma2, gamma: well inside the image
    fx, fy = filterbanks(params, 28, 28, 5)  # (1, 5, 28) each
    pixels = torch.arange(1, 29, dtype=torch.float32)
    centres_x, centres_y = fx[0] @ pixels, fy[0] @ pixels  # (5,) filter means in 1-based pixels
    x0, x1, y0, y1 = window_extent(params[0].numpy(), 5)
    assert (x0, x1) == pytest.approx((centres_x[0].item(), centres_x[-1].item()), abs=0.05)
    assert (y0, y1) == pytest.approx((centres_y[0].item(), centres_y[-1].item()), abs=0.05)
