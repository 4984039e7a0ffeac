"""The explore tools: edits, forks, moved windows, interpolations and drawings, on a real tiny model and real MNIST."""

import dataclasses
import json
import types

import h5py
import numpy as np
import pytest
import torch
from fault_tools import assert_clean_error, run_cli
from PIL import Image
from test_trace import np_filters, np_sigmoid
from tiny_data import MNIST_DIR, mnist_split

from draw_studio import explore
from draw_studio.checkpoint import save_checkpoint
from draw_studio.cli import main
from draw_studio.config import TrainConfig, get_preset
from draw_studio.data import model_inputs
from draw_studio.errors import DrawStudioError
from draw_studio.evaluate import evaluate
from draw_studio.explore.drawing import centre_by_mass
from draw_studio.explore.fork import commitment_run
from draw_studio.explore.interpolate import slerp
from draw_studio.export import export_gif
from draw_studio.files import file_sha256
from draw_studio.model import DRAW
from draw_studio.seeding import make_generator
from draw_studio.stepping import StepControls
from draw_studio.trace import TraceInputs, record_trace
from draw_studio.trace_file import read_trace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def lively_model(**changes) -> DRAW:
    """The tiny preset with attention that moves (as the trace tests use), T = 6."""
    torch.manual_seed(0)
    model = DRAW(dataclasses.replace(get_preset("tiny").model, steps=6, **changes))
    with torch.no_grad():
        for head in (model.read_head, model.write_head):
            if head is not None:
                head.linear.weight.mul_(8)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return lively_model()


@pytest.fixture(scope="module")
def test_pixels():
    pixels, _, _ = model_inputs(mnist_split("test"), "bernoulli")  # the fixed binarisation eval uses
    return pixels


@pytest.fixture(scope="module")
def recon(model, test_pixels):
    return record_trace(model, TraceInputs(images=test_pixels[:4], seed=3, source="mnist/test"), batch_size=4)


@pytest.fixture(scope="module")
def generated(model):
    return record_trace(model, TraceInputs.prior(3, seed=2), batch_size=3)


