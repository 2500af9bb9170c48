"""A tiny QAT model exports to a file whose integer outputs are what fake quantization predicted."""
import numpy as np
import onnxruntime as ort
import torch

from tools.aiot import reference
from tools.aiot.export import bits_config
from tools.train import exporting, train
from tools.train.data import DataSet, Spec, Windows
from tools.train.model import Shape, Transformer


def tiny_dataset(n=300, window=8, horizon=1, seed=0) -> DataSet:
    rng = np.random.default_rng(seed)
    t = np.arange(n + window + horizon)
    series = np.stack([np.sin(t / 5.0) + 0.05 * rng.normal(size=t.size), np.cos(t / 7.0)], axis=1) * 2 + 10
    x = np.stack([series[i:i + window] for i in range(n)])
    y = np.stack([series[i + window:i + window + horizon, 0] for i in range(n)])
    spec = Spec("tiny", "none", "none", ("a", "b"), ("u", "v"), "a", 60.0, None)
    ds = DataSet(spec=spec, window=window, horizon=horizon, mean=series.mean(0), std=series.std(0), target_index=0)
    cut = [0, 200, 240, n]
    for name, a, b in zip(("train", "val", "test"), cut[:-1], cut[1:]):
        ds.splits[name] = Windows(x=x[a:b], y=y[a:b], start=np.arange(a, b))
    return ds


def trained(config="W8A8"):
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=3, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    qm, _ = train.qat(fm, ds, bits_config(config, exporting.export_shape_of(shape)), sched, seed=3)
    return ds, qm


def test_integer_model_is_what_was_trained(tmp_path):
    for config in ("W8A8", "W4A4"):
        ds, qm = trained(config)
        info = exporting.write_all(qm, ds, tmp_path, config, {"test": "yes"}, {})
        ag = exporting.agreement(qm, ds, tmp_path / f"{config}.safetensors")
        assert ag["within_1lsb"] >= 0.95, ag
        m = reference.load_model(tmp_path / f"{config}.safetensors")
        assert m.meta["provenance"]["test"] == "yes"
        assert info["integer"]["windows"] == 60


def test_same_seed_same_bytes():
    a = exporting.model_bytes(trained()[1], tiny_dataset(), {})
    b = exporting.model_bytes(trained()[1], tiny_dataset(), {})
    assert a == b


def test_onnx_is_the_float_network():
    ds, qm = trained()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(exporting.onnx_bytes(qm), so)
    x = ds.normalize_x(ds.splits["test"].x[:5]).astype(np.float32)
    got = sess.run(None, {"window": x})[0]
    qm.set_mode("float")
    with torch.no_grad():
        want = qm(torch.tensor(x)).numpy()
    assert np.allclose(got, want, atol=1e-5)


def skip_bits(config, shape):
    import dataclasses
    return bits_config(config, dataclasses.replace(exporting.export_shape_of(shape), skip=True))


def test_skip_path_starts_at_ridge_and_exports_as_v2(tmp_path):
    """Contract v2: the skip path starts as the ridge solution with the head refitted to its residual
    (so the start is no worse than ridge on train), and the trained model exports as version 2 with
    its integer outputs what fake quantization predicted."""
    import copy
    from tools.train import baselines
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=3, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    start = copy.deepcopy(fm)
    start.fold_norms()
    train.init_skip(start, ds)
    x, y = train.tensors(ds, "train")
    w, b, _ = baselines.ridge_solution(ds)
    ridge_mse = float(np.mean((x.numpy().reshape(len(x), -1) @ w.T + b - y.numpy()) ** 2))
    assert train.mse(start, x, y) <= ridge_mse * (1 + 1e-4)
    for config in ("W8A8", "W4A8"):
        qm, _ = train.qat(fm, ds, skip_bits(config, shape), sched, seed=3)
        exporting.write_all(qm, ds, tmp_path, config, {}, {})
        m = reference.load_model(tmp_path / f"{config}.safetensors")
        assert m.meta["version"] == 2 and m.tensors["skip.weight"].shape == (1, 16)
        assert exporting.agreement(qm, ds, tmp_path / f"{config}.safetensors")["within_1lsb"] >= 0.95
