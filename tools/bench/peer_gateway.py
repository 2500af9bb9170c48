#!/usr/bin/env python3
"""The peer for tools/bench_daemon.sh: what a user would write in Python instead of aiotd. One
thread: paho-mqtt's network loop calls `on_message`, which parses the reading's JSON, keeps a
per-sensor window, normalizes it, runs ONNX Runtime (one thread) on the model's float export and
publishes the forecast as JSON at the reading's QoS. No integer model, no energy log, no
validation beyond what the shape needs: it is the cheapest honest gateway, the bar aiotd must beat.

usage: peer_gateway.py PORT GATEWAY MODEL.onnx MODEL.safetensors [PERIOD_S]
Readings: aiot/GATEWAY/readings/SENSOR {"t": seconds, "v": value}; forecasts on
aiot/GATEWAY/forecasts/SENSOR {"sensor","t","forecast"}; a retained aiot/GATEWAY/status when ready.
A window of F features is fed the one value in every feature (the bench's readings carry one)."""
from __future__ import annotations

import collections
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tools.aiot import modelfile  # noqa: E402


def main() -> int:
    port, gw, onnx_path, model_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    period = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    model = modelfile.load_model(model_path)
    W, F = model.shape.window, model.shape.features
    feats, target = model.meta["features"], model.meta["target"]
    mean = np.array([f["mean"] for f in feats], np.float32)
    std = np.array([f["std"] for f in feats], np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    windows: dict[str, collections.deque] = {}
    prefix = f"aiot/{gw}/forecasts/"

    def on_message(client, _userdata, msg):
        sensor = msg.topic.rsplit("/", 1)[-1]
        try:
            d = json.loads(msg.payload)
            t, v = float(d["t"]), float(d["v"])
        except (ValueError, KeyError, TypeError):
            return
        step = int(t // period)
        w = windows.get(sensor)
        if w is None:
            w = windows[sensor] = collections.deque(maxlen=W)
        if w and step <= w[-1][0]:
            return  # late or repeated: dropped
        w.append((step, v))
        if len(w) < W:
            return
        x = np.fromiter((val for _, val in w), np.float32, W)[:, None].repeat(F, axis=1)
        x = ((x - mean) / std)[None]
        y = sess.run(None, {"window": x})[0][0] * target["std"] + target["mean"]
        body = json.dumps({"sensor": sensor, "t": t, "forecast": [float(a) for a in y]}, separators=(",", ":"))
        client.publish(prefix + sensor, body, qos=msg.qos)

    def on_connect(client, _userdata, _flags, rc, _props=None):
        client.subscribe(f"aiot/{gw}/readings/+", qos=1)
        client.publish(f"aiot/{gw}/status", '{"online":true}', qos=1, retain=True)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"peer-{gw}", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_connect = on_connect
    c.on_message = on_message
    c.connect("127.0.0.1", port, 60)
    c.loop_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
