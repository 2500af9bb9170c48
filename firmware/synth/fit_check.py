#!/usr/bin/env python3
"""Synthesize aiot_top with yosys `synth_xilinx -family xc7` and compare the cell counts with
the XC7S15 (8,000 LUTs, 16,000 FFs, 20 DSP48E1, 10 RAMB36 = 20 RAMB18). Exits 1 when the design
does not fit (with --margin also when it uses more than 85 % of the LUTs). Also reports the logic depth of
the longest register-to-register path (yosys ltp on the flattened netlist). These are pre-place-and-route estimates: no 7-series place-and-route is available.

usage: fit_check.py [--param NAME=VALUE ...] [--margin] [--out PREFIX]
"""
import argparse
import os
import re
import subprocess
import sys

from yosys_stat import cell_counts

HERE = os.path.dirname(os.path.abspath(__file__))
RTL = os.path.join(HERE, "..", "rtl")
LIMITS = {"LUT": 8000, "FF": 16000, "DSP48E1": 20, "RAMB18": 20}
LUT_MARGIN = 0.85       # issue 15: designs above this rarely route well


def classify(cells):
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    # LUT RAM and SRL primitives occupy LUTs too
    lutram = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1S": 4,
              "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "SRL16E": 1, "SRLC32E": 1, "RAM32M16": 8, "RAM64M8": 8}
    lut_ram = sum(cells.get(k, 0) * w for k, w in lutram.items())
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    dsp = cells.get("DSP48E1", 0)
    ramb18 = cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0)
    return {"LUT": lut + lut_ram, "LUT_logic": lut, "LUT_ram": lut_ram, "FF": ff, "DSP48E1": dsp,
            "RAMB18": ramb18, "CARRY4": cells.get("CARRY4", 0)}


NET_PS = 400            # assumed routing delay per LUT-to-LUT hop (carry chains and MUXF7/8 use dedicated wires)


def sta_summary(text):
    """(arrival ps, endpoint wire, LUTs on the path, cells on the path) of yosys `sta`'s longest path."""
    m = re.search(r"Latest arrival time in '\S+' is (\d+):\n((?:.*\n?)*)", text)
    if not m:
        return None
    path = [l for l in m.group(2).splitlines() if re.match(r"^\s+\d+ \S+ \(", l)]
    types = [re.search(r"\((\w+)\.", l).group(1) for l in path]
    n_lut = sum(t.startswith("LUT") or t.startswith("RAM") for t in types)
    end = m.group(2).splitlines()[1].strip() if len(m.group(2).splitlines()) > 1 else "?"
    return int(m.group(1)), end, n_lut, len(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--param", action="append", default=[], help="aiot_top parameter NAME=VALUE")
    ap.add_argument("--margin", action="store_true", help="fail above 85 %% LUT use")
    ap.add_argument("--out", default=os.path.join(HERE, "build", "aiot_top"))
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    files = [os.path.join(RTL, f.strip()) for f in open(os.path.join(RTL, "files.f")) if f.strip()]
    params = " ".join(f"-set {p.split('=')[0]} {p.split('=')[1]}" for p in args.param)
    script = open(os.path.join(HERE, "synth.ys.in")).read()
    script = script.replace("@RTL@", " ".join(files)).replace("@OUT@", args.out)
    if params:
        script = script.replace("@PARAMS@", params)
    else:
        script = "\n".join(l for l in script.splitlines() if "@PARAMS@" not in l)
    ys = args.out + ".ys"
    with open(ys, "w") as f:
        f.write(script + "\n")
    log = args.out + ".log"
    with open(log, "w") as f:
        r = subprocess.run(["yosys", "-q", "-s", ys], stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print(f"yosys failed, see {log}", file=sys.stderr)
        return 2
    cells = cell_counts(open(args.out + ".stat.txt").read(), after="=== design hierarchy ===")
    use = classify(cells)
    ok = True
    label = " ".join(args.param) or "default configuration"
    print(f"XC7S15 fit, yosys synth_xilinx estimate before place and route ({label}):")
    for k, lim in LIMITS.items():
        flag = "ok" if use[k] <= lim else "DOES NOT FIT"
        ok &= use[k] <= lim
        print(f"  {k:8s} {use[k]:6d} / {lim:6d}  ({100.0 * use[k] / lim:5.1f} %)  {flag}")
    print(f"  (LUTs: {use['LUT_logic']} logic + {use['LUT_ram']} as distributed RAM; CARRY4 {use['CARRY4']})")
    if use["LUT"] > LUT_MARGIN * LIMITS["LUT"]:
        print(f"  WARNING: LUT use above {100 * LUT_MARGIN:.0f} % of the part ({int(LUT_MARGIN * LIMITS['LUT'])}): "
              f"little routing margin{' (fails with --margin)' if not args.margin else ''}")
        ok &= not args.margin
    ltp_text = open(args.out + ".ltp.txt").read()
    ltp = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp_text)
    if ltp:
        via = re.findall(r"\(via (\S+)\)", ltp_text)
        carry = sum("carry4" in v.lower() for v in via)
        muxf = sum(bool(re.search(r"mux[78]|muxf", v.lower())) for v in via)
        print(f"  logic depth of the longest path: {ltp.group(1)} cells ({carry} CARRY4, {muxf} MUXF7/8, "
              f"{len(via) - carry - muxf} LUT or LUT RAM); yosys ltp on the flattened netlist, "
              f"flip-flops, block RAM and DSP48E1 end a path")
    sta = sta_summary(open(args.out + ".sta.txt").read()) if os.path.exists(args.out + ".sta.txt") else None
    if sta:
        ps, end, n_lut, n_path = sta
        est = ps + NET_PS * n_lut
        print(f"  longest path by yosys sta (Xilinx cell delays of cells_sim.v, no routing): {ps / 1000:.2f} ns "
              f"over {n_path} cells ({n_lut} LUTs), ending at {end}")
        print(f"  Fmax estimate: 1 / ({ps / 1000:.2f} ns + {n_lut} LUT hops x {NET_PS / 1000:.2f} ns assumed routing) "
              f"= {1e6 / est:.0f} MHz (an estimate, not place-and-route timing)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