# --------------------------------------------------------------------------- the model's step-level API
def test_imposing_every_z_gives_back_the_run_that_sampled_them(model, test_pixels):
    from draw_studio.model import StepRecorder

    x = torch.as_tensor(test_pixels[:5])
    with torch.no_grad():
        terms, record = model(x, generator=torch.Generator().manual_seed(1), record=True)
    with torch.inference_mode():  # the same batch: bit for bit
        recorder = StepRecorder()
        start = model.start_state(5)
        recorder.add(canvas=start.canvas)
        run = model.run_steps(start, 0, model.config.steps, x=x, controls=StepControls(z=record["z"]),
                              recorder=recorder)
    again = recorder.stacked()
    assert set(again) == set(record)
    for name in record:
        np.testing.assert_array_equal(again[name].numpy(), record[name].numpy(), err_msg=name)
    np.testing.assert_array_equal(run.kl.numpy(), terms.kl.numpy())
    torch.testing.assert_close(run.log_ratio - model.nll(run.state.canvas, x), terms.log_weight, rtol=1e-6, atol=1e-4)
    mask = torch.zeros(5, model.config.steps, dtype=torch.bool)
    mask[:, 2] = True  # impose one step only; the others sample with the same noise as forward's
    eps = torch.randn((model.config.steps, 5, model.config.z_size), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        part = model.run_steps(model.start_state(5), 0, model.config.steps, x=x, eps=eps,
                               controls=StepControls(z=record["z"], z_mask=mask))
    torch.testing.assert_close(part.state.canvas, record["canvas"][:, -1], rtol=1e-5, atol=1e-5)


def test_an_edit_of_z_changes_nothing_before_it_bit_for_bit(model, recon):
    steps = model.config.steps
    base = explore.ImageRun(model, recon, 1).record["canvas"][0].numpy()  # (T+1, C, H, W)
    np.testing.assert_allclose(base, recon.canvas[1], atol=1e-5)  # the replay is the trace
    for step in range(steps):
        result = explore.edit_latent(model, recon, 1, step, 2, 3.5)
        canvas = result.trace.canvas[0]
        np.testing.assert_array_equal(canvas[:step + 1], base[:step + 1])  # c_0 .. c_{t-1}, the paper's t = step + 1
        assert not np.array_equal(canvas[step + 1], base[step + 1])  # c_t moves
        assert result.trace.z[0, step, 2] == np.float32(3.5)
        others = np.ones_like(result.trace.z[0], dtype=bool)
        others[step, 2] = False
        np.testing.assert_array_equal(result.trace.z[0][others], recon.z[1][others])  # later z's kept
        info = result.intervention
        assert (info["tool"], info["step"], info["latent"], info["new_value"]) == ("edit-latent", step, 2, 3.5)
        assert info["old_value"] == pytest.approx(float(recon.z[1, step, 2]))
    # the same from scratch, without the replay's cache: the model itself is causal
    z = torch.as_tensor(recon.z[1:2]).clone()
    edited = z.clone()
    edited[0, 3, 0] += 1
    with torch.inference_mode():
        a, b = (model.run_steps(model.start_state(1), 0, steps, controls=StepControls(z=v), keep_states=True).states
                for v in (z, edited))
    for s in range(3):
        assert torch.equal(a[s].canvas, b[s].canvas) and torch.equal(a[s].h_dec, b[s].h_dec)
    assert not torch.equal(a[3].canvas, b[3].canvas)


def test_live_regeneration_is_the_edit_without_the_encoder(model, recon):
    editor = explore.LatentEditor(model, recon, 2)
    live = editor.regenerate(2, 1, -2.0)
    full = editor.edit(2, 1, -2.0)
    np.testing.assert_array_equal(live["canvas"].numpy(), full.trace.canvas)
    np.testing.assert_array_equal(live["write_params"].numpy(), full.trace.write_params)
    assert full.trace.mode == "reconstruct" and full.trace.kl.shape == (1, model.config.steps)
    assert full.intervention["bound_after"] == pytest.approx(float(full.trace.nll_x[0] + full.trace.kl[0].sum()))


def test_forks_at_zero_are_prior_samples_and_at_t_equal_T_the_original(model, recon, generated):
    steps = model.config.steps
    first = explore.fork(model, recon, 0, 0, k=5, seed=11)
    _, sampled = model.generate(5, generator=make_generator(torch.device("cpu"), 11), record=True)
    assert first.trace.mode == "generate" and first.trace.n == 5
    np.testing.assert_array_equal(first.trace.z, sampled["z"].numpy())
    np.testing.assert_array_equal(first.trace.canvas, sampled["canvas"].numpy())
    for trace in (recon, generated):
        last = explore.fork(model, trace, 1, steps, k=3)
        for row in last.trace.canvas:
            np.testing.assert_allclose(row, trace.canvas[1], atol=1e-5)
    middle = explore.fork(model, recon, 0, 3, k=4, seed=1)
    np.testing.assert_array_equal(middle.trace.z[:, :3], np.repeat(recon.z[:1, :3], 4, axis=0))
    assert len({row.tobytes() for row in middle.trace.z[:, 3:]}) == 4  # each continuation its own prior draw
    np.testing.assert_allclose(middle.trace.canvas[:, :4], np.repeat(recon.canvas[:1, :4], 4, axis=0), atol=1e-5)
    assert middle.intervention == {**middle.intervention, "tool": "fork", "at": 3, "k": 4, "seed": 1, "image": 0}


def test_commitment_is_the_spread_of_the_forks(model, recon):
    steps = model.config.steps
    result = explore.commitment(model, recon, 0, k=6, seed=4)
    curve = result.datasets["commitment"][0]
    assert curve.shape == (steps + 1,) and curve[-1] == 0 and curve[0] > 0
    for t in (0, 2, steps - 1):
        forks = explore.fork(model, recon, 0, t, k=6, seed=4).trace
        final = np_sigmoid(forks.canvas[:, -1])
        assert curve[t] == pytest.approx(final.std(axis=0, ddof=1).mean(), rel=1e-4, abs=1e-7)
        np.testing.assert_allclose(result.trace.canvas[t], forks.canvas[0], atol=1e-5)  # sample t: fork t, k = 0
    assert result.intervention["half_step"] == next(t for t, v in enumerate(curve) if v < curve[0] / 2)
    run = explore.ImageRun(model, recon, 0, encoder=False)
    again, pixel_std, _ = commitment_run(run, 6, 4)
    np.testing.assert_allclose(again.numpy(), curve, rtol=1e-6)
    assert pixel_std.shape == (steps + 1, 1, 28, 28)


def test_a_moved_write_window_draws_what_the_equations_give(model, generated, recon):
    cfg = model.config
    step = 2
    for trace, image in ((generated, 0), (recon, 1)):
        result = explore.move_window(model, trace, image, step, write={"gx": 9.5, "gy": 20.0, "sigma2": 2.0},
                                     later="keep")
        moved = result.trace
        params = moved.write_params[0, step]
        np.testing.assert_allclose(params[[0, 1, 3]], [9.5, 20.0, 2.0])
        np.testing.assert_allclose(params[[2, 4]], trace.write_params[image, step, [2, 4]], rtol=1e-5)
        fx, fy, gamma = np_filters(params, cfg.height, cfg.width, cfg.write_n)  # the independent filterbank
        increment = moved.canvas[0, step + 1].astype(np.float64) - moved.canvas[0, step]
        np.testing.assert_allclose(increment[0], fy.T @ moved.write_patch[0, step, 0] @ fx / gamma, rtol=1e-4,
                                   atol=2e-5)
        np.testing.assert_allclose(moved.write_patch[0, step], trace.write_patch[image, step], atol=1e-5)
        # with every z kept, the decoder runs as before: later canvases move by the change of that one increment
        change = (moved.canvas[0, step + 1] - moved.canvas[0, step]) - (trace.canvas[image, step + 1]
                                                                       - trace.canvas[image, step])
        for s in range(step + 1, cfg.steps + 1):
            np.testing.assert_allclose(moved.canvas[0, s] - trace.canvas[image, s], change, atol=1e-4)
        np.testing.assert_allclose(moved.canvas[0, :step + 1], trace.canvas[image, :step + 1], atol=1e-5)
        assert result.intervention["write"]["set"] == {"gx": 9.5, "gy": 20.0, "sigma2": 2.0}
        np.testing.assert_allclose(result.intervention["write"]["new"], params)


def test_a_moved_read_window_is_read_and_the_encoder_corrects_itself(model, recon):
    cfg = model.config
    step = 1
    result = explore.move_window(model, recon, 2, step, read={"gx": 5.0, "delta": 1.5})
    moved, info = result.trace, result.intervention
    params = moved.read_params[0, step]
    np.testing.assert_allclose(params[[0, 2]], [5.0, 1.5])
    fx, fy, gamma = np_filters(params, cfg.height, cfg.width, cfg.read_n)
    x = moved.input[0]
    np.testing.assert_allclose(moved.read_glimpse[0, step, 0], gamma * fy @ x[0] @ fx.T, rtol=1e-4, atol=1e-5)
    x_hat = x - np_sigmoid(moved.canvas[0, step])
    np.testing.assert_allclose(moved.read_glimpse[0, step, 1], gamma * fy @ x_hat[0] @ fx.T, rtol=1e-4, atol=1e-5)
    assert info["later"] == "posterior" and np.abs(moved.z[0, step:] - recon.z[2, step:]).max() > 1e-5
    np.testing.assert_allclose(moved.z[0, :step], recon.z[2, :step], atol=1e-6)
    # the later z's use the trace's own noise: (z - mu) / sigma is unchanged
    np.testing.assert_allclose((moved.z[0] - moved.mu[0]) / moved.sigma[0],
                               (recon.z[2] - recon.mu[2]) / recon.sigma[2], atol=1e-3)
    assert info["bound_after"] == pytest.approx(float(moved.nll_x[0] + moved.kl[0].sum()), rel=1e-6)
    assert info["bound_before"] == pytest.approx(float(recon.nll_x[2] + recon.kl[2].sum()), rel=1e-5)
    np.testing.assert_allclose(info["kl_change"], moved.kl[0] - recon.kl[2], atol=1e-4)
    same = explore.move_window(model, recon, 2, step, read={"gx": float(recon.read_params[2, step, 0])})
    assert same.intervention["bound_after"] == pytest.approx(same.intervention["bound_before"], abs=1e-3)


def test_a_window_mover_kept_between_drags_equals_move_window_bit_for_bit(model, generated, recon):
    steps = model.config.steps
    for trace, image in ((recon, 1), (generated, 2)):
        mover = explore.WindowMover(model, trace, image)
        reads = trace.mode == "reconstruct"
        # a drag: later steps first (the replay stops there), then earlier ones, then one seen before
        for step, gx in ((4, 3.0), (1, 20.0), (5, 11.5), (0, 7.0), (4, 3.0)):
            write = {"gx": gx, "gy": 30.0 - gx}
            read = {"gy": gx, "delta": 1.2} if reads else None
            moved = mover.move(step, write=write, read=read)
            fresh = explore.move_window(model, trace, image, step, write=write, read=read)
            for name in ("canvas", "z", "write_params", "write_patch", "read_params", "read_glimpse", "mu", "kl"):
                mine, theirs = getattr(moved.trace, name), getattr(fresh.trace, name)
                assert (mine is None) == (theirs is None) == (name in ("read_params", "read_glimpse", "mu", "kl")
                                                              and not reads), name
                if mine is not None:
                    np.testing.assert_array_equal(mine, theirs, err_msg=f"{name} at step {step}")
            assert moved.intervention.get("bound_after") == fresh.intervention.get("bound_after")
            live = mover.regenerate(step, write=write, read=read)
            np.testing.assert_array_equal(live["canvas"].numpy(), moved.trace.canvas)
        assert mover.run.replayed == steps
    with pytest.raises(DrawStudioError, match="no read window"):
        explore.WindowMover(model, generated, 0).regenerate(1, read={"gx": 3.0})


def test_the_commitment_curve_reports_its_progress_after_every_step(model, recon):
    reports: list[tuple[int, int]] = []
    result = explore.commitment(model, recon, 0, k=3, seed=1,
                                progress=lambda done, total: reports.append((done, total)))
    steps = model.config.steps
    assert reports == [(s, steps) for s in range(1, steps + 1)]
    np.testing.assert_array_equal(result.intervention["curve"], explore.commitment(model, recon, 0, 3, 1)
                                  .intervention["curve"])


def test_interpolation_endpoints_are_the_two_mean_z_generations(model, test_pixels):
    result = explore.interpolate(model, test_pixels[3], test_pixels[17], count=5)
    trace, steps = result.trace, model.config.steps
    assert trace.mode == "generate" and trace.n == 10
    mu = explore.posterior_means(model, test_pixels[[3, 17]]).numpy()  # (2, T, Z)
    for row, end in ((0, 0), (4, 1), (5, 0), (9, 1)):
        np.testing.assert_array_equal(trace.z[row], mu[end])
    with torch.inference_mode():  # the mean path's own canvases: the encoder fed z = mu
        x = torch.as_tensor(test_pixels[[3, 17]])
        means = model.run_steps(model.start_state(2), 0, steps, x=x, eps=torch.zeros(steps, 2, mu.shape[2])).state
    np.testing.assert_allclose(trace.canvas[[0, 4], -1], means.canvas.numpy(), atol=1e-5)
    np.testing.assert_allclose(trace.z[2], (mu[0] + mu[1]) / 2, atol=1e-6)  # linear midpoint
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[-4.0, 3.0]])  # spherical: on the circle of radius 5
    path = slerp(a, b, torch.linspace(0, 1, 7))
    torch.testing.assert_close(path.norm(dim=-1), torch.full((7, 1), 5.0))
    assert result.intervention["alphas"][0] == 0 and result.intervention["alphas"][-1] == 1


