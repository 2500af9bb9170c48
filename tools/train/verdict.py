"""The verdict of a model against the simple baselines, in one place for docs/results.md
(report.py) and the demo's replay (tools/replay.py). Standard library only: the demo installs no
numpy, and reads the figures from the model folder's summary.json."""
from __future__ import annotations

BASELINES = ("persistence", "seasonal", "ridge", "nlinear", "dlinear")
LABELS = {
    "persistence": "persistence (last value)",
    "seasonal": "seasonal naive (same time a day earlier)",
    "ridge": "ridge (whole window, all features)",
    "nlinear": "NLinear (target window minus last value)",
    "dlinear": "DLinear (target trend + remainder)",
}
SHORT = {k: v.split(" (")[0] for k, v in LABELS.items()}


def baselines_of(s: dict) -> dict[str, dict]:
    """A summary's baselines in their own order (summary.json stores keys sorted; older summaries
    only had persistence and ridge)."""
    if "baselines" in s:
        b = s["baselines"]
        return {k: b[k] for k in BASELINES if k in b} | {k: v for k, v in b.items() if k not in BASELINES}
    return {"persistence": s["persistence"], "ridge": s["linear"]}


def verdict(label: str, m: dict, bl: dict[str, dict], strong=lambda t: f"**{t}**") -> str:
    """'<label> (test MSE x): beats A by a%, ... .' plus a plain warning naming every baseline that
    is better, and for P > 1 the horizon steps better than seasonal naive. `strong` marks the label
    and the warning (markdown bold by default)."""
    mse = m["mse"]
    wins, losses = [], []
    for k, b in bl.items():
        d = 100.0 * (mse - b["mse"]) / b["mse"]
        (wins if mse < b["mse"] else losses).append((k, b["mse"], d))
    text = f"{strong(label)} (test MSE {mse:.5f}): "
    text += ("beats " + ", ".join(f"{SHORT.get(k, k)} by {-d:.1f}%" for k, _, d in wins)
             if wins else "beats no baseline")
    text += "."
    if losses:
        losses.sort(key=lambda t: t[1])
        text += " " + strong("WARNING: " + ("a simple baseline is" if len(losses) == 1 else "simple baselines are")
                             + " better: " + ", ".join(f"{SHORT.get(k, k)} {b:.5f} (this model {d:+.1f}%)"
                                                       for k, b, d in losses)
                             + f". Use {SHORT.get(losses[0][0], losses[0][0])} instead, or retrain.")
    sn = bl.get("seasonal", {}).get("mse_per_step")
    ps = m.get("mse_per_step")
    if sn and ps:
        k = sum(a < b for a, b in zip(ps, sn))
        text += f" Horizon steps better than seasonal naive: {k} of {len(sn)}."
    return text
