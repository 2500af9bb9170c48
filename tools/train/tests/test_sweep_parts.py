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
    s = {"baselines": {"persistence": {"mse": 0.02}, "ridge": {"mse": 0.0105}},
         "float": {"test": {"mse": 0.0097}},
         "configs": {"W8A8": cfg(0.010, 0.010), "W4A8": cfg(0.011, 0.0116), "W6A8": cfg(0.03, 0.03)}}
    res = {text: ok for text, ok, _ in report.checks(s)}
    assert res["W8A8 integer test MSE within 5% of the float model"] is True
    assert res["W4A8 integer test MSE within 2% of W8A8"] is False
    assert res["W6A8 beats persistence (last value)"] is False
    assert res["W8A8 beats persistence (last value)"] is True
    assert res["W8A8 beats ridge (whole window, all features)"] is True
    assert res["W4A8 beats ridge (whole window, all features)"] is False
    assert res["W4A8 integer MSE within 2% of fake-quant MSE"] is False


def test_verdict_warns_when_a_baseline_is_better():
    s = {"baselines": {"persistence": {"mse": 0.02}, "ridge": {"mse": 0.008}},
         "configs": {"W8A8": {"integer": {"mse": 0.01}}, "W4A8": {"integer": {"mse": 0.007}}}}
    lines = report.verdict_lines(s)
    w8 = next(x for x in lines if "W8A8" in x)
    w4 = next(x for x in lines if "W4A8" in x)
    assert "WARNING" in w8 and "ridge" in w8 and "+25.0%" in w8 and "persistence by 50.0%" in w8 and "ridge 0.00800" in w8
    assert "WARNING" not in w4 and "ridge by 12.5%" in w4


def test_out_inside_the_repository_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        sweep.main(["--out", str(sweep.REPO / "docs" / "x"), "--data", "nox"])
    assert not (sweep.REPO / "docs" / "x").exists()


def test_report_orders_named_configs_then_custom():
    c = {k: {} for k in ("W4A4", "W8A8", "MINE", "W6A8", "ABC")}
    assert [k for k, _ in report.ordered(c)] == ["W8A8", "W6A8", "W4A4", "ABC", "MINE"]


def test_staged_checks_name_their_qat_rounds():
    def cfg(it, rounds=None, parent=None):
        q = {k: v for k, v in (("rounds", rounds), ("from_config", parent)) if v is not None}
        return {"fake_quant": {"mse": it}, "integer": {"mse": it}, "qat": q}
    s = {"baselines": {}, "configs": {"W8A8": cfg(0.010, 3, "W6A8"), "W6A8": cfg(0.0101, 2, "W8A8"),
                                      "W4A8": cfg(0.0102, 1), "W6A6": cfg(0.02, None, "W6A8")}}
    res = {text: val for text, _, val in report.checks(s)}
    assert res["W6A8 integer test MSE within 1% of W8A8"] == "+1.0%; staged from W8A8, 2 QAT rounds against W8A8's 3"
    assert res["W4A8 integer test MSE within 2% of W8A8"] == "+2.0%; 1 QAT round against W8A8's 3"
    assert res["W6A6 integer test MSE within 15% of W8A8"] == "+100.0%; staged from W6A8, QAT rounds not recorded"
    # a staged run at another learning rate than the recipe's default says so
    s["configs"]["W6A8"]["qat"]["lr"] = 1e-4
    assert {text: val for text, _, val in report.checks(s)}["W6A8 integer test MSE within 1% of W8A8"] == \
        "+1.0%; staged from W8A8 at learning rate 0.0001, 2 QAT rounds against W8A8's 3"
    # two models fine-tuned once each from the float model: no note
    s["configs"]["W8A8"] = cfg(0.010, 1)
    assert {text: val for text, _, val in report.checks(s)}["W4A8 integer test MSE within 2% of W8A8"] == "+2.0%"
