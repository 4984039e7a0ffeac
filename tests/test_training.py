"""The training engine and checkpoints: resume, NaN guard, pause/stop, corrupt files."""

import dataclasses
import math
import threading

import numpy as np
import pytest
import torch
from tiny_data import mnist_slice

from draw_studio.checkpoint import load_model, read_checkpoint, save_checkpoint
from draw_studio.config import LR_WARMUP_AFTER_FRESH_ADAM, TrainConfig, get_preset, learning_rate
from draw_studio.data import ImageSet
from draw_studio.errors import CheckpointError, DrawStudioError
from draw_studio.files import file_sha256
from draw_studio.model import DRAW
from draw_studio.train import Trainer, TrainingControl
from draw_studio.training_log_reader import read_training_log

TINY = get_preset("tiny").model


def config(**changes) -> TrainConfig:
    base = TrainConfig(preset="tiny", batch_size=16, steps=6, seed=3, validate_every=0, checkpoint_every=0,
                       report_every=1, validation_limit=64)
    return dataclasses.replace(base, **changes)


def trainer(train_config, **kwargs) -> Trainer:
    """A new tiny run on real MNIST images."""
    return Trainer.from_options(TINY, train_config, train_set=mnist_slice("train", 200),
                                valid_set=mnist_slice("valid", 64), device="cpu", **kwargs)


def going_on(checkpoint, steps: int, **kwargs) -> Trainer:
    """A run that goes on from ``checkpoint`` on the same images as :func:`trainer`."""
    return Trainer.from_checkpoint(checkpoint, steps, train_set=mnist_slice("train", 200),
                                   valid_set=mnist_slice("valid", 64), device="cpu", **kwargs)


def step_losses(reports):
    return [row[2] for report in reports if report.kind == "step" for row in report.step_losses]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    whole = step_losses(trainer(config(steps=8)).run())
    first = trainer(config(steps=4), out=tmp_path / "half.ckpt")
    first_losses = step_losses(first.run())
    second_losses = step_losses(going_on(tmp_path / "half.ckpt", 8).run())
    assert len(whole) == 8
    assert first_losses + second_losses == whole  # bit for bit


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = DRAW(TINY)
    save_checkpoint(tmp_path / "m.ckpt", model, config(), step=7)
    loaded, state = load_model(tmp_path / "m.ckpt")
    assert state["step"] == 7
    assert loaded.config == model.config
    x = torch.rand(3, 1, 28, 28).round()
    a = model(x, generator=torch.Generator().manual_seed(1))[0].bound
    b = loaded(x, generator=torch.Generator().manual_seed(1))[0].bound
    assert torch.equal(a, b)
    assert torch.equal(model.generate(2, torch.Generator().manual_seed(2))[0],
                       loaded.generate(2, torch.Generator().manual_seed(2))[0])


def test_truncated_corrupt_and_foreign_checkpoints_get_clear_errors(tmp_path):
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, DRAW(TINY), config())
    data = path.read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint at all" * 10)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.ckpt")
    for name, pattern in [("truncated", "truncated or corrupt"), ("garbage", "truncated or corrupt"),
                          ("foreign", "not a DRAW Studio checkpoint"), ("missing", "does not exist")]:
        with pytest.raises(CheckpointError, match=pattern):
            load_model(tmp_path / f"{name}.ckpt")


