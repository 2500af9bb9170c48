// Energy and latency telemetry.
