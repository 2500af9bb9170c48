"""The test-window CSV reads back to the exact float64 windows and targets."""
import numpy as np

from tools.train import data, export_windows


def test_csv_round_trips_exactly(tmp_path):
    ds = data.load("nox")
    n = export_windows.write_csv(tmp_path / "w.csv", ds, "test", tmp_path / "y.csv")
    x = np.loadtxt(tmp_path / "w.csv", delimiter=",", skiprows=1)
    y = np.loadtxt(tmp_path / "y.csv", delimiter=",", skiprows=1, ndmin=2)
    assert n == len(ds.splits["test"].x) == len(x) == len(y)
    assert np.array_equal(x, ds.splits["test"].x.reshape(n, -1))   # time-major, features interleaved
    assert np.array_equal(y, ds.splits["test"].y)
    head = (tmp_path / "w.csv").read_text().splitlines()[0].split(",")
    assert head[:4] == ["LNOx@0", "LNOxEm@0", "sqrtWS@0", "LNOx@1"]
