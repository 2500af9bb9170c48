"""tools/train/adopt.py: only what is better on validation is taken, files and records follow."""
import json

import pytest

from tools.train import adopt as A


def _folder(root, name, float_val, configs):
    d = root / name
    d.mkdir(parents=True)
    s = {"dataset": name, "float": {"seed": 0, "val_mse": float_val},
         "configs": {c: {"qat": {"val_mse": v}, "integer": {"mse": t}} for c, (v, t) in configs.items()},
         "added": [{"command": "first", "configs": list(configs)}]}
    (d / "summary.json").write_text(json.dumps(s))
    for c in configs:
        for suffix in A.FILES:
            (d / f"{c}{suffix}").write_text(f"{name} {c}{suffix}")
    return d


def _setup(tmp_path, run_float=0.5):
    models = tmp_path / "models"
    _folder(models, "set", 0.5, {"W8A8": (0.010, 0.011), "W4A8": (0.020, 0.021)})
    (models / "sweep.json").write_text(json.dumps({"command": "x", "runs": []}))
    run = _folder(tmp_path / "run", "set", run_float, {"W8A8": (0.012, 0.009), "W4A8": (0.018, 0.022)})
    s = json.loads((run / "summary.json").read_text())
    s["added"].append({"command": "second --out /tmp/run", "configs": ["W8A8", "W4A8"]})
    (run / "summary.json").write_text(json.dumps(s))
    (tmp_path / "run" / "sweep.json").write_text(json.dumps(
        {"command": "python -m tools.train.sweep --add --out /tmp/run", "finished": "then", "wall_s": 9.0,
         "load": [1, 2]}))
    return models, run


def test_takes_only_what_is_better_on_validation(tmp_path):
    models, run = _setup(tmp_path)
    lines = A.adopt(run, ["W8A8", "W4A8"], "a trial", models)
    assert "W8A8" in lines[0] and lines[0].endswith("not taken (not better on validation)")
    assert lines[1].endswith(": taken") and "-10.0%" in lines[1]
    # W8A8 was better on test in the run, and still stays: test is never the choice
    assert (models / "set" / "W8A8.onnx").read_text() == "set W8A8.onnx"
    for suffix in A.FILES:
        assert (models / "set" / f"W4A8{suffix}").read_text() == f"set W4A8{suffix}"
    s = json.loads((models / "set" / "summary.json").read_text())
    assert s["configs"]["W4A8"]["qat"]["val_mse"] == 0.018 and s["configs"]["W8A8"]["qat"]["val_mse"] == 0.010
    assert [a["command"] for a in s["added"]] == ["first", "second --out /tmp/run"]
    assert s["added"][1]["taken"] == ["W4A8"] and "taken" not in s["added"][0]
    runs = json.loads((models / "sweep.json").read_text())["runs"]
    assert runs == [{"command": "python -m tools.train.sweep --add --out DIR", "finished": "then", "wall_s": 9.0,
                     "load": [1, 2], "what": "a trial; taken: W4A8"}]


def test_refuses_another_float_model_and_unknown_configs(tmp_path):
    models, run = _setup(tmp_path, run_float=0.4)
    with pytest.raises(A.AdoptError, match="not the bundled one"):
        A.adopt(run, ["W4A8"], "x", models)
    models2, run2 = _setup(tmp_path / "b")
    with pytest.raises(A.AdoptError, match="W2A2: not in"):
        A.adopt(run2, ["W2A2"], "x", models2)
    assert json.loads((models2 / "sweep.json").read_text())["runs"] == []


def test_nothing_better_changes_nothing(tmp_path):
    models, run = _setup(tmp_path)
    before = {p.name: p.read_text() for p in (models / "set").iterdir()}
    assert A.adopt(run, ["W8A8"], "x", models)[0].endswith("not taken (not better on validation)")
    assert {p.name: p.read_text() for p in (models / "set").iterdir()} == before
    assert json.loads((models / "sweep.json").read_text())["runs"] == []
