"""Float pretraining and quantization-aware fine-tuning with early stopping on validation."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tools.train.data import DataSet
from tools.train.model import Shape, Transformer, activation_names

torch.set_num_threads(1)  # two threads are far slower on the shared 2-core machines


@dataclass
class Schedule:
    float_epochs: int = 50
    float_lr: float = 6e-3
    float_patience: int = 25
    qat_epochs: int = 30
    qat_lr: float = 1e-3
    qat_patience: int = 15
    batch: int = 256
    ema: float = 0.01
    kd: float = 0.0                  # weight of distillation from the float model in the QAT loss (0..1)
    learn_ranges: bool = False       # LSQ-style trained activation ranges instead of the EMA observer
    range_margin: float = 0.0        # widen every observed activation range by this fraction each side
    weight_clip: bool = False        # clip <=4-bit weights to their MSE-best range at QAT start and keep them there
    train_limit: int | None = None   # quick mode: only the first N training windows


class Diverged(ValueError):
    """A fit in which no epoch reached a finite validation MSE."""


@dataclass
class Fit:
    best_epoch: int
    epochs_run: int
    val_mse: float
    seconds: float
    history: list[float] = field(default_factory=list)


def tensors(ds: DataSet, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    w = ds.splits[split]
    x, y = ds.normalize_x(w.x), ds.normalize_y(w.y)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


@torch.no_grad()
def predict(model: Transformer, x: torch.Tensor, batch: int = 2048) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def mse(model: Transformer, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((predict(model, x) - y) ** 2).mean())


def _fit(model: Transformer, train, val, epochs: int, lr: float, patience: int, batch: int,
         gen: torch.Generator, train_mode: str, eval_mode: str, teacher: torch.Tensor | None = None,
         kd: float = 0.0, bounds: list | None = None) -> Fit:
    x, y = train
    if teacher is not None and kd > 0:
        # distillation: the float model's forecasts are a smoother target than the noisy truth
        y = (1.0 - kd) * y + kd * teacher
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # cosine decay over the epoch budget: the late, small steps settle both the float and QAT fits
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr * 0.02)
    loss_fn = nn.MSELoss()
    best = (float("inf"), -1, None)
    history = []
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(epochs):
        model.train()
        model.set_mode(train_mode)
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            if bounds:
                with torch.no_grad():
                    for w, a, b in bounds:
                        w.clamp_(a, b)
        sched.step()
        model.set_mode(eval_mode)
        v = mse(model, *val)
        history.append(v)
        if v < best[0]:
            best = (v, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= patience:
            break
    if best[2] is None:
        raise Diverged(f"no epoch of {epoch + 1} gave a finite validation MSE (last {history[-1] if history else None}): "
                       f"the fit diverged; lower the learning rate ({lr})")
    model.load_state_dict(best[2])
    model.set_mode(eval_mode)
    return Fit(best_epoch=best[1] + 1, epochs_run=epoch + 1, val_mse=best[0],
               seconds=time.perf_counter() - t0, history=history)


def pretrain_float(ds: DataSet, shape: Shape, sched: Schedule, seed: int) -> tuple[Transformer, Fit]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Transformer(shape)
    fit = _fit(model, tensors(ds, "train", sched.train_limit), tensors(ds, "val"), sched.float_epochs,
               sched.float_lr, sched.float_patience, sched.batch, gen, "float", "float")
    return model, fit


@torch.no_grad()
def calibrate(model: Transformer, x: torch.Tensor, batch: int, gen: torch.Generator) -> None:
    """One float pass over the training windows in shuffled batches (as QAT will see them): observers
    start at the first batch's range and follow an EMA of batch min/max. In time order the EMA would
    end up describing only the last weeks of the training split and clip the rest."""
    model.eval()
    model.set_mode("calib")
    perm = torch.randperm(len(x), generator=gen)
    for i in range(0, len(x), batch):
        model(x[perm[i:i + batch]])


def _fine_tune_start(float_model: Transformer, ds: DataSet, seed: int, skip: bool) -> tuple[Transformer, torch.Generator]:
    """Where QAT and its float twin start: the seed set, a copy of the float model with its norms
    folded, the skip path at the ridge solution if `skip`."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(float_model)
    model.fold_norms()
    if skip:
        init_skip(model, ds)
    return model, gen


