"""The full sweep's longest job (elecdemand one-step) split by configuration group (sweep.SPLIT_JOBS),
and the parts' summaries merged back into one folder summary."""
import pytest

from tools.train import sweep


def _elec_configs():
    return [(c, c, {}) for c in sweep.CONFIGS] + list(sweep.EXTRA_CONFIGS["elecdemand"])


def test_elecdemand_one_step_splits_into_v1_and_skip_groups():
    cfgs = _elec_configs()
    groups = sweep.split_configs(cfgs, sweep.SPLIT_JOBS[("elecdemand", 1)])
    assert len(groups) == 2
    a, b = ([c[0] for c in g] for g in groups)
    assert a == ["W8A8", "W6A8", "W4A8", "W6A6", "W4A4", "W8A8IO16", "W6A8IO16", "W4A8IO16"]
    assert b == ["W8A8S", "W6A8S", "W4A8S", "W8A8IO16S", "W6A8IO16S", "W4A8IO16S", "W6A6S", "W6A6IO16S"]
    assert sorted(a + b) == sorted(c[0] for c in cfgs)   # every configuration exactly once


def test_a_staged_child_goes_where_its_parent_is():
    cfgs = [("W8A8", "W8A8", {}), ("X", "W4A8", {"skip": 16}), ("W8A8S", "W8A8", {"skip": 16})]
    groups = sweep.split_configs(cfgs, 2, {"X": "W8A8"})
    assert [[c[0] for c in g] for g in groups] == [["W8A8", "X"], ["W8A8S"]]
    assert sweep.split_configs(cfgs, 1) == [cfgs]


def test_one_architecture_is_halved_and_staged_children_follow():
    cfgs = [(c, c, {}) for c in sweep.CONFIGS]   # e.g. the quick sweep: no skip-path configurations
    groups = sweep.split_configs(cfgs, 2)
    assert [[c[0] for c in g] for g in groups] == [["W8A8", "W6A8"], ["W4A8", "W6A6", "W4A4"]]
    groups = sweep.split_configs(cfgs, 2, {"W4A8": "W8A8", "W4A4": "W4A8"})
    assert [[c[0] for c in g] for g in groups] == [["W8A8", "W6A8", "W4A8", "W4A4"], ["W6A6"]]


def test_plan_puts_the_split_parts_first_and_merges_them():
    pairs = [("elecdemand", 1), ("nox", 1), ("keywest", 1), ("elecdemand", 48)]
    cfg = {("elecdemand", 1): _elec_configs(), ("nox", 1): [("W8A8", "W8A8", {})],
           ("keywest", 1): [("W8A8", "W8A8", {})], ("elecdemand", 48): [("W8A8", "W8A8", {})]}
    jobs, plan = sweep.plan_jobs(pairs, lambda k, h: cfg[(k, h)], sweep.SPLIT_JOBS, lambda k, h: {},
                                 lambda k, h, c, part: (k, h, [x[0] for x in c], part))
    assert [(j[0], j[1], j[3]) for j in jobs] == [("elecdemand", 1, True), ("elecdemand", 1, True),
                                                ("nox", 1, False), ("keywest", 1, False), ("elecdemand", 48, False)]
    assert [(kh, idx) for kh, idx, _ in plan] == [(("elecdemand", 1), [0, 1]), (("nox", 1), [2]),
                                                  (("keywest", 1), [3]), (("elecdemand", 48), [4])]
    # without the split (e.g. --jobs 1): one job per pair, in order
    jobs, plan = sweep.plan_jobs(pairs, lambda k, h: cfg[(k, h)], {}, lambda k, h: {},
                                 lambda k, h, c, part: (k, h, part))
    assert jobs == [("elecdemand", 1, False), ("nox", 1, False), ("keywest", 1, False), ("elecdemand", 48, False)]


def test_merge_parts_keeps_the_configuration_order_and_checks_the_float_model():
    cfgs = [("W8A8", "W8A8", {}), ("W8A8S", "W8A8", {"skip": 16}), ("W4A8", "W4A8", {})]
    fl = {"seed": 0, "val_mse": 0.5}
    p1 = dict(dataset="d", float=fl, configs={"W8A8": 1, "W4A8": 3}, output_floor={"8": "a"},
              output_floor_reference="W8A8", seconds=10.0)
    p2 = dict(dataset="d", float=dict(fl), configs={"W8A8S": 2}, output_floor={"8": "b"},
              output_floor_reference=None, seconds=12.0)
    m = sweep.merge_parts([p2, p1], cfgs)
    assert list(m["configs"]) == ["W8A8", "W8A8S", "W4A8"]
    assert m["output_floor"] == {"8": "a"} and m["output_floor_reference"] == "W8A8"
    assert m["seconds"] == 22.0 and m["split_seconds"] == [12.0, 10.0]
    with pytest.raises(SystemExit, match="different float"):
        sweep.merge_parts([p1, dict(p2, float={"seed": 0, "val_mse": 0.6})], cfgs)


