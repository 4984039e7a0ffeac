"""One run on several processes (torchrun, gloo on the CPU): the same numbers as one process, one writer.

Two processes, one thread each, the tiny preset on real MNIST. Most tests fork two ranks of a gloo group
from the test process (fast: no second import of torch); one runs the command line under ``torchrun``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from test_handwritten_step import images, small_model
from tiny_data import MNIST_DIR, mnist_slice

from draw_studio import distributed
from draw_studio.checkpoint import read_checkpoint
from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.errors import DrawStudioError
from draw_studio.evaluate import evaluate
from draw_studio.handwritten_step import fast_backward
from draw_studio.model import DRAW
from draw_studio.train import Trainer, TrainingControl
from draw_studio.train_setup import new_run
from draw_studio.training_step import STOP_READ_EVERY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = get_preset("tiny").model
TIMEOUT_S = 120


def config(**changes) -> TrainConfig:
    base = TrainConfig(preset="tiny", batch_size=16, steps=8, seed=3, validate_every=0, checkpoint_every=0,
                       report_every=1, validation_limit=64, snapshot_every=0)
    return dataclasses.replace(base, **changes)


def new_trainer(train_config, ranks=distributed.ONE_PROCESS, **kwargs) -> Trainer:
    return Trainer.from_options(TINY, train_config, train_set=mnist_slice("train", 200),
                                valid_set=mnist_slice("valid", 64), device="cpu", ranks=ranks, **kwargs)


def going_on(checkpoint, steps: int, ranks=distributed.ONE_PROCESS, **kwargs) -> Trainer:
    return Trainer.from_checkpoint(checkpoint, steps, train_set=mnist_slice("train", 200),
                                   valid_set=mnist_slice("valid", 64), device="cpu", ranks=ranks, **kwargs)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}


def assert_equal_weights(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_same_training(a: dict, b: dict, lr: float = 1e-3) -> None:
    """Weights of two runs that differ only in float32 summation order: within 1e-5, but for a few entries.

    Adam's first step moves a weight by lr * g / (|g| + 1e-8): where a gradient cancels to float32 rounding
    (|g| ~ 1e-9, e.g. a pixel of c_0 that half the images want up and half down), the two sums' rounding
    noise is divided by its own size and the weights may end up to ~lr apart. Measured on the tiny model
    after 20 steps: 3 of 5,403 entries above 1e-5, the largest 2.2e-4.
    """
    assert set(a) == set(b)
    total = close = 0
    for name in a:
        difference = (a[name].float() - b[name].float()).abs()
        assert difference.max() <= lr, (name, float(difference.max()))
        total, close = total + difference.numel(), close + int((difference <= 1e-5).sum())
    assert close >= 0.999 * total, f"{total - close} of {total} weights differ by more than 1e-5"


# ---------------------------------------------------------------------------- two forked ranks
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, work, args, folder: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    try:
        ranks, device = distributed.setup("cpu", timeout_s=TIMEOUT_S)
        try:
            result = work(ranks, *args)
        finally:
            distributed.teardown()
        torch.save({"result": result}, folder / f"rank{rank}.pt")
    except BaseException:  # noqa: BLE001 - the test process shows what went wrong in the rank
        (folder / f"rank{rank}.error").write_text(traceback.format_exc())
        raise


def on_two_ranks(work, *args, folder: Path) -> list:
    """``work(ranks, *args)`` in two forked processes of a gloo group; their results, by rank."""
    folder.mkdir(parents=True, exist_ok=True)
    context, port = mp.get_context("fork"), _free_port()
    processes = [context.Process(target=_rank_main, args=(rank, 2, port, work, args, folder)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(TIMEOUT_S)
    for process in processes:
        if process.is_alive():
            process.kill()
    errors = [path.read_text() for path in sorted(folder.glob("rank*.error"))]
    assert not errors, errors[0]
    assert [process.exitcode for process in processes] == [0, 0]
    return [torch.load(folder / f"rank{rank}.pt", weights_only=False)["result"] for rank in range(2)]


# ---------------------------------------------------------------------------- gradients
COMBINATIONS = [(read, write, channels, likelihood) for read, write in [(True, True), (False, False), (True, False),
                                                                        (False, True)]
                for channels, likelihood in [(1, "bernoulli"), (3, "logistic")]]


def _gradients_of_the_global_batch(ranks, combinations):
    """Per combination: the all-reduced fast-path gradients (and the plain path's for the first) and the loss."""
    out = []
    for index, (read, write, channels, likelihood) in enumerate(combinations):
        model = small_model(read, write, channels, likelihood)
        x = images(model, batch=8)
        reducer = distributed.StepReducer(model, torch.device("cpu"))
        for fast in (True, False) if index == 0 else (True,):
            model.zero_grad(set_to_none=True)
            terms = distributed.share_of_step(model, x, torch.Generator().manual_seed(2), ranks, fast=fast,
                                              compile=False)
            sums = torch.stack((terms.bound.sum(), terms.nll_x.sum(), terms.kl.sum()))
            reduced = reducer.reduce(sums, ~torch.isfinite(sums).all(), stop=False)
            out.append({"combination": index, "fast": fast, "loss": reduced[0] / 8, "flags": reduced[3:].tolist(),
                        "grads": {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}})
    return out


def test_all_reduced_gradients_equal_the_one_process_gradients_of_the_global_batch(tmp_path):
    results = on_two_ranks(_gradients_of_the_global_batch, COMBINATIONS, folder=tmp_path)
    checked = 0
    for rank_result in results:
        for got in rank_result:
            model = small_model(*COMBINATIONS[got["combination"]])
            x = images(model, batch=8)
            if got["fast"]:
                terms = fast_backward(model, x, torch.Generator().manual_seed(2), compile=False)
            else:
                terms, _ = model(x, generator=torch.Generator().manual_seed(2))
                terms.bound.mean().backward()
            torch.testing.assert_close(got["loss"], terms.bound.mean().detach(), rtol=1e-6, atol=1e-4)
            assert got["flags"] == [0.0, 0.0]
            expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
            assert set(got["grads"]) == set(expected)
            for name in expected:
                torch.testing.assert_close(got["grads"][name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
            checked += 1
    assert checked == 2 * (len(COMBINATIONS) + 1)  # both ranks, every combination, and the plain path once
    for name in results[0][0]["grads"]:  # every rank holds exactly the same sum
        assert torch.equal(results[0][0]["grads"][name], results[1][0]["grads"][name])


# ---------------------------------------------------------------------------- training runs
def _train(ranks, folder: Path, steps: int, stop_on_rank: int | None = None, poison_rank: int | None = None,
           resume: Path | None = None, extra: dict | None = None):
    """A tiny run on this rank writing into ``folder/rank<r>`` (only rank 0 should write anything)."""
    out = folder / f"rank{ranks.rank}" / "m.ckpt"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = config(steps=steps, **(extra or {}))
    trainer = (going_on(resume, steps, ranks=ranks, out=out) if resume
               else new_trainer(settings, ranks=ranks, out=out))
    if poison_rank == ranks.rank:
        with torch.no_grad():
            trainer.model.latent.weight[0, 0] = float("inf")  # after the broadcast: this rank alone
    control = TrainingControl()
    reports = []
    for report in trainer.run(control):
        reports.append((report.kind.value, report.step, report.loss, report.bound, report.message))
        if stop_on_rank == ranks.rank and report.kind == "step" and report.step == 3:
            control.stop()
    return {"reports": reports, "step": trainer.step, "weights": weights(trainer), "notices": trainer.notices,
            "files": sorted(path.name for path in out.parent.iterdir())}


def test_two_ranks_train_like_one_process_and_only_rank_0_writes(tmp_path):
    extra = {"validate_every": 4, "checkpoint_every": 4, "snapshot_every": 4}
    ranks = on_two_ranks(_train, tmp_path, 8, None, None, None, extra, folder=tmp_path)
    one = new_trainer(config(steps=8, **extra), out=tmp_path / "one.ckpt")
    one_reports = list(one.run())
    assert ranks[0]["files"] == ["m.ckpt", "m.log.h5"] and ranks[1]["files"] == []
    assert_equal_weights(ranks[0]["weights"], ranks[1]["weights"])  # the same update on every rank
    assert_same_training(ranks[0]["weights"], weights(one))
    losses = [row[2] for row in ranks[0]["reports"] if row[0] == "step"]
    assert losses == pytest.approx([r.loss for r in one_reports if r.kind == "step"], rel=1e-5)
    bounds = [row[3] for row in ranks[0]["reports"] if row[0] == "validation"]
    assert bounds == pytest.approx([r.bound for r in one_reports if r.kind == "validation"], rel=1e-6)
    assert len(bounds) == 2
    saved = read_checkpoint(tmp_path / "rank0" / "m.ckpt")
    assert saved["step"] == 8 and saved["extra"]["world_size"] == 2 and saved["extra"]["global_batch"] == 16
    assert saved["extra"]["device_type"] == "cpu"
    assert "rank 0 of 2 (gloo)" in ranks[0]["reports"][0][4]


def test_a_bad_step_on_one_rank_is_skipped_by_both_and_a_stop_on_one_stops_both(tmp_path):
    poisoned = on_two_ranks(_train, tmp_path / "nan", 6, None, 1, folder=tmp_path / "nan")
    kinds = [[(kind, step) for kind, step, *_ in result["reports"] if kind in ("nonfinite", "step")]
             for result in poisoned]
    assert kinds[0] == kinds[1]
    assert [step for kind, step in kinds[0] if kind == "nonfinite"] == [0, 1, 2]  # skipped by both, then restored
    assert [step for kind, step in kinds[0] if kind == "step"] == [4, 5, 6]
    assert_equal_weights(poisoned[0]["weights"], poisoned[1]["weights"])
    assert all(torch.isfinite(value).all() for value in poisoned[1]["weights"].values())

    stopped = on_two_ranks(_train, tmp_path / "stop", 100, 1, folder=tmp_path / "stop")
    assert stopped[0]["step"] == stopped[1]["step"] == 4  # rank 1 asked after step 3: both finish step 4
    assert stopped[0]["reports"][-1][4] == stopped[1]["reports"][-1][4] == "stopped"
    assert read_checkpoint(tmp_path / "stop" / "rank0" / "m.ckpt")["step"] == 4


def _resume_both_ways(ranks, folder: Path, one_process_half: Path):
    """Two ranks: a new run of 4 steps; and the one-process checkpoint ``one_process_half`` resumed to 8."""
    first = _train(ranks, folder / "new", 4)
    resumed = _train(ranks, folder / "resumed", 8, resume=one_process_half)
    return {"first": first, "resumed": resumed}


def test_resume_from_two_ranks_to_one_and_from_one_to_two(tmp_path):
    whole = new_trainer(config(steps=8))
    list(whole.run())
    half = new_trainer(config(steps=4), out=tmp_path / "half.ckpt")
    list(half.run())
    ranks = on_two_ranks(_resume_both_ways, tmp_path, tmp_path / "half.ckpt", folder=tmp_path)
    # one process -> two ranks
    assert_same_training(ranks[0]["resumed"]["weights"], weights(whole))
    assert any("trained by 1 process(es), this run by 2" in notice for notice in ranks[0]["resumed"]["notices"])
    # two ranks -> one process
    going = going_on(tmp_path / "new" / "rank0" / "m.ckpt", 8)
    assert any("trained by 2 process(es), this run by 1" in notice for notice in going.notices)
    list(going.run())
    assert_same_training(weights(going), weights(whole))


def test_a_batch_that_does_not_divide_is_refused_and_another_device_type_is_said(tmp_path):
    half = new_trainer(config(steps=2, batch_size=15), out=tmp_path / "m.ckpt")
    list(half.run())
    three = distributed.Ranks(rank=0, world_size=2, local_rank=0, backend="gloo")  # refused before joining
    with pytest.raises(DrawStudioError, match="global batch of 15 images does not divide among 2 processes; "
                                              "resume on a number of processes that divides 15"):
        going_on(tmp_path / "m.ckpt", 4, ranks=three)
    with pytest.raises(DrawStudioError, match="pass a --batch-size that is a multiple of 2"):
        new_trainer(config(batch_size=15), ranks=three)
    state = read_checkpoint(tmp_path / "m.ckpt")
    state["extra"]["device_type"] = "cuda"
    torch.save(state, tmp_path / "cuda.ckpt")
    assert any("was trained on cuda, this run goes on on cpu: their random streams" in notice
               for notice in going_on(tmp_path / "cuda.ckpt", 4).notices)


# ---------------------------------------------------------------------------- decisions on the device (--defer)
def _deferred_runs(ranks):
    """Three tiny runs whose steps are decided on the device (a fused Adam's found_inf; the flags read with the
    reports, the stop requests every few steps): plain, with rank 1's weights poisoned, with a stop on rank 1."""
    def deferred(name: str, steps: int, **changes) -> Trainer:
        parts = new_run(TINY, config(steps=steps, **changes), train_set=mnist_slice("train", 200),
                        valid_set=mnist_slice("valid", 64), device="cpu")
        parts.optimizer = torch.optim.Adam(parts.model.parameters(), betas=(0.5, 0.999), fused=True)
        return Trainer(**vars(parts), ranks=ranks, defer_checks=True)

    out = {}
    for name, steps, poison, stop, changes in [("plain", 4, None, None, {"report_every": 2}),
                                               ("poisoned", 6, 1, None, {}), ("stopped", 100, None, 1, {})]:
        trainer, control, reports = deferred(name, steps, **changes), TrainingControl(), []
        if poison == ranks.rank:
            with torch.no_grad():
                trainer.model.latent.weight[0, 0] = float("inf")
        for report in trainer.run(control):
            reports.append((report.kind.value, report.step, report.loss, report.message))
            if stop == ranks.rank and report.kind == "step" and report.step == 3:
                control.stop()
        out[name] = {"reports": reports, "step": trainer.step, "weights": weights(trainer)}
    return out


def test_two_ranks_deciding_on_the_device_skip_restore_and_stop_at_the_same_steps(tmp_path):
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)  # loads torch._dynamo once, before forking
    ranks = on_two_ranks(_deferred_runs, folder=tmp_path)
    one = new_trainer(config(steps=4, report_every=2))
    one_losses = [row[2] for r in one.run() if r.kind == "step" for row in r.step_losses]
    for rank in ranks:
        assert [row[2] for row in rank["plain"]["reports"] if row[0] == "step"] == pytest.approx(
            [sum(one_losses[:2]) / 2, sum(one_losses[2:]) / 2], rel=1e-5)
        assert_same_training(rank["plain"]["weights"], weights(one))
        kinds = [(kind, step) for kind, step, *_ in rank["poisoned"]["reports"] if kind in ("nonfinite", "step")]
        assert [step for kind, step in kinds if kind == "nonfinite"] == [1, 2, 3]  # read with the reports, restored
        assert [step for kind, step in kinds if kind == "step"] == [4, 5, 6]
        assert all(torch.isfinite(value).all() for value in rank["poisoned"]["weights"].values())
        # rank 1 asked to stop after step 3; the requests are read every STOP_READ_EVERY steps, by both at once
        assert rank["stopped"]["step"] == STOP_READ_EVERY and rank["stopped"]["reports"][-1][3] == "stopped"
    for name in ("plain", "poisoned", "stopped"):
        assert_equal_weights(ranks[0][name]["weights"], ranks[1][name]["weights"])


# ---------------------------------------------------------------------------- errors under torchrun: said once
def _command_line(ranks, arguments: list[str]):
    """``draw-studio ARGUMENTS`` in this rank: its exit code and what it printed on stderr."""
    text = io.StringIO()
    with contextlib.redirect_stderr(text):
        code = main(arguments)
    return code, text.getvalue()


def test_an_error_every_rank_meets_is_printed_once_before_the_data_loads(tmp_path):
    common = ["train", "--preset", "tiny", "--data-dir", str(tmp_path / "none"), "--no-download", "--steps", "2",
              "--device", "cpu", "--out", str(tmp_path / "m.ckpt")]
    for extra, message in [(["--batch-size", "15"], "the global batch of 15 images does not divide among 2 processes; "
                                                    "pass a --batch-size that is a multiple of 2"),
                           (["--cuda-graphs", "on"], "--cuda-graphs on needs one process")]:
        results = on_two_ranks(_command_line, common + extra, folder=tmp_path / extra[0][2:])
        assert [code for code, _ in results] == [2, 2]
        assert results[1][1] == ""  # rank 1 (the first process of no machine) says nothing
        lines = results[0][1].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"draw-studio train: error: {message}")
    assert not any(path.suffix == ".ckpt" for path in tmp_path.rglob("*"))


def test_validation_shared_by_two_ranks_gives_the_one_process_bound(tmp_path):
    pixels = torch.as_tensor(mnist_slice("valid", 64).images[:64] > 127).float()
    torch.manual_seed(0)
    model = DRAW(TINY)
    expected = evaluate(model, pixels, batch_size=16, seed=3).bound
    bounds = on_two_ranks(lambda ranks: distributed.sharded_bound(model, pixels, 16, 3, ranks, torch.device("cpu")),
                          folder=tmp_path)
    assert bounds[0] == bounds[1] == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------- the command line under torchrun
def test_torchrun_trains_one_run_equal_to_the_one_process_run(tmp_path):
    common = ["train", "--preset", "tiny", "--data-dir", str(MNIST_DIR), "--no-download", "--steps", "20",
              "--batch-size", "16", "--seed", "3", "--device", "cpu", "--threads", "1", "--validate-every", "10",
              "--validation-limit", "64", "--checkpoint-every", "10", "--snapshot-every", "10", "--report-every", "5"]
    (tmp_path / "two").mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DRAW_STUDIO_COMPILE": "0"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "draw_studio", *common, "--out", str(tmp_path / "two" / "d.ckpt")],
                          capture_output=True, text=True, env=env, timeout=TIMEOUT_S * 2, cwd=tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == ["d.ckpt", "d.log.h5"]
    assert done.stderr.count("checkpoint ") == 2  # rank 0 alone prints (two checkpoints: steps 10 and 20)
    assert done.stderr.count("training on cpu, rank 0 of 2 (gloo)") == 1
    assert main([*common, "--out", str(tmp_path / "one.ckpt")]) == 0
    two, one = read_checkpoint(tmp_path / "two" / "d.ckpt"), read_checkpoint(tmp_path / "one.ckpt")
    assert two["step"] == one["step"] == 20 and two["extra"]["world_size"] == 2
    assert two["extra"]["cuda_graphs"] == one["extra"]["cuda_graphs"] == "off"  # --cuda-graphs auto: no CUDA here
    assert_same_training(two["model"], one["model"])
    assert two["extra"]["valid_bound"] == pytest.approx(one["extra"]["valid_bound"], rel=1e-5)


# ---------------------------------------------------------------------------- the bench's distributed figures
BENCH = ["--preset", "tiny", "--batch", "8", "--steps", "2", "--warmup", "1", "--compile", "off"]


def _bench_share(ranks):
    from draw_studio.bench.distributed import arguments, measure

    return measure(arguments(BENCH))


def test_the_distributed_bench_measures_one_and_two_processes(tmp_path, capsys):
    import json
    import math

    from draw_studio.bench.distributed import main as bench_main

    two = on_two_ranks(_bench_share, folder=tmp_path)[0]
    assert bench_main(BENCH) == 0  # one process: no process group
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (one["processes"], two["processes"], one["batch"], two["batch"]) == (1, 2, 8, 8)
    assert one["allreduce_ms"] == 0 and 0 < two["allreduce_ms"] < two["step_ms"]
    assert all(math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0 for r in (one, two))
