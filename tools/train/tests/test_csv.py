"""Own-data path: a synthetic CSV through the quick sweep end to end, and the input errors."""
import json

import numpy as np
import pytest

from tools.aiot import modelfile, reference, vectors
from tools.train import csvdata, data, sweep

STEP = 60.0


def write_series(path, n=3000, gap=(1000, 1010), nan_row=2000, iso=False):
    """Noisy 96-step sinusoid plus a slow covariate; rows gap[0]:gap[1] removed; one empty cell."""
    rng = np.random.default_rng(0)
    k = np.delete(np.arange(n), np.arange(*gap)) if gap else np.arange(n)
    temp = 20 + 5 * np.sin(2 * np.pi * k / 1440) + rng.normal(0, 0.2, len(k))
    load = 10 * np.sin(2 * np.pi * k / 96) + 0.5 * temp + rng.normal(0, 0.3, len(k))
    t0 = 1_700_000_000
    lines = ["time,load,temp"]
    for i, (ki, y, c) in enumerate(zip(k, load, temp)):
        t = t0 + int(ki * STEP)
        ts = np.datetime_as_string(np.datetime64(t, "s")) + "Z" if iso else str(t)
        lines.append(f"{ts},{'' if i == nan_row else f'{y:.4f}'},{c:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_quick_sweep_on_own_csv_end_to_end(tmp_path):
    csv = write_series(tmp_path / "sensor.csv")
    out = tmp_path / "out"
    rc = sweep.main(["--csv", str(csv), "--time-column", "time", "--target", "load", "--name", "plant",
                     "--units", "load=kW,temp=degC", "--quick", "--out", str(out), "--configs", "W8A8", "W4A8"])
    assert rc == 0
    d = out / "plant"
    for cfg in ("W8A8", "W4A8"):
        for ext in (".safetensors", ".onnx", ".vectors.txt", ".metrics.json"):
            assert (d / f"{cfg}{ext}").is_file(), f"{cfg}{ext} missing"
        m = modelfile.load_model(d / f"{cfg}.safetensors")
        assert m.shape.features == 2 and m.shape.horizon == 1
        meta = m.meta
        assert [f["name"] for f in meta["features"]] == ["load", "temp"]
        assert [f["unit"] for f in meta["features"]] == ["kW", "degC"]
        assert meta["target"]["name"] == "load"
        assert float(meta["sampling_period_s"]) == STEP
        q_in, q_out = vectors.read_vectors(d / f"{cfg}.vectors.txt")
        assert len(q_in) > 0
        got = reference.forward_batch(reference.load_model(d / f"{cfg}.safetensors"), np.asarray(q_in))
        assert np.array_equal(np.asarray(got), np.asarray(q_out))
    s = json.loads((d / "summary.json").read_text())
    assert s["gaps"] == 2  # the 10 missing rows and the empty cell
    assert s["rows"] == 2990 and s["sampling_period_s"] == STEP
    # own data never touches the bundled results or models README
    assert not (out / "README.md").exists() and (d / "results.md").is_file()


def windows_cross_no_gap(ds, t_rows):
    for w in ds.splits.values():
        for st in w.start:
            assert np.all(np.diff(t_rows[st:st + ds.window + ds.horizon]) == STEP)


def test_iso_time_gaps_and_split(tmp_path):
    csv = write_series(tmp_path / "s.csv", iso=True)
    ds = data.load(data.csv_spec(str(csv), "time", "load"), window=24, horizon=1)
    assert ds.spec.sampling_period_s == STEP and ds.gaps == 2
    assert ds.spec.features == ("load", "temp")
    # rebuild the kept rows' times to check no window spans a gap
    ref = data.load(data.csv_spec(str(write_series(tmp_path / "u.csv")), "time", "load"), 24, 1)
    for a, b in zip(ds.splits.values(), ref.splits.values()):
        assert np.array_equal(a.x, b.x) and np.array_equal(a.start, b.start)
    k = np.delete(np.arange(3000), np.arange(1000, 1010))
    t_kept = np.delete(k * STEP, 2000)  # the empty cell is on data row 2000 (after the gap); dropped
    windows_cross_no_gap(ds, t_kept)
    # chronological split of the kept rows: train windows end inside the first 70%, test starts at 80%
    n = len(t_kept)
    assert np.all(ds.splits["train"].start + 25 <= int(round(n * 0.7)))
    assert np.all(ds.splits["test"].start >= int(round(n * 0.8)))
    # normalization fitted on the train rows only (first 70% of the kept rows)
    import pandas as pd
    kept = pd.read_csv(csv)[["load", "temp"]].dropna().to_numpy()
    assert len(kept) == n
    train = kept[:int(round(n * 0.7))]
    assert np.allclose(ds.mean, train.mean(axis=0)) and np.allclose(ds.std, train.std(axis=0))
    assert not np.allclose(ds.mean, kept.mean(axis=0))


def run(args):
    with pytest.raises(SystemExit) as e:
        sweep.main(args)
    return str(e.value)


def test_errors_name_column_and_line(tmp_path):
    csv = write_series(tmp_path / "s.csv")
    base = ["--csv", str(csv), "--time-column", "time", "--quick", "--out", str(tmp_path / "o")]
    assert "feature column 'nope' not found" in run(base + ["--target", "nope"])
    assert "time column 'when' not found" in run(["--csv", str(csv), "--time-column", "when", "--target", "load"])

    lines = csv.read_text().splitlines()
    bad = lines.copy()
    bad[5] = bad[5].split(",")[0] + ",abc," + bad[5].split(",")[2]
    (tmp_path / "b.csv").write_text("\n".join(bad) + "\n")
    msg = run(["--csv", str(tmp_path / "b.csv"), "--time-column", "time", "--target", "load"])
    assert "column 'load', line 6: 'abc' is not a number" in msg

    dup = lines[:10] + [lines[9]] + lines[10:]
    (tmp_path / "d.csv").write_text("\n".join(dup) + "\n")
    msg = run(["--csv", str(tmp_path / "d.csv"), "--time-column", "time", "--target", "load"])
    assert "line 11: timestamp is duplicate" in msg

    uns = lines[:10] + [lines[11], lines[10]] + lines[12:]
    (tmp_path / "u.csv").write_text("\n".join(uns) + "\n")
    msg = run(["--csv", str(tmp_path / "u.csv"), "--time-column", "time", "--target", "load"])
    assert "line 12: timestamp is earlier than the one before" in msg

    short = write_series(tmp_path / "short.csv", n=200, gap=None, nan_row=-1)
    msg = run(["--csv", str(short), "--time-column", "time", "--target", "load"])
    assert "too few windows" in msg

    badt = lines.copy()
    badt[3] = "yesterday," + badt[3].split(",", 1)[1]
    (tmp_path / "t.csv").write_text("\n".join(badt) + "\n")
    msg = run(["--csv", str(tmp_path / "t.csv"), "--time-column", "time", "--target", "load"])
    assert "column 'time', line 4: 'yesterday' is not unix seconds" in msg
    isot = write_series(tmp_path / "iso.csv", iso=True).read_text().splitlines()
    isot[7] = "not-a-time," + isot[7].split(",", 1)[1]
    (tmp_path / "i.csv").write_text("\n".join(isot) + "\n")
    msg = run(["--csv", str(tmp_path / "i.csv"), "--time-column", "time", "--target", "load"])
    assert "column 'time', line 8: 'not-a-time' is neither unix seconds nor an ISO-8601 time" in msg

    with pytest.raises(csvdata.CSVDataError, match="not COL=unit"):
        csvdata.parse_units("load")


def test_own_data_options_need_csv(capsys):
    with pytest.raises(SystemExit):
        sweep.main(["--target", "load"])
    assert "need --csv" in capsys.readouterr().err
