"""Writes the seed corpora under Fuzz/corpus/ (deterministic; rerun after a format change).

    python3 Fuzz/make_seeds.py

Seeds are small valid inputs of each format plus a few near misses, so libFuzzer starts inside the
parsers instead of spending its first million runs finding an opening brace."""
import base64
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "corpus")


def put(target: str, name: str, data) -> None:
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def payload() -> None:
    seeds = ["42.5", "  -1e3\n", '{"t": 1700000000.5, "v": 3.25}',
             '{"v": 3, "t": 5, "unit": "GW", "meta": {"a": [1, 2, null]}}',
             '{"t": 10, "values": {"temp": 21.5, "hum": 4.2}}',
             '[{"bn": "urn:dev:ow:10e2073a01080063:", "bt": 1.276020076e9, "n": "temp", "v": 4.5, "u": "GW"}, {"n": "hum", "t": 10, "v": 20}]',
             '[{"bv": 10, "v": 1.5, "t": -5}]', '{"t": 1, "v": NaN}', '{"t": "now", "v": 1}',
             '{"t": 1, "values": {"humidity": 1}}', '{"t":1,"v":1e308}', '"\\u00e9"']
    for i, s in enumerate(seeds):
        put("payload", f"seed-{i:02d}", s)


def safetensors() -> None:
    for name in ["w24f1d16h1n1p1-w4a4", "w12f2d8h2n2p3-w4a8", "w24f2d8h1n1p3-w6a6"]:
        with open(os.path.join(ROOT, "models", "random", name + ".safetensors"), "rb") as f:
            put("safetensors", name, f.read())
    put("safetensors", "header-only", struct.pack("<Q", 2) + b"{}")


def bitstream() -> None:
    words = [0xFFFFFFFF] * 8 + [0xBB, 0x11220044, 0xFFFFFFFF, 0xFFFFFFFF, 0xAA995566, 0x20000000]

    def t1(reg: int, count: int) -> int:
        return 0x30000000 | (reg << 13) | count

    for reg, val in [(0x11, 0), (0x10, 0), (0x04, 0), (0x04, 7), (0x09, 0x02003FE5), (0x0C, 0x03620093),
                     (0x01, 0), (0x04, 1)]:
        words += [t1(reg, 1), val]
    frames = 101
    words += [t1(0x02, 0), 0x50000000 | frames] + [(i * 2654435761) & 0xFFFFFFFF for i in range(frames)]
    words += [t1(0x00, 1), 0x12345678, t1(0x04, 1), 0x0A, t1(0x04, 1), 0x05, t1(0x04, 1), 0x0D] + [0x20000000] * 4
    payload_bytes = b"".join(struct.pack(">I", w) for w in words)
    put("bitstream", "bin", payload_bytes)
    out = bytes([0x00, 0x09, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00, 0x00, 0x01])
    for tag, s in [(0x61, "aiot_accel;UserID=0XFFFFFFFF;Version=2025.1"), (0x62, "7s15ftgb196"),
                   (0x63, "2026/11/26"), (0x64, "05:40:00")]:
        b = s.encode() + b"\0"
        out += bytes([tag]) + struct.pack(">H", len(b)) + b
    out += b"\x65" + struct.pack(">I", len(payload_bytes)) + payload_bytes
    put("bitstream", "bit", out)
    put("bitstream", "bit-truncated", out[:60])
    # The head of a real icepack UP5K image (Tests/fixtures/ice40): preamble and command stream.
    import gzip
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "fixtures", "ice40", "counter-up5k.bin.gz")
    with gzip.open(fixture) as f:
        put("bitstream", "ice40-bin-head", f.read(4096))


def config() -> None:
    for name in ["aiotd.example.toml", "demo.toml"]:
        with open(os.path.join(ROOT, "configs", name), "rb") as f:
            put("config", name, f.read())
    put("config", "minimal.toml", 'gateway = "gw1"\n[[stream]]\nsensor = "s1"\nmodel = "m.safetensors"\n')
    put("config", "numbers.toml", 'gateway = "gw1"\n[status]\ninterval_s = 1e300\n[limits]\nmax_payload_bytes = -1\n')
    put("config", "unix_socket.toml", 'gateway = "gw1"\n[mqtt]\nunix_socket = "/run/aiot-mqtt/mosquitto.sock"\n[[stream]]\nsensor = "s1"\nmodel = "m.safetensors"\n')


def vectors() -> None:
    put("vectors", "small", "aiotvec1 2 3 1\n1 2 3 4\n-5 6 -7 8\n")
    put("vectors", "header", "aiotvec1 16777216 16777216 16777216\n")
    with open(os.path.join(ROOT, "models", "random", "w12f2d8h2n2p3-w4a8.vectors.txt")) as f:
        lines = f.read().splitlines()
    head = lines[0].split()
    put("vectors", "real", f"aiotvec1 3 {head[2]} {head[3]}\n" + "\n".join(lines[1:4]) + "\n")


