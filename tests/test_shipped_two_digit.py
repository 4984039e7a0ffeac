"""The shipped two-digit model: its card gives what the command line measures, its preset is its recipe."""

import json
import re
from pathlib import Path

import pytest
from tiny_data import MNIST_DIR

from draw_studio.checkpoint import read_checkpoint
from draw_studio.cli import main
from draw_studio.config import train_config_for

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = MODELS / "two-digit-attention.ckpt"


def test_the_shipped_two_digit_model_has_the_test_bound_its_card_gives(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
    assert main(["eval", str(SHIPPED), "--data-dir", str(MNIST_DIR), "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["dataset"], result["split"], result["n"]) == ("two-digit-mnist", "test", 10_000)
    card = (MODELS / "two-digit-attention.md").read_text()
    on_card = re.search(r"\| variational bound L = L_x \+ L_z \| 10000 \| \*\*([0-9.]+)\*\* \|", card)
    assert on_card, card
    assert result["bound"] == pytest.approx(float(on_card.group(1)), abs=0.01)
    assert f"Trained: {result['step']} steps" in card


def test_the_two_digit_preset_trains_as_the_shipped_model_was_trained():
    checkpoint = read_checkpoint(SHIPPED)
    shipped = checkpoint["train_config"]
    preset = train_config_for("two-digit-mnist")
    assert shipped["preset"] == "two-digit-mnist"
    assert (preset.beta1, preset.beta2, preset.batch_size) == \
        (shipped["beta1"], shipped["beta2"], shipped["batch_size"])
    # A continuation (--init-from) runs at its own rate; the rate of the run from scratch is on the card
    card = (MODELS / "two-digit-attention.md").read_text()
    first_run = re.search(r"^draw-studio train --preset two-digit-mnist .*$", card, re.MULTILINE)
    assert first_run, "the card's reproduce block has no run from scratch"
    assert float(re.search(r"--lr (\S+)", first_run.group(0)).group(1)) == preset.lr
    if not checkpoint["extra"].get("lineage"):
        assert preset.lr == shipped["lr"]
    assert train_config_for("mnist-paper").beta1 != preset.beta1  # the preset's own setting, not the default