def test_a_png_of_a_test_image_reconstructs_to_that_image_s_bound(model, test_pixels, tmp_path):
    grey = mnist_split("test").images[:40, 0]  # (40, 28, 28) uint8
    unchanged = sum(np.array_equal(centre_by_mass(g / 255.0, 28, 28)[0], (g / 255.0).astype(np.float32))
                    for g in grey)
    assert unchanged >= 30, unchanged  # an MNIST digit is already centred this way
    for i in (0, 5):
        png = tmp_path / f"binary{i}.png"
        Image.fromarray((test_pixels[i, 0] * 255).astype(np.uint8)).save(png)
        result = explore.reconstruct_image(model, png, seed=9, centre=False)
        own = record_trace(model, TraceInputs(images=test_pixels[i:i + 1], seed=9), batch_size=1)
        np.testing.assert_array_equal(result.trace.input, test_pixels[i:i + 1])
        assert result.intervention["bound"] == pytest.approx(float(own.nll_x[0] + own.kl[0].sum()), rel=1e-6)
        paper = tmp_path / f"paper{i}.png"  # dark ink on white paper, four times larger: inverted, resized
        Image.fromarray(255 - np.kron(grey[i], np.ones((4, 4), dtype=np.uint8))).save(paper)
        drawn = explore.reconstruct_image(model, paper, seed=9)
        assert drawn.intervention["inverted"] and drawn.intervention["centred"]
        assert drawn.intervention["pixels"] == "binarised at 0.5" and set(np.unique(drawn.trace.input)) <= {0, 1}
        assert np.abs(drawn.trace.input - (grey[i] >= 128)).mean() < 0.05  # the same digit, up to resampling


