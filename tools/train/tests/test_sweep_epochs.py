# The recipe's QAT length per configuration (sweep.QAT_EPOCHS): a configuration's own entry wins
# over its data set's, and anything not listed trains 30 epochs.
from tools.train import sweep


def test_configuration_entry_overrides_the_data_set_entry():
    assert sweep.qat_epochs_for("elecdemand", 1, "W8A8S") == 60
    assert sweep.qat_epochs_for("elecdemand", 1, "W4A8") == 30   # worse at 60 on validation
    assert sweep.qat_epochs_for("elecdemand", 48, "W8A8") == 30
    assert sweep.qat_epochs_for("nox", 1, "W4A8") == 30
