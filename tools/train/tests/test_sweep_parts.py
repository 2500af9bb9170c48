"""Configuration parsing and the acceptance checks of the report."""
import argparse

import pytest

from tools.train import report, sweep
from tools.train.model import Shape


def test_custom_config_overrides_one_tensor():
    name, base, over = sweep.parse_custom("W4A8O16=W4A8,output=16,layers.0.q.weight=6")
    assert (name, base) == ("W4A8O16", "W4A8")
    bits = sweep.config_bits(name, base, over, Shape(features=2))
    assert bits["output"] == 16 and bits["layers.0.q.weight"] == 6 and bits["layers.0.k.weight"] == 4
    assert bits["layers.0.q"] == 8


def test_custom_config_rejects_unknown_tensor_and_bad_syntax():
    with pytest.raises(SystemExit, match="unknown tensor"):
        sweep.config_bits("X", "W8A8", {"nope": 4}, Shape(features=2))
    with pytest.raises(argparse.ArgumentTypeError):
        sweep.parse_custom("W8A8")


def test_checks_flag_failures():
    def cfg(fq, it):
        return {"fake_quant": {"mse": fq}, "integer": {"mse": it}}
    s = {"persistence": {"mse": 0.02},
         "configs": {"W8A8": cfg(0.010, 0.010), "W4A8": cfg(0.011, 0.0116), "W6A8": cfg(0.03, 0.03)}}
    res = {text: ok for text, ok, _ in report.checks(s)}
    assert res["W4A8 integer test MSE within 15% of W8A8"] is False
    assert res["W6A8 beats persistence"] is False
    assert res["W8A8 beats persistence"] is True
    assert res["W4A8 integer MSE within 2% of fake-quant MSE"] is False


def test_report_orders_named_configs_then_custom():
    c = {k: {} for k in ("W4A4", "W8A8", "MINE", "W6A8", "ABC")}
    assert [k for k, _ in report.ordered(c)] == ["W8A8", "W6A8", "W4A4", "ABC", "MINE"]
