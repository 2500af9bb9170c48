#!/usr/bin/env python3
"""The iCE40 core's microprogram: the network of docs/arithmetic.md §5 as a list of layer ops over
SPRAM addresses, for one shape. Written as a $readmemh file (16-bit words, SLOT words per op) that
the sequencer in rtl/aiot_ice40_engine.sv steps through; the same ops run here in `execute`, an
executable model of the sequencer (byte-addressed memories, integers), so a program can be checked
bit-exact against a vector file without the RTL:

  gen_prog.py W F D H N P OUT.hex             write the program for this shape (exit 1: shape does not fit)
  gen_prog.py --check MODEL.safetensors [MAX] run the program model on MODEL's vectors

Op word layout (one op per SLOT words; docs/hardware.md §5):
  0 flags: [1:0] op (0 MM, 1 ADD, 2 SOFTMAX, 3 END), [2] relu, [3] bias, [4] B from PARAM (else ACT2),
           [5] B is i8 (else i16), [6] B is the constant 1, [7] Y to ACT2 (else ACT1), [8] zb from the weight table
  1 T  2 J  3 K                        loops: for t < T, j < J: acc = bias? + sum_k (A - za)(B - zb)
  4 a_base 5 a_ts 6 a_js 7 a_ks        A in ACT1, byte addresses and strides
  8 b_base 9 b_js 10 b_ks              B: PARAM (b_base added to the tensor's directory offset) or ACT2
  11 y_base 12 y_ts 13 y_js            Y: ACT1 or ACT2
  14 b_ts                              B stride per t (ADD's second operand)
  15 b tensor index  16 bias tensor index  17 za act index  18 zb index  19, 20 y act index  21-23 requant index
  (words 15-23 each start one PARAM read as they arrive from the ROM: offset, zero point, bits, m1, m2, n)
MM: y = REQ(acc; m1, n) (ReLU: max(y, zy)); ADD (K = 2): acc = (A - za) m1 + (B - zb) m2, y = SAT(zy + RSHR(acc, n));
SOFTMAX: row t of J scores at A (in place), EXP table = tensor b; END: J outputs from A.
"""
import os
import sys

SLOT = 32
NFIELD = 24
ACT_BYTES = 32768          # one SPRAM (16K x 16 bit) per ACT memory
PARAM_MAX = 32768          # PARAM memory: one SPRAM


class ShapeError(ValueError):
    pass


def regions(W, F, D, H, N, P):
    """Byte addresses of the activation regions in ACT1 and ACT2 (elements are 2 bytes)."""
    a1, a2 = {}, {}
    at = 0
    for name, n in (("in", W * F), ("x", W * D), ("q", W * D), ("s", W * W), ("c", W * D), ("r1", W * D),
                    ("n1", W * D), ("f1", W * 4 * D), ("r2", W * D), ("pool", D), ("out", P)):
        a1[name] = at; at += 2 * n
    if at > ACT_BYTES:
        raise ShapeError(f"activations need {at} bytes of ACT1, the SPRAM holds {ACT_BYTES}")
    at2 = 0
    for name, n in (("k", W * D), ("v", W * D), ("o", W * D), ("f2", W * D)):
        a2[name] = at2; at2 += 2 * n
    if at2 > ACT_BYTES:
        raise ShapeError(f"activations need {at2} bytes of ACT2, the SPRAM holds {ACT_BYTES}")
    return a1, a2


