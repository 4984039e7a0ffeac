"""A model's results: the bound and importance-weighted bounds with progress, beside the published rows."""

import numpy as np
import pytest
import torch
from tiny_data import MNIST_DIR, mnist_slice

from draw_studio.checkpoint import load_model
from draw_studio.cli import main
from draw_studio.config import ModelConfig, TrainConfig
from draw_studio.data import load_split, model_inputs
from draw_studio.evaluate import evaluate, importance_weighted_nll
from draw_studio.results import checkpoint_results, results_markdown
from draw_studio.seeding import make_generator
from draw_studio.train import Trainer

IMAGES = 40


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small model without attention trained for 120 real steps: enough to use its latents (KL ~2 nats), so
    that importance weighting has something to tighten (the tiny preset stays on the mean-image plateau)."""
    out = tmp_path_factory.mktemp("results") / "small.ckpt"
    model = ModelConfig(steps=4, enc_size=32, dec_size=32, z_size=8, read_attention=False, write_attention=False)
    config = TrainConfig(preset="tiny", batch_size=32, steps=120, seed=4, lr=3e-3, validate_every=0,
                         checkpoint_every=0, report_every=40, validation_limit=64, snapshot_every=0)
    for _ in Trainer.from_options(model, config, train_set=mnist_slice("train", 1000),
                                  valid_set=mnist_slice("valid", 64), device="cpu", out=out).run():
        pass
    return out


@pytest.fixture(scope="module")
def finished(checkpoint):
    progress = list(checkpoint_results(checkpoint, IMAGES, (1, 10, 100, 1000), data_dir=MNIST_DIR, download=False,
                                       device="cpu"))
    return progress


def test_progress_grows_to_one_and_ends_with_every_row(finished):
    fractions = [p.fraction for p in finished]
    assert len(finished) > 40  # one report per forward pass: K=1000 goes one image at a time
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    assert [p.finished for p in finished].count(True) == 1 and finished[-1].finished
    measures = [row.measure for row in finished[-1].rows]
    assert measures == ["bound", "IW bound, K=1", "IW bound, K=10", "IW bound, K=100", "IW bound, K=1000"]
    assert all("first 40 mnist test images" == row.images for row in finished[-1].rows)
    assert "seed 150204623" in finished[-1].rows[0].binarisation


def test_the_numbers_are_those_of_eval_and_the_weighted_bounds_tighten(finished, checkpoint):
    rows = {row.measure: row.nats for row in finished[-1].rows}
    model, _ = load_model(checkpoint)
    pixels, _, _ = model_inputs(load_split("mnist", "test", MNIST_DIR, download=False).subset(slice(0, IMAGES)),
                                "bernoulli")
    assert rows["bound"] == pytest.approx(evaluate(model, pixels).bound, abs=1e-9)
    assert rows["IW bound, K=10"] == pytest.approx(evaluate(model, pixels, importance_samples=10).iw_bound, abs=1e-9)
    # K = 1 estimates the bound itself: equal within the noise of a one-sample estimate on 40 images
    with torch.inference_mode():
        x = torch.as_tensor(pixels)
        one_sample = importance_weighted_nll(model, x, 1, make_generator(torch.device("cpu"), 99))  # (40,)
        analytic = model(x, generator=make_generator(torch.device("cpu"), 99))[0].bound  # (40,)
    noise = float((one_sample - analytic).std()) / np.sqrt(IMAGES)
    assert abs(rows["IW bound, K=1"] - rows["bound"]) < 4 * noise + 1e-6
    # more samples, a tighter bound (in expectation; here by ~3 nats from K=1 to K=1000)
    assert rows["IW bound, K=1000"] < rows["IW bound, K=10"] < rows["IW bound, K=1"] - 1
    assert rows["IW bound, K=100"] < rows["IW bound, K=10"]


def test_markdown_table_from_the_command_line(checkpoint, tmp_path, capsys):
    out = tmp_path / "results.md"
    assert main(["results", str(checkpoint), "--data-dir", str(MNIST_DIR), "--no-download", "--images", "20",
                 "--k", "1,10", "--markdown", str(out), "--device", "cpu"]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert len(lines) == 2 + 3 + 4  # header, rule, bound and two K rows, four published rows
    assert "80.97" in text and "87.40" in text and "~90.5 after 100 epochs" in text and "~81.9" in text
    assert "Salakhutdinov & Murray" in text and "first 20 mnist test images" in text
    assert capsys.readouterr().out == text
    assert results_markdown([]).count("\n") == 2
