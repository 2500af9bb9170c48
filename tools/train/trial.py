"""Compare QAT recipes on one data set by validation MSE (the recipe choices in README.md).

    python -m tools.train.trial --data elecdemand --configs W8A8 W4A8 \\
        --variant base: --variant kd=0.5 --variant lsq=1 --variant io16=1,kd=0.5,lsq=1

One float pretraining (cached under /tmp by data set, seed and epochs), then every configuration x
variant fine-tuned from it with the same seed. A variant is KEY=VALUE,...: kd=ALPHA, lsq=0/1 (trained
activation ranges), io16=0/1 (16-bit input, pe_add and output), skip=0/1 (the
linear skip path, contract v2), epochs=N, lr=LR. Prints one JSON line
per run (margin=F widens every activation range by F of its span each side): validation MSE (the choice), its test MSE (reported only, never used to choose) and seconds.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

torch.set_num_threads(1)


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":") if ":" in text else (text, "", text)
    kv = {}
    for p in filter(None, rest.split(",")):
        k, _, v = p.partition("=")
        kv[k.strip()] = float(v)
    return name or "base", kv


def main(argv=None) -> int:
    from tools.train import data, sweep, train
    from tools.train.model import Shape
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="elecdemand")
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--configs", nargs="+", default=["W8A8", "W4A8"])
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float-epochs", type=int, default=50)
    ap.add_argument("--qat-epochs", type=int, default=30)
    a = ap.parse_args(argv)
    ds = data.load(a.data, window=24, horizon=a.horizon)
    shape = Shape(window=24, features=len(ds.spec.features), d_model=16, heads=1, layers=1, horizon=a.horizon)
    sched = train.Schedule(float_epochs=a.float_epochs, qat_epochs=a.qat_epochs)
    cache = Path(f"/tmp/aiot-trial-float-{a.data}-p{a.horizon}-s{a.seed}-e{a.float_epochs}.pt")
    if cache.exists():
        fmodel = train.Transformer(shape)
        fmodel.load_state_dict(torch.load(cache))
    else:
        fmodel, fit = train.pretrain_float(ds, shape, sched, a.seed)
        torch.save(fmodel.state_dict(), cache)
    xv, yv = train.tensors(ds, "val")
    xt, yt = train.tensors(ds, "test")
    fm = train.predict_float(fmodel, xv)
    print(json.dumps(dict(run="float", val=float(((fm - yv) ** 2).mean()),
                          test=float(((train.predict_float(fmodel, xt) - yt) ** 2).mean()))), flush=True)
    for cfg in a.configs:
        for v in a.variant or ["base:"]:
            name, kv = parse_variant(v)
            s = replace(sched, kd=kv.get("kd", 0.0), learn_ranges=bool(kv.get("lsq", 0)),
                        range_margin=kv.get("margin", 0.0),
                        qat_epochs=int(kv.get("epochs", sched.qat_epochs)), qat_lr=kv.get("lr", sched.qat_lr),
                        qat_patience=int(kv.get("patience", sched.qat_patience)))
            over = dict(input=16, pe_add=16, output=16) if kv.get("io16") else {}
            if kv.get("skip"):
                over["skip"] = 16   # contract v2, the linear skip path (README "The linear skip path")
            bits = sweep.config_bits(cfg, cfg, over, shape)
            t0 = time.perf_counter()
            m, fit = train.qat(fmodel, ds, bits, s, a.seed)
            test = float(((train.predict(m, xt) - yt) ** 2).mean())
            print(json.dumps(dict(run=f"{cfg} {name}", val=fit.val_mse, test=test, epoch=fit.best_epoch,
                                  of=fit.epochs_run, s=round(time.perf_counter() - t0))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
