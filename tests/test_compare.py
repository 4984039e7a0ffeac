"""Two models on the same images (``explore compare``): real small models, real MNIST test images.

Model A has attention and T = 6, model B none and T = 4: the comparison must hold each model's own
trace of the same binarised input, and its bounds must be each model's own ``evaluate`` bound.
"""

import dataclasses
import json
import types

import numpy as np
import pytest
from fault_tools import assert_clean_error
from tiny_data import MNIST_DIR, mnist_split

from draw_studio.cli import main
from draw_studio.data import model_inputs
from draw_studio.errors import DrawStudioError
from draw_studio.evaluate import evaluate
from draw_studio.explore import read_intervention
from draw_studio.explore.compare import check_comparable, compare_checkpoints, compare_models, split_inputs
from draw_studio.files import file_sha256
from draw_studio.trace import TraceInputs, record_trace
from draw_studio.trace_file import read_trace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N = 24


def assert_same_computation(actual, desired):
    """The same model on the same input, computed twice: equal up to float32 rounding. On an AVX-512 Xeon
    (avx512_fp16) two runs of the same ops differed in the last bit (2.4e-7 on a canvas of values ~0.1), and
    the difference came and went with unrelated computations before the call, so bit-equality is not a
    property of the code."""
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def test_pixels():
    pixels, _, _ = model_inputs(mnist_split("test"), "bernoulli")  # the whole split's fixed binarisation
    return pixels


@pytest.fixture(scope="module")
def comparison(tiny_models):
    p = tiny_models.paths
    return compare_checkpoints(p["a"], p["b"], images=N, data_dir=MNIST_DIR, download=False)


def test_bounds_are_each_model_s_own_eval_bound_on_the_same_binarised_input(tiny_models, comparison, test_pixels):
    c = comparison
    np.testing.assert_array_equal(c.trace_a.input, test_pixels[:N])  # eval's input: the split's fixed binarisation
    np.testing.assert_array_equal(c.trace_b.input, test_pixels[:N])
    assert c.binarization == "fixed, seed 150204623" and c.source == "mnist/test"
    for side in ("a", "b"):
        model = tiny_models.models[side]
        own = evaluate(model, test_pixels[:N], seed=0)  # draw-studio eval --limit N
        assert getattr(c, f"mean_bound_{side}") == pytest.approx(own.bound, rel=1e-6)
        trace = record_trace(model, TraceInputs(images=test_pixels[:N]), batch_size=500)
        assert_same_computation(getattr(c, f"trace_{side}").canvas, trace.canvas)
        assert_same_computation(getattr(c, f"kl_{side}"), trace.kl)
        np.testing.assert_allclose(getattr(c, f"bounds_{side}"), trace.nll_x + trace.kl.sum(axis=1), rtol=1e-6)
        assert getattr(c, f"trace_{side}").checkpoint_sha256 == file_sha256(tiny_models.paths[side])
    assert c.kl_a.shape == (N, 6) and c.kl_b.shape == (N, 4)
    np.testing.assert_allclose(c.difference, c.bounds_b - c.bounds_a)
    assert c.mean_difference == pytest.approx(c.mean_bound_b - c.mean_bound_a)
    assert c.trace_a.read_params is not None and c.trace_b.read_params is None


def test_the_noise_seed_changes_both_models_noise(tiny_models, test_pixels):
    inputs, _ = split_inputs(mnist_split("test"), tiny_models.models["a"].config, 8, "mnist/test", seed=5)
    c = compare_models(tiny_models.models["a"], tiny_models.models["b"], inputs)
    own = evaluate(tiny_models.models["a"], test_pixels[:8], seed=5)
    assert c.mean_bound_a == pytest.approx(own.bound, rel=1e-6)
    assert c.mean_bound_a != pytest.approx(evaluate(tiny_models.models["a"], test_pixels[:8], seed=0).bound, rel=1e-6)


def test_different_image_sizes_are_refused_naming_both(tiny_models):
    with pytest.raises(DrawStudioError, match=r"a\.ckpt \(28x28, 1 channel images\).*small\.ckpt \(14x14, 1 "
                                              r"channel images\).*same image size"):
        compare_checkpoints(tiny_models.paths["a"], tiny_models.paths["small"], images=4, data_dir=MNIST_DIR,
                            download=False)
    other = dataclasses.replace(tiny_models.models["a"].config, likelihood="logistic")
    with pytest.raises(DrawStudioError, match="same likelihood"):
        check_comparable(tiny_models.models["a"].config, other)


def test_the_command_line_prints_the_means_and_writes_both_traces(tiny_models, comparison, capsys, tmp_path):
    p = tiny_models.paths
    out_a, out_b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert main(["explore", "compare", str(p["a"]), str(p["b"]), "--data-dir", str(MNIST_DIR), "--no-download",
                 "--images", str(N), "--device", "cpu", "--threads", "1", "--json",
                 "--trace-out", str(out_a), str(out_b)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tool"] == "compare" and info["images"] == N
    assert info["mean_bound_a"] == pytest.approx(comparison.mean_bound_a)
    assert info["mean_difference"] == pytest.approx(comparison.mean_difference)
    assert np.asarray(info["kl_b"]).shape == (N, 4)
    for path, trace, side in ((out_a, comparison.trace_a, "A"), (out_b, comparison.trace_b, "B")):
        written = read_trace(path)
        assert_same_computation(written.canvas, trace.canvas)
        assert_same_computation(written.kl, trace.kl)
        intervention = read_intervention(path)
        assert intervention["tool"] == "compare" and intervention["side"] == side
        assert intervention["mean_bound"] == pytest.approx(float(np.mean(trace.nll_x + trace.kl.sum(axis=1))))
    assert main(["explore", "compare", str(p["a"]), str(p["b"]), "--data-dir", str(MNIST_DIR), "--no-download",
                 "--images", "3", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("A a.ckpt: mean bound ") and lines[1].startswith("B b.ckpt: mean bound ")
    assert lines[2].startswith("B - A: ")


@pytest.mark.parametrize("extra, fragments", [
    (("{small}",), ("a.ckpt", "small.ckpt", "28x28", "14x14", "same image size")),
    (("{b}", "--images", "20000"), ("--images", "10000")),
    (("{b}", "--trace-out", "{out}", "{out}"), ("--trace-out", "both models")),
    (("{b}", "--trace-out", "{out}", "{a}"), ("would overwrite",)),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_models, capsys, tmp_path, extra, fragments):
    out = tmp_path / "t.h5"
    names = {**{f"{{{name}}}": path for name, path in tiny_models.paths.items()}, "{out}": out}
    args = [str(names.get(a, a)) for a in extra]
    code = main(["explore", "compare", str(tiny_models.paths["a"]), *args, "--data-dir", str(MNIST_DIR),
                 "--no-download", "--device", "cpu"])
    assert_clean_error(types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), *fragments)
    assert not list(tmp_path.iterdir())


def test_gui_compare_refuses_a_file_that_is_no_checkpoint_before_any_window(tiny_models, comparison, capsys, tmp_path):
    from draw_studio.trace_file import write_trace

    trace = tmp_path / "t.h5"
    write_trace(trace, comparison.trace_b)
    a, b = tiny_models.paths["a"], tiny_models.paths["b"]
    for args, fragments in ((["gui", str(a), "--compare", str(trace)], ("--compare", "trace file")),
                            (["gui", str(trace), "--compare", str(b)], ("first file", "trace file"))):
        code = main([*args, "--screenshot", str(tmp_path / "s.png")])
        assert_clean_error(types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), *fragments)
    assert not (tmp_path / "s.png").exists()
