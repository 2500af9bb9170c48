"""Tests of the numpy reference, the exporter and the model file (docs/arithmetic.md)."""
from __future__ import annotations

import glob
import json
import os
import struct
import sys

import numpy as np
import pytest

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

from aiot import floatmodel, reference  # noqa: E402
from aiot import io as AIO  # noqa: E402
from aiot import modelfile as MF  # noqa: E402
from aiot import quant as Q  # noqa: E402
from aiot.export import ExportError, bits_config, export_model  # noqa: E402
from aiot.vectors import read_vectors, write_vectors  # noqa: E402
import gen_vectors  # noqa: E402

I64 = np.int64


# --- P2: rounding right shift --------------------------------------------------------------

@pytest.mark.parametrize("v,n,expected", [
    (5, 1, 3), (-5, 1, -3),        # ties go away from zero
    (3, 1, 2), (-3, 1, -2),
    (1, 1, 1), (-1, 1, -1),
    (6, 2, 2), (-6, 2, -2),        # 1.5 -> 2
    (5, 2, 1), (-5, 2, -1),        # 1.25 -> 1
    (7, 2, 2), (-7, 2, -2),        # 1.75 -> 2
    (0, 5, 0), (12345, 0, 12345), (-12345, 0, -12345),
    ((1 << 46) + (1 << 39), 40, 65), (-((1 << 46) + (1 << 39)), 40, -65),
    ((1 << 46) + (1 << 39) - 1, 40, 64),
])
def test_rshr_half_away_from_zero(v, n, expected):
    assert int(Q.rshr(I64(v), n)) == expected


def test_rshr_differs_from_floor_shift_on_negative_ties():
    v = np.arange(-64, 65, dtype=I64)
    got = Q.rshr(v, 3)
    want = np.sign(v) * np.floor(np.abs(v) / 8 + 0.5)
    assert np.array_equal(got, want.astype(I64))
    assert not np.array_equal(got, v >> 3)


# --- P1, P3: saturation and requantization -------------------------------------------------

def test_requant_saturates_at_both_ends():
    acc = np.array([-(1 << 30), -1000, 0, 1000, (1 << 30)], dtype=I64)
    y = Q.requant(acc, 65535, 16, 0, 8)
    assert y.tolist() == [-128, -128, 0, 127, 127]
    y4 = Q.requant(acc, 1, 0, 3, 4)
    assert y4.tolist() == [-8, -8, 3, 7, 7]


def test_requant_zero_point_added_after_rounding():
    # acc*m = 3 * 2^(n-1): exactly 1.5 steps -> 2, then + z
    assert int(Q.requant(I64(3), 1 << 9, 10, -5, 8)) == -3
    assert int(Q.requant(I64(-3), 1 << 9, 10, -5, 8)) == -7


def test_requant_largest_m_and_accumulator_exact_in_int64():
    acc = I64((1 << 31) - 1)
    exact = ((1 << 31) - 1) * 65535
    assert int(Q.requant(acc, 65535, 40, 0, 16)) == min((exact + (1 << 39)) >> 40, 32767)
    # No float32/float64 rounding on the way: a product above 2^53 still rounds exactly.
    got = int(Q.rshr(acc * I64(65535), 20))
    assert got == (exact + (1 << 19)) >> 20


def test_requant_multiplier_keeps_16_bits():
    for M in [1e-6, 3.3e-4, 0.01234, 0.5, 0.999, 1.0, 3.7, 123.4, 65535.0]:
        m, n = Q.requant_multiplier(M)
        assert 0 <= m <= 65535 and 0 <= n <= 40
        assert abs(m * 2.0 ** -n - M) <= M * 2 ** -15
        if n < 40 and n > 0:
            assert m >= 32768   # normalized
    assert Q.requant_multiplier(0.0) == (0, 0)
    with pytest.raises(Q.QuantError):
        Q.requant_multiplier(70000.0)
    with pytest.raises(Q.QuantError):
        Q.requant_multiplier(float("nan"))
    m, n = Q.requant_multiplier(1e-14)   # below 2^-40: precision lost, but representable
    assert n == 40 and m == 0


