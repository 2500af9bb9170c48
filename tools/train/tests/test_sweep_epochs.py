# The recipe's QAT length per configuration (sweep.QAT_EPOCHS): a configuration's own entry wins
# over its data set's, and anything not listed trains 30 epochs.
import pytest

from tools.train import sweep


def test_configuration_entry_overrides_the_data_set_entry():
    assert sweep.qat_epochs_for("elecdemand", 1, "W8A8S") == 60
    assert sweep.qat_epochs_for("elecdemand", 1, "W4A8") == 30   # worse at 60 on validation
    assert sweep.qat_epochs_for("elecdemand", 48, "W8A8") == 30
    assert sweep.qat_epochs_for("nox", 1, "W4A8") == 30


def test_learning_rate_is_the_recipe_s_unless_given(tmp_path, monkeypatch):
    """--qat-lr reaches every job's schedule; without it the jobs get none and run_dataset takes the
    recipe's per configuration (sweep.qat_lr_for: QAT_LR, else QAT_LR_DEFAULT)."""
    from tools.train import report
    seen = []

    def fake_run(key, out_dir, configs, sched, *a):
        seen.append(sched.get("qat_lr"))
        return dict(dataset=key, float={"seed": 0, "val_mse": 1.0}, configs={}, output_floor={},
                    output_floor_reference=None, seconds=1.0)

    monkeypatch.setattr(sweep, "run_dataset", fake_run)
    monkeypatch.setattr(report, "render", lambda *a, **k: "x")
    monkeypatch.setattr(report, "render_models_readme", lambda *a, **k: "")
    (tmp_path / "nox").mkdir()
    assert sweep.main(["--data", "nox", "--configs", "W8A8", "--out", str(tmp_path), "--jobs", "1",
                       "--qat-lr", "3e-4"]) == 0
    assert sweep.main(["--data", "nox", "--configs", "W8A8", "--out", str(tmp_path), "--jobs", "1"]) == 0
    assert seen == [3e-4, None]
    for (k, h, c), lr in sweep.QAT_LR.items():
        assert sweep.qat_lr_for(k, h, c) == lr and 0 < lr < sweep.QAT_LR_DEFAULT
        # chosen for staged children only: the recipe must stage each one
        assert c in sweep.STAGED_FROM.get((k, h), {}), (k, h, c)
    assert sweep.qat_lr_for("nox", 1, "W8A8") == sweep.QAT_LR_DEFAULT
    # the sweep's default is the training schedule's own
    from tools.train.train import Schedule
    assert sweep.QAT_LR_DEFAULT == Schedule().qat_lr
    for bad in ("0", "-1e-4"):
        with pytest.raises(SystemExit):
            sweep.main(["--data", "nox", "--configs", "W8A8", "--out", str(tmp_path), "--qat-lr", bad])
