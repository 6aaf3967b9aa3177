"""The plugin contract: discovery through entry points, aliases and the conformance suite."""

import pytest

from plugins.knn_next_activity import KNNNextActivity
from prcore_core import registry
from prcore_core.conformance import PluginContractError, check_plugin, demo_logs
from prcore_core.plugin import Plugin


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


def test_builtins_are_found_through_entry_points():
    plugins = registry.available_plugins()
    assert plugins["knn-next-activity"] is KNNNextActivity
    assert registry.resolve_key("plugin-knn-next-activity") == "knn-next-activity"


def test_knn_passes_check_plugin(logs):
    check_plugin(KNNNextActivity, logs)


def test_check_plugin_catches_a_broken_plugin(logs):
    class Forgetful(KNNNextActivity):
        key = "forgetful"

        def predict(self, batch, context=None):
            return super().predict(batch, context)[:-1]  # drops one prediction

    with pytest.raises(PluginContractError, match="one prediction per prefix"):
        check_plugin(Forgetful, logs)


def test_run_time_registration_and_unknown_keys():
    class Extra(Plugin):
        key = "extra"
        title = "Extra"
        description = "x"
        prescription_type = "NEXT_ACTIVITY"

    registry.register(Extra)
    try:
        assert registry.get_plugin_class("extra") is Extra
    finally:
        registry.unregister("extra")
    with pytest.raises(Exception, match="Unknown plugin 'nope'"):
        registry.resolve_key("nope")


def test_knn_predicts_every_prefix_length_including_one(logs):
    training, held_out = logs
    plugin = KNNNextActivity().fit(training)
    batch = held_out.prefixes()
    predictions = plugin.predict(batch)
    lengths = batch.lengths
    assert {1, 2} <= set(lengths.tolist())
    assert all(p["output"] is not None for p in predictions)
    assert all(len(p["top"]) <= 3 and p["top"][0]["activity"] == p["output"] for p in predictions)
    metrics = plugin.evaluate(held_out)
    assert metrics["support"] == len(held_out.prefixes(with_next=True))
    assert sum(row["support"] for row in metrics["by_prefix_length"]) == metrics["support"]
