"""Staged QAT (sweep --staged CHILD=PARENT, sweep.STAGED_FROM): the child's QAT starts from the
parent's trained QAT weights and observer ranges, with the child's widths."""
import json

import pytest
import torch

from tools.aiot.export import bits_config
from tools.train import data, exporting, sweep, train
from tools.train.model import Shape
from tools.train.tests.test_export import tiny_dataset


def _parent(config="W8A8"):
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=2, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    pm, _ = train.qat(fm, ds, bits_config(config, exporting.export_shape_of(shape)), sched, seed=3)
    return ds, shape, sched, fm, pm


def test_qat_from_starts_at_the_parents_weights_and_ranges(monkeypatch):
    ds, shape, sched, _, parent = _parent()
    seen = {}
    real_fit = train._fit

    def spy(model, *a, **k):
        seen["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        seen["ranges"] = model.act_ranges()
        seen["bits"] = dict(model.bits)
        return real_fit(model, *a, **k)

    monkeypatch.setattr(train, "_fit", spy)
    bits = bits_config("W4A8", exporting.export_shape_of(shape))
    child, fit = train.qat_from(parent, ds, bits, sched, seed=3)
    for n, p in parent.named_parameters():
        assert torch.equal(seen["params"][n], p.detach()), n
    assert seen["ranges"] == parent.act_ranges()
    assert seen["bits"] == bits and child.bits == bits
    assert parent.bits["layers.0.q.weight"] == 8 and child.bits["layers.0.q.weight"] == 4
    assert fit.epochs_run >= 1


def test_qat_from_refuses_another_architecture():
    ds, shape, sched, _, parent = _parent()
    bits = dict(bits_config("W4A8", exporting.export_shape_of(shape)))
    bits.update({"skip": 16, "skip.weight": 8, "head": 16})
    with pytest.raises(ValueError, match="architecture"):
        train.qat_from(parent, ds, bits, sched, seed=3)


def test_parents_first_and_recipe_under_explicit():
    cfgs = [("W4A8S", "W4A8", {}), ("W6A8", "W6A8", {}), ("W8A8S", "W8A8", {})]
    order = [c[0] for c in sweep.staged_order(cfgs, {"W4A8S": "W8A8S"})]
    assert order == ["W6A8", "W8A8S", "W4A8S"]
    with pytest.raises(SystemExit):
        sweep.staged_order(cfgs, {"W4A8S": "W8A8S", "W8A8S": "W4A8S"})
    assert sweep.parse_staged("W4A8S=W8A8S") == ("W4A8S", "W8A8S")
    sweep.STAGED_FROM[("x", 1)] = {"A": "B", "C": "D"}
    try:
        assert sweep.staged_parents("x", 1, True, {"A": "E"}) == {"A": "E", "C": "D"}
        assert sweep.staged_parents("x", 1, False, {"A": "E"}) == {"A": "E"}
        assert sweep.staged_parents("x", 2, True, None) == {}
    finally:
        del sweep.STAGED_FROM[("x", 1)]


def test_sweep_staged_option_loads_the_parents_weights(tmp_path, monkeypatch):
    """run_dataset with --staged W4A8=W8A8 hands qat_from the W8A8 model it trained (in the same run);
    with --add and W8A8 already in the folder, the folder's W8A8.safetensors read back (the same
    quantized weights and grids: the same forecasts), without retraining the float model."""
    import copy
    monkeypatch.setattr(data, "load", lambda spec, window=24, horizon=1: tiny_dataset(n=300, window=window))
    got = []
    real = train.qat_from

    def spy(parent, ds, bits, sched, seed):
        got.append((copy.deepcopy(parent), bits))
        return real(parent, ds, bits, sched, seed)

    monkeypatch.setattr(train, "qat_from", spy)
    floats = []
    real_float = train.pretrain_float
    monkeypatch.setattr(train, "pretrain_float", lambda *a, **k: floats.append(1) or real_float(*a, **k))
    sched = dict(float_epochs=2, qat_epochs=2, batch=64)
    spec = tiny_dataset().spec
    s = sweep.run_dataset(spec, str(tmp_path), [("W8A8", "W8A8", {}), ("W4A8", "W4A8", {})], sched, 0, 1, 1, 1,
                          "test", staged={"W4A8": "W8A8"})
    assert len(got) == 1 and got[0][0].bits["layers.0.q.weight"] == 8 and got[0][1]["layers.0.q.weight"] == 4
    assert s["configs"]["W4A8"]["qat"]["from_config"] == "W8A8"
    assert "from_config" not in s["configs"]["W8A8"]["qat"]
    assert len(floats) == 1
    # QAT rounds: 1 from the float model, the staged child its parent's + 1
    assert (s["configs"]["W8A8"]["qat"]["rounds"], s["configs"]["W4A8"]["qat"]["rounds"]) == (1, 2)
    # --add: W8A8 is not retrained; the parent is the folder's file, and no float model is trained
    s2 = sweep.run_dataset(spec, str(tmp_path), [("W4A8", "W4A8", {})], sched, 0, 1, 1, 1, "test", add=True,
                           staged={"W4A8": "W8A8"})
    assert len(got) == 2 and len(floats) == 1
    ds = tiny_dataset(window=24)
    x, _ = train.tensors(ds, "val")
    a, b = train.predict(got[0][0], x), train.predict(got[1][0], x)
    assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())
    for n, w in got[1][0].named_parameters():
        if n.endswith(".weight"):   # the file's grid: the in-run parent's fake-quantized weights
            from tools.train.fakequant import fake_quant_weight
            want, _ = fake_quant_weight(dict(got[0][0].named_parameters())[n], got[0][0].bits[n])
            assert torch.allclose(w, want, atol=1e-6), n
    assert s2["configs"]["W4A8"]["qat"]["from_config"] == "W8A8"
    assert s2["configs"]["W4A8"]["qat"]["rounds"] == 2   # the folder's parent file: its recorded rounds + 1
    meta = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert meta["configs"]["W4A8"]["qat"]["from_config"] == "W8A8"
    assert meta["float"] == s["float"]


def test_recipe_weight_clip_is_per_configuration(tmp_path, monkeypatch):
    """sweep.WEIGHT_CLIP turns weight clipping on for the listed (data set, horizon, configuration)
    only, records it in the configuration's summary, and --no-staged (staged_recipe=False) turns it
    off with the staging it was chosen with."""
    monkeypatch.setattr(data, "load", lambda spec, window=24, horizon=1: tiny_dataset(n=300, window=window))
    monkeypatch.setattr(sweep, "WEIGHT_CLIP", {("tiny", 1, "W4A8")})
    clips = {}
    real = train.qat

    def spy(fm, ds, bits, sched, seed):
        clips[bits["layers.0.q.weight"]] = sched.weight_clip
        return real(fm, ds, bits, sched, seed)

    monkeypatch.setattr(train, "qat", spy)
    sched = dict(float_epochs=2, qat_epochs=2, batch=64)
    spec = tiny_dataset().spec
    cfgs = [("W8A8", "W8A8", {}), ("W4A8", "W4A8", {})]
    s = sweep.run_dataset(spec, str(tmp_path / "a"), cfgs, sched, 0, 1, 1, 1, "test")
    assert clips == {8: False, 4: True}
    assert s["configs"]["W4A8"]["qat"]["weight_clip"] is True
    assert s["configs"]["W8A8"]["qat"]["weight_clip"] is False
    clips.clear()
    s = sweep.run_dataset(spec, str(tmp_path / "b"), cfgs, sched, 0, 1, 1, 1, "test", staged_recipe=False)
    assert clips == {8: False, 4: False}