def program(W, F, D, H, N, P):
    """The op list for one shape: dicts of the fields above."""
    if not (1 <= H <= 8 and D % H == 0 and N <= 8):
        raise ShapeError("heads must divide d_model; at most 8 heads and 8 layers")
    a1, a2 = regions(W, F, D, H, N, P)
    dh = D // H
    NONE = 0xFFFF
    ops = []

    def op(kind, **f):
        d = dict(flags=kind, T=1, J=1, K=1, a_base=0, a_ts=0, a_js=0, a_ks=0, b_base=0, b_js=0, b_ks=0,
                 y_base=0, y_ts=0, y_js=0, b_ts=0, b_ti=NONE, bias_ti=NONE, za=0, zb=0, y=0, rq=0)
        d.update(f)
        ops.append(d)

    B_PARAM, B_I8, B_ONE, Y_ACT2, ZB_WT, RELU, BIAS = 16, 32, 64, 128, 256, 4, 8

    def linear(x, T, K, J, y, y2, wti, widx, xact, yact, rq, relu=False):
        op(0 | BIAS | B_PARAM | B_I8 | ZB_WT | (RELU if relu else 0) | (Y_ACT2 if y2 else 0),
           T=T, J=J, K=K, a_base=x, a_ts=2 * K, a_ks=2, b_js=K, b_ks=1, y_base=y, y_ts=2 * J, y_js=2,
           b_ti=wti, bias_ti=wti + 1, za=xact, zb=widx, y=yact, rq=rq)

    def norm(x, y, wti, widx, xact, yact, rq):
        op(0 | BIAS | B_PARAM | B_I8 | ZB_WT, T=W, J=D, K=1, a_base=x, a_ts=2 * D, a_js=2,
           b_js=1, y_base=y, y_ts=2 * D, y_js=2, b_ti=wti, bias_ti=wti + 1, za=xact, zb=widx, y=yact, rq=rq)

    def add(x1, x2, x2_param, b_ti, y, a1act, a2act, yact, rq):
        op(1 | (B_PARAM if x2_param else 0), T=W, J=D, K=2, a_base=x1, a_ts=2 * D, a_js=2, b_base=x2,
           b_ts=2 * D, b_js=2, y_base=y, y_ts=2 * D, y_js=2, b_ti=b_ti, za=a1act, zb=a2act, y=yact, rq=rq)

    linear(a1["in"], W, F, D, a1["q"], False, 0, 0, 0, 1, 0)              # input_proj -> (scratch q)
    add(a1["q"], 0, True, 2, a1["x"], 1, 2, 3, 1)                         # pe_add = input_proj + pe
    for l in range(N):
        A, Wt, R, T = 4 + 13 * l, 1 + 8 * l, 2 + 12 * l, 3 + 17 * l
        linear(a1["x"], W, D, D, a1["q"], False, T + 0, Wt + 0, A - 1, A + 0, R + 0)
        linear(a1["x"], W, D, D, a2["k"], True, T + 2, Wt + 1, A - 1, A + 1, R + 1)
        linear(a1["x"], W, D, D, a2["v"], True, T + 4, Wt + 2, A - 1, A + 2, R + 2)
        for h in range(H):
            op(0, T=W, J=W, K=dh, a_base=a1["q"] + 2 * h * dh, a_ts=2 * D, a_ks=2,
               b_base=a2["k"] + 2 * h * dh, b_js=2 * D, b_ks=2, y_base=a1["s"], y_ts=2 * W, y_js=2,
               za=A + 0, zb=A + 1, y=A + 3, rq=R + 3)                         # scores
            op(2 | B_PARAM, T=W, J=W, a_base=a1["s"], a_ts=2 * W, a_ks=2, b_ti=T + 8,
               za=A + 3, y=A + 4)                                               # softmax, in place
            op(0, T=W, J=dh, K=W, a_base=a1["s"], a_ts=2 * W, a_ks=2,
               b_base=a2["v"] + 2 * h * dh, b_js=2, b_ks=2 * D, y_base=a1["c"] + 2 * h * dh, y_ts=2 * D, y_js=2,
               za=A + 4, zb=A + 2, y=A + 5, rq=R + 4)                         # context
        linear(a1["c"], W, D, D, a2["o"], True, T + 6, Wt + 3, A + 5, A + 6, R + 5)
        add(a1["x"], a2["o"], False, NONE, a1["r1"], A - 1, A + 6, A + 7, R + 6)
        norm(a1["r1"], a1["n1"], T + 9, Wt + 4, A + 7, A + 8, R + 7)
        linear(a1["n1"], W, D, 4 * D, a1["f1"], False, T + 11, Wt + 5, A + 8, A + 9, R + 8, relu=True)
        linear(a1["f1"], W, 4 * D, D, a2["f2"], True, T + 13, Wt + 6, A + 9, A + 10, R + 9)
        add(a1["n1"], a2["f2"], False, NONE, a1["r2"], A + 8, A + 10, A + 11, R + 10)
        norm(a1["r2"], a1["x"], T + 15, Wt + 7, A + 11, A + 12, R + 11)
    A = 4 + 13 * N
    op(0 | B_ONE, T=1, J=D, K=W, a_base=a1["x"], a_js=2, a_ks=2 * D, y_base=a1["pool"], y_js=2,
       za=A - 1, zb=0, y=A, rq=2 + 12 * N)                                     # pool
    linear(a1["pool"], 1, D, P, a1["out"], False, 3 + 17 * N, 1 + 8 * N, A, A + 1, 3 + 12 * N)   # head
    op(3, J=P, a_base=a1["out"], a_ks=2)                                        # END: outputs to the result
    if max(max(o["T"], o["J"], o["K"]) for o in ops) >= 2048:
        raise ShapeError("a loop of 2048 or more (the sequencer's counters are 11 bits)")
    if len(ops) > 128:
        raise ShapeError(f"{len(ops)} ops; the program ROM holds 128 (16 EBR)")
    return ops


FIELDS = ["flags", "T", "J", "K", "a_base", "a_ts", "a_js", "a_ks", "b_base", "b_js", "b_ks",
          "y_base", "y_ts", "y_js", "b_ts", "b_ti", "bias_ti", "za", "zb", "y", "y", "rq", "rq", "rq"]


def write_hex(ops, path):
    words = []
    for o in ops:
        w = [o[f] & 0xFFFF for f in FIELDS]
        words += w + [0] * (SLOT - len(w))
    with open(path, "w") as f:
        f.write("\n".join(f"{w:04x}" for w in words) + "\n")
    return len(ops)


