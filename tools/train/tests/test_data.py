"""Windows, gaps and splits."""
import numpy as np

from tools.train import data


def test_segment_ids_break_at_every_jump():
    t = np.array([5, 6, 7, 9, 10, 20, 21, 22])
    assert data.segment_ids(t).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_windows_stay_inside_blocks():
    vals = np.arange(20, dtype=np.float64)[:, None]
    block = np.array([0] * 8 + [1] * 12)
    x, y, starts = data.make_windows(vals, vals[:, 0], block, window=3, horizon=2)
    # block 0 has 8 rows -> 4 windows of span 5; block 1 has 12 rows -> 8 windows
    assert len(x) == 12
    for xi, yi in zip(x, y):
        seq = np.concatenate([xi[:, 0], yi])
        assert np.all(np.diff(seq) == 1)                 # contiguous
        assert block[int(seq[0])] == block[int(seq[-1])]  # one block
    assert y[0].tolist() == [3.0, 4.0]


def test_split_is_chronological_70_10_20():
    ids = data.split_ids(100)
    assert (ids == 0).sum() == 70 and (ids == 1).sum() == 10 and (ids == 2).sum() == 20
    assert np.all(np.diff(ids) >= 0)


def test_nox_windows_never_cross_a_gap_and_norm_is_train_only():
    ds = data.load("nox", window=24, horizon=1)
    frame = data.load_frame(ds.spec)
    t = frame["rownames"].to_numpy()
    assert ds.gaps == 18
    for w in ds.splits.values():
        span = t[w.start + 24] - t[w.start]   # first input row to target row
        assert np.all(span == 24)
    train_rows = frame[list(ds.spec.features)].to_numpy()[: int(round(0.7 * len(frame)))]
    assert np.allclose(ds.mean, train_rows.mean(axis=0))
    # test windows come after validation windows, which come after training windows
    assert ds.splits["train"].start.max() < ds.splits["val"].start.min()
    assert ds.splits["val"].start.max() < ds.splits["test"].start.min()


def test_elecdemand_sizes():
    ds = data.load("elecdemand")
    assert {k: len(v.x) for k, v in ds.splits.items()} == {"train": 12240, "val": 1728, "test": 3480}
    assert ds.spec.sampling_period_s == 1800.0


def test_keywest_gaps_come_from_the_date_time_column():
    ds = data.load("keywest", window=24, horizon=24)
    assert ds.gaps == 43 and ds.season_steps == 24
    for split in ds.splits.values():
        rows = split.start[:, None] + np.arange(48)[None, :]
        assert np.all(ds.segment[rows] == ds.segment[split.start][:, None])  # no window crosses a gap
        np.testing.assert_array_equal(ds.series[split.start + 24], split.y[:, 0])