def test_requant_multiplier_pair_shares_shift():
    m1, m2, n = Q.requant_multiplier_pair(0.75, 3.0)
    assert max(m1, m2) <= 65535 and m2 >= 32768
    assert abs(m1 * 2.0 ** -n - 0.75) < 1e-4


# --- quantization parameters and tables ----------------------------------------------------

def test_act_qparams_cover_range_and_zero():
    for bits in (4, 6, 8, 16):
        for lo_f, hi_f in [(-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)]:
            s, z = Q.act_qparams(lo_f, hi_f, bits)
            assert Q.lo(bits) <= z <= Q.hi(bits)
            assert Q.quantize(0.0, s, z, bits) == z           # zero exactly representable
            if hi_f > lo_f:
                assert abs(s * (Q.quantize(hi_f, s, z, bits) - z) - hi_f) <= s / 2 + 1e-12
                assert abs(s * (Q.quantize(lo_f, s, z, bits) - z) - lo_f) <= s / 2 + 1e-12


def test_exp_table_construction():
    t = Q.exp_table(0.05, 8)
    assert t.shape == (256,) and t[0] == 1 << 15
    assert np.all(np.diff(t) <= 0) and t.min() >= 0
    assert t[20] == int(np.floor(32768 * np.exp(-1.0) + 0.5))
    assert Q.exp_table(2.0, 4)[-1] == 0      # steep table underflows to zero, still valid


