"""The prescriber thread of each active project: it drains what has queued up, has the project's prescriber
prescribe the burst (one model call per plugin), stores the prescriptions, then publishes them.

Under a server the prescriber runs in a process of its own (``Settings.prescribing_processes``); one whose process
died is replaced at the next burst, and its burst is still stored and delivered, each prescription naming the
failure. After a restart the prescriber starts from the prescribed events of the open cases, and events that were
acknowledged but not prescribed are queued again, so each is prescribed exactly once. One warm process is kept
spare (:class:`~prcore_core.prescriber.SparePrescriber`): an activation hands it the project's models instead of
waiting for a new process to import the plugins' dependencies.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from prcore_core import registry
from prcore_core.columns import ColumnsDefinition
from prcore_core.context import StoredState
from prcore_core.dataset import Attribute
from prcore_core.db import CaseRecord, EventRecord
from prcore_core.plugin import Plugin
from prcore_core.prescriber import (
    Prescriber,
    PrescriberError,
    PrescriberProcess,
    PrescriberSpec,
    SparePrescriber,
    failed_prescriptions,
)
from prcore_core.project import PluginState
from prcore_core.settings import Settings
from prcore_core.status import ProjectStatus
from prcore_core.streaming.delivery import Broker
from prcore_core.streaming.events import stream_event
from prcore_core.workers import importable, worker_context

log = logging.getLogger(__name__)

#: Most events one prescriber round (or one journal commit) handles; bursts beyond it are split into several.
MAX_BATCH = 512
#: Put on a project's queue to end its prescriber thread.
STOP = object()
#: Seconds after an activation took the spare prescriber process before a new one is warmed: not in the stream's
#: first minute, when a dashboard is watched and a project stopped soon gives its own process back.
REFILL_DELAY = 60.0


@dataclass
class QueuedEvent:
    """A stored event waiting for its prescriptions."""

    event_id: int
    case_id: str
    attributes: dict[str, Any]
    complete: bool
    created_at: dt.datetime


@dataclass
class ActiveProject:
    """A project that accepts events: its definition, plugins, and the prescriber that holds models and cases."""

    project_id: int
    mode: ProjectStatus
    columns: ColumnsDefinition
    attributes: tuple[Attribute, ...]
    #: The active plugins and their model files.
    plugins: list[tuple[PluginState, str]]
    prescriber: Prescriber | PrescriberProcess | None
    queue: queue.Queue = field(default_factory=queue.Queue)
    #: Open cases seen while active: case id -> (row id, completed); read by the journal thread only.
    known_cases: dict[str, tuple[int, bool]] = field(default_factory=dict)
    accepting: bool = True
    thread: threading.Thread | None = None
    #: The replay of held-out cases, when the project is simulating.
    simulation: Any = None


class Prescribing:
    """Builds each active project's prescriber and runs its prescriber thread."""

    def __init__(
        self, sessions: sessionmaker, settings: Settings, load_model: Callable[[int, str, str], Plugin], broker: Broker
    ):
        self.sessions = sessions
        self.settings = settings
        self.load_model = load_model
        self.broker = broker
        #: A warm prescriber process for the next activation (under a server), started now.
        self.spare = SparePrescriber(self._warm_process) if settings.prescribing_processes else None
        if self.spare is not None:
            self.spare.fill()

    def _warm_process(self) -> PrescriberProcess:
        """A new prescriber process that imports the dependencies of every plugin it can import."""
        keys = [key for key, plugin_class in registry.available_plugins().items() if importable(plugin_class)]
        return PrescriberProcess(
            None, worker_context(), plugin_keys=keys, burst_timeout=self.settings.prescriber_timeout
        )

    def refill(self) -> None:
        """An activation took the spare: warm another one for the next, once the activation's first seconds are over."""
        if self.spare is not None:
            self.spare.fill(after=REFILL_DELAY)

    def release(self, prescriber: Prescriber | PrescriberProcess) -> None:
        """A stopped project's prescriber: its process becomes the spare when there is none ready, else it ends."""
        if isinstance(prescriber, PrescriberProcess) and self.spare is not None and self.spare.give_back(prescriber):
            return
        prescriber.close()

    def close(self) -> None:
        """End the spare prescriber process (the projects' own are ended by their activation)."""
        if self.spare is not None:
            self.spare.close()

    def thread_for(self, active: ActiveProject) -> threading.Thread:
        """The project's prescriber thread (not started yet)."""
        return threading.Thread(
            target=self._prescribing_loop, args=(active,), name=f"prescriber-{active.project_id}", daemon=True
        )

    def open_histories(self, project_id: int) -> dict[str, list[dict[str, Any]]]:
        """The prescribed events of the open cases, per case in arrival order: what the prescriber starts from.

        Events acknowledged but not yet prescribed (before a restart) are not part of it: they are queued again and
        extend their cases when they are prescribed, exactly once.
        """
        with self.sessions() as session:
            rows = session.execute(
                select(CaseRecord.case_id, EventRecord.attributes)
                .join(EventRecord, EventRecord.case_pk == CaseRecord.id)
                .where(
                    CaseRecord.project_id == project_id,
                    CaseRecord.completed.is_(False),
                    EventRecord.prescribed.is_(True),
                )
                .order_by(EventRecord.id)
            ).all()
        histories: dict[str, list[dict[str, Any]]] = {}
        for case_id, attributes in rows:
            histories.setdefault(case_id, []).append(attributes)
        return histories

    def prescriber_for(
        self,
        project_id: int,
        columns: ColumnsDefinition,
        attributes: tuple[Attribute, ...],
        plugins: list[tuple[PluginState, str]],
    ) -> Prescriber | PrescriberProcess:
        """Load the project's prescriber: in a process of its own when the settings ask for it and every plugin
        can be imported there (one defined in a notebook cannot), else in this process."""
        histories = self.open_histories(project_id)
        if self.settings.prescribing_processes and all(
            importable(registry.get_plugin_class(state.key)) for state, _ in plugins
        ):
            spec = PrescriberSpec(
                project_id, self.settings.url, self.settings.data_dir, columns, attributes, plugins, histories
            )
            spare = self.spare.take() if self.spare is not None else None
            if spare is not None:
                try:
                    spare.load(spec)
                    return spare
                except PrescriberError:
                    log.warning("The spare prescriber process failed; starting one for project %s", project_id)
            return PrescriberProcess(spec, worker_context(), burst_timeout=self.settings.prescriber_timeout)
        loaded = [
            (state, self.load_model(project_id, state.key, path), StoredState(self.sessions, project_id, state.key))
            for state, path in plugins
        ]
        return Prescriber(columns, attributes, loaded, histories)

    def requeue_unprescribed(self, active: ActiveProject) -> None:
        with self.sessions() as session:
            rows = session.execute(
                select(
                    EventRecord.id,
                    CaseRecord.case_id,
                    EventRecord.attributes,
                    EventRecord.complete_indicator,
                    EventRecord.created_at,
                )
                .join(CaseRecord, EventRecord.case_pk == CaseRecord.id)
                .where(EventRecord.project_id == active.project_id, EventRecord.prescribed.is_(False))
                .order_by(EventRecord.id)
            ).all()
        for event_id, case_id, attributes, complete, created_at in rows:
            active.queue.put(QueuedEvent(event_id, case_id, attributes, complete, created_at))
        if rows:
            log.warning(
                "Prescribing %d events of project %s acknowledged before a restart", len(rows), active.project_id
            )

    def _prescribing_loop(self, active: ActiveProject) -> None:
        while True:
            first = active.queue.get()
            if first is STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = active.queue.get_nowait()
                except queue.Empty:
                    break
                if item is STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                self._prescribe_batch(active, batch)
            except Exception:
                log.exception("Prescribing a batch of project %s failed", active.project_id)
            if stop:
                return

    def _prescribe_batch(self, active: ActiveProject, batch: list[QueuedEvent]) -> None:
        burst = [(item.event_id, item.case_id, item.attributes, item.complete) for item in batch]
        try:
            if active.prescriber is None:  # its process ended under an earlier burst: start it again
                active.prescriber = self.prescriber_for(
                    active.project_id, active.columns, active.attributes, active.plugins
                )
            outputs = active.prescriber.prescribe(burst)
        except Exception as exc:  # e.g. its process died: the burst is still stored and delivered, each saying why
            log.exception("Prescribing %d events of project %s failed", len(burst), active.project_id)
            if active.prescriber is not None:
                active.prescriber.close(wait=1.0)
            active.prescriber = None
            outputs = failed_prescriptions([state for state, _ in active.plugins], burst, str(exc))
        prescribed_at = dt.datetime.now(dt.UTC)
        with self.sessions() as session:
            session.execute(
                update(EventRecord),
                [
                    {
                        "id": item.event_id,
                        "prescriptions": outputs[i],
                        "prescribed": True,
                        "prescribed_at": prescribed_at,
                    }
                    for i, item in enumerate(batch)
                ],
            )
            session.commit()
        events = [
            stream_event(item.event_id, prescribed_at, item.complete, item.attributes, outputs[i], item.created_at)
            for i, item in enumerate(batch)
        ]
        self.broker.publish(active.project_id, "events", events)
