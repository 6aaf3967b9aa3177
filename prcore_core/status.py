"""Project and plugin status machines, checked in this one place.

The statuses are those of the seed "Check Project Status". An error is a status too: on the wire the ``status``
field then holds the error message (and ``error`` repeats it); in Python the status is ``ERROR`` and the message is
in ``error``. A project's status is derived from its plugins' (reference 3.4), except for the phases that belong to
the project alone (waiting for a definition, pre-processing the log).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from prcore_core import errors

if TYPE_CHECKING:
    from prcore_core.db import PluginRecord, ProjectRecord


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
#: A project whose data is being prepared or whose plugins are training: a restart resumes it.
IN_TRAINING = frozenset({P.PREPROCESSING, P.TRAINING})
#: A project at work in the background, whose progress sentence says what it does.
BUSY = IN_TRAINING | {P.ACTIVATING}
#: A project that accepts events: streaming posted events or replaying held-out cases.
LIVE = frozenset({P.STREAMING, P.SIMULATING})
#: A project whose stream was started: loading its models, or live.
STARTED = LIVE | {P.ACTIVATING}
#: A project whose plugins are trained, so it can prescribe (in a batch, or while its stream is started).
PRESCRIBABLE = STARTED | {P.TRAINED}

#: A plugin whose models are loaded, or being loaded, into a project's stream.
PLUGIN_STARTED = frozenset({G.ACTIVATING, G.STREAMING})
#: A plugin whose training is over, whatever the outcome.
PLUGIN_DONE = frozenset({G.TRAINED, G.ERROR})
#: A plugin that was trained successfully (and may since have joined a stream).
PLUGIN_TRAINED = PLUGIN_STARTED | {G.TRAINED}


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


def set_project_status(project: ProjectRecord, status: ProjectStatus, error: str | None = None) -> None:
    """The one place a project's status changes: checked, and the error kept only with ``ERROR``."""
    check_project_transition(ProjectStatus(project.status), status)
    project.status = str(status)
    project.error = error if status is ProjectStatus.ERROR else None


def set_plugin_status(plugin: PluginRecord, status: PluginStatus, error: str | None = None) -> None:
    """The one place a plugin's status changes: checked, and the error kept only with ``ERROR``."""
    check_plugin_transition(PluginStatus(plugin.status), status)
    plugin.status = str(status)
    plugin.error = error if status is PluginStatus.ERROR else None


def refresh_project_status(project: ProjectRecord) -> None:
    """Derive the project's status from its plugins (reference 3.4), through the transition check."""
    if not project.plugins:
        return
    active = [PluginStatus(p.status) for p in project.plugins if not p.disabled] or [
        PluginStatus(p.status) for p in project.plugins
    ]
    mode = ProjectStatus(project.status) if project.status in LIVE else None
    status, error = derive_project_status(active, mode)
    if status is ProjectStatus.ACTIVATING and ProjectStatus(project.status) is not ProjectStatus.ACTIVATING:
        return  # activation is started explicitly, never derived from a half-finished state
    if str(status) != project.status or (status is ProjectStatus.ERROR and project.error != error):
        set_project_status(project, status, error)