def test_test_set_bounds_are_eval_s_and_cached(model, test_pixels, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bounds = explore.split_bounds(model, test_pixels[:600], "mnist/test", "ab" * 32)
    assert bounds.mean == pytest.approx(evaluate(model, test_pixels[:600]).bound, rel=1e-5)
    assert list((tmp_path / "cache" / "draw-studio" / "bounds").iterdir())
    np.testing.assert_array_equal(explore.split_bounds(None, test_pixels[:600], "mnist/test", "ab" * 32).bounds,
                                  bounds.bounds)  # from the cache: no model needed
    assert bounds.percentile(-1.0) == 0 and bounds.percentile(1e9) == 100


def test_the_intervention_round_trips_and_every_result_exports(model, recon, tmp_path):
    results = [explore.edit_latent(model, recon, 0, 1, 0, 1.25), explore.commitment(model, recon, 0, k=3),
               explore.move_window(model, recon, 0, 0, write={"gamma": 2.0})]
    for number, result in enumerate(results):
        path = tmp_path / f"r{number}.h5"
        explore.write_result(path, result)
        back = explore.read_intervention(path)
        assert back == json.loads(json.dumps(explore.result.plain({"version": 1, **result.intervention})))
        trace = read_trace(path)
        np.testing.assert_array_equal(trace.canvas, result.trace.canvas)
        for name, (array, labels) in result.datasets.items():
            np.testing.assert_array_equal(explore.read_extra(path, name), array)
            with h5py.File(path, "r") as f:
                assert [d.label for d in f[name].dims] == list(labels)
        export_gif(trace, tmp_path / f"r{number}.gif", windows=True)
        assert (tmp_path / f"r{number}.gif").stat().st_size > 0
    assert explore.read_intervention(tmp_path / "r0.h5")["latent"] == 0
    plain_trace = tmp_path / "plain.h5"
    from draw_studio.trace_file import write_trace
    write_trace(plain_trace, recon)
    assert explore.read_intervention(plain_trace) is None


# --------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def files(tmp_path_factory, model, test_pixels):
    folder = tmp_path_factory.mktemp("explore")
    checkpoint = folder / "tiny.ckpt"
    save_checkpoint(checkpoint, model, TrainConfig(preset="tiny", dataset="mnist"))
    trace = folder / "t.h5"
    assert main(["trace", str(checkpoint), "--indices", "0,1,2", "--data-dir", str(MNIST_DIR), "--no-download",
                 "--out", str(trace), "--device", "cpu"]) == 0
    other = folder / "other.ckpt"
    save_checkpoint(other, lively_model(), TrainConfig(preset="tiny", dataset="mnist"), step=1)  # another sha
    picture = folder / "drawing.png"
    Image.fromarray(mnist_split("test").images[7, 0]).resize((90, 70)).save(picture)
    return types.SimpleNamespace(folder=folder, checkpoint=checkpoint, trace=trace, other=other, picture=picture)


def explore_cli(*args):
    return main(["explore", *map(str, args), "--device", "cpu"])


def test_every_tool_writes_a_trace_that_exports(files, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    c, t = files.checkpoint, files.trace
    runs = {
        "fork": ("fork", t, "--image", 2, "--at", 3, "-k", 4, "--seed", 5, "--checkpoint", c),
        "commitment": ("commitment", t, "--image", 1, "-k", 3, "--checkpoint", c),
        "edit-latent": ("edit-latent", t, "--image", 1, "--step", 2, "--latent", 3, "--value", 2.5, "--checkpoint", c),
        "move-window": ("move-window", t, "--image", 0, "--step", 1, "--write", "gx=14,gy=9", "--read",
                        "sigma^2=3", "--checkpoint", c),
        "interpolate": ("interpolate", c, "--from-index", 3, "--to-image", files.picture, "--data-dir", MNIST_DIR,
                        "--count", 4, "--method", "spherical"),
        "reconstruct-image": ("reconstruct-image", c, files.picture, "--data-dir", MNIST_DIR, "--test-limit", 300),
    }
    sizes = {"fork": 4, "commitment": 7, "edit-latent": 1, "move-window": 1, "interpolate": 4, "reconstruct-image": 1}
    for tool, args in runs.items():
        out = tmp_path / f"{tool}.h5"
        assert explore_cli(*args, "--out", out, "--json") == 0, tool
        captured = capsys.readouterr()
        info = json.loads(captured.out)
        assert info["tool"] == tool and info == explore.read_intervention(out)
        assert read_trace(out).n == sizes[tool]
        assert read_trace(out).checkpoint_sha256 == file_sha256(c)
        assert main(["export", str(out), "--gif", str(tmp_path / f"{tool}.gif"), "--windows"]) == 0
        assert (tmp_path / f"{tool}.gif").stat().st_size > 0
    assert explore.read_intervention(tmp_path / "fork.h5")["image"] == 2
    recon = explore.read_intervention(tmp_path / "reconstruct-image.h5")
    assert recon["test_images"] == 300 and 0 <= recon["test_percentile"] <= 100 and recon["original_size"] == [90, 70]
    moved = explore.read_intervention(tmp_path / "move-window.h5")
    assert moved["write"]["set"] == {"gx": 14.0, "gy": 9.0} and moved["read"]["set"] == {"sigma2": 3.0}


@pytest.mark.parametrize("args, fragments", [
    (("fork", "{t}", "--image", 3, "--at", 1), ("--image 3", "3 images")),
    (("fork", "{t}", "--at", 7), ("--at 7", "0..6")),
    (("edit-latent", "{t}", "--step", 6, "--latent", 0, "--value", 1), ("--step 6", "0..5")),
    (("edit-latent", "{t}", "--step", 1, "--latent", 4, "--value", 1), ("--latent 4", "0..3")),
    (("edit-latent", "{t}", "--step", 1, "--latent", 0, "--value", "nan"), ("--value",)),
    (("move-window", "{t}", "--step", 1, "--write", "gx=14,size=3"), ("size", "gx, gy, delta, sigma2, gamma")),
    (("move-window", "{t}", "--step", 1, "--write", "gamma=-1"), ("gamma must be a positive number",)),
    (("move-window", "{t}", "--step", 1), ("nothing to move",)),
    (("commitment", "{t}", "-k", 1), ("-k",)),
])
def test_bad_input_is_one_line_and_writes_nothing(files, capsys, tmp_path, args, fragments):
    out = tmp_path / "out.h5"
    args = [str(files.trace) if a == "{t}" else a for a in args]
    try:
        code = explore_cli(*args, "--checkpoint", files.checkpoint, "--out", out)
    except SystemExit as exc:  # argparse refuses a bad value before anything runs
        code = exc.code
    assert_clean_error(types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), *fragments)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [("fork", "--at", 1), ("commitment",), ("edit-latent", "--step", 1, "--latent", 0,
                                  "--value", 1), ("move-window", "--step", 1, "--write", "gx=3")],
                         ids=lambda args: args[0])