def qat(float_model: Transformer, ds: DataSet, bits: dict[str, int], sched: Schedule,
        seed: int) -> tuple[Transformer, Fit]:
    """Copy of the float model with BN frozen and folded, observers calibrated, then QAT."""
    model, gen = _fine_tune_start(float_model, ds, seed, skip="skip" in bits)
    model.set_bits(bits)
    for o in model.obs.values():
        o.momentum = sched.ema
        o.margin = sched.range_margin
    train = tensors(ds, "train", sched.train_limit)
    calibrate(model, train[0], sched.batch, gen)
    if sched.learn_ranges:
        for o in model.obs.values():
            o.learn_range()
    teacher = predict_float(float_model, train[0]) if sched.kd > 0 else None
    bounds = clip_weights(model, bits) if sched.weight_clip else None
    fit = _fit(model, train, tensors(ds, "val"), sched.qat_epochs, sched.qat_lr, sched.qat_patience,
               sched.batch, gen, "qat", "frozen", teacher, sched.kd, bounds)
    return model, fit


def qat_from(parent: Transformer, ds: DataSet, bits: dict[str, int], sched: Schedule,
             seed: int) -> tuple[Transformer, Fit]:
    """Staged (progressive) QAT: a copy of a trained QAT model of the same architecture (a wider
    configuration, e.g. W8A8S for W4A8S), its weights AND its observer ranges kept, the new widths
    set, then the usual QAT schedule. No calibration pass (the parent's ranges are the start; the EMA
    goes on tracking them in training), but one shuffle is drawn as calibrate() would, so the epochs
    see the same batches as `qat` with the same seed. BN is already folded, the skip path (if any)
    trained, so neither is redone."""
    if set(activation_names(parent.shape)) != set(activation_names(_shape_for(parent.shape, bits))):
        raise ValueError("qat_from: the parent's architecture differs (skip path or shape); stage only "
                         "between configurations of the same architecture")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(parent)
    ranges = {k: (o.lo_.clone(), o.hi_.clone(), o.seen.clone()) for k, o in parent.obs.items()}
    model.set_bits(bits)
    for k, o in model.obs.items():
        o.momentum = sched.ema
        o.margin = sched.range_margin
        if k in ranges and o.fixed is None:
            o.lo_.copy_(ranges[k][0])
            o.hi_.copy_(ranges[k][1])
            o.seen.copy_(ranges[k][2])
    train = tensors(ds, "train", sched.train_limit)
    torch.randperm(len(train[0]), generator=gen)  # the calibration pass's shuffle (kept for parity)
    if sched.learn_ranges:
        for o in model.obs.values():
            o.learn_range()
    teacher = None
    if sched.kd > 0:
        raise ValueError("qat_from: distillation needs the float model; not supported when staging")
    bounds = clip_weights(model, bits) if sched.weight_clip else None
    model.set_mode("frozen")
    fit = _fit(model, train, tensors(ds, "val"), sched.qat_epochs, sched.qat_lr, sched.qat_patience,
               sched.batch, gen, "qat", "frozen", teacher, sched.kd, bounds)
    return model, fit


def float_twin(float_model: Transformer, ds: DataSet, sched: Schedule, seed: int,
               skip: bool) -> tuple[Transformer, Fit]:
    """The float reference of a QAT configuration: what `qat` does (a copy of the float model, norms
    folded, the skip path set at the ridge solution if `skip`, the same seed's shuffles and the same
    QAT schedule) without quantization. QAT fine-tunes for its epochs on top of the pretraining, so
    the pretrained float model alone understates what quantization costs; this twin has the same
    training budget (tools/train/README.md, "Float twins")."""
    model, gen = _fine_tune_start(float_model, ds, seed, skip)
    train = tensors(ds, "train", sched.train_limit)
    val = tensors(ds, "val")
    torch.randperm(len(train[0]), generator=gen)  # the calibration pass's shuffle (parity with qat)
    model.set_mode("float")
    start = (mse(model, *val), copy.deepcopy(model.state_dict()))
    try:
        fit = _fit(model, train, val, sched.qat_epochs, sched.qat_lr, sched.qat_patience,
                   sched.batch, gen, "float", "float")
    except Diverged:
        fit = Fit(best_epoch=0, epochs_run=sched.qat_epochs, val_mse=float("inf"), seconds=0.0)
    if start[0] <= fit.val_mse:
        # fine-tuning did not improve on the start by validation (it can overfit at once): the twin
        # is then the start itself (for v1 the pretrained float model), best epoch 0
        model.load_state_dict(start[1])
        fit = Fit(best_epoch=0, epochs_run=fit.epochs_run, val_mse=start[0], seconds=fit.seconds,
                  history=fit.history)
    return model, fit