def test_mismatched_weights_get_a_clear_error(tmp_path):
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, DRAW(TINY), config())
    state = read_checkpoint(path)
    state["model_config"]["z_size"] = 9
    torch.save(state, tmp_path / "edited.ckpt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "edited.ckpt")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "m.ckpt"
    model = DRAW(TINY)
    save_checkpoint(path, model, config(), step=1)
    before = path.read_bytes()
    with torch.no_grad():
        model.write_out.weight[0, 0] = float("nan")
    with pytest.raises(DrawStudioError, match="non-finite"):
        save_checkpoint(path, model, config(), step=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]


def test_nonfinite_steps_are_skipped_and_the_good_state_restored(tmp_path):
    run = trainer(config(steps=6), out=tmp_path / "m.ckpt")
    with torch.no_grad():
        run.model.latent.weight[0, 0] = float("inf")  # the state after construction was good
    reports = list(run.run())
    kinds = [r.kind for r in reports]
    assert kinds.count("nonfinite") == 3
    assert "restored" in [r for r in reports if r.kind == "nonfinite"][-1].message
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    finite_losses = step_losses(reports)
    assert len(finite_losses) == 3 and all(map(lambda v: v == v, finite_losses))
    model, _ = load_model(tmp_path / "m.ckpt")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stop_and_pause_flags_are_checked_between_steps(tmp_path):
    control = TrainingControl()
    run = trainer(config(steps=1000), out=tmp_path / "m.ckpt")
    seen = []
    for report in run.run(control):
        seen.append(report.kind)
        if report.kind == "step" and report.step == 2:
            control.pause()
            threading.Timer(0.2, control.resume).start()
        if report.kind == "step" and report.step == 4:
            control.stop()
    assert "paused" in seen and "resumed" in seen
    assert seen[-1] == "done" and run.step == 4
    assert read_checkpoint(tmp_path / "m.ckpt")["step"] == 4


def test_a_stop_with_skip_final_save_writes_no_final_checkpoint(tmp_path):
    def stopped_at_step_3(out, skip: bool) -> Trainer:
        control = TrainingControl()
        run = trainer(config(steps=1000, checkpoint_every=2), out=out)
        for report in run.run(control):
            if report.kind == "step" and report.step == 3:
                if skip:
                    control.skip_final_save()  # what the window's "discard" does, from its own thread
                control.stop()
        assert run.step == 3
        return run

    stopped_at_step_3(tmp_path / "saved.ckpt", skip=False)
    assert read_checkpoint(tmp_path / "saved.ckpt")["step"] == 3
    stopped_at_step_3(tmp_path / "unsaved.ckpt", skip=True)
    assert read_checkpoint(tmp_path / "unsaved.ckpt")["step"] == 2  # the periodic checkpoint stays


def test_a_trainer_takes_built_parts_and_from_options_only_builds_them():
    train, valid = mnist_slice("train", 200), mnist_slice("valid", 64)
    torch.manual_seed(3)  # the seed of config(): what from_options initialises the model with
    model, settings = DRAW(TINY), config(steps=4)
    optimizer = torch.optim.Adam(model.parameters(), betas=(settings.beta1, settings.beta2))  # lr: set each step
    by_hand = Trainer(model, optimizer, settings, train, valid)
    assert by_hand.device == torch.device("cpu") and by_hand.step == 0 and by_hand.out is None
    built = Trainer.from_options(TINY, config(steps=4), train_set=train, valid_set=valid, device="cpu")
    assert step_losses(by_hand.run()) == step_losses(built.run())


def test_validation_and_periodic_checkpoints(tmp_path):
    run = trainer(config(steps=4, validate_every=2, checkpoint_every=2), out=tmp_path / "m.ckpt")
    reports = list(run.run())
    bounds = [r.bound for r in reports if r.kind == "validation"]
    assert len(bounds) == 2 and all(400 < b < 700 for b in bounds)
    assert [r.step for r in reports if r.kind == "checkpoint"] == [2, 4]


def test_learning_rate_schedules():
    assert learning_rate(config(lr=0.01), 50, 100) == 0.01
    cosine = config(lr=0.01, lr_schedule="cosine", lr_min_factor=0.1)
    assert learning_rate(cosine, 0, 100) == pytest.approx(0.01)
    assert learning_rate(cosine, 50, 100) == pytest.approx(0.0055)
    assert learning_rate(cosine, 100, 100) == pytest.approx(0.001)
    stepped = config(lr=0.01, lr_schedule="step", lr_decay=0.5, lr_decay_every=10)
    assert learning_rate(stepped, 25, 100) == pytest.approx(0.0025)


def test_bf16_precision_trains_close_to_fp32_and_is_recorded(tmp_path):
    fp32 = step_losses(trainer(config(steps=5)).run())
    run = trainer(config(steps=5, precision="bf16"), out=tmp_path / "bf16.ckpt")
    reports = list(run.run())
    bf16 = step_losses(reports)
    assert "bf16 autocast" in reports[0].message
    assert len(bf16) == 5 and all(math.isfinite(loss) for loss in bf16)
    assert bf16 != fp32  # bf16 products round differently...
    assert max(abs(a - b) / b for a, b in zip(bf16, fp32)) < 0.02  # ...but the bound stays within 2%
    assert read_checkpoint(tmp_path / "bf16.ckpt")["train_config"]["precision"] == "bf16"
    with pytest.raises(DrawStudioError, match="unknown precision"):
        config(precision="fp8")


def test_a_stop_between_reports_still_reports_every_step(tmp_path):
    control = TrainingControl()
    run = trainer(config(steps=100, report_every=50), out=tmp_path / "m.ckpt")
    step_once = run.train_step

    def stop_pressed_during_step_three(step):
        if step == 2:  # 0-based: the third step
            control.stop()
        return step_once(step)

    run.train_step = stop_pressed_during_step_three
    steps = [row[0] for report in run.run(control) if report.kind == "step" for row in report.step_losses]
    assert run.step == 3 and steps == [1, 2, 3]
    assert read_checkpoint(tmp_path / "m.ckpt")["step"] == run.step


def test_init_from_a_weights_only_checkpoint_continues_its_weights_and_steps_with_fresh_adam(tmp_path):
    first = trainer(config(steps=4), out=tmp_path / "full.ckpt")
    list(first.run())
    full = read_checkpoint(tmp_path / "full.ckpt")
    weights_only = tmp_path / "shipped.ckpt"
    model, _ = load_model(tmp_path / "full.ckpt")
    save_checkpoint(weights_only, model, TrainConfig.from_dict(full["train_config"]), step=full["step"])
    with pytest.raises(DrawStudioError, match="--init-from"):
        going_on(weights_only, 8)
    continued = going_on(weights_only, 8, fresh_optimizer=True, out=tmp_path / "next.ckpt")
    assert continued.step == 4
    for name, value in model.state_dict().items():
        assert torch.equal(continued.model.state_dict()[name], value)
    assert continued.optimizer.state_dict()["state"] == {}  # a fresh Adam
    losses = step_losses(continued.run())
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    lineage = read_checkpoint(tmp_path / "next.ckpt")["extra"]["lineage"]
    assert lineage == [{"init_from": str(weights_only), "sha256": file_sha256(weights_only), "step": 4,
                        "fresh_optimizer": True, "lr_warmup": LR_WARMUP_AFTER_FRESH_ADAM}]
    # a log of the same model at its log path goes on: its curves up to the starting step are kept
    again = going_on(weights_only, 6, fresh_optimizer=True, out=tmp_path / "again.ckpt", log=tmp_path / "full.log.h5")
    assert any("go on in this run's log" in notice for notice in again.notices)
    list(again.run())
    np.testing.assert_array_equal(read_training_log(tmp_path / "full.log.h5").step, np.arange(1, 7))
    # resuming the continued run keeps its lineage
    resumed = going_on(tmp_path / "next.ckpt", 10, out=tmp_path / "next.ckpt")
    list(resumed.run())
    assert read_checkpoint(tmp_path / "next.ckpt")["extra"]["lineage"] == lineage


def record_rates(run: Trainer) -> list[float]:
    """A list that fills with the learning rate the optimiser takes each step of ``run`` with."""
    rates, step_once = [], run.train_step

    def recording(step):
        result = step_once(step)
        rates.append(run.optimizer.param_groups[0]["lr"])
        return result

    run.train_step = recording
    return rates


def rates_of_steps(run: Trainer) -> list[float]:
    """Run ``run`` to its end; the learning rate the optimiser took each step with."""
    rates = record_rates(run)
    list(run.run())
    return rates


def test_after_a_fresh_adam_state_the_rate_ramps_up_and_a_resumed_run_goes_on_with_the_ramp(tmp_path):
    list(trainer(config(steps=4, lr=1e-3), out=tmp_path / "full.ckpt").run())
    model, _ = load_model(tmp_path / "full.ckpt")
    weights_only = tmp_path / "shipped.ckpt"
    save_checkpoint(weights_only, model, TrainConfig.from_dict(read_checkpoint(tmp_path / "full.ckpt")["train_config"]),
                    step=4)
    ramped = going_on(weights_only, 7, fresh_optimizer=True, out=tmp_path / "next.ckpt", lr_warmup=6)
    assert rates_of_steps(ramped) == pytest.approx([1e-3 / 6, 2e-3 / 6, 3e-3 / 6])  # steps 5-7
    resumed = going_on(tmp_path / "next.ckpt", 10, out=tmp_path / "next.ckpt")  # the saved Adam state, mid-ramp
    assert rates_of_steps(resumed) == pytest.approx([4e-3 / 6, 5e-3 / 6, 1e-3])
    unramped = going_on(weights_only, 6, fresh_optimizer=True, out=tmp_path / "plain.ckpt", lr_warmup=0)
    assert rates_of_steps(unramped) == pytest.approx([1e-3, 1e-3])
    assert rates_of_steps(trainer(config(steps=2, lr=1e-3))) == pytest.approx([1e-3, 1e-3])  # a new run: no ramp


@pytest.mark.parametrize("fast", [True, False])
def test_every_step_draws_its_own_noise(fast):
    # Every training image is the same binary digit, so every step sees the same batch: from the same
    # weights, two steps' losses can differ only through the noise eps_t those steps draw.
    digit = (mnist_slice("train", 1).images[:1] > 127).astype("uint8")  # (1, 1, 28, 28)
    same = ImageSet(np.repeat(digit, 64, axis=0), None, True, "one digit")

    def loss_of_step(step: int) -> float:
        run = Trainer.from_options(TINY, config(steps=8), train_set=same, valid_set=same, device="cpu", fast=fast)
        return float(run.train_step(step)[0])

    losses = [loss_of_step(step) for step in range(4)]
    assert loss_of_step(2) == losses[2]  # the noise of a step is a function of the seed and the step
    assert len(set(losses)) == 4, losses  # and differs from one step to the next


def test_reports_have_known_kinds_and_one_description_for_the_command_line_and_the_window():
    from draw_studio.progress import Report, ReportKind

    with pytest.raises(ValueError):
        Report(kind="stpe", step=1, total_steps=2)
    reports = list(trainer(config(steps=4, validate_every=2)).run())
    assert {r.kind for r in reports} >= {ReportKind.START, ReportKind.STEP, ReportKind.VALIDATION, ReportKind.DONE}
    lines = {r.kind: r.describe() for r in reports}
    assert lines[ReportKind.STEP].startswith("step       4/4  epoch") and "ETA" in lines[ReportKind.STEP]
    bound = [r.bound for r in reports if r.kind is ReportKind.VALIDATION][-1]
    assert lines[ReportKind.VALIDATION].endswith(f"validation bound {bound:.2f} nats")
    assert Report(kind="paused", step=3, total_steps=4).describe() is None


def test_one_policy_builds_new_runs_and_says_what_a_resumed_run_may_change():
    from draw_studio.config import CHANGEABLE_ON_RESUME, resume_changes, train_config_for

    config = train_config_for("mnist-paper", lr=3e-4, dataset=None, seed=None, batch_size=32)
    assert (config.preset, config.dataset, config.lr, config.batch_size) == ("mnist-paper", "mnist", 3e-4, 32)
    assert config.seed == TrainConfig().seed  # None keeps the default
    assert resume_changes(lr=1e-4, grad_clip=None) == {"lr": 1e-4}
    with pytest.raises(DrawStudioError, match="keeps its batch_size, seed"):
        resume_changes(lr=1e-4, batch_size=8, seed=2)
    assert {"lr", "lr_schedule", "validate_every"} <= set(CHANGEABLE_ON_RESUME)
    assert not {"batch_size", "seed", "dataset", "validation_size"} & set(CHANGEABLE_ON_RESUME)


def test_the_last_good_state_restores_the_same_adam_moments_every_time():
    """Optimizer.load_state_dict keeps the tensors it is given: a restore must not let later steps change the
    kept good state (a second restore brought back moved moments before)."""
    from draw_studio.good_state import GoodStateKeeper

    torch.manual_seed(0)
    keeper = GoodStateKeeper.__new__(GoodStateKeeper)
    keeper.model = torch.nn.Linear(3, 2)
    keeper.optimizer = torch.optim.Adam(keeper.model.parameters(), lr=0.1)

    def step() -> None:
        keeper.optimizer.zero_grad()
        keeper.model(torch.randn(4, 3)).square().sum().backward()
        keeper.optimizer.step()

    step()
    good = keeper._snapshot()
    kept = {key: value.clone() for key, value in good["optimizer"]["state"][0].items()}
    for _ in range(2):
        keeper._restore(good)
        step()
        step()
    keeper._restore(good)
    for key, value in keeper.optimizer.state_dict()["state"][0].items():
        assert torch.equal(value, kept[key]), key
    assert not torch.equal(keeper.optimizer.state_dict()["state"][0]["exp_avg"], torch.zeros(2, 3))


def test_the_log_gives_every_step_the_rate_it_was_taken_with(tmp_path):
    run = trainer(config(steps=9, lr=1e-3, lr_schedule="cosine", lr_min_factor=0.1, report_every=4),
                  out=tmp_path / "m.ckpt", log=tmp_path / "m.log.h5")
    rates = record_rates(run)
    reports = [report for report in run.run() if report.kind == "step"]
    log = read_training_log(tmp_path / "m.log.h5")
    assert list(log.step) == list(range(1, 10)) and len(set(rates)) == 9  # the cosine moved every step
    np.testing.assert_allclose(log.lr, rates, rtol=1e-6)  # row k: the rate of the k-th step
    assert [report.lr for report in reports] == pytest.approx([rates[report.step - 1] for report in reports])
