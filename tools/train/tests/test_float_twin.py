"""Float twins (train.float_twin, sweep.float_twins): the float model fine-tuned like QAT without
quantization, the reference a configuration's quantization cost is read against."""
import pytest
import torch

from tools.aiot.export import bits_config
from tools.train import exporting, report, sweep, train
from tools.train.model import Shape
from tools.train.tests.test_export import tiny_dataset


def _start_of_fit(monkeypatch, run):
    """Runs `run()` with train._fit spied on: the model's parameters, the generator's state and the
    modes at the start of the fine-tuning."""
    seen = {}
    real_fit = train._fit

    def spy(model, tr, val, epochs, lr, patience, batch, gen, train_mode, eval_mode, *a, **k):
        seen.update(params={n: p.detach().clone() for n, p in model.named_parameters()},
                    gen=gen.get_state().clone(), modes=(train_mode, eval_mode), epochs=epochs, lr=lr,
                    quant_weights=set(getattr(model, "bits", {}) or {}))
        return real_fit(model, tr, val, epochs, lr, patience, batch, gen, train_mode, eval_mode, *a, **k)

    monkeypatch.setattr(train, "_fit", spy)
    out = run()
    monkeypatch.setattr(train, "_fit", real_fit)
    return seen, out


@pytest.mark.parametrize("config,skip", [("W8A8", False), ("W8A8S", True)])
def test_the_twin_starts_where_qat_starts_and_trains_in_float(monkeypatch, config, skip):
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=2, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    bits = sweep.config_bits(config, "W8A8", {"skip": 16} if skip else {},
                             Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1))
    q, _ = _start_of_fit(monkeypatch, lambda: train.qat(fm, ds, bits, sched, seed=5))
    t, (twin, fit) = _start_of_fit(monkeypatch, lambda: train.float_twin(fm, ds, sched, seed=5, skip=skip))
    # the same start: every parameter (norms folded, the skip path at the ridge solution), the same
    # generator state (the calibration shuffle drawn), the same schedule
    assert set(q["params"]) == set(t["params"])
    for n in q["params"]:
        assert torch.equal(q["params"][n], t["params"][n]), n
    assert torch.equal(q["gen"], t["gen"])
    assert (q["epochs"], q["lr"]) == (t["epochs"], t["lr"]) == (sched.qat_epochs, sched.qat_lr)
    # and then float, not QAT: no observers, no fake quantization
    assert q["modes"] == ("qat", "frozen") and t["modes"] == ("float", "float")
    assert not twin.obs and not twin.quant and (twin.skip is not None) == skip
    assert fit.val_mse == pytest.approx(train.mse(twin, *train.tensors(ds, "val")))
    # the float model itself is left as it was (a copy is trained)
    assert all(n.bn is not None for layer in fm.layers for n in (layer.norm1, layer.norm2))


def test_checks_read_each_architecture_against_its_own_twin():
    def cfg(it):
        return {"fake_quant": {"mse": it}, "integer": {"mse": it}}
    s = {"baselines": {"ridge": {"mse": 0.02}}, "float": {"test": {"mse": 0.010}},
         "float_twins": {"v1": {"test": {"mse": 0.008}}, "S": {"test": {"mse": 0.005}}},
         "configs": {"W8A8": cfg(0.0102), "W8A8S": cfg(0.0060), "W8A8IO16S": cfg(0.0052)}}
    res = {text.split(" (")[0]: (ok, val) for text, ok, val in report.checks(s)}
    # v1: against the pretrained float model (+2%) and against its twin (+27.5%)
    assert res["W8A8 integer test MSE within 5% of the float model"] == (True, "+2.0%")
    assert res["W8A8 integer test MSE within 5% of its float twin"] == (False, "+27.5%")
    # S: only against the skip-path twin (the pretrained float model has no skip path)
    assert "W8A8S integer test MSE within 5% of the float model" not in res
    assert res["W8A8S integer test MSE within 5% of its float twin S"] == (False, "+20.0%")
    assert res["W8A8IO16S integer test MSE within 5% of its float twin S"] == (True, "+4.0%")
    # older summaries without twins: no twin check, the float model's as before
    s.pop("float_twins")
    res = {text.split(" (")[0] for text, _, _ in report.checks(s)}
    assert not any("twin" in r for r in res) and "W8A8 integer test MSE within 5% of the float model" in res
    assert "W8A8S integer test MSE within 5% of the float model" not in res


