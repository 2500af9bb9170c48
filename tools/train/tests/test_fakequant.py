"""Fake quantization reproduces the exporter's grids exactly (in float64)."""
import numpy as np
import torch

from tools.aiot import quant as Q
from tools.train import fakequant as FQ


def test_fake_quant_matches_exporter_quantize():
    rng = np.random.default_rng(1)
    for bits in (4, 6, 8, 16):
        x = rng.normal(size=4000) * 3
        s, z = Q.act_qparams(-2.5, 4.0, bits)
        want = (Q.quantize(x, s, z, bits) - z) * s
        got = FQ.fake_quant(torch.tensor(x), s, z, bits).numpy()
        assert np.array_equal(got, want)


def test_ties_round_half_away_from_zero():
    s, z = 1.0, 0
    got = FQ.fake_quant(torch.tensor([0.5, -0.5, 1.5, -2.5], dtype=torch.float64), s, z, 8)
    assert got.tolist() == [1.0, -1.0, 2.0, -3.0]


def test_gradient_is_straight_through_inside_and_zero_outside():
    s, z = Q.act_qparams(-1.0, 1.0, 8)
    x = torch.tensor([0.3, -0.7, 5.0, -5.0], dtype=torch.float64, requires_grad=True)
    FQ.fake_quant(x, s, z, 8).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_bias_matches_exporter_rule():
    b = torch.tensor([0.01, -3.0, 1e6], dtype=torch.float64)
    scale, bits = 1e-3, 10
    lim = (1 << (bits - 1)) - 1
    want = np.clip(Q.round_half_away(b.numpy() / scale), -lim, lim) * scale
    assert np.allclose(FQ.fake_quant_bias(b, scale, bits).numpy(), want, rtol=0, atol=1e-15)


def test_observer_calibrates_then_follows_ema_and_freezes():
    o = FQ.Observer("x", 8, momentum=0.5)
    o.mode = "calib"
    o(torch.tensor([-1.0, 2.0]))
    assert o.range() == (-1.0, 2.0)
    o(torch.tensor([-3.0, 4.0]))
    assert o.range() == (-2.0, 3.0)
    o.mode = "frozen"
    y = o(torch.tensor([100.0]))
    assert o.range() == (-2.0, 3.0)
    s, z = Q.act_qparams(-2.0, 3.0, 8)
    assert abs(float(y) - (Q.hi(8) - z) * s) < 1e-6   # saturated at the top of the grid


def test_learned_range_forward_is_the_exporter_grid_and_the_range_gets_gradients():
    rng = np.random.default_rng(3)
    print("seed 3")
    x = torch.tensor(rng.normal(size=500) * 2, requires_grad=True)
    o = FQ.Observer("x", 6)
    o.mode = "calib"
    o(x.detach())
    o.learn_range()
    o.mode, o.training = "qat", True
    y = o(x)
    lo_, hi_ = o.range()
    s, z = Q.act_qparams(lo_, hi_, 6)
    want = (Q.quantize(x.detach().numpy(), s, z, 6) - z) * s
    assert np.array_equal(y.detach().numpy(), want)
    ((y - 0.5 * x.detach()) ** 2).sum().backward()   # a loss that prefers a narrower range
    assert o.lo_p.grad is not None and o.hi_p.grad is not None
    assert float(o.hi_p.grad) != 0.0 and float(o.lo_p.grad) != 0.0
    # the exporter sees the trained range, not the EMA buffers
    o.lo_p.data.fill_(-1.0)
    assert o.range()[0] == -1.0 and o.qparams() == Q.act_qparams(-1.0, o.range()[1], 6)


def test_range_margin_widens_the_grid_but_keeps_a_relu_zero_point():
    o = FQ.Observer("x", 8)
    o.mode = "calib"
    o(torch.tensor([-1.0, 3.0]))
    o.margin = 0.25
    assert o.range() == (-2.0, 4.0)
    r = FQ.Observer("ffn1", 8)
    r.mode = "calib"
    r(torch.tensor([0.0, 2.0]))
    r.margin = 0.5
    assert r.range() == (0.0, 3.0) and r.qparams()[1] == Q.lo(8)
