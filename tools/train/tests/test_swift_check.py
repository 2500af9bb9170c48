"""swift_check --calibration's hand-written statistics against numpy's (what calibrate.py uses)."""
import numpy as np

from tools.train.swift_check import quantile


def test_linear_quantile_matches_numpy():
    seed = 1207
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 10, 1728):
        a = np.abs(rng.normal(size=n))
        for q in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            got, want = quantile(list(a), q), float(np.quantile(a, q))
            assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), f"seed {seed}, n {n}, q {q}: {got} vs {want}"


def test_quantile_is_not_the_nearest_rank():
    # 0.99 of 0..100 interpolates between ranks; a nearest-rank version would give an integer
    assert quantile([float(v) for v in range(101)], 0.995) == 99.5