def test_an_attention_classifier_s_trace_is_named_so(files, capsys, tmp_path, args):
    from draw_studio.classifier import AttentionClassifier, ClassifierConfig
    from draw_studio.classify_trace import record_classify_trace, write_classify_trace

    torch.manual_seed(0)
    classifier = AttentionClassifier(ClassifierConfig(steps=3, hidden_size=16, read_n=6))
    pictures = np.random.default_rng(0).random((2, 1, 100, 100), dtype=np.float32)
    write_classify_trace(tmp_path / "c.h5", record_classify_trace(classifier, pictures))
    out = tmp_path / "out.h5"
    assert explore_cli(args[0], tmp_path / "c.h5", *args[1:], "--checkpoint", files.checkpoint, "--out", out) == 2
    assert_clean_error(types.SimpleNamespace(returncode=2, stderr=capsys.readouterr().err),
                       f"{tmp_path / 'c.h5'} is an attention classifier's trace", "explore needs a DRAW model's trace")
    assert not out.exists()


def test_a_trace_of_another_model_is_refused_in_a_child_process(files, tmp_path):
    out = tmp_path / "f.h5"
    result = run_cli("explore", "fork", files.trace, "--at", 1, "--checkpoint", files.other, "--out", out)
    assert_clean_error(result, "recorded with the checkpoint", "--checkpoint")
    assert not out.exists()
    result = run_cli("explore", "fork", files.trace, "--at", 1, "-k", 64, "--checkpoint", files.checkpoint,
                     "--out", out, file_size_limit=60_000)  # the trace would be larger: nothing is left behind
    assert_clean_error(result, f"could not write {out}", "file-size limit")
    assert not list(tmp_path.iterdir())
    result = run_cli("explore", "fork", files.trace, "--at", 1, "-k", 2, "--checkpoint", files.checkpoint, "--out", out)
    assert result.returncode == 0, result.stderr
    assert explore.read_intervention(out)["k"] == 2


def test_the_bench_reports_the_four_explore_figures():
    from draw_studio.bench.explore import explore_speed

    result = explore_speed(lambda _: None, torch.device("cpu"), preset="tiny", quick=True)
    for key in ("explore_edit_regenerate_p95_ms", "explore_fork16_ms", "explore_commitment16_s",
                "explore_drawing_to_trace_ms", "explore_window_regenerate_p95_ms"):
        assert np.isfinite(result[key]) and result[key] > 0, key
