#!/usr/bin/env python3
"""Drives aiot-rtl-sim the way the host driver does (docs/register-map.md §6.5 and §7): MPSSE
buffers for channel A, image upload, VERIFY_PARAMS, then the one-buffer inference per vector.
Checks every RESULT block (CRCs, sequence, DONE) and output against the vector file.

usage: test_cosim.py SIM_EXE MODEL.safetensors [MAX_VECTORS]
"""
import os
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from aiot.modelfile import load_model  # noqa: E402
from aiot.paramimage import serialize  # noqa: E402
from aiot.vectors import read_vectors  # noqa: E402

CS_LOW, CS_HIGH = bytes([0x80, 0x00, 0x0B]), bytes([0x80, 0x08, 0x0B])


def write_txn(addr, data):
    body = bytes([0x02, addr >> 16 & 255, addr >> 8 & 255, addr & 255]) + data
    return CS_LOW + bytes([0x11]) + struct.pack("<H", len(body) - 1) + body + CS_HIGH


def read_txn(addr, n):
    hdr = bytes([0x0B, addr >> 16 & 255, addr >> 8 & 255, addr & 255, 0])
    return CS_LOW + bytes([0x11, 4, 0]) + hdr + bytes([0x20]) + struct.pack("<H", n - 1) + CS_HIGH + bytes([0x87])


class Link:
    def __init__(self, exe):
        self.p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def execute(self, buf):
        self.p.stdin.write(b"X" + bytes([0]) + struct.pack("<I", len(buf)) + buf)
        self.p.stdin.flush()
        status, n = struct.unpack("<BI", self.p.stdout.read(5))
        data = self.p.stdout.read(n)
        if status != 0:
            raise RuntimeError(data.decode())
        return data

    def close(self):
        self.p.stdin.write(b"Q")
        self.p.stdin.close()
        self.p.wait(timeout=10)


def main(argv):
    exe, model_path = argv[1], argv[2]
    limit = int(argv[3]) if len(argv) > 3 else 1 << 30
    model = load_model(model_path)
    image = serialize(model)
    ins, outs = read_vectors(model_path.replace(".safetensors", ".vectors.txt"))
    sh = model.shape
    link = Link(exe)
    u32 = lambda v: struct.pack("<I", v)  # noqa: E731
    assert link.execute(read_txn(0x00, 4)) == b"AIOT", "ID register"
    for off in range(0, len(image), 60 * 1024):
        link.execute(write_txn(0x010000 + off, image[off:off + 60 * 1024]))
    crc = zlib.crc32(image)
    link.execute(write_txn(0x20, u32(len(image)) + u32(crc)) + write_txn(0x08, u32(8)))
    while True:
        status = struct.unpack("<I", link.execute(read_txn(0x0C, 4)))[0]
        if not status & 0x10:
            break
    assert status & 0x08, f"PARAMS_VALID not set, STATUS {status:#x}"
    assert struct.unpack("<I", link.execute(read_txn(0x28, 4)))[0] == crc
    assert link.execute(read_txn(0x010000, 64)) == image[:64], "PARAM read-back"
    res_len = 16 + 2 * sh.horizon + 4
    passed = failed = 0
    for v, (x, y) in enumerate(zip(ins[:limit], outs[:limit])):
        data = b"".join(struct.pack("<h", int(t)) for t in x)
        buf = (write_txn(0x1000, data) + write_txn(0x08, u32(1)) + bytes([0x8E, 7, 0x89]) + read_txn(0x3000, res_len))
        r = link.execute(buf)
        ok = len(r) == res_len
        st, seq, icrc, cyc = struct.unpack("<IIII", r[:16])
        got = struct.unpack(f"<{sh.horizon}h", r[16:16 + 2 * sh.horizon])
        rcrc = struct.unpack("<I", r[16 + 2 * sh.horizon:])[0]
        ok &= rcrc == zlib.crc32(r[:16 + 2 * sh.horizon]) and icrc == zlib.crc32(data)
        ok &= (st & 3) == 2 and seq == v + 1 and list(got) == [int(t) for t in y]
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"vector {v}: got {got} expected {list(y)} status {st:#x} seq {seq}")
    link.close()
    print(f"cycles per inference (RESULT.CYCLES): {cyc}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
