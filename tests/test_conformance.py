"""The contract's named checks (``yield_checks``) over every registered plugin and some parameter variants.

A failing check is reported by its name, with the plugin and the parameters it was built with.
"""

import dataclasses

import pytest

from prcore_core import registry
from prcore_core.conformance import CHECKS, PluginContractError, demo_logs, yield_checks

#: Parameter variants checked beside each registered plugin's defaults.
VARIANTS = {"knn-next-activity": [{"weights": "distance", "n_neighbors": 3}]}
#: The additional info a plugin needs to apply to the check log (as a project gives it).
ADDITIONAL_INFO = {"resource-allocation": {"available_resources": ["Karim", "Lena"], "treatment_duration": "1h"}}


def _cases():
    for key in sorted(registry.available_plugins()):
        for parameters in [{}, *VARIANTS.get(key, [])]:
            yield pytest.param(key, parameters, id=f"{key}{parameters or ''}")


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.mark.parametrize(("key", "parameters"), list(_cases()))
def test_registered_plugins_pass_every_named_check(key, parameters, logs):
    plugin = registry.get_plugin_class(key).from_parameters(parameters)
    info = ADDITIONAL_INFO.get(key, {})
    logs = tuple(dataclasses.replace(log, additional_info=info) for log in logs)
    failure = None
    for check in yield_checks(plugin, logs):
        try:
            check()
        except PluginContractError as exc:
            failure = f"{key} {parameters}: {check.__name__}: {exc}"
            break  # the later checks build on this one
    if failure:
        pytest.fail(failure, pytrace=False)


def test_checks_are_named_for_their_rule_and_leave_the_plugin_unfitted(logs):
    plugin = registry.get_plugin_class("knn-next-activity").from_parameters({"n_neighbors": 3})
    checks = list(yield_checks(plugin, logs))
    assert [c.__name__ for c in checks] == [c.__name__ for c in CHECKS]
    for check in checks:
        check()
    assert not [n for n in vars(plugin) if n.endswith("_") and not n.startswith("_")]


class _Forgetful(registry.get_plugin_class("knn-next-activity")):
    """Drops one prediction: breaks the one-prediction-per-prefix rule."""

    key = "forgetful"

    def predict(self, batch, context=None):
        return super().predict(batch, context)[:-1]


def test_a_breach_is_reported_by_the_name_of_its_check(logs):
    failed = []
    for check in yield_checks(_Forgetful(), logs):
        try:
            check()
        except PluginContractError:
            failed.append(check.__name__)
            break
    assert failed == ["check_one_prediction_per_prefix"]