def spool() -> None:
    for i, (t, topic, p) in enumerate([(1795000000.25, "aiot/gw/readings/s1", b'{"t":1,"v":2}'),
                                       (0.0, 'a/"quoted"/\\x', b"\x00\xff"), (1e9, "", b"")]):
        put("spool", f"seed-{i}", '{"t":%.6f,"topic":"%s","payload":"%s"}' % (
            t, topic.replace("\\", "\\\\").replace('"', '\\"'), base64.b64encode(p).decode()))


def energylog() -> None:
    line = ('{"ts":1795000000.000000,"sensor":"elec \\"north\\"","model":"abc","engine":"software","seq":1,'
            '"window_end":1700000000,"latency_us":{"queue":10.3,"preprocess":3.0,"inference":250.5,"publish":7.0,'
            '"total":270.8},"energy_uj":12.5,"energy_source":"rapl","power_w":0.0499}\n')
    put("energylog", "records", line + line.replace("1795000000", "1795086400").replace('"energy_uj":12.5', '"energy_uj":null'))
    put("energylog", "damaged", line[:80] + "\n" + '{"ts":1e300,"sensor":"s","engine":"fpga","latency_us":{"total":1}}\n')
    modelled = line.replace('"energy_uj":12.5,"energy_source":"rapl","power_w":0.0499}',
                            '"energy_uj":40.5,"energy_source":"model","power_w":1.5,"forecast_error":-0.0123,'
                            '"persistence_error":0.05,"energy_model":{"name":"cpu-time","watts_per_core":1.5,"cpu_us":27.0}}')
    fpga = line.replace('"engine":"software"', '"engine":"fpga"').replace(
        '"energy_uj":12.5,"energy_source":"rapl","power_w":0.0499}',
        '"energy_uj":3.0,"energy_source":"model","power_w":0.033,"energy_model":{"name":"fpga-cycles","watts":0.033,"cycles":9102,"clock_hz":100000000}}')
    put("energylog", "modelled", modelled + fpga)


def board_replies() -> None:
    outputs = 3
    body = struct.pack("<IIII", 0x2, 7, 0x12345678, 0) + b"".join(struct.pack("<h", v) for v in (-5, 100, 32767))
    block = body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    put("board-replies", "result-ok", bytes([outputs]) + block)
    regs = bytearray(0x60)
    struct.pack_into("<I", regs, 0, 0x544F4941)
    struct.pack_into("<I", regs, 4, 0x00010000)
    struct.pack_into("<I", regs, 0x0C, 0x0A)
    put("board-replies", "status", bytes([0]) + bytes(regs))
    put("board-replies", "jedec", bytes([0, 0x01, 0x02, 0x19, 0x4D, 0x01, 0x80]))
    put("board-replies", "dead-bus", b"\xff" * 32)


def deploy() -> None:
    """The artifact channel (Fuzz/Sources/fuzz-deploy): a manifest and a rollback request (their
    signatures are placeholders: the target re-signs what parses), chunks and near misses."""
    import hashlib
    art = bytes(range(256)) * 3
    manifest = ("aiot-deploy-manifest v1\nkind=model\nname=m.safetensors\nversion=3\ngateways=gw,gw2\nstream=temp-*\n"
                f"size={len(art)}\nsha256={hashlib.sha256(art).hexdigest()}\nnot_before=1790000000\nexpires=1800000000\n"
                "key_id=0123456789abcdef\nsignature=" + "ab" * 64 + "\n")
    put("deploy", "manifest", manifest)
    put("deploy", "manifest-truncated", manifest[:-40])
    put("deploy", "rollback", "aiot-deploy-rollback v1\ngateway=gw\nkind=model\nstream=temp-*\nts=1795000000\n"
        "nonce=0123456789\nkey_id=0123456789abcdef\nsignature=" + "cd" * 64 + "\n")
    for i, (off, n) in enumerate([(0, 300), (300, 468)]):
        data = art[off:off + n]
        running = hashlib.sha256(art[:off + n]).digest()
        put("deploy", f"chunk-{i}", b"AIOTCHK1" + struct.pack(">QI", off, n) + running + data)
    put("deploy", "chunk-short", b"AIOTCHK1" + struct.pack(">QI", 0, 100) + bytes(32) + b"x")


def command() -> None:
    import hashlib, hmac
    key = b"fuzz-key-0123456789abcdef"  # the target's key (Fuzz/Sources/fuzz-command)
    put("command", "plain", b'{"id":"1","sensors":true}')
    body = b'{"id":"2","command":"reload","ts":1795000000,"nonce":"n0nce-0001"}'
    mac = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    put("command", "signed", body[:-1] + b',"hmac":"' + mac + b'"}')
    put("command", "bad-mac", body[:-1] + b',"hmac":"' + b"0" * 64 + b'"}')
    put("command", "not-json", b'{"id":,"hmac":"zz"}')


if __name__ == "__main__":
    payload(); safetensors(); bitstream(); config(); vectors(); spool(); energylog(); board_replies(); command(); deploy()
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))))