def test_softmax_row_sums_to_R_within_rounding():
    m = MF.load_model(os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w8a8.safetensors"))
    table = m.tensors["layers.0.softmax.exp"]
    rng = np.random.default_rng(0)
    s = rng.integers(-128, 128, size=(24, 24)).astype(I64)
    e = table[s.max(axis=1, keepdims=True) - s]
    inv = (I64(255) << I64(30)) // e.sum(axis=1, keepdims=True)
    p = Q.rshr(e * inv, 30)
    assert np.all(p >= 0) and np.all(p <= 255)
    assert np.all(np.abs(p.sum(axis=1) - 255) <= 24)


# --- the model file -------------------------------------------------------------------------

MODELS = sorted(glob.glob(os.path.join(ROOT, "models", "**", "*.safetensors"), recursive=True))


def test_there_are_committed_models_for_every_configuration():
    names = {os.path.basename(p) for p in MODELS}
    for cfg in ("w8a8", "w6a6", "w4a4", "w4a8", "w6a8", "w8a8o16"):
        assert f"w24f1d16h1n1p1-{cfg}.safetensors" in names


@pytest.mark.parametrize("path", MODELS, ids=os.path.basename)
def test_committed_vectors_match_reference(path):
    vec = path[: -len(".safetensors")] + ".vectors.txt"
    assert os.path.exists(vec), f"{vec} missing"
    model = MF.load_model(path)
    inputs, outputs = read_vectors(vec)
    assert len(inputs) > 0
    got = reference.forward_batch(model, inputs)
    assert np.array_equal(got, outputs)


def test_altered_vector_is_detected(tmp_path):
    path = os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w8a8.safetensors")
    inputs, outputs = read_vectors(path.replace(".safetensors", ".vectors.txt"))
    outputs = outputs.copy()
    outputs[3, 0] += 1
    write_vectors(tmp_path / "bad.txt", inputs, outputs)
    i2, o2 = read_vectors(tmp_path / "bad.txt")
    got = reference.forward_batch(MF.load_model(path), i2)
    assert (got != o2).sum() == 1


def test_safetensors_package_reads_our_files():
    import safetensors.numpy as safetensors_numpy   # installed by tools/setup.sh
    from safetensors import safe_open
    path = os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w4a8.safetensors")
    tensors = safetensors_numpy.load_file(path)
    ours = MF.load_model(path)
    assert set(tensors) == set(ours.tensors)
    for k, v in tensors.items():
        assert np.array_equal(v.astype(I64), ours.tensors[k])
    with safe_open(path, framework="numpy") as f:
        meta = json.loads(f.metadata()["aiot"])
    assert meta["shape"]["d_model"] == 16


def test_serialization_is_deterministic():
    path = os.path.join(ROOT, "models/random/w12f2d8h2n2p3-w4a8.safetensors")
    data = open(path, "rb").read()
    m = MF.load_model(data)
    assert MF.serialize(m.meta, m.tensors) == data


def _edit(data: bytes, fn) -> bytes:
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    meta = json.loads(header["__metadata__"]["aiot"])
    fn(header, meta)
    header["__metadata__"]["aiot"] = json.dumps(meta)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data[8 + hlen:]


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d[:100], "header length"),
    (lambda d: d[:-5], "past the end"),
    (lambda d: d[:4], "shorter than"),
    (lambda d: struct.pack("<Q", 1 << 40) + d[8:], "header length"),
    (lambda d: d[:8] + b"X" + d[9:], "not valid JSON"),
    (lambda d: _edit(d, lambda h, m: m["activations"]["layers.0.q"].update(zero_point=300)), "zero_point"),
    (lambda d: _edit(d, lambda h, m: m["requant"]["layers.0.k"].update(m=70000)), "requant.layers.0.k.m"),
    (lambda d: _edit(d, lambda h, m: m["requant"]["pool"].update(n=41)), "requant.pool.n"),
    (lambda d: _edit(d, lambda h, m: m["shape"].update(d_model=32, ffn=128)), "shape"),
    (lambda d: _edit(d, lambda h, m: h["pe"].update(shape=[12, 16])), "pe"),
    (lambda d: _edit(d, lambda h, m: m["weights"]["head.weight"].update(bits=5)), "weights.head.weight.bits"),
    (lambda d: _edit(d, lambda h, m: m["target"].update(std=0.0)), "target.std"),
    (lambda d: _edit(d, lambda h, m: m.update(format="onnx")), "format"),
])
def test_loader_rejects_corrupt_files(mutate, needle):
    data = open(os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w8a8.safetensors"), "rb").read()
    with pytest.raises(MF.ModelError) as e:
        MF.load_model(mutate(data))
    assert needle in str(e.value)


# --- the exporter ---------------------------------------------------------------------------

def _random_export(shape, config, scale_ranges=1.0, **overrides):
    rng = np.random.default_rng(1)
    params = gen_vectors.random_params(shape, rng)
    ranges = {}
    for w in gen_vectors.random_windows(shape, 32, rng):
        floatmodel.forward(params, shape, w, ranges)
    ranges = {k: (lo * scale_ranges, hi * scale_ranges) for k, (lo, hi) in ranges.items()}
    feats = [{"name": f"x{i}", "unit": "1", "mean": 0.0, "std": 1.0} for i in range(shape.features)]
    target = {"name": "x0", "unit": "1", "mean": 0.0, "std": 1.0, "feature": 0}
    return params, export_model(params, ranges, bits_config(config, shape, **overrides), shape, feats, target, 1.0, {})


def test_exporter_refuses_bit_widths_outside_the_contract():
    with pytest.raises(ExportError, match="bits"):
        _random_export(MF.Shape(4, 1, 8, 1, 1, 1), "W8A8", input_bits=17)
    with pytest.raises(ExportError, match="bits"):
        _random_export(MF.Shape(4, 1, 8, 1, 1, 1), "W5A8")


def test_exporter_refuses_overflowing_linear_bound():
    shape = MF.Shape(4, 16, 256, 1, 1, 1)
    with pytest.raises(ExportError, match="accumulator bound"):
        _random_export(shape, "W8A8", input_bits=16, pe_bits=16)


def test_exporter_refuses_multiplier_too_large():
    shape = MF.Shape(4, 1, 8, 1, 1, 1)
    rng = np.random.default_rng(1)
    params = gen_vectors.random_params(shape, rng)
    ranges = {}
    for w in gen_vectors.random_windows(shape, 8, rng):
        floatmodel.forward(params, shape, w, ranges)
    ranges["output"] = (-1e-12, 1e-12)   # an output grid far finer than the head's inputs
    with pytest.raises(ExportError, match="too large"):
        export_model(params, ranges, bits_config("W8A8", shape), shape,
                     [{"name": "x", "unit": "1", "mean": 0.0, "std": 1.0}],
                     {"name": "x", "unit": "1", "mean": 0.0, "std": 1.0, "feature": 0}, 1.0, {})


def test_integer_model_tracks_float_model():
    shape = MF.Shape(24, 7, 32, 2, 1, 1)
    params, data = _random_export(shape, "W8A8")
    model = MF.load_model(data)
    wins = gen_vectors.random_windows(shape, 64, np.random.default_rng(7))
    fl = np.array([floatmodel.forward(params, shape, w) for w in wins])
    q = reference.forward_batch(model, np.stack([AIO.quantize_input(model, w) for w in wins]))
    y = np.array([AIO.dequantize_output(model, o) for o in q])
    assert np.sqrt(np.mean((y - fl) ** 2)) < 0.1 * fl.std()


def test_io_helpers_round_half_away_and_reject_nan():
    model = MF.load_model(os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w8a8.safetensors"))
    _, s, z = model.act("input")
    x = np.full((24, 1), 2.5 * s)   # exactly 2.5 steps
    assert np.all(AIO.quantize_input(model, x) == z + 3)
    assert np.all(AIO.quantize_input(model, -x) == z - 3)
    x[5, 0] = np.nan
    with pytest.raises(ValueError):
        AIO.quantize_input(model, x)


# --- contract v2: the linear skip path --------------------------------------------------------

V2 = os.path.join(ROOT, "models/random-v2/w24f1d16h1n1p1-w8a8-skip.safetensors")


def test_v2_loads_and_v1_is_unchanged():
    assert MF.load_model(V2).shape.skip and MF.load_model(V2).meta["version"] == 2
    assert not MF.load_model(os.path.join(ROOT, "models/random/w24f1d16h1n1p1-w8a8.safetensors")).shape.skip


@pytest.mark.parametrize("path,mutate,needle", [
    (V2, lambda h, m: m.update(version=1), "skip.bias is not part of this model"),
    ("models/random/w24f1d16h1n1p1-w8a8.safetensors", lambda h, m: m.update(version=2), "activations.head is missing"),
    (V2, lambda h, m: m.update(version=3), "version is 3"),
    (V2, lambda h, m: m["activations"]["skip"].update(bits=17), "activations.skip.bits"),
    (V2, lambda h, m: m["requant"]["output"].pop("m2"), "requant.output.m2"),
])
def test_v2_loader_rejects_inconsistent_files(path, mutate, needle):
    data = open(os.path.join(ROOT, path), "rb").read()
    with pytest.raises(MF.ModelError) as e:
        MF.load_model(_edit(data, mutate))
    assert needle in str(e.value)


def test_skip_path_takes_part_in_the_forecast():
    m = MF.load_model(V2)
    inputs, outputs = read_vectors(V2.replace(".safetensors", ".vectors.txt"))
    m.tensors["skip.weight"] = np.full_like(m.tensors["skip.weight"], m.weight("skip.weight")[2])
    assert not np.array_equal(reference.forward_batch(m, inputs), outputs)


def test_v2_export_bounds_and_paramimage_format():
    from aiot import paramimage
    shape = MF.Shape(24, 2, 8, 1, 1, 3, skip=True)
    _, data = _random_export(shape, "W8A8", input_bits=16)
    m = MF.load_model(data)
    assert m.meta["activations"]["skip"]["bits"] == 16 and m.tensors["skip.weight"].shape == (3, 48)
    image = paramimage.serialize(m)   # format 2: the skip path goes to the accelerator too
    assert image[8:10] == bytes([2, 0])
