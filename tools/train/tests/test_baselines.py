"""Baselines on synthetic series whose best forecast is known."""
import numpy as np
import pytest

from tools.train import baselines, data


def _ds(values, period_s, window=6, horizon=1, time_index=None):
    spec = data.Spec(key="t", package="x", item="x", features=("y",), units=("1",), target="y",
                     sampling_period_s=period_s, time_column=None)
    seg = data.segment_ids(time_index) if time_index is not None else np.zeros(len(values), dtype=np.int64)
    return data._build(spec, np.asarray(values, dtype=np.float64)[:, None], seg, window, horizon)


def test_seasonal_naive_is_exact_on_a_periodic_series():
    # period 8 steps (3 h at 1350 s... use 10800 s -> 8 steps a day), window shorter than the period
    t = np.arange(800)
    y = np.sin(2 * np.pi * t / 8) + 0.1 * (t % 8 == 3)
    ds = _ds(y, 10800.0, window=4, horizon=3)
    assert ds.season_steps == 8
    pred, fb = baselines.seasonal_naive(ds)
    assert fb == 0
    np.testing.assert_allclose(pred, ds.normalize_y(ds.splits["test"].y), atol=1e-12)
    # persistence is not exact on the same series, so the comparison can fail
    assert np.mean((baselines.persistence(ds) - ds.normalize_y(ds.splits["test"].y)) ** 2) > 1e-3


def test_seasonal_naive_falls_back_across_a_gap():
    t = np.concatenate([np.arange(100), np.arange(200, 400)])
    y = np.cos(t / 3.0)
    ds = _ds(y, 3600.0, window=4, horizon=1, time_index=t)
    _, fb = baselines.seasonal_naive(ds, "train")
    assert fb > 0  # windows near a segment start have no value a day earlier in their segment


@pytest.mark.parametrize("kind", ["ridge", "nlinear", "dlinear"])
def test_linear_baselines_learn_an_ar_process(kind):
    rng = np.random.default_rng(7)
    print("seed 7")
    y = np.zeros(3000)
    for i in range(2, len(y)):
        y[i] = -0.5 * y[i - 1] + 0.2 * y[i - 2] + 0.1 * rng.standard_normal()  # persistence is poor here
    ds = _ds(y, 60.0, window=8)
    pred, lam = baselines.linear_model(ds, kind)
    mse = np.mean((pred - ds.normalize_y(ds.splits["test"].y)) ** 2)
    pers = np.mean((baselines.persistence(ds) - ds.normalize_y(ds.splits["test"].y)) ** 2)
    assert lam in baselines.RIDGE_GRID
    assert mse < 0.8 * pers


def test_all_baselines_report_per_step_errors_for_multi_step_horizons():
    t = np.arange(600)
    ds = _ds(np.sin(t / 5.0), 1800.0, window=6, horizon=4)
    b = baselines.all_baselines(ds)
    assert set(b) == set(baselines.BASELINES)
    for v in b.values():
        assert len(v["mse_per_step"]) == 4
    v = baselines.verdict(0.5 * b["ridge"]["mse"], b, [0.0] * 4)
    assert v["beats_all"] and v["steps_beating_seasonal"] == 4
