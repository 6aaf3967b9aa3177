"""Project and plugin status machines, checked in this one place.

The statuses are those of the seed "Check Project Status". An error is a status too: on the wire the ``status``
field then holds the error message (and ``error`` repeats it); in Python the status is ``ERROR`` and the message is
in ``error``. A project's status is derived from its plugins' (reference 3.4), except for the phases that belong to
the project alone (waiting for a definition, pre-processing the log).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from prcore_core import errors


class ProjectStatus(StrEnum):
    """Where a project is in its life."""

    WAITING = "WAITING"
    PREPROCESSING = "PREPROCESSING"
    TRAINING = "TRAINING"
    TRAINED = "TRAINED"
    ACTIVATING = "ACTIVATING"
    STREAMING = "STREAMING"
    SIMULATING = "SIMULATING"
    ERROR = "ERROR"


class PluginStatus(StrEnum):
    """Where one plugin of a project is in its life."""

    WAITING = "WAITING"
    TRAINING = "TRAINING"
    TRAINED = "TRAINED"
    ACTIVATING = "ACTIVATING"
    STREAMING = "STREAMING"
    ERROR = "ERROR"


P = ProjectStatus
G = PluginStatus

#: Allowed project transitions. ERROR can be entered from anywhere; a redefinition leaves ERROR.
PROJECT_TRANSITIONS: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    P.WAITING: frozenset({P.PREPROCESSING}),
    P.PREPROCESSING: frozenset({P.WAITING, P.TRAINING, P.TRAINED, P.PREPROCESSING}),
    P.TRAINING: frozenset({P.WAITING, P.PREPROCESSING, P.TRAINED}),
    P.TRAINED: frozenset({P.WAITING, P.PREPROCESSING, P.TRAINING, P.ACTIVATING}),
    P.ACTIVATING: frozenset({P.STREAMING, P.SIMULATING, P.TRAINED}),
    P.STREAMING: frozenset({P.TRAINED, P.WAITING, P.PREPROCESSING}),
    P.SIMULATING: frozenset({P.TRAINED, P.WAITING, P.PREPROCESSING}),
    P.ERROR: frozenset({P.WAITING, P.PREPROCESSING}),
}

PLUGIN_TRANSITIONS: dict[PluginStatus, frozenset[PluginStatus]] = {
    G.WAITING: frozenset({G.TRAINING}),
    G.TRAINING: frozenset({G.TRAINED, G.WAITING}),
    G.TRAINED: frozenset({G.ACTIVATING, G.WAITING, G.TRAINING}),
    G.ACTIVATING: frozenset({G.STREAMING, G.TRAINED}),
    G.STREAMING: frozenset({G.TRAINED, G.WAITING}),
    G.ERROR: frozenset({G.WAITING}),
}

#: Statuses in which a project's definition may be changed (reference 3.5).
REDEFINABLE = frozenset({P.WAITING, P.TRAINED, P.STREAMING, P.SIMULATING, P.ERROR})


def check_project_transition(current: ProjectStatus, new: ProjectStatus) -> None:
    """Raise ``StateError`` unless a project may go from ``current`` to ``new``."""
    if new is P.ERROR or new == current:
        return
    if new not in PROJECT_TRANSITIONS[current]:
        raise errors.StateError(f"A project cannot go from {current} to {new}")


def check_plugin_transition(current: PluginStatus, new: PluginStatus) -> None:
    """Raise ``StateError`` unless a plugin may go from ``current`` to ``new``."""
    if new is G.ERROR or new == current:
        return
    if new not in PLUGIN_TRANSITIONS[current]:
        raise errors.StateError(f"A plugin cannot go from {current} to {new}")


def derive_project_status(plugin_statuses: Iterable[PluginStatus], streaming_mode: ProjectStatus | None = None):
    """The project status implied by its plugins' statuses (reference 3.4 with the seed's statuses).

    Plugins in error are ignored; if none is left the project is in error. Returns ``(status, error)``.

    >>> derive_project_status([PluginStatus.TRAINED, PluginStatus.TRAINING])
    (<ProjectStatus.TRAINING: 'TRAINING'>, None)
    >>> derive_project_status([PluginStatus.ERROR])
    (<ProjectStatus.ERROR: 'ERROR'>, 'Plugins encountered errors')
    """
    alive = [s for s in plugin_statuses if s is not G.ERROR]
    if not alive:
        return P.ERROR, "Plugins encountered errors"
    states = set(alive)
    if states == {G.STREAMING}:
        return (streaming_mode or P.STREAMING), None
    if G.ACTIVATING in states or (G.STREAMING in states and states <= {G.STREAMING, G.TRAINED, G.ACTIVATING}):
        return P.ACTIVATING, None
    if states <= {G.TRAINED, G.STREAMING}:
        return P.TRAINED, None
    if states & {G.TRAINING, G.TRAINED}:
        return P.TRAINING, None
    return P.WAITING, None
