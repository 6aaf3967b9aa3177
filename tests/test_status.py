"""The status machines: legal and illegal transitions, and the project status derived from its plugins."""

import pytest

from prcore_core.errors import StateError
from prcore_core.status import (
    PluginStatus,
    ProjectStatus,
    check_plugin_transition,
    check_project_transition,
    derive_project_status,
)

G, P = PluginStatus, ProjectStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [(P.WAITING, P.TRAINED), (P.TRAINED, P.STREAMING), (P.PREPROCESSING, P.STREAMING), (P.ERROR, P.TRAINED)],
)
def test_illegal_project_transitions_raise(current, new):
    with pytest.raises(StateError, match=f"cannot go from {current} to {new}"):
        check_project_transition(current, new)


def test_legal_transitions_pass_and_error_is_always_reachable():
    check_project_transition(P.TRAINED, P.ACTIVATING)
    check_project_transition(P.ACTIVATING, P.SIMULATING)
    for status in P:
        check_project_transition(status, P.ERROR)
    check_plugin_transition(G.TRAINED, G.ACTIVATING)
    with pytest.raises(StateError):
        check_plugin_transition(G.WAITING, G.STREAMING)


@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        ([G.TRAINED, G.TRAINED], P.TRAINED),
        ([G.TRAINED, G.ERROR], P.TRAINED),
        ([G.TRAINING, G.WAITING], P.TRAINING),
        ([G.WAITING, G.WAITING], P.WAITING),
        ([G.STREAMING, G.STREAMING], P.STREAMING),
        ([G.STREAMING, G.ACTIVATING], P.ACTIVATING),
        ([G.ERROR, G.ERROR], P.ERROR),
    ],
)
def test_project_status_derives_from_plugins(plugins, expected):
    status, error = derive_project_status(plugins)
    assert status is expected
    assert (error is not None) == (expected is P.ERROR)


def test_simulating_mode_is_kept_when_all_plugins_stream():
    assert derive_project_status([G.STREAMING], P.SIMULATING)[0] is P.SIMULATING