@torch.no_grad()
def model_from_file(source, margin: float = 0.0) -> Transformer:
    """A trained QAT model back from its exported file (a staged QAT parent when the run that trained
    it cannot be reproduced, e.g. on another CPU): every weight, norm scale and bias dequantized
    (s_W (q - z_W); bias B s_x s_W), every activation range the span of its grid, [s (lo(b) - z),
    s (hi(b) - z)], which gives back the file's (s, z) (with `margin` undone, so the observer's
    widened range is that span). In 'frozen' mode it computes the file's grids on the file's
    quantized weights."""
    from tools.aiot import modelfile as MF
    from tools.aiot import reference
    from tools.train.fakequant import hi, lo
    qm = reference.load_model(source)
    s = qm.shape
    model = Transformer(Shape(window=s.window, features=s.features, d_model=s.d_model, heads=s.heads,
                              layers=s.layers, horizon=s.horizon))
    model.fold_norms()
    if s.skip:
        zw = np.zeros((s.horizon, s.window * s.features))
        model.add_skip(zw, np.zeros(s.horizon), np.zeros((s.horizon, s.d_model)), np.zeros(s.horizon))
    acts, wmeta = qm.meta["activations"], qm.meta["weights"]
    model.set_bits({**{n: a["bits"] for n, a in acts.items()}, **{n: w["bits"] for n, w in wmeta.items()}})
    params = dict(model.named_parameters())

    def deq(wname):
        w = wmeta[wname]
        return w["scale"] * (qm.tensors[wname].astype(np.float64) - w["zero_point"]), w["scale"]

    def put(name, value):
        params[name].copy_(torch.tensor(np.asarray(value), dtype=torch.float32).reshape(params[name].shape))

    for name, x, _, _, _ in MF.linear_layers(s):
        w, sw = deq(f"{name}.weight")
        put(f"{name}.weight", w)
        put(f"{name}.bias", qm.tensors[f"{name}.bias"].astype(np.float64) * acts[x]["scale"] * sw)
    for name, x, _ in MF.norm_layers(s):
        w, sw = deq(f"{name}.weight")
        put(f"{name}.scale", w)
        put(f"{name}.shift", qm.tensors[f"{name}.bias"].astype(np.float64) * acts[x]["scale"] * sw)
    for o in model.obs.values():
        if o.fixed is not None:
            continue
        a = acts[o.name]
        L, H = a["scale"] * (lo(a["bits"]) - a["zero_point"]), a["scale"] * (hi(a["bits"]) - a["zero_point"])
        if margin:
            if L < 0:
                span = (H - L) / (1 + 2 * margin)
                L, H = L + margin * span, H - margin * span
            else:
                H = (H + margin * L) / (1 + margin)
        o.lo_.fill_(L)
        o.hi_.fill_(H)
        o.seen.fill_(True)
        o.margin = margin
    model.set_mode("frozen")
    return model


def _shape_for(shape: Shape, bits: dict[str, int]) -> Shape:
    import dataclasses
    return dataclasses.replace(shape, skip="skip" in bits)


@torch.no_grad()
def clip_weights(model: Transformer, bits: dict[str, int], max_bits: int = 4) -> list:
    """Narrow weight tensors (<= max_bits) clipped to the range that minimizes their own rounding
    error: a b-bit grid over the full min/max spends its few levels on a handful of outliers. The
    exporter takes each weight's min/max, so keeping the weights inside the clip range (after every
    step) is all it takes; the integer contract is unchanged."""
    from tools.train.fakequant import fake_quant
    from tools.aiot.quant import act_qparams
    out = []
    for name, w in model.named_parameters():
        b = bits.get(name)
        if b is None or not name.endswith(".weight") or b > max_bits or w.numel() < 2:
            continue
        lo, hi = float(w.min()), float(w.max())
        best = (float("inf"), lo, hi)
        for k in range(30, 101):
            a = k / 100.0
            s, z = act_qparams(a * lo, a * hi, b)
            e = float(((fake_quant(w, s, z, b) - w) ** 2).mean())
            if e < best[0]:
                best = (e, a * lo, a * hi)
        w.clamp_(best[1], best[2])
        out.append((w, best[1], best[2]))
    return out


@torch.no_grad()
def init_skip(model: Transformer, ds: DataSet) -> None:
    """Contract v2 start: the skip path is the ridge baseline's solution on the same window, and the
    head is refitted (least squares, closed form) to the ridge's training residual from the float
    model's pooled features, so QAT starts at ridge + correction and trains both jointly."""
    from tools.train import baselines
    w, b, _ = baselines.ridge_solution(ds)
    x, y = tensors(ds, "train")
    xn = x.numpy().astype(np.float64)
    resid = y.numpy().astype(np.float64) - (xn.reshape(len(xn), -1) @ w.T + b)
    model.eval()
    model.set_mode("float")
    feats = model.pooled(x).numpy().astype(np.float64)
    a = np.hstack([feats, np.ones((len(feats), 1))])
    reg = 1e-3 * len(a) * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    coef = np.linalg.solve(a.T @ a + reg, a.T @ resid)
    model.add_skip(w, b, coef[:-1].T, coef[-1])


@torch.no_grad()
def predict_float(float_model: Transformer, x: torch.Tensor) -> torch.Tensor:
    m = copy.deepcopy(float_model)
    m.set_mode("float")
    return predict(m, x)
