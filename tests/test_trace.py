"""Trace files: the spec's layout, and every glimpse and canvas increment recomputed from the file alone."""

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch
from tiny_data import mnist_slice

from draw_studio.config import get_preset
from draw_studio.errors import DrawStudioError, TraceFormatError
from draw_studio.model import DRAW
from draw_studio.trace import TraceInputs, record_trace
from draw_studio.trace_file import read_trace, record_trace_file, write_trace

LABELS = {"sample", "step", "channel", "y", "x", "param", "latent"}


def tiny_model(**changes) -> DRAW:
    torch.manual_seed(0)
    model = DRAW(dataclasses.replace(get_preset("tiny").model, **changes))
    with torch.no_grad():  # livelier attention than a fresh model: windows that move and differ
        for head in (model.read_head, model.write_head):
            if head is not None:
                head.linear.weight.mul_(8)
    return model


def binary_images(count=6, seed=0):
    grey = mnist_slice("test", count).images.astype(np.float32) / 255
    return (np.random.default_rng(seed).random(grey.shape) < grey).astype(np.float32)


# --------------------------------------------------------------- an independent numpy DRAW attention
def np_filterbank(centre, delta, sigma2, n, size):
    """Eqs 19/20 and 25/26 with the paper's 1-based indices: (n, size), rows sum to 1."""
    i = np.arange(1, n + 1, dtype=np.float64)
    mu = centre + (i - n / 2 - 0.5) * delta  # (n,)
    a = np.arange(1, size + 1, dtype=np.float64)
    exponent = -((a[None, :] - mu[:, None]) ** 2) / (2 * sigma2)  # (n, size)
    f = np.exp(exponent - exponent.max(axis=1, keepdims=True))  # the same ratios, no underflow far outside
    return f / f.sum(axis=1, keepdims=True)  # Z_X / Z_Y: every row sums to 1


def np_filters(params, height, width, n):
    gx, gy, delta, sigma2, gamma = (float(v) for v in params)
    return np_filterbank(gx, delta, sigma2, n, width), np_filterbank(gy, delta, sigma2, n, height), gamma


def np_sigmoid(c):
    return 1 / (1 + np.exp(-c.astype(np.float64)))