# ---------------------------------------------------------------- executable model of the sequencer
def _rshr(v, n):
    if n == 0:
        return v
    a = (abs(v) + (1 << (n - 1))) >> n
    return -a if v < 0 else a


def _sat(v, b):
    return max(-(1 << (b - 1)), min((1 << (b - 1)) - 1, v))


def execute(ops, image, q_in, W, F):
    import struct
    u16 = lambda off: struct.unpack_from("<H", image, off)[0]
    i16 = lambda off: struct.unpack_from("<h", image, off)[0]
    h_act, h_wt, h_rq, h_dir = (struct.unpack_from("<I", image, o)[0] for o in (32, 40, 48, 56))
    act1 = bytearray(ACT_BYTES); act2 = bytearray(ACT_BYTES)
    for i, v in enumerate(q_in):
        struct.pack_into("<h", act1, 2 * i, v)
    out = []
    for o in ops:
        kind = o["flags"] & 3
        fl = o["flags"]
        za = i16(h_act + 4 * o["za"] + 2)
        zb = i16((h_wt if fl & 256 else h_act) + 4 * o["zb"] + 2) if not fl & 64 else 0
        yb = image[h_act + 4 * o["y"]]; zy = i16(h_act + 4 * o["y"] + 2)
        m1, m2, n = u16(h_rq + 8 * o["rq"]), u16(h_rq + 8 * o["rq"] + 2), image[h_rq + 8 * o["rq"] + 4]
        bbase = o["b_base"] + (u16(h_dir + 8 * o["b_ti"]) if o["b_ti"] != 0xFFFF else 0)
        biasb = u16(h_dir + 8 * o["bias_ti"]) if o["bias_ti"] != 0xFFFF else 0
        ymem = act2 if fl & 128 else act1

        def rd_a(addr):
            return struct.unpack_from("<h", act1, addr)[0]

        def rd_b(addr):
            if fl & 64:
                return 1
            if fl & 16:
                return struct.unpack_from("<b" if fl & 32 else "<h", image, addr)[0]
            return struct.unpack_from("<h", act2, addr)[0]

        if kind == 3:
            out = [rd_a(o["a_base"] + k * o["a_ks"]) for k in range(o["J"])]
            break
        for t in range(o["T"]):
            if kind == 2:
                row = o["a_base"] + t * o["a_ts"]
                s = [rd_a(row + 2 * j) for j in range(o["J"])]
                mx = max(s)
                e = [struct.unpack_from("<H", image, bbase + 2 * (mx - v))[0] for v in s]
                R = (1 << yb) - 1
                inv = (R << 30) // sum(e)
                lo = -(1 << (yb - 1))
                for j in range(o["J"]):
                    struct.pack_into("<h", act1, row + 2 * j, _sat(lo + _rshr(e[j] * inv, 30), yb))
                continue
            for j in range(o["J"]):
                ap = o["a_base"] + t * o["a_ts"] + j * o["a_js"]
                bp = bbase + t * o["b_ts"] + j * o["b_js"]
                if kind == 1:
                    acc = (rd_a(ap) - za) * m1 + (rd_b(bp) - zb) * m2
                    y = _sat(zy + _rshr(acc, n), yb)
                else:
                    acc = struct.unpack_from("<i", image, biasb + 4 * j)[0] if fl & 8 else 0
                    for k in range(o["K"]):
                        acc += (rd_a(ap + k * o["a_ks"]) - za) * (rd_b(bp + k * o["b_ks"]) - zb)
                    y = _sat(zy + _rshr(acc * m1, n), yb)
                    if fl & 4:
                        y = max(y, zy)
                struct.pack_into("<h", ymem, o["y_base"] + t * o["y_ts"] + j * o["y_js"], y)
    return out


def check(model_path, maxv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(root, "tools"))
    from aiot.modelfile import load_model
    from aiot.paramimage import serialize
    m = load_model(model_path)
    s = m.shape
    image = serialize(m)
    ops = program(s.window, s.features, s.d_model, s.heads, s.layers, s.horizon)
    lines = open(model_path[:-len(".safetensors")] + ".vectors.txt").read().split("\n")
    _, count, n_in, n_out = lines[0].split()
    n_in, n_out = int(n_in), int(n_out)
    ok = bad = 0
    for line in lines[1:1 + min(int(count), maxv)]:
        v = [int(x) for x in line.split()]
        got = execute(ops, image, v[:n_in], s.window, s.features)
        if got == v[n_in:n_in + n_out]:
            ok += 1
        else:
            bad += 1
            if bad < 4:
                print(f"mismatch: got {got}, expected {v[n_in:]}")
    print(f"{ok} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10 ** 9))
    if len(sys.argv) != 8:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    try:
        n = write_hex(program(*map(int, sys.argv[1:7])), sys.argv[7])
    except ShapeError as e:
        print(f"gen_prog.py: shape {' '.join(sys.argv[1:7])} not supported by the iCE40 core: {e}", file=sys.stderr)
        sys.exit(1)
    print(n)
