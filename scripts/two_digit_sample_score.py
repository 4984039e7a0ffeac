"""How often a two-digit model's samples show two digits a classifier can name (a measuring aid, not the package).

The ship condition of ``two-digit-attention`` is "samples show two recognisable digits most of the time".
This script puts a number beside looking at the samples: a small CNN learns to name the unordered pair of
digits of a ``two-digit-mnist`` image (55 classes: {0,0}, {0,1}, ..., {9,9}), trained on three fresh
compositions of MNIST's training digits (seeds 101, 202, 303; the dataset's own images are left alone), and
reports the share it names with confidence >= 0.9 and >= 0.5 and its mean top probability for real test
images (as they are and binarised as the model sees them), and for each model its samples (mean images
sigmoid(c_T) from the prior, seeds 0-3) beside its reconstructions of the binarised test images (mean images
too): reconstructions far above samples mean the decoder can draw two digits and the prior's samples miss.
``--forks 0,8,32`` also scores forks of the binarised test images: the posterior's z for the first t steps,
the prior's after (as Explore's fork, one continuation each), showing at which steps the prior's z spoil it.
``--aggregate 10000`` also scores samples whose z come from a Gaussian (means and full covariance over all T x Z
coordinates) fitted to the posterior z of that many binarised training images instead of N(0, I) (ex-post
density estimation, Ghosh et al. 2019): whether the samples miss because the prior is not the aggregate posterior
to second order, and how many units carry information (posterior mean's variance above 0.01).
``--figure PATH`` writes a PNG to look at beside the numbers: a row of binarised test images, a row of the
model's reconstructions of them, a row per fork step, and a row of samples (the first images of each set).

    python3 scripts/two_digit_sample_score.py --data-dir ../shared/data/mnist models/two-digit-attention.ckpt

The classifier (about 40 minutes on one CPU thread) is kept in ``--scorer`` (default: draw-studio's cache
folder) and reused next time. The confidence is a proxy: heavily overlapping digits are hard for it too (about
76% pair accuracy on the test images), so compare samples with the real images' figures, not with 100%.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from draw_studio.checkpoint import load_model
from draw_studio.data import fixed_binary_images, load_split
from draw_studio.data.locate import cache_dir
from draw_studio.data.two_digit import compose_two_digits
from draw_studio.explore.fork import fork_noise
from draw_studio.images import save_png, tile, to_uint8, upscale
from draw_studio.seeding import make_generator

PAIRS = {pair: index for index, pair in enumerate((a, b) for a in range(10) for b in range(a, 10))}  # 55


def pair_classes(labels: np.ndarray) -> np.ndarray:
    """Unordered pair class of two-digit labels (first * 10 + second)."""
    return np.array([PAIRS[tuple(sorted(divmod(int(label), 10)))] for label in labels])


def scorer() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 32, 30, 30)
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 15, 15)
                         nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 96, 7, 7)
                         nn.Flatten(), nn.Linear(96 * 49, 256), nn.ReLU(), nn.Linear(256, len(PAIRS)))


def as_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0)  # (B, 1, 60, 60) in [0, 1]


def train_scorer(data_dir: str, epochs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    source = load_split("mnist", "train", data_dir)
    sets = [compose_two_digits(source, seed) for seed in (101, 202, 303)]
    x = np.concatenate([s.images for s in sets])  # (180000, 1, 60, 60) uint8
    y = np.concatenate([pair_classes(s.labels) for s in sets])
    net, rate = scorer(), 1e-3
    optimizer = torch.optim.Adam(net.parameters(), rate)
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(x))
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            loss = F.cross_entropy(net(as_float(x[batch])), torch.from_numpy(y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rate *= 0.3
        for group in optimizer.param_groups:
            group["lr"] = rate
        print(f"scorer epoch {epoch + 1}/{epochs} done (last batch loss {loss.item():.3f})", file=sys.stderr)
    return net.eval()


@torch.no_grad()
def logits(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The scorer's logits of each image (B, 55), 500 images at a time."""
    return torch.cat([net(images[i:i + 500]) for i in range(0, len(images), 500)])


