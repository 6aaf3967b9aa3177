"""Activation: a project's stream starts (``TRAINED → ACTIVATING → STREAMING|SIMULATING``), stops and is cleared.

Activating loads the plugins' models into the project's prescriber off the caller's thread; stopping lets the
prescriber finish what was acknowledged. After a restart, projects that were streaming are activated again; a
simulation cannot resume, so it ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.db import CaseRecord, EventRecord, ProjectRecord, project_record
from prcore_core.definitions import columns_of
from prcore_core.preparation import PreparedLog, held_out_events
from prcore_core.project import PluginState
from prcore_core.status import (
    PLUGIN_STARTED,
    STARTED,
    PluginStatus,
    ProjectStatus,
    set_plugin_status,
    set_project_status,
)
from prcore_core.storage import Storage
from prcore_core.streaming.delivery import Broker
from prcore_core.streaming.events import stream_target
from prcore_core.streaming.journal import Journal
from prcore_core.streaming.prescribing import STOP, ActiveProject, Prescribing
from prcore_core.streaming.simulation import Simulation

log = logging.getLogger(__name__)


class Activation:
    """The active projects: starting, stopping and clearing their streams, and re-activating them after a restart.

    Parameters
    ----------
    storage
        Where the raw event log a simulation replays is read from.
    prepared
        The prepared data of a project's current run (its attributes and held-out cases).
    post
        Ingests one event of a project (the simulation posts through it, as any client does).
    """

    def __init__(
        self,
        sessions: sessionmaker,
        executor,
        storage: Storage,
        prepared: Callable[[ProjectRecord], PreparedLog],
        broker: Broker,
        journal: Journal,
        prescribing: Prescribing,
        post: Callable[[int, dict], Any],
    ):
        self.sessions = sessions
        self.executor = executor
        self.storage = storage
        self.prepared = prepared
        self.broker = broker
        self.journal = journal
        self.prescribing = prescribing
        self.post = post
        self.active: dict[int, ActiveProject] = {}
        self._lock = threading.Lock()

    def is_open(self, project_id: int) -> bool:
        active = self.active.get(project_id)
        return active is not None and active.accepting

    def start(self, project_id: int, mode: str = "streaming", **simulation) -> None:
        """Begin activation (reference 2.20/2.21); the project is STREAMING/SIMULATING once its models load."""
        target = stream_target(mode)
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if status is ProjectStatus.STREAMING or (status is ProjectStatus.ACTIVATING and project_id in self.active):
                raise errors.StateError(errors.STREAMING_STARTED)
            if status is ProjectStatus.SIMULATING:
                raise errors.StateError(errors.SIMULATION_STARTED)
            if status is not ProjectStatus.TRAINED:
                raise errors.StateError(errors.PROJECT_NOT_TRAINED)
            if target is ProjectStatus.SIMULATING and not project.prepared_path:
                raise errors.StateError(errors.PROJECT_NOT_TRAINED)
            set_project_status(project, ProjectStatus.ACTIVATING)
            for plugin in project.plugins:
                if plugin.status == PluginStatus.TRAINED and not plugin.disabled:
                    set_plugin_status(plugin, PluginStatus.ACTIVATING)
            session.commit()
        self.executor.submit(self._activate, project_id, target, simulation)

    def _activate(self, project_id: int, target: ProjectStatus, simulation: dict) -> None:
        try:
            with self.sessions() as session:
                project = project_record(session, project_id)
                columns = columns_of(project.event_log)
                prepared = self.prepared(project) if project.prepared_path else None
                replay = None
                if target is ProjectStatus.SIMULATING:
                    raw = self.storage.read_frame(project.event_log.data_path)
                    replay = held_out_events(raw, columns, prepared.held_out_cases)
                chosen = [p for p in project.plugins if p.status == PluginStatus.ACTIVATING]
                states = [(PluginState.from_record(p), p.model_path) for p in chosen]
            attributes = tuple(prepared.attributes) if prepared else ()
            prescriber = self.prescribing.prescriber_for(project_id, columns, attributes, states)
            active = ActiveProject(project_id, target, columns, attributes, states, prescriber)
            with self.sessions() as session:
                project = project_record(session, project_id)
                if ProjectStatus(project.status) is not ProjectStatus.ACTIVATING:
                    prescriber.close()
                    return  # stopped while activating
                for plugin in project.plugins:
                    if plugin.status == PluginStatus.ACTIVATING:
                        set_plugin_status(plugin, PluginStatus.STREAMING)
                set_project_status(project, target)
                session.commit()
            active.thread = self.prescribing.thread_for(active)
            with self._lock:
                self.active[project_id] = active
            active.thread.start()
            self.prescribing.requeue_unprescribed(active)
            self.broker.publish(project_id, "status", str(target))
            if target is ProjectStatus.SIMULATING:
                active.simulation = Simulation(self.post, self.stop, active, replay, **simulation)
                active.simulation.start()
        except Exception as exc:
            log.exception("Activation of project %s failed", project_id)
            with self.sessions() as session:
                project = session.get(ProjectRecord, project_id)
                if project is not None and ProjectStatus(project.status) is ProjectStatus.ACTIVATING:
                    for plugin in project.plugins:
                        if plugin.status == PluginStatus.ACTIVATING:
                            set_plugin_status(plugin, PluginStatus.TRAINED)
                    set_project_status(project, ProjectStatus.TRAINED)
                    project.progress_message = f"Activation failed: {exc}"
                    session.commit()

    def stop(self, project_id: int, *, finished_reason: str = "stopped") -> None:
        """Stop streaming or simulating (reference 2.22): the project returns to TRAINED, readers get FINISHED."""
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if status not in STARTED:
                raise errors.StateError(errors.STREAMING_NOT_STARTED)
        self._shutdown(project_id)
        with self.sessions() as session:
            project = project_record(session, project_id)
            if ProjectStatus(project.status) in STARTED:
                for plugin in project.plugins:
                    if plugin.status in PLUGIN_STARTED:
                        set_plugin_status(plugin, PluginStatus.TRAINED)
                set_project_status(project, ProjectStatus.TRAINED)
                session.commit()
        self.broker.publish(project_id, "status", str(ProjectStatus.TRAINED))
        self.broker.publish(project_id, "finished", finished_reason)

    def _shutdown(self, project_id: int, wait: float = 30.0) -> None:
        """Stop accepting events, let the prescriber finish what was acknowledged, end the threads."""
        with self._lock:
            active = self.active.pop(project_id, None)
        if active is None:
            return
        active.accepting = False
        if active.simulation is not None:
            active.simulation.cancel()
            if active.simulation is not threading.current_thread():
                active.simulation.join(wait)
        self.journal.flush(wait)  # what was acknowledged is queued before the prescriber's stop
        active.queue.put(STOP)
        if active.thread is not None and active.thread is not threading.current_thread():
            active.thread.join(wait)
        if active.prescriber is not None:
            active.prescriber.close()

    def close_stream(self, project_id: int, reason: str) -> None:
        """End a stream because the project changes under it (redefinition, deletion); readers get FINISHED."""
        if project_id in self.active:
            self._shutdown(project_id)
            self.broker.publish(project_id, "finished", reason)

    def shutdown_all(self) -> None:
        """Stop every prescriber (process exit); statuses stay as they are so a restart reactivates."""
        for project_id in list(self.active):
            self._shutdown(project_id, wait=5.0)

    def clear(self, project_id: int) -> None:
        """Stop streaming if running, then delete the project's streamed cases and events (reference 2.23)."""
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
        if status in STARTED:
            self.stop(project_id, finished_reason="cleared")
        with self.sessions() as session:
            session.execute(delete(EventRecord).where(EventRecord.project_id == project_id))
            session.execute(delete(CaseRecord).where(CaseRecord.project_id == project_id))
            session.commit()

    def recover(self) -> None:
        """After a restart: re-activate projects that were streaming; a simulation cannot resume, so it ends."""
        reactivate = []
        with self.sessions() as session:
            started = select(ProjectRecord).where(ProjectRecord.status.in_(sorted(STARTED)))
            for project in session.scalars(started):
                for plugin in project.plugins:
                    if plugin.status in PLUGIN_STARTED:
                        set_plugin_status(plugin, PluginStatus.TRAINED)
                was_streaming = project.status == ProjectStatus.STREAMING
                set_project_status(project, ProjectStatus.TRAINED)
                if was_streaming:
                    reactivate.append(project.id)
                else:
                    project.progress_message = "The simulation was interrupted by a restart"
            session.commit()
        for project_id in reactivate:
            log.warning("Re-activating streaming project %s after a restart", project_id)
            self.start(project_id, "streaming")
        # events acknowledged for projects that are no longer streaming are prescribed at their next activation