def test_main_runs_the_parts_and_writes_one_merged_summary(tmp_path, monkeypatch):
    """sweep.main with 2 workers: elecdemand's configurations in two part jobs (no summary written by
    either), then one summary.json with every configuration (training and rendering faked)."""
    import json
    from tools.train import report
    calls = []

    def fake_run(key, out_dir, configs, *a):
        part = a[-1]
        calls.append((key, [c[0] for c in configs], part))
        return dict(dataset=key, float={"seed": 0, "val_mse": 1.0}, configs={c[0]: {"n": c[0]} for c in configs},
                    output_floor={}, output_floor_reference="W8A8" if any(c[0] == "W8A8" for c in configs) else None,
                    seconds=1.0)

    class Serial:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def map(self, fn, *its):
            return map(fn, *its)

    monkeypatch.setattr(sweep, "run_dataset", fake_run)
    monkeypatch.setattr(sweep, "ProcessPoolExecutor", Serial)
    monkeypatch.setattr(report, "render", lambda *a, **k: "")
    monkeypatch.setattr(report, "render_models_readme", lambda *a, **k: "")
    monkeypatch.setattr(sweep, "self_check", lambda *a, **k: [])
    (tmp_path / "elecdemand").mkdir()
    assert sweep.main(["--quick", "--data", "elecdemand", "nox", "--out", str(tmp_path), "--jobs", "2"]) == 0
    # halved, then the recipe's staged W6A8, W4A8 and W6A6 (sweep.STAGED_FROM: W8A8 -> W6A8 -> W4A8,
    # W6A6) go with their parent's chain
    assert calls == [("elecdemand", ["W8A8", "W6A8", "W4A8", "W6A6"], True), ("elecdemand", ["W4A4"], True),
                     ("nox", list(sweep.CONFIGS), False)]
    merged = json.loads((tmp_path / "elecdemand" / "summary.json").read_text())
    assert sorted(merged["configs"]) == sorted(sweep.CONFIGS) and merged["split_seconds"] == [1.0, 1.0]


def test_an_added_run_keeps_the_record_of_the_earlier_runs(tmp_path, monkeypatch):
    """sweep --add appends itself to <out>/sweep.json's runs; the run that made the folder and every
    earlier addition stay (a bundled --add once replaced models/sweep.json and lost them)."""
    import json
    from tools.train import report
    rendered = {}

    def fake_run(key, out_dir, configs, *a):
        return dict(dataset=key, float={"seed": 0, "val_mse": 1.0}, configs={}, output_floor={},
                    output_floor_reference=None, seconds=1.0)

    def fake_render(summaries, wall, command, cpus, load=None, when=None, runs=None):
        rendered.update(command=command, runs=runs)
        return "x"

    monkeypatch.setattr(sweep, "run_dataset", fake_run)
    monkeypatch.setattr(report, "render", fake_render)
    monkeypatch.setattr(report, "render_models_readme", lambda *a, **k: "")
    first = dict(wall_s=10.0, load=[1.0, 2.0], cpus=2, command="python -m tools.train.sweep", finished="F",
                 seconds={}, runs=[dict(command="c1", finished="F1", wall_s=1.0, load=[0, 0], what="w1")])
    (tmp_path / "sweep.json").write_text(json.dumps(first))
    (tmp_path / "nox").mkdir()
    assert sweep.main(["--add", "--data", "nox", "--configs", "--out", str(tmp_path), "--jobs", "1"]) == 0
    meta = json.loads((tmp_path / "sweep.json").read_text())
    assert meta["command"] == "python -m tools.train.sweep" and meta["wall_s"] == 10.0
    assert [r["command"] for r in meta["runs"]] == [
        "c1", f"python -m tools.train.sweep --add --data nox --configs --out {tmp_path} --jobs 1"]
    assert meta["runs"][-1]["what"] == "configurations added: none (float twins only)"
    assert rendered["command"] == "python -m tools.train.sweep" and rendered["runs"] == meta["runs"]
    # a run that is not an addition writes its own record, as before
    assert sweep.main(["--data", "nox", "--configs", "W8A8", "--out", str(tmp_path), "--jobs", "1"]) == 0
    assert "runs" not in json.loads((tmp_path / "sweep.json").read_text())