def test_twins_are_rendered_and_merged_from_the_parts():
    fl = {"seed": 0, "val_mse": 0.5}
    p1 = dict(dataset="d", float=fl, configs={"W8A8": 1}, output_floor={}, output_floor_reference="W8A8",
              seconds=1.0, float_twins={"v1": {"test": {"mse": 0.1}}})
    p2 = dict(dataset="d", float=dict(fl), configs={"W8A8S": 2}, output_floor={}, output_floor_reference=None,
              seconds=1.0, float_twins={"S": {"test": {"mse": 0.2}}})
    m = sweep.merge_parts([p1, p2], [("W8A8", "W8A8", {}), ("W8A8S", "W8A8", {"skip": 16})])
    assert m["float_twins"] == {"v1": {"test": {"mse": 0.1}}, "S": {"test": {"mse": 0.2}}}
    assert sweep.twin_archs([("W8A8", "W8A8", {}), ("W4A8", "W4A8", {})]) == ["v1"]
    assert sweep.twin_archs([("W8A8S", "W8A8", {"skip": 16})]) == ["S"]
    assert sweep.twin_archs([]) == []
    s = {"baselines": {"ridge": {"mse": 0.3}}, "float": {"test": {"mse": 0.15}}, "configs": {},
         "float_twins": m["float_twins"]}
    lines = report.verdict_lines(s)
    assert any(x.startswith("- **float twin (") and "0.10000" in x for x in lines)
    assert any(x.startswith("- **float twin S (") and "0.20000" in x for x in lines)


def test_the_twin_is_its_start_when_fine_tuning_does_not_improve_validation():
    """A fine-tuning that only makes validation worse (here: a learning rate that diverges, so no
    epoch is finite; on this noise series any rate does) leaves the start as the twin, best epoch 0:
    for v1 the pretrained float model's own forecasts."""
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=2, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    x, y = train.tensors(ds, "val")
    want = train.predict(fm, x)
    bad = train.Schedule(float_epochs=2, qat_epochs=2, batch=32, qat_lr=1e4)
    twin, fit = train.float_twin(fm, ds, bad, seed=5, skip=False)
    assert fit.best_epoch == 0 and fit.epochs_run == 2
    assert torch.allclose(train.predict(twin, x), want, atol=1e-5)
    assert fit.val_mse == pytest.approx(train.mse(fm, x, y), rel=1e-5)


def test_a_fit_that_never_reaches_a_finite_validation_mse_says_so(monkeypatch):
    """Every epoch's validation MSE NaN: a clear error (it was a TypeError from load_state_dict(None));
    the twin falls back to its start instead."""
    ds = tiny_dataset()
    shape = Shape(window=8, features=2, d_model=8, heads=2, layers=1, horizon=1)
    sched = train.Schedule(float_epochs=2, qat_epochs=2, batch=32)
    fm, _ = train.pretrain_float(ds, shape, sched, seed=3)
    start = train.mse(fm, *train.tensors(ds, "val"))
    real = train.mse
    finite = [0]   # how many more calls get the real value

    def nan_mse(model, x, y):
        finite[0] -= 1
        return real(model, x, y) if finite[0] >= 0 else float("nan")
    monkeypatch.setattr(train, "mse", nan_mse)
    with pytest.raises(train.Diverged, match="lower the learning rate"):
        train.pretrain_float(ds, shape, sched, seed=3)
    finite[0] = 1
    twin, fit = train.float_twin(fm, ds, sched, seed=5, skip=False)   # the first call is the start's
    assert fit.best_epoch == 0 and fit.val_mse == pytest.approx(start, rel=1e-5)


def test_an_addition_without_configurations_adds_the_folders_twins(tmp_path, monkeypatch):
    """run_dataset trains the twins of its configurations' architectures; `--add --configs` with none
    computes the missing ones for the architectures already in the folder, and keeps the others."""
    import json
    from tools.train import data
    monkeypatch.setattr(data, "load", lambda spec, window=24, horizon=1: tiny_dataset(n=300, window=window))
    sched = dict(float_epochs=2, qat_epochs=2, batch=64)
    spec = tiny_dataset().spec
    s = sweep.run_dataset(spec, str(tmp_path), [("W8A8", "W8A8", {})], sched, 0, 1, 1, 1, "test")
    assert list(s["float_twins"]) == ["v1"]
    s = sweep.run_dataset(spec, str(tmp_path), [("W8A8S", "W8A8", {"skip": 16})], sched, 0, 1, 1, 1, "test",
                          add=True)
    assert sorted(s["float_twins"]) == ["S", "v1"]
    path = tmp_path / "tiny" / "summary.json"
    meta = json.loads(path.read_text())
    kept = meta["float_twins"]["v1"]
    del meta["float_twins"]["S"]
    path.write_text(json.dumps(meta))
    calls = []
    real = train.float_twin
    monkeypatch.setattr(train, "float_twin", lambda *a, **k: calls.append(k["skip"]) or real(*a, **k))
    s = sweep.run_dataset(spec, str(tmp_path), [], sched, 0, 1, 1, 1, "test", add=True)
    assert calls == [True] and s["float_twins"]["v1"] == kept and "S" in s["float_twins"]
    assert json.loads(path.read_text())["float_twins"]["S"] == s["float_twins"]["S"]
