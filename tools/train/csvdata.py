"""A user's own sensor series from a CSV file, as a data set like the bundled ones.

The time column is unix seconds or ISO-8601 (naive times are taken as UTC). The sampling period is
the median step unless given. A row whose step is not one period, and any row with an empty or NaN
cell in a used column, starts a new segment (the bad row itself is dropped), so no window crosses a
gap -- the same rule as the NOx day gaps. Every error names the column and the CSV line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_TRAIN_WINDOWS = 64  # fewer than this and the fit is noise; the error says how to get more


class CSVDataError(ValueError):
    """Bad user CSV input; the message names the file, column and line and says what to do."""


@dataclass(frozen=True)
class CSVSource:
    path: str
    time_column: str
    period_s: float | None = None   # None: the median step


def _line(i: int) -> int:
    return i + 2  # 0-based data row -> 1-based file line after the header


def parse_units(text: str | None) -> dict[str, str]:
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise CSVDataError(f"--units {text!r}: {part!r} is not COL=unit")
        out[k.strip()] = v.strip()
    return out


def default_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem) or "csv"


def read_frame(path: str):
    import pandas as pd
    p = Path(path)
    if not p.is_file():
        raise CSVDataError(f"{path}: no such file")
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as e:  # pandas raises several types for malformed files
        raise CSVDataError(f"{path}: cannot read as CSV with a header row: {e}") from e


def _need(frame, path: str, col: str, what: str) -> None:
    if col not in frame.columns:
        raise CSVDataError(f"{path}: {what} column {col!r} not found; columns are {list(frame.columns)}")


def numeric_column(frame, path: str, col: str) -> np.ndarray:
    """Float values; empty/NaN/NA cells become NaN (gaps); anything else non-numeric is an error."""
    raw = frame[col].str.strip()
    out = np.full(len(raw), np.nan)
    missing = raw.str.lower().isin(["", "nan", "na", "n/a", "null", "none"]).to_numpy()
    for i, s in enumerate(raw.to_numpy()):
        if missing[i]:
            continue
        try:
            v = float(s)
        except ValueError:
            raise CSVDataError(f"{path}: column {col!r}, line {_line(i)}: {s!r} is not a number "
                               "(leave the cell empty to mark a missing reading)") from None
        if not np.isfinite(v):
            raise CSVDataError(f"{path}: column {col!r}, line {_line(i)}: {s!r} is not finite")
        out[i] = v
    return out


def time_seconds(frame, path: str, col: str) -> np.ndarray:
    import pandas as pd
    raw = frame[col].str.strip()
    empty = (raw == "").to_numpy()
    if empty.any():
        raise CSVDataError(f"{path}: column {col!r}, line {_line(int(np.argmax(empty)))}: empty timestamp")
    num = pd.to_numeric(raw, errors="coerce")
    if not np.isnan(num.iloc[0]):  # the first row decides: unix seconds, else ISO-8601
        bad = num.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise CSVDataError(f"{path}: column {col!r}, line {_line(i)}: {raw.iloc[i]!r} is not unix seconds "
                               f"like the first row ({raw.iloc[0]!r})")
        return num.to_numpy(dtype=np.float64)
    t = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    bad = t.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise CSVDataError(f"{path}: column {col!r}, line {_line(i)}: {raw.iloc[i]!r} is neither unix "
                           "seconds nor an ISO-8601 time")
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def check_increasing(t: np.ndarray, path: str, col: str) -> None:
    d = np.diff(t)
    bad = np.flatnonzero(d <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        kind = "duplicate" if d[bad[0]] == 0 else "earlier than the one before"
        raise CSVDataError(f"{path}: column {col!r}, line {_line(i)}: timestamp is {kind} (line {_line(i - 1)}); "
                           "sort the file by time and remove duplicate rows")


def load_columns(src: CSVSource, features: tuple[str, ...]):
    """(values [rows, F] with NaN for gaps, segment id per row, period) for the kept rows."""
    frame = read_frame(src.path)
    _need(frame, src.path, src.time_column, "time")
    for f in features:
        _need(frame, src.path, f, "feature")
    if len(frame) < 2:
        raise CSVDataError(f"{src.path}: {len(frame)} data rows; need a series")
    t = time_seconds(frame, src.path, src.time_column)
    check_increasing(t, src.path, src.time_column)
    period = src.period_s if src.period_s is not None else float(np.median(np.diff(t)))
    if not period > 0:
        raise CSVDataError(f"{src.path}: sampling period {period} s must be positive")
    values = np.stack([numeric_column(frame, src.path, f) for f in features], axis=1)
    ok = np.all(np.isfinite(values), axis=1)
    steps = np.rint(np.diff(t) / period)
    brk = np.concatenate([[False], (steps != 1) | ~ok[:-1]])
    seg = np.cumsum(brk)[ok]
    _, seg = np.unique(seg, return_inverse=True)
    return values[ok], seg.astype(np.int64), period, int(len(frame))
