"""Take configurations from a training run into the bundle, by validation MSE only.

    python -m tools.train.adopt RUN_OUT/elecdemand W4A8 W6A8IO16S --what "why and what was tried"
    python -m tools.train.sweep --report-only        # then re-render docs/results.md and models/README.md

RUN_OUT is a `sweep --add ... --out RUN_OUT` run over a copy of the bundled folder, so its float
model is the bundled one (checked here). A configuration is taken only where the run's validation
MSE is lower than the bundled model's; its four files (safetensors, vectors, ONNX, metrics) are
copied, its summary entry replaces the bundled one, the run's `added` record is appended to the
folder's summary, and the run (its command, time, load and --what) to models/sweep.json. Test MSE is
printed, never used to choose.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = (".safetensors", ".vectors.txt", ".onnx", ".metrics.json")


class AdoptError(Exception):
    pass


def adopt(run_folder: Path, configs: list[str], what: str, models: Path = REPO / "models") -> list[str]:
    """Copies the configurations better on validation than the bundle; returns one line per config."""
    run_folder, models = Path(run_folder), Path(models)
    run = json.loads((run_folder / "summary.json").read_text())
    folder = models / run["dataset"]
    bundled = json.loads((folder / "summary.json").read_text())
    if run["float"]["seed"] != bundled["float"]["seed"] or run["float"]["val_mse"] != bundled["float"]["val_mse"]:
        raise AdoptError(f"{run_folder}: its float model (seed {run['float']['seed']}, validation "
                         f"{run['float']['val_mse']}) is not the bundled one ({bundled['float']['seed']}, "
                         f"{bundled['float']['val_mse']}); run `sweep --add` over a copy of {folder}")
    lines, taken = [], []
    for c in configs:
        new = run["configs"].get(c)
        if new is None:
            raise AdoptError(f"{c}: not in {run_folder / 'summary.json'}")
        old = bundled["configs"].get(c)
        nv = new["qat"]["val_mse"]
        ov = old["qat"]["val_mse"] if old else float("inf")
        line = (f"{run['dataset']} {c}: validation {ov:.6g} -> {nv:.6g}"
                + (f" ({100 * (nv / ov - 1):+.1f}%)" if old else " (new)")
                + f", test {old['integer']['mse'] if old else float('nan'):.5f} -> {new['integer']['mse']:.5f}")
        if nv >= ov:
            lines.append(line + ": not taken (not better on validation)")
            continue
        missing = [s for s in FILES if not (run_folder / f"{c}{s}").exists()]
        if missing:
            raise AdoptError(f"{c}: {run_folder} lacks {', '.join(c + s for s in missing)}")
        taken.append(c)
        lines.append(line + ": taken")
    if not taken:
        return lines
    for c in taken:
        for s in FILES:
            shutil.copyfile(run_folder / f"{c}{s}", folder / f"{c}{s}")
        bundled["configs"][c] = run["configs"][c]
    known = {json.dumps(a, sort_keys=True) for a in bundled.get("added", [])}
    fresh = [dict(a) for a in run.get("added", []) if json.dumps(a, sort_keys=True) not in known]
    for a in fresh:
        a["taken"] = taken   # a run's record lists what it trained; this, what the bundle kept
    bundled["added"] = bundled.get("added", []) + fresh
    (folder / "summary.json").write_text(json.dumps(bundled, indent=1, sort_keys=True) + "\n")
    meta = run_folder.parent / "sweep.json"
    sweeps_file = models / "sweep.json"
    sweeps = json.loads(sweeps_file.read_text())
    rec = json.loads(meta.read_text()) if meta.exists() else {}
    command = re.sub(r"--out \S+", "--out DIR", rec.get("command", run.get("added", [{}])[-1].get("command", "?")))
    sweeps.setdefault("runs", []).append(dict(command=command, finished=rec.get("finished"),
                                              wall_s=rec.get("wall_s"), load=rec.get("load"),
                                              what=f"{what}; taken: {' '.join(taken)}"))
    sweeps_file.write_text(json.dumps(sweeps, indent=1) + "\n")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_folder", type=Path, help="the run's data-set folder, e.g. /tmp/run/elecdemand")
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--what", required=True, help="one sentence for models/sweep.json: what the run was")
    ap.add_argument("--models", type=Path, default=REPO / "models")
    a = ap.parse_args(argv)
    try:
        for line in adopt(a.run_folder, a.configs, a.what, a.models):
            print(line)
    except (AdoptError, OSError, json.JSONDecodeError) as e:
        print(f"adopt: {e}", file=sys.stderr)
        return 1
    print("next: python -m tools.train.sweep --report-only (re-renders docs/results.md and models/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
