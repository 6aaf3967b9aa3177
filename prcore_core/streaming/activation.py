"""Activation: a project's stream starts (``TRAINED → ACTIVATING → STREAMING|SIMULATING``), stops and is cleared.

Activating loads the plugins' models into the project's prescriber in a thread of its own (never behind training or
other work in the core's executor); under a server the models load in the prescriber process, a warm spare, so the
server's process does no heavy work and a trained project is live within a second. Stopping lets the prescriber
finish what was acknowledged. After a restart, projects that were streaming are activated again; a simulation cannot
resume, so it ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.dataset import Attribute
from prcore_core.db import CaseRecord, EventRecord, ProjectRecord, project_record
from prcore_core.definitions import columns_of
from prcore_core.preparation import PreparedLog
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
from prcore_core.streaming.simulation import Replay, ReplaySource, Simulation
from prcore_core.workers import worker_context

log = logging.getLogger(__name__)


class Activation:
    """The active projects: starting, stopping and clearing their streams, and re-activating them after a restart.

    Parameters
    ----------
    executor
        Unused: each activation runs in a thread of its own (kept for callers that pass the core's executor).
    storage
        The data directory, where a simulation's replay is kept.
    prepared
        The prepared data of a project's current run (unused: what activation needs of it is in the database and
        the replay file).
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
        #: The activation under way per project (its thread); a newer start of the same project replaces it.
        self._activating: dict[int, threading.Thread] = {}
        #: Serialises a project's starts and stops (the later request wins; other projects go on meanwhile).
        self._control: dict[int, threading.Lock] = {}
        self._closing = False

    def is_open(self, project_id: int) -> bool:
        active = self.active.get(project_id)
        return active is not None and active.accepting

    def start(self, project_id: int, mode: str = "streaming", **simulation) -> None:
        """Begin activation (reference 2.20/2.21); the project is STREAMING/SIMULATING once its models load."""
        target = stream_target(mode)
        with self._control_of(project_id):  # two starts never both find the project TRAINED
            with self.sessions() as session:
                project = project_record(session, project_id)
                status = ProjectStatus(project.status)
                if status is ProjectStatus.ERROR:
                    raise errors.StateError(errors.PROJECT_ERROR)
                activating = project_id in self.active or project_id in self._activating
                if status is ProjectStatus.STREAMING or (status is ProjectStatus.ACTIVATING and activating):
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
            thread = threading.Thread(
                target=self._activate,
                args=(project_id, target, simulation),
                name=f"activation-{project_id}",
                daemon=True,
            )
            with self._lock:
                self._activating[project_id] = thread
        thread.start()

    def _control_of(self, project_id: int) -> threading.Lock:
        with self._lock:
            return self._control.setdefault(project_id, threading.Lock())

    def _current(self, project_id: int) -> bool:
        """Is this thread still the project's activation (not replaced by a newer start, the core not closing)?"""
        return self._activating.get(project_id) is threading.current_thread() and not self._closing

    def _activate(self, project_id: int, target: ProjectStatus, simulation: dict) -> None:
        try:
            self._go_live(project_id, target, simulation)
        except Exception as exc:
            log.exception("Activation of project %s failed", project_id)
            with self._lock:
                current = self._current(project_id)
            if current:
                with self.sessions() as session:
                    project = session.get(ProjectRecord, project_id)
                    if project is not None and ProjectStatus(project.status) is ProjectStatus.ACTIVATING:
                        for plugin in project.plugins:
                            if plugin.status == PluginStatus.ACTIVATING:
                                set_plugin_status(plugin, PluginStatus.TRAINED)
                        set_project_status(project, ProjectStatus.TRAINED)
                        project.progress_message = f"Activation failed: {exc}"
                        session.commit()
        finally:
            with self._lock:
                if self._activating.get(project_id) is threading.current_thread():
                    del self._activating[project_id]

    def _go_live(self, project_id: int, target: ProjectStatus, simulation: dict) -> None:
        """Load the prescriber (and start building a simulation's replay), then go STREAMING/SIMULATING."""
        replay = None
        with self.sessions() as session:
            project = project_record(session, project_id)
            columns = columns_of(project.event_log)
            attributes = tuple(Attribute(**a) for a in project.attributes or ())
            if target is ProjectStatus.SIMULATING:  # built (unless kept from before) while the models load
                source = ReplaySource(
                    self.storage.root, project.event_log.data_path, project.prepared_path, project.split, columns
                )
                replay = Replay(source, worker_context() if self.prescribing.settings.prescribing_processes else None)
            chosen = [p for p in project.plugins if p.status == PluginStatus.ACTIVATING]
            states = [(PluginState.from_record(p), p.model_path) for p in chosen]
        prescriber = self.prescribing.prescriber_for(project_id, columns, attributes, states)
        active = ActiveProject(project_id, target, columns, attributes, states, prescriber)
        try:
            with self._lock, self.sessions() as session:
                project = project_record(session, project_id)
                live = self._current(project_id) and ProjectStatus(project.status) is ProjectStatus.ACTIVATING
                if live:
                    for plugin in project.plugins:
                        if plugin.status == PluginStatus.ACTIVATING:
                            set_plugin_status(plugin, PluginStatus.STREAMING)
                    set_project_status(project, target)
                    session.commit()
                    active.thread = self.prescribing.thread_for(active)
                    self.active[project_id] = active
        except Exception:
            self.prescribing.release(prescriber)
            raise
        if not live:  # stopped (or started again, or the core closing) while activating
            self.prescribing.release(prescriber)
            return
        active.thread.start()
        self.prescribing.requeue_unprescribed(active)
        self.broker.publish(project_id, "status", str(target))
        if target is ProjectStatus.SIMULATING:
            active.simulation = Simulation(self.post, self._replay_finished, active, replay, **simulation)
            active.simulation.start()
        self.prescribing.refill()  # the next activation finds a warm process too

    def stop(self, project_id: int, *, finished_reason: str = "stopped") -> None:
        """Stop streaming or simulating (reference 2.22): the project returns to TRAINED, readers get FINISHED."""
        with self._control_of(project_id):
            self._stop(project_id, finished_reason)

    def _replay_finished(self, active: ActiveProject, finished_reason: str) -> None:
        """A simulation replayed its last event: stop its project, unless it was stopped (or started again)
        meanwhile, or a start or stop is under way (which decides instead)."""
        control = self._control_of(active.project_id)
        if not control.acquire(blocking=False):
            return
        try:
            if self.active.get(active.project_id) is active:
                self._stop(active.project_id, finished_reason)
        finally:
            control.release()

    def _stop(self, project_id: int, finished_reason: str) -> None:
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if status not in STARTED:
                raise errors.StateError(errors.STREAMING_NOT_STARTED)
        with self._lock:  # an activation under way no longer goes live
            self._activating.pop(project_id, None)
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
            self.prescribing.release(active.prescriber)

    def close_stream(self, project_id: int, reason: str) -> None:
        """End a stream because the project changes under it (redefinition, deletion); readers get FINISHED."""
        if project_id in self.active:
            self._shutdown(project_id)
            self.broker.publish(project_id, "finished", reason)

    def shutdown_all(self) -> None:
        """Stop every prescriber (process exit); statuses stay as they are so a restart reactivates."""
        with self._lock:
            self._closing = True
            activating = list(self._activating.values())
        self.prescribing.close()  # the spare first: an activation waiting for it goes on without
        for thread in activating:  # an activation under way ends without going live
            thread.join(5.0)
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
            with contextlib.suppress(errors.StateError):  # stopped meanwhile
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