def confidences(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Top class probability of each image (B,)."""
    return F.softmax(logits(net, images), 1).max(1).values


@torch.inference_mode()
def reconstructions(model: nn.Module, binary: torch.Tensor) -> torch.Tensor:
    """The mean images sigmoid(c_T) of the model's reconstructions of ``binary`` (n, 1, 60, 60), noise seed 0."""
    generator = make_generator(torch.device("cpu"), 0)
    canvases = [model(binary[i:i + 250], generator=generator, record=True)[1]["canvas"][:, -1]
                for i in range(0, len(binary), 250)]  # each (250, 1, 60, 60), logits
    return torch.sigmoid(torch.cat(canvases))


@torch.inference_mode()
def forked(model: nn.Module, binary: torch.Tensor, at: int) -> torch.Tensor:
    """Mean images of forks at step ``at`` of ``binary``: posterior z for steps 0..at-1, prior z after (seed 0)."""
    steps = model.config.steps
    eps = fork_noise(model, len(binary), seed=0)  # (T, n, Z): the noise of Explore's fork
    state = model.run_steps(model.start_state(len(binary)), 0, at, x=binary, eps=eps).state
    state = model.run_steps(state, at, steps, eps=eps).state  # (n, 1, 60, 60) canvas, logits
    return torch.sigmoid(state.canvas)


@torch.inference_mode()
def aggregate_gaussian_samples(model: nn.Module, data_dir: str, fitted: int, n: int) -> torch.Tensor:
    """Mean images of ``n`` samples with z (all T steps at once) from a Gaussian fitted to the posterior z of the
    first ``fitted`` binarised training images (noise seeds 1 and 7); prints what the fit found."""
    steps, size = model.config.steps, model.config.z_size
    train = torch.from_numpy(fixed_binary_images(load_split("two-digit-mnist", "train", data_dir))[:fitted]
                             .astype(np.float32))  # (fitted, 1, 60, 60) in {0, 1}
    generator = make_generator(torch.device("cpu"), 1)
    records = [model(train[i:i + 250], generator=generator, record=True)[1] for i in range(0, fitted, 250)]
    z = torch.cat([r["z"].reshape(len(r["z"]), -1) for r in records]).double()  # (fitted, T * Z)
    mu = torch.cat([r["mu"].reshape(len(r["mu"]), -1) for r in records])  # (fitted, T * Z)
    variance = z.var(0)
    print(f"aggregate posterior of {fitted:,} training images: |mean| {z.mean(0).abs().mean():.3f} on average, "
          f"variance 5/50/95% quantiles {np.quantile(variance.numpy(), [0.05, 0.5, 0.95]).round(3).tolist()}, "
          f"{int((mu.var(0) > 0.01).sum())} of {steps * size} units carry information")
    covariance = torch.cov(z.T) + 1e-4 * torch.eye(steps * size, dtype=torch.float64)  # (T * Z, T * Z)
    factor = torch.linalg.cholesky(covariance)
    noise = torch.randn(n, steps * size, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    drawn = (z.mean(0) + noise @ factor.T).float().reshape(n, steps, size).transpose(0, 1).contiguous()  # (T, n, Z)
    return torch.sigmoid(model.run_steps(model.start_state(n), 0, steps, eps=drawn).state.canvas)


def figure(path: str, rows: list[tuple[str, torch.Tensor]], columns: int = 12, scale: int = 2) -> None:
    """Write ``rows`` (label, images (n, 1, 60, 60) in [0, 1]) as one PNG: each row's first ``columns`` images
    under its label, pixel-true at ``scale``."""
    from PIL import Image, ImageDraw

    label_height = 14
    blocks = []
    for label, images in rows:
        grid = upscale(tile(to_uint8(images[:columns].numpy()), columns), scale)[:, :, 0]  # (H, W) uint8
        block = np.full((label_height + grid.shape[0], grid.shape[1]), 255, np.uint8)
        block[label_height:] = grid
        picture = Image.fromarray(block)
        ImageDraw.Draw(picture).text((2, 1), label, fill=0)
        blocks.append(np.asarray(picture))
    save_png(path, np.concatenate(blocks)[:, :, None])


def summary(name: str, top: torch.Tensor) -> str:
    return (f"{name}: named with p >= 0.9: {(top >= 0.9).float().mean().item():.1%}, p >= 0.5: "
            f"{(top >= 0.5).float().mean().item():.1%}, mean top probability {top.mean().item():.3f} "
            f"({len(top):,} images)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="*", help="two-digit DRAW checkpoints whose samples to score")
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's IDX files")
    parser.add_argument("--scorer", default=str(cache_dir().parent / "two-digit-scorer.pt"),
                        help="classifier weights, trained and written there if absent (default: %(default)s)")
    parser.add_argument("-n", type=int, default=1000, help="samples per checkpoint (and real test images)")
    parser.add_argument("--forks", default="", help="comma-separated fork steps t to score, e.g. 0,8,32,48,64")
    parser.add_argument("--aggregate", type=int, default=0,
                        help="score samples from a Gaussian fitted to the posterior z of this many training images")
    parser.add_argument("--figure", help="PNG to write: test images, reconstructions, forks and samples in rows "
                                         "(of the last checkpoint given)")
    args = parser.parse_args()
    fork_steps = [int(t) for t in args.forks.split(",") if t.strip()]
    torch.set_num_threads(1)
    if Path(args.scorer).exists():
        net = scorer()
        net.load_state_dict(torch.load(args.scorer, weights_only=True))
        net.eval()
    else:
        net = train_scorer(args.data_dir)
        Path(args.scorer).parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), args.scorer)
    test = load_split("two-digit-mnist", "test", args.data_dir)
    images = as_float(test.images)
    predicted = logits(net, images).argmax(1).numpy()
    print(f"scorer's pair accuracy on the 10,000 test images: {(predicted == pair_classes(test.labels)).mean():.1%}")
    print(summary("test images", confidences(net, images[:args.n])))
    binary = torch.from_numpy(fixed_binary_images(test)[:args.n].astype(np.float32))  # (n, 1, 60, 60) in {0, 1}
    print(summary("test images binarised", confidences(net, binary)))
    for path in args.checkpoints:
        model, _ = load_model(path, torch.device("cpu"))
        with torch.inference_mode():
            samples = torch.cat([model.generate(args.n // 4, generator=make_generator(torch.device("cpu"), seed))[0]
                                 for seed in range(4)])  # (n, 1, 60, 60)
        redrawn = reconstructions(model, binary)
        steps = model.config.steps
        rows = [("binarised test images", binary),
                (f"their reconstructions: posterior z at all {steps} steps", redrawn)]
        print(summary(f"{path} samples", confidences(net, samples)))
        print(summary(f"{path} reconstructions", confidences(net, redrawn)))
        for at in fork_steps:
            forks = forked(model, binary, at)
            rows.append((f"forks at t = {at}: posterior z for the first {at} steps, prior z after", forks))
            print(summary(f"{path} forks at t = {at}", confidences(net, forks)))
        rows.append((f"samples: prior z at all {steps} steps", samples))
        if args.aggregate:
            fitted = aggregate_gaussian_samples(model, args.data_dir, args.aggregate, args.n)
            print(summary(f"{path} samples from the fitted Gaussian", confidences(net, fitted)))
        if args.figure:
            figure(args.figure, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