def test_glimpses_and_increments_recomputed_from_the_file_alone(tmp_path):
    model = tiny_model(height=28, width=28)
    x = binary_images(5)
    path = tmp_path / "trace.h5"
    write_trace(path, record_trace(model, TraceInputs(images=x, seed=3), batch_size=2))
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        height, width, channels = cfg["height"], cfg["width"], cfg["channels"]
        x_file, canvas = f["input"][()], f["canvas"][()]
        read_params, glimpse = f["read/params"][()], f["read/glimpse"][()]
        write_params, patch = f["write/params"][()], f["write/patch"][()]
    n, steps = canvas.shape[:2]
    steps -= 1
    assert np.ptp(read_params[..., 0]) > 0.5 and np.ptp(write_params[..., 2]) > 0.1  # the windows do move
    for i in range(n):
        for s in range(steps):
            fx, fy, gamma = np_filters(read_params[i, s], height, width, cfg["read_n"])
            x_hat = x_file[i] - np_sigmoid(canvas[i, s])  # (C, H, W)
            for c in range(channels):
                np.testing.assert_allclose(glimpse[i, s, c], gamma * fy @ x_file[i, c] @ fx.T, rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(glimpse[i, s, channels + c], gamma * fy @ x_hat[c] @ fx.T,
                                           rtol=1e-4, atol=1e-5)
            fx, fy, gamma = np_filters(write_params[i, s], height, width, cfg["write_n"])
            increment = canvas[i, s + 1].astype(np.float64) - canvas[i, s]
            for c in range(channels):
                np.testing.assert_allclose(increment[c], fy.T @ patch[i, s, c] @ fx / gamma, rtol=1e-4, atol=2e-5)


def test_round_trip_and_streaming_write_match(tmp_path):
    model = tiny_model()
    x = binary_images(7)
    trace = record_trace(model, TraceInputs(images=x, labels=np.arange(7) % 3, seed=5), batch_size=3,
                         checkpoint_sha256="ab" * 32)
    write_trace(tmp_path / "a.h5", trace)
    record_trace_file(tmp_path / "b.h5", model, TraceInputs(images=x, labels=np.arange(7) % 3, seed=5), batch_size=3,
                      checkpoint_sha256="ab" * 32)
    for name in ("a.h5", "b.h5"):
        back = read_trace(tmp_path / name)
        assert (back.mode, back.seed, back.model_config, back.checkpoint_sha256) == (
            "reconstruct", 5, model.config, "ab" * 32)
        assert back.arrays().keys() == trace.arrays().keys()
        for key, value in trace.arrays().items():
            np.testing.assert_array_equal(getattr(back, key), value, err_msg=key)
    part = read_trace(tmp_path / "a.h5", samples=[4, 1])
    np.testing.assert_array_equal(part.canvas, trace.canvas[[1, 4]])
    # the same seed and batch size give the same noise; the model's own bound agrees with the trace
    again = record_trace(model, TraceInputs(images=x, seed=5), batch_size=3)
    np.testing.assert_array_equal(again.z, trace.z)
    np.testing.assert_allclose(trace.kl.shape, (7, model.config.steps))
    np.testing.assert_allclose(trace.increment(1), trace.canvas[:, 1] - trace.canvas[:, 0])
    np.testing.assert_allclose(trace.increment(trace.steps), trace.canvas[:, -1] - trace.canvas[:, -2])
    with pytest.raises(ValueError):
        trace.increment(0)
    np.testing.assert_allclose(trace.mean_images(trace.steps), np_sigmoid(trace.canvas[:, -1]), rtol=1e-6)


@pytest.mark.parametrize("mode, attention", [("reconstruct", True), ("generate", True),
                                             ("reconstruct", False), ("generate", False)])
def test_spec_attributes_labels_and_shapes(tmp_path, mode, attention):
    model = tiny_model(read_attention=attention, write_attention=attention, read_n=3, write_n=4)
    cfg = model.config
    n, t, c, h, w, z = 4, cfg.steps, cfg.channels, cfg.height, cfg.width, cfg.z_size
    if mode == "reconstruct":
        trace = record_trace(model, TraceInputs(images=binary_images(n), labels=np.arange(n), seed=9),
                             checkpoint_sha256="0" * 64)
    else:
        trace = record_trace(model, TraceInputs(generate_n=n, seed=9), checkpoint_sha256="0" * 64)
    path = tmp_path / "t.h5"
    write_trace(path, trace)
    expected = {"canvas": (n, t + 1, c, h, w), "latent/z": (n, t, z)}
    if mode == "reconstruct":
        expected.update({"input": (n, c, h, w), "labels": (n,), "latent/mu": (n, t, z), "latent/sigma": (n, t, z),
                         "kl": (n, t), "nll_x": (n,)})
        if attention:
            expected.update({"read/params": (n, t, 5), "read/glimpse": (n, t, 2 * c, 3, 3)})
    if attention:
        expected.update({"write/params": (n, t, 5), "write/patch": (n, t, c, 4, 4)})
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "draw-studio/trace" and f.attrs["format_version"] == 1
        assert f.attrs["mode"] == mode and f.attrs["seed"] == 9 and f.attrs["checkpoint_sha256"] == "0" * 64
        assert json.loads(f.attrs["model_config"]) == cfg.to_dict()
        assert f.attrs["software"].startswith("draw-studio ") and f.attrs["created"].endswith("Z")
        found = {}
        f.visititems(lambda name, obj: found.update({name: obj.shape}) if isinstance(obj, h5py.Dataset) else None)
        assert found == expected
        for name in found:
            dset = f[name]
            labels = [dim.label for dim in dset.dims]
            assert set(labels) <= LABELS and labels[0] == "sample" and all(labels)
            assert dset.compression == "gzip" and dset.chunks is not None
            assert dset.dtype == (np.int64 if name == "labels" else np.float32)
        assert [d.label for d in f["canvas"].dims] == ["sample", "step", "channel", "y", "x"]
        assert f["canvas"].attrs["to_image"] == "sigmoid"
        for group in ("read", "write"):
            assert (group in f) == (attention and (group == "write" or mode == "reconstruct"))
            if f"{group}/params" in f:
                assert list(f[f"{group}/params"].attrs["columns"]) == ["gx", "gy", "delta", "sigma2", "gamma"]
                assert [d.label for d in f[f"{group}/params"].dims] == ["sample", "step", "param"]
    back = read_trace(path)
    assert back.mode == mode and back.n == n and back.steps == t
    assert (back.input is None) == (mode == "generate") and (back.write_params is None) == (not attention)


def test_non_traces_are_refused(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5 at all")
    with pytest.raises(TraceFormatError, match="not an HDF5 file"):
        read_trace(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(TraceFormatError, match="not a DRAW Studio trace"):
        read_trace(other)
    newer = tmp_path / "newer.h5"
    write_trace(newer, record_trace(tiny_model(), TraceInputs.prior(2)))
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(TraceFormatError, match="version 2"):
        read_trace(newer)
    with pytest.raises(TraceFormatError, match="does not exist"):
        read_trace(tmp_path / "missing.h5")


def test_interrupted_writes_leave_no_file(tmp_path):
    model = tiny_model()
    x = binary_images(6)
    path = tmp_path / "trace.h5"

    def stop(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        record_trace_file(path, model, TraceInputs(images=x), batch_size=2, progress=stop)
    assert list(tmp_path.iterdir()) == []
    trace = record_trace(model, TraceInputs(images=x))
    trace.canvas = trace.canvas[:3]  # inconsistent sizes make the write fail half-way
    with pytest.raises((ValueError, TypeError, DrawStudioError)):
        write_trace(path, trace)
    assert list(tmp_path.iterdir()) == []
    write_trace(path, record_trace(model, TraceInputs(images=x)))  # an existing trace survives a failed overwrite
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        record_trace_file(path, model, TraceInputs(images=x), batch_size=2, progress=stop)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["trace.h5"]
