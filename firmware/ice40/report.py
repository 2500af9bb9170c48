#!/usr/bin/env python3
"""Utilization and timing report of the iCE40UP5K build (called by build.sh).
Reads yosys' `stat` after synth_ice40 and nextpnr-ice40's log; exits 1 unless the design fits
the part, nextpnr placed and routed it, its timing analysis meets --freq and icepack wrote
the bitstream."""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "synth"))
from yosys_stat import cell_counts  # noqa: E402

PART = {"LUT4": 5280, "FF": 5280, "SB_MAC16": 8, "EBR": 30, "SPRAM": 4}


def yosys_cells(text):
    cells = cell_counts(text)
    return {"LUT4": cells.get("SB_LUT4", 0),
            "FF": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
            "SB_MAC16": cells.get("SB_MAC16", 0),
            "EBR": cells.get("SB_RAM40_4K", 0),
            "SPRAM": cells.get("SB_SPRAM256KA", 0),
            "SB_CARRY": cells.get("SB_CARRY", 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stat", required=True)
    ap.add_argument("--pnr", required=True)
    ap.add_argument("--freq", type=float, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pnr-rc", type=int, required=True)
    ap.add_argument("--pack-rc", type=int, required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--seconds", type=int, nargs=2, default=[0, 0])
    a = ap.parse_args()
    use = yosys_cells(open(a.stat).read())
    pnr = open(a.pnr, errors="replace").read() if os.path.exists(a.pnr) else ""
    ok = True
    print(f"iCE40UP5K-SG48 build ({a.label}), target {a.freq:g} MHz")
    print(f"synthesis (yosys synth_ice40 -dsp), {a.seconds[0]} s:")
    for k, lim in PART.items():
        fits = use[k] <= lim
        ok &= fits
        print(f"  {k:9s} {use[k]:6d} / {lim:5d}  ({100.0 * use[k] / lim:5.1f} %)  {'ok' if fits else 'DOES NOT FIT'}")
    print(f"  (SB_CARRY {use['SB_CARRY']}; a logic cell holds one LUT4, one FF and one carry)")
    # nextpnr's device utilisation after packing and its timing analysis
    util = re.findall(r"Info:\s+(ICESTORM_\w+|SB_\w+):\s+(\d+)/\s*(\d+)", pnr)
    if util:
        print(f"nextpnr-ice40 device utilisation, {a.seconds[1]} s:")
        seen = set()
        for name, n, tot in util:
            if name in seen:
                continue
            seen.add(name)
            print(f"  {name:15s} {int(n):6d} / {int(tot):5d}")
    fmax = re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", pnr)
    if fmax:
        last = {}
        for clk, f, verdict, at in fmax:     # nextpnr prints each clock after placement, then after routing
            last[clk] = (float(f), verdict, at)
        for clk, (f, verdict, at) in last.items():
            print(f"timing (nextpnr, after routing): Max frequency for clock '{clk}': {f:.2f} MHz, {verdict} at {at} MHz")
            ok &= verdict == "PASS"
        sysclk = [f for clk, (f, _, _) in last.items() if clk == "clk"]
        if not sysclk or sysclk[0] < a.freq:
            print(f"timing: the system clock 'clk' does not reach {a.freq:g} MHz")
            ok = False
    else:
        print("timing: no Max frequency line from nextpnr (it stopped before timing analysis)")
        ok = False
    if a.pnr_rc != 0:
        errs = [l for l in pnr.splitlines() if l.startswith("ERROR")]
        print(f"nextpnr-ice40 failed (exit {a.pnr_rc}): {errs[0] if errs else 'see nextpnr.log'}")
        ok = False
    if a.pack_rc == 0 and os.path.exists(a.bin):
        print(f"bitstream: {a.bin} ({os.path.getsize(a.bin)} bytes, icepack)")
    else:
        print("bitstream: not written")
        ok = False
    print("RESULT: PASS (placed, routed, timing met, bitstream written)" if ok else
          "RESULT: FAIL (see the lines above)")
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")   # the line tools/test.sh counts
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
