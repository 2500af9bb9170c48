"""tools/replay.py and its stdlib MQTT client against a real mosquitto on a free loopback port."""
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from aiot.mqttlite import Client

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import replay  # noqa: E402

MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")


@pytest.fixture
def broker():
    if not os.path.exists(MOSQUITTO):
        pytest.fail(f"{MOSQUITTO} is missing: run tools/setup.sh")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = tempfile.mkdtemp()
    conf = pathlib.Path(d, "m.conf")
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n" + ("user root\n" if os.getuid() == 0 else ""))
    p = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    yield port
    p.kill()
    p.wait()


def test_publish_subscribe_qos1_round_trip(broker):
    got = []
    done = threading.Event()

    def on_message(topic, payload, retained):
        got.append((topic, payload))
        if len(got) == 500:
            done.set()

    sub = Client("127.0.0.1", broker, "sub", on_message=on_message)
    sub.subscribe("t/#", 1)
    pub = Client("127.0.0.1", broker, "pub")
    for i in range(500):
        pub.publish(f"t/{i % 3}", json.dumps({"i": i}).encode(), qos=1)
    assert pub.wait_acked(10)
    assert done.wait(10)
    assert [json.loads(p)["i"] for _, p in got] == list(range(500))
    pub.close()
    sub.close()


def test_elecdemand_test_split_matches_the_training_split():
    meta = {"features": [{"name": "Demand", "mean": 0, "std": 1}, {"name": "Temperature", "mean": 0, "std": 1}],
            "sampling_period_s": 1800.0,
            "provenance": {"dataset_key": "elecdemand", "split": "chronological 70/10/20 train/val/test"}}
    times, rows, what = replay.test_split(meta, None)
    assert len(rows) == 17520 - round(17520 * 0.8) == 3504
    assert all(b - a == 1800 for a, b in zip(times, times[1:]))
    assert times[0] == 1388534400 + round(17520 * 0.8) * 1800
    assert "fpp2/elecdemand" in what and len(rows[0]) == 2


def test_models_without_a_data_set_get_a_synthetic_signal():
    meta = {"features": [{"name": "x0", "mean": 1.0, "std": 2.0}], "sampling_period_s": 60.0, "provenance": "random"}
    times, rows, what = replay.test_split(meta, 50)
    assert len(rows) == 50 and "synthetic" in what
    assert all(t % 60 == 0 for t in times)


def test_the_demo_names_its_model_and_the_reports_verdict(tmp_path):
    # A model folder's summary.json: the verdict is the report's (tools/train/verdict.py), with a
    # plain warning when a simple baseline is better, and a note when there is no summary.
    bl = {"persistence": {"mse": 0.02}, "ridge": {"mse": 0.0075}}
    (tmp_path / "summary.json").write_text(json.dumps({"baselines": bl, "float": {"test": {"mse": 0.006}},
                                                       "configs": {"GOOD": {"integer": {"mse": 0.005}},
                                                                   "BAD": {"integer": {"mse": 0.008}}}}))
    good = replay.model_verdict(str(tmp_path / "GOOD.safetensors"), {"version": 2})
    assert good.startswith(f"model: {tmp_path.name}/GOOD, contract v2 (linear skip path)\n")
    assert "beats persistence by 75.0%, ridge by 33.3%" in good and "WARNING" not in good
    assert "Float Transformer 0.00600 (this model -16.7%)" in good
    bad = replay.model_verdict(str(tmp_path / "BAD.safetensors"), {"version": 1})
    assert "contract v1" in bad and "WARNING: a simple baseline is better: ridge 0.00750 (this model +6.7%)" in bad
    none = replay.model_verdict(str(tmp_path / "OTHER.safetensors"), {})
    assert "no verdict" in none
