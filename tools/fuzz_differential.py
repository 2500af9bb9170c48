"""Differential fuzzing: random valid models and windows through the numpy reference and the Swift
engine (`aiotctl check-vectors`), and at a lower rate through the accelerator RTL co-simulation
(`aiotctl infer --device sim-rtl:...` against the software engine). Every mismatch is a failure.

    .venv/bin/python tools/fuzz_differential.py [--cases N] [--seed S] [--vectors V]
        [--aiotctl .build/debug/aiotctl] [--rtl firmware/build/cosim/aiot-rtl-sim] [--rtl-every K]
        [--keep DIR]

Case i uses seed S+i for everything (shape, bit widths, weights, calibration, windows): rerun one
case with --seed S+i --cases 1. A failing case's model and vectors are kept (under --keep, default
a temp directory that is printed). Ends with "N passed, M failed"."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from aiot import floatmodel, reference  # noqa: E402
from aiot import quant as Q  # noqa: E402
from aiot.export import bits_config, export_model  # noqa: E402
from aiot.modelfile import Shape, load_model  # noqa: E402
from aiot.vectors import write_vectors  # noqa: E402
from gen_vectors import random_params, random_windows  # noqa: E402

RTL_SHAPE = Shape(window=24, features=1, d_model=16, heads=1, layers=1, horizon=1)


def random_case(rng: np.random.Generator) -> tuple[Shape, str, dict]:
    """A random shape within what the Swift engine and the contract accept, and bit widths."""
    if rng.random() < 0.25:
        shape = RTL_SHAPE
    else:
        d_model = int(rng.choice([8, 16, 32]))
        heads = int(rng.choice([h for h in (1, 2, 4) if d_model // h >= 4]))
        shape = Shape(window=int(rng.choice([4, 6, 12, 24, 48])), features=int(rng.integers(1, 5)), d_model=d_model,
                      heads=heads, layers=int(rng.integers(1, 4)), horizon=int(rng.choice([1, 2, 3, 6])))
    w = int(rng.choice([4, 6, 8]))
    a = int(rng.choice([a for a in (4, 6, 8) if a >= w or rng.random() < 0.5]))
    overrides = {}
    if rng.random() < 0.3:
        overrides["input_bits"] = int(rng.choice([8, 12, 16]))
    if rng.random() < 0.3:
        overrides["output_bits"] = int(rng.choice([8, 12, 16]))
    if rng.random() < 0.2:
        overrides["pe_bits"] = int(rng.choice([8, 12, 16]))
    return shape, f"W{w}A{a}", overrides


def build_case(seed: int, n_vectors: int, out: str) -> tuple[str, str, Shape]:
    rng = np.random.default_rng(seed)
    shape, config, overrides = random_case(rng)
    params = random_params(shape, rng)
    # Scale weights now and then so saturation and wide accumulators get exercised.
    if rng.random() < 0.3:
        k = float(rng.choice([0.25, 4.0]))
        params = {n: v * k if n.endswith(".weight") else v for n, v in params.items()}
    ranges: dict = {}
    for win in random_windows(shape, 32, rng):
        floatmodel.forward(params, shape, win, ranges)
    shrink = float(rng.uniform(0.5, 1.0))
    ranges = {k: (shrink * lo, shrink * hi) for k, (lo, hi) in ranges.items()}
    bits = bits_config(config, shape, **overrides)
    features = [{"name": f"x{f}", "unit": "1", "mean": 0.0, "std": 1.0} for f in range(shape.features)]
    target = {"name": "x0", "unit": "1", "mean": 0.0, "std": 1.0, "feature": 0}
    data = export_model(params, ranges, bits, shape, features, target, 60.0,
                        {"tool": "tools/fuzz_differential.py", "kind": "differential fuzz case", "seed": str(seed),
                         "configuration": config})
    name = f"case-{seed}"
    model_path = os.path.join(out, name + ".safetensors")
    with open(model_path, "wb") as f:
        f.write(data)
    model = load_model(data)
    bi, si, zi = model.act("input")
    n_in = shape.window * shape.features
    smooth = random_windows(shape, n_vectors // 2, rng)
    q_smooth = np.stack([Q.quantize(w, si, zi, bi) for w in smooth]).reshape(len(smooth), -1)
    # Hostile windows: uniform over the whole input range, and runs pinned at either end.
    uniform = rng.integers(Q.lo(bi), Q.hi(bi) + 1, size=(n_vectors - len(smooth) - 2, n_in))
    edges = np.stack([np.full(n_in, Q.lo(bi)), np.full(n_in, Q.hi(bi))])
    inputs = np.concatenate([q_smooth, uniform, edges]).astype(np.int64)
    outputs = reference.forward_batch(model, inputs)
    vec_path = os.path.join(out, name + ".vectors.txt")
    write_vectors(vec_path, inputs, outputs)
    return model_path, vec_path, shape


def check_swift(aiotctl: str, model: str, vectors: str) -> str | None:
    p = subprocess.run([aiotctl, "check-vectors", "--model", model, "--vectors", vectors],
                       capture_output=True, text=True)
    m = re.search(r"(\d+) of (\d+) vectors bit-identical", p.stdout)
    if p.returncode != 0 or not m or m.group(1) != m.group(2):
        return (p.stdout + p.stderr).strip()[:2000]
    return None


def check_rtl(aiotctl: str, sim: str, model: str, seed: int, out: str) -> str | None:
    rng = np.random.default_rng(seed ^ 0x5EED)
    rows = [",".join(f"{v:.4f}" for v in rng.normal(0, rng.uniform(0.5, 4), size=24)) for _ in range(8)]
    csv = os.path.join(out, f"case-{seed}.csv")
    with open(csv, "w") as f:
        f.write("\n".join(rows) + "\n")
    sw = subprocess.run([aiotctl, "infer", "--json", "--model", model, "--input", csv], capture_output=True, text=True)
    rtl = subprocess.run([aiotctl, "infer", "--json", "--device", f"sim-rtl:{sim}", "--model", model, "--input", csv],
                         capture_output=True, text=True)
    if sw.returncode != 0 or rtl.returncode != 0:
        return f"aiotctl infer failed: {sw.stderr.strip()} {rtl.stderr.strip()}"[:2000]
    import json
    a, b = json.loads(sw.stdout), json.loads(rtl.stdout)
    if b.get("fallback_inferences") != 0 or b.get("fpga_inferences") != len(rows):
        return f"not every inference ran on the RTL: {b.get('fpga_inferences')} fpga, {b.get('fallback_inferences')} fallback"
    if a["forecasts"] != b["forecasts"]:
        return f"RTL and software forecasts differ: {a['forecasts'][:2]} vs {b['forecasts'][:2]}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None, help="first case's seed (default: random, printed)")
    ap.add_argument("--vectors", type=int, default=32)
    ap.add_argument("--aiotctl", default=os.path.join(os.path.dirname(HERE), ".build", "debug", "aiotctl"))
    ap.add_argument("--rtl", default=None, help="aiot-rtl-sim executable (firmware/cosim/build.sh); off if not given")
    ap.add_argument("--rtl-every", type=int, default=4, help="RTL check on every K-th case of the RTL's shape")
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    seed0 = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    if not os.access(args.aiotctl, os.X_OK):
        print(f"no aiotctl at {args.aiotctl}; run swift build first")
        return 2
    out = args.keep or tempfile.mkdtemp(prefix="aiot-diff-")
    os.makedirs(out, exist_ok=True)
    print(f"differential: {args.cases} cases from seed {seed0}, {args.vectors} windows each, files in {out}")
    passed = failed = rtl_runs = rtl_shape_cases = 0
    for i in range(args.cases):
        seed = seed0 + i
        model, vectors, shape = build_case(seed, args.vectors, out)
        problem = check_swift(args.aiotctl, model, vectors)
        if problem is None and args.rtl and shape == RTL_SHAPE:
            rtl_shape_cases += 1
            if rtl_shape_cases % args.rtl_every == 1 or args.rtl_every == 1:
                rtl_runs += 1
                problem = check_rtl(args.aiotctl, args.rtl, model, seed, out)
        if problem is None:
            passed += 1
            for p in (model, vectors):
                os.remove(p)
        else:
            failed += 1
            print(f"  FAIL seed {seed} ({shape}): {problem}\n  replay: --seed {seed} --cases 1; kept {model}")
    print(f"differential: RTL co-simulation on {rtl_runs} case(s)" + ("" if args.rtl else " (no --rtl given)"))
    if failed == 0 and not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
