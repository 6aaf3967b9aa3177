"""Streaming: events arrive one by one, each gets prescriptions from every active plugin, readers are told.

The path of an event (posted over REST, replayed by the simulation, or posted from a notebook):

1. :meth:`StreamingService.submit` validates it against the project's definition and hands it to the journal
   thread, which stores it (and its case) with whatever else was posted meanwhile in one transaction and commits
   **before** the event is acknowledged, so an acknowledged event survives any crash;
2. it is queued for the project's prescriber thread, which drains whatever has queued up and has the project's
   :class:`~prcore_core.prescriber.Prescriber` prescribe the whole burst with one model call per plugin (in a
   process of its own under a server, see ``Settings.prescribing_processes``);
3. the prescriptions are stored, then published through the in-process :class:`Broker` to SSE readers and open
   dashboards (adapters hop onto their own event loop; nothing here knows Tornado or Panel).

A project is activated (``TRAINED → ACTIVATING → STREAMING|SIMULATING``) by loading its plugins' models into its
prescriber; after a restart, streaming projects are activated again and events that were acknowledged but not yet
prescribed are prescribed then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import math
import queue
import random
import string
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import sessionmaker

from prcore_core import errors, values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Family, family
from prcore_core.context import StoredState
from prcore_core.dataset import Attribute
from prcore_core.db import CaseRecord, EventRecord, ProjectRecord, project_record
from prcore_core.plugin import Plugin
from prcore_core.preparation import held_out_events
from prcore_core.prescriber import (
    Prescriber,
    PrescriberProcess,
    PrescriberSpec,
    failed_prescriptions,
)
from prcore_core.project import PluginState
from prcore_core.running_cases import COMPLETE_INDICATOR
from prcore_core.status import (
    PLUGIN_STARTED,
    STARTED,
    PluginStatus,
    ProjectStatus,
    set_plugin_status,
    set_project_status,
)
from prcore_core.workers import importable, worker_context

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}
#: Most events one prescriber round handles; bursts beyond it are split into several rounds.
MAX_BATCH = 512
_STOP = object()


def parse_complete_indicator(value) -> bool:
    """``COMPLETE_INDICATOR`` as PrCore accepts it: booleans, 1/0 and their spellings (reference 2.24)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.InvalidEventError(f"Invalid value for {COMPLETE_INDICATOR}: {value!r} (expected true or false)")


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Broker:
    """In-process publish/subscribe of streaming news per project.

    Subscribers are plain callables ``callback(kind, payload)`` called in the publisher's thread; ``kind`` is
    ``"events"`` (payload: a list of prescribed events), ``"status"`` (payload: the new status) or ``"finished"``.
    Adapters hand the call over to their own event loop.
    """

    def __init__(self):
        self._subscribers: dict[int, tuple[int, Callable[[str, Any], None]]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(self, project_id: int, callback: Callable[[str, Any], None]) -> int:
        with self._lock:
            token = next(self._tokens)
            self._subscribers[token] = (project_id, callback)
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)

    def publish(self, project_id: int, kind: str, payload: Any = None) -> None:
        with self._lock:
            callbacks = [cb for pid, cb in self._subscribers.values() if pid == project_id]
        for callback in callbacks:
            try:
                callback(kind, payload)
            except Exception:  # one broken reader must not stop the others
                log.exception("A streaming subscriber failed")


@dataclass
class _Item:
    event_id: int
    case_id: str
    attributes: dict[str, Any]
    complete: bool
    created_at: dt.datetime


@dataclass
class _Posted:
    """A validated event waiting for the journal's next commit."""

    active: ActiveProject
    case_id: str
    attributes: dict[str, Any]
    complete: bool
    future: Future


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
    simulation: Simulation | None = None


class StreamingService:
    """Activation, ingestion, prescription and publication of streamed events for every project."""

    def __init__(self, sessions: sessionmaker, executor, load_model: Callable[[int, str, str], Plugin], trainer):
        self.settings = trainer.settings
        self.sessions = sessions
        self.executor = executor
        self.load_model = load_model
        self.trainer = trainer
        self.broker = Broker()
        self._active: dict[int, ActiveProject] = {}
        self._lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue()
        self._journal: threading.Thread | None = None

    # -- status helpers ------------------------------------------------------------------------------------------
    def is_open(self, project_id: int) -> bool:
        active = self._active.get(project_id)
        return active is not None and active.accepting

    # -- start / stop --------------------------------------------------------------------------------------------
    def start(self, project_id: int, mode: str = "streaming", **simulation) -> None:
        """Begin activation (reference 2.20/2.21); the project is STREAMING/SIMULATING once its models load."""
        try:
            target = {"streaming": ProjectStatus.STREAMING, "simulating": ProjectStatus.SIMULATING}[
                str(mode).strip().lower()
            ]
        except KeyError:
            raise errors.StateError(errors.INVALID_STREAMING_TYPE) from None
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if status is ProjectStatus.STREAMING or (status is ProjectStatus.ACTIVATING and project_id in self._active):
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
        from prcore_core.training import columns_of

        try:
            with self.sessions() as session:
                project = project_record(session, project_id)
                columns = columns_of(project.event_log)
                prepared = self.trainer.prepared(project) if project.prepared_path else None
                replay = None
                if target is ProjectStatus.SIMULATING:
                    raw = self.trainer.storage.read_frame(project.event_log.data_path)
                    replay = held_out_events(raw, columns, prepared.held_out_cases)
                chosen = [p for p in project.plugins if p.status == PluginStatus.ACTIVATING]
                states = [(PluginState.from_record(p), p.model_path) for p in chosen]
            attributes = tuple(prepared.attributes) if prepared else ()
            prescriber = self._prescriber_for(project_id, columns, attributes, states)
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
            active.thread = threading.Thread(
                target=self._prescribing_loop, args=(active,), name=f"prescriber-{project_id}", daemon=True
            )
            with self._lock:
                self._active[project_id] = active
            active.thread.start()
            self._requeue_unprescribed(active)
            self.broker.publish(project_id, "status", str(target))
            if target is ProjectStatus.SIMULATING:
                active.simulation = Simulation(self, active, replay, **simulation)
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

    def _open_histories(self, project_id: int) -> dict[str, list[dict[str, Any]]]:
        """The prescribed events of the open cases, per case in arrival order: what the prescriber starts from.

        Events acknowledged but not yet prescribed (before a restart) are not part of it: they are queued again and
        extend their cases when they are prescribed, exactly once.
        """
        with self.sessions() as session:
            rows = session.execute(
                select(CaseRecord.case_id, EventRecord.attributes)
                .join(EventRecord, EventRecord.case_pk == CaseRecord.id)
                .where(CaseRecord.project_id == project_id, CaseRecord.completed.is_(False),
                       EventRecord.prescribed.is_(True))
                .order_by(EventRecord.id)
            ).all()  # fmt: skip
        histories: dict[str, list[dict[str, Any]]] = {}
        for case_id, attributes in rows:
            histories.setdefault(case_id, []).append(attributes)
        return histories

    def _prescriber_for(self, project_id: int, columns: ColumnsDefinition, attributes: tuple[Attribute, ...],
                        plugins: list[tuple[PluginState, str]]) -> Prescriber | PrescriberProcess:  # fmt: skip
        """Load the project's prescriber: in a process of its own when the settings ask for it and every plugin
        can be imported there (one defined in a notebook cannot), else in this process."""
        from prcore_core import registry

        histories = self._open_histories(project_id)
        if self.settings.prescribing_processes and all(
            importable(registry.get_plugin_class(state.key)) for state, _ in plugins
        ):
            spec = PrescriberSpec(project_id, self.settings.url, self.settings.data_dir, columns, attributes,
                                  plugins, histories)  # fmt: skip
            return PrescriberProcess(spec, worker_context())
        loaded = [(state, self.load_model(project_id, state.key, path), StoredState(self.sessions, project_id,
                                                                                    state.key))
                  for state, path in plugins]  # fmt: skip
        return Prescriber(columns, attributes, loaded, histories)

    def _requeue_unprescribed(self, active: ActiveProject) -> None:
        with self.sessions() as session:
            rows = session.execute(
                select(EventRecord.id, CaseRecord.case_id, EventRecord.attributes, EventRecord.complete_indicator,
                       EventRecord.created_at)
                .join(CaseRecord, EventRecord.case_pk == CaseRecord.id)
                .where(EventRecord.project_id == active.project_id, EventRecord.prescribed.is_(False))
                .order_by(EventRecord.id)
            ).all()  # fmt: skip
        for event_id, case_id, attributes, complete, created_at in rows:
            active.queue.put(_Item(event_id, case_id, attributes, complete, created_at))
        if rows:
            log.warning("Prescribing %d events of project %s acknowledged before a restart", len(rows),
                        active.project_id)  # fmt: skip

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
            active = self._active.pop(project_id, None)
        if active is None:
            return
        active.accepting = False
        if active.simulation is not None:
            active.simulation.cancel()
            if active.simulation is not threading.current_thread():
                active.simulation.join(wait)
        self._flush_journal(wait)  # what was acknowledged is queued before the prescriber's stop
        active.queue.put(_STOP)
        if active.thread is not None and active.thread is not threading.current_thread():
            active.thread.join(wait)
        if active.prescriber is not None:
            active.prescriber.close()

    def close_stream(self, project_id: int, reason: str) -> None:
        """End a stream because the project changes under it (redefinition, deletion); readers get FINISHED."""
        if project_id in self._active:
            self._shutdown(project_id)
            self.broker.publish(project_id, "finished", reason)

    def shutdown_all(self) -> None:
        """Stop every prescriber (process exit); statuses stay as they are so a restart reactivates."""
        for project_id in list(self._active):
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

    # -- ingestion -----------------------------------------------------------------------------------------------
    def ingest(self, project_id: int, body: Any) -> dict[str, Any]:
        """Validate, store (committed) and queue one event; returns the seed's ``event`` object."""
        return self.submit(project_id, body).result()

    def submit(self, project_id: int, body: Any) -> Future:
        """Validate one event now and hand it to the journal; the future resolves once it is committed.

        Invalid events raise here, before anything is stored. The journal thread writes whatever has been
        submitted meanwhile in one transaction (group commit: concurrent posts share the cost of a commit), then
        queues the events for prescription and resolves each future with the seed's ``event`` object, or with the
        error that names why it was refused (e.g. its case is already completed).
        """
        active = self._active.get(project_id)
        if active is None or not active.accepting:
            with self.sessions() as session:
                project_record(session, project_id)
            raise errors.StateError(errors.PROJECT_NOT_STREAMING)
        if not isinstance(body, dict):
            raise errors.InvalidEventError("The event must be a JSON object of column names and values")
        attributes, case_id, complete = validate_event(body, active.columns)
        posted = _Posted(active, case_id, attributes, complete, Future())
        with self._lock:
            if self._journal is None or not self._journal.is_alive():
                self._journal = threading.Thread(target=self._journal_loop, name="event-journal", daemon=True)
                self._journal.start()
            self._pending.put(posted)
        return posted.future

    def _flush_journal(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is written (or refused)."""
        with self._lock:
            if self._journal is None or not self._journal.is_alive():
                return
            marker: Future = Future()
            self._pending.put(marker)
        marker.result(timeout)

    def _journal_loop(self) -> None:
        while True:
            first = self._pending.get()
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            markers = [m for m in batch if isinstance(m, Future)]
            posted = [p for p in batch if isinstance(p, _Posted)]
            if posted:
                try:
                    self._write(posted)
                except Exception as exc:  # the database failed: refuse the batch, nothing was acknowledged
                    log.exception("Writing %d events failed", len(posted))
                    for item in posted:
                        item.active.known_cases.clear()  # re-read from the database, which rolled back
                        if not item.future.done():
                            item.future.set_exception(errors.PrCoreError(f"The event could not be stored: {exc}"))
            for marker in markers:
                marker.set_result(None)

    def _write(self, batch: list[_Posted]) -> None:
        """One transaction for a batch of submitted events; queue and acknowledge them after the commit."""
        accepted: list[tuple[_Posted, int]] = []
        completed: list[tuple[ActiveProject, str, int]] = []
        with self.sessions() as session:
            for posted in batch:
                active = posted.active
                if not active.accepting:
                    posted.future.set_exception(errors.StateError(errors.PROJECT_NOT_STREAMING))
                    continue
                case = active.known_cases.get(posted.case_id)
                if case is None:
                    case = self._case(session, active.project_id, posted.case_id)
                    active.known_cases[posted.case_id] = case
                case_pk, done = case
                if done:
                    posted.future.set_exception(
                        errors.InvalidEventError(f"Case '{posted.case_id}' is already completed by an earlier event")
                    )
                    continue
                if posted.complete:
                    active.known_cases[posted.case_id] = (case_pk, True)
                    completed.append((active, posted.case_id, case_pk))
                accepted.append((posted, case_pk))
            if not accepted:
                return
            rows = session.execute(
                insert(EventRecord).returning(EventRecord.id, EventRecord.created_at, sort_by_parameter_order=True),
                [{"project_id": p.active.project_id, "case_pk": pk, "attributes": p.attributes,
                  "complete_indicator": p.complete} for p, pk in accepted],
            ).all()  # fmt: skip
            if completed:
                session.execute(
                    update(CaseRecord).where(CaseRecord.id.in_([pk for _, _, pk in completed])).values(completed=True)
                )
            session.commit()
        for active, case_id, _ in completed:
            active.known_cases.pop(case_id, None)  # a later post of the case finds it completed in the database
        for (posted, _), (event_id, created_at) in zip(accepted, rows, strict=True):
            active = posted.active
            active.queue.put(_Item(event_id, posted.case_id, posted.attributes, posted.complete, created_at))
            posted.future.set_result({
                "project_id": active.project_id,
                "attributes": renamed_attributes(posted.attributes, active.columns, posted.complete),
                "id": event_id,
                "created_at": _iso(created_at),
                "updated_at": None,
            })  # fmt: skip

    @staticmethod
    def _case(session, project_id: int, case_id: str) -> tuple[int, bool]:
        """The case's row id and whether it is completed, creating the case when it is new."""
        found = session.execute(
            select(CaseRecord.id, CaseRecord.completed).where(CaseRecord.project_id == project_id,
                                                              CaseRecord.case_id == case_id)
        ).first()  # fmt: skip
        if found is not None:
            return found.id, bool(found.completed)
        created = session.execute(
            insert(CaseRecord).values(project_id=project_id, case_id=case_id, completed=False).returning(CaseRecord.id)
        )
        return created.scalar_one(), False

    # -- prescribing ---------------------------------------------------------------------------------------------
    def _prescribing_loop(self, active: ActiveProject) -> None:
        while True:
            first = active.queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = active.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                self._prescribe_batch(active, batch)
            except Exception:
                log.exception("Prescribing a batch of project %s failed", active.project_id)
            if stop:
                return

    def _prescribe_batch(self, active: ActiveProject, batch: list[_Item]) -> None:
        burst = [(item.event_id, item.case_id, item.attributes, item.complete) for item in batch]
        try:
            if active.prescriber is None:  # its process ended under an earlier burst: start it again
                active.prescriber = self._prescriber_for(active.project_id, active.columns, active.attributes,
                                                         active.plugins)  # fmt: skip
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
                [{"id": item.event_id, "prescriptions": outputs[i], "prescribed": True, "prescribed_at": prescribed_at}
                 for i, item in enumerate(batch)],
            )  # fmt: skip
            session.commit()
        events = [
            stream_event(item.event_id, prescribed_at, item.complete, item.attributes, outputs[i], item.created_at)
            for i, item in enumerate(batch)
        ]
        self.broker.publish(active.project_id, "events", events)

    # -- reading -------------------------------------------------------------------------------------------------
    def prescribed_events(self, project_id: int, after_id: int | None = None, limit: int = 10_000) -> list[dict]:
        """Prescribed events to deliver: after ``after_id`` (a resuming reader) or not yet sent to anyone."""
        with self.sessions() as session:
            query = (
                select(EventRecord)
                .where(EventRecord.project_id == project_id, EventRecord.prescribed.is_(True))
                .order_by(EventRecord.id)
                .limit(limit)
            )
            if after_id is not None:
                query = query.where(EventRecord.id > after_id)
            else:
                query = query.where(EventRecord.sent.is_(False))
            return [
                stream_event(e.id, e.prescribed_at, e.complete_indicator, e.attributes, e.prescriptions or [],
                             e.created_at)
                for e in session.scalars(query)
            ]  # fmt: skip

    def last_sent_id(self, project_id: int) -> int:
        """The highest event id some reader was given (0 if none): where a new reader starts."""
        with self.sessions() as session:
            found = session.scalar(
                select(func.max(EventRecord.id)).where(EventRecord.project_id == project_id, EventRecord.sent.is_(True))
            )
        return int(found or 0)

    def mark_sent(self, event_ids: list[int]) -> None:
        if not event_ids:
            return
        with self.sessions() as session:
            session.execute(update(EventRecord).where(EventRecord.id.in_(event_ids)).values(sent=True))
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


def validate_event(body: dict, columns: ColumnsDefinition) -> tuple[dict, str, bool]:
    """Check one posted event against the definition; returns (stored attributes, case id, completes the case).

    Raises ``InvalidEventError`` naming the problem: a missing defined column or case attribute, an unparsable
    timestamp, a non-numeric number, a non-boolean boolean, an empty case id or activity.
    """
    complete_column = columns.column_of(ColumnDefinition.COMPLETE_INDICATOR) or COMPLETE_INDICATOR
    complete = parse_complete_indicator(body.get(complete_column))
    for column, definition in columns.columns.items():
        if definition is None or definition in (ColumnDefinition.COMPLETE_INDICATOR, ColumnDefinition.TRANSITION):
            continue
        if column not in body:
            raise errors.InvalidEventError(f"Missing pre-defined column {column}")
    for column in columns.case_attributes:
        if column not in body:
            raise errors.InvalidEventError(f"Missing case attribute {column}")
    attributes: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict | list):
            raise errors.InvalidEventError(f"Invalid value for {key}: nested objects and lists are not supported")
        attributes[str(key)] = _json_value(value)
        definition = columns.columns.get(key)
        if value is None or value == "" or definition is None:
            continue
        kind = family(definition)
        if kind is Family.DATETIME and values.parse_value(value, definition) is None:
            raise errors.InvalidEventError(f"Invalid datetime value for {key}: {value!r}")
        if kind is Family.NUMBER and definition is not ColumnDefinition.DURATION:
            try:
                if isinstance(value, bool):
                    raise ValueError
                float(value)
            except (TypeError, ValueError):
                raise errors.InvalidEventError(f"Invalid number value for {key}: {value!r}") from None
        if kind is Family.BOOLEAN and values.parse_value(value, definition) is None:
            raise errors.InvalidEventError(f"Invalid boolean value for {key}: {value!r}")
    for definition, name in ((ColumnDefinition.CASE_ID, "case id"), (ColumnDefinition.ACTIVITY, "activity")):
        column = columns.column_of(definition)
        if body.get(column) in (None, "") or not str(body.get(column)).strip():
            raise errors.InvalidEventError(f"The {name} ({column}) must not be empty")
    time_column = columns.time_column
    if body.get(time_column) in (None, ""):
        raise errors.InvalidEventError(f"The timestamp ({time_column}) must not be empty")
    return attributes, str(body[columns.case_id]).strip(), complete


def renamed_attributes(attributes: dict, columns: ColumnsDefinition, complete: bool) -> dict[str, str | None]:
    """The event's attributes under canonical names with text values, as PrCore answered (seed "Stream Data")."""
    renamed = {}
    for key, value in attributes.items():
        if key == COMPLETE_INDICATOR:
            continue
        name = columns.canonical_name(key)
        renamed[name] = None if value is None else str(value)
    renamed[COMPLETE_INDICATOR] = str(bool(complete))
    return renamed


def stream_event(event_id, prescribed_at, complete, attributes, prescriptions, created_at=None) -> dict[str, Any]:
    """One element of an SSE message (seed "Get Prescriptions")."""
    return {
        "id": event_id,
        "timestamp": _iso(prescribed_at),
        "case_completed": bool(complete),
        "data": {k: v for k, v in attributes.items() if k != COMPLETE_INDICATOR},
        "prescriptions": prescriptions,
        "created_at": _iso(created_at),
    }


def prcore_prescriptions(event: dict[str, Any]) -> dict[str, Any]:
    """PrCore's original form of an event's prescriptions: an object keyed by plugin key (reference 4)."""
    return {**event, "prescriptions": {p["plugin"]["key"]: p for p in event["prescriptions"]}}


class Simulation(threading.Thread):
    """Replays a project's held-out cases through the ingestion path, in timestamp order (reference 10.2).

    Parameters
    ----------
    interval
        Seconds between two events (fixed pace); ``None`` to use the log's real gaps divided by ``speed``.
    speed
        Speed-up of the real gaps (e.g. 3600: an hour of the log per second) when ``interval`` is ``None``.
    max_events
        Stop after this many events (PrCore stopped at 1,800); ``None`` replays everything.
    """

    def __init__(self, service: StreamingService, active: ActiveProject, events: pd.DataFrame,
                 interval: float | None = 0.0, speed: float | None = None, max_events: int | None = None):  # fmt: skip
        super().__init__(name=f"simulation-{active.project_id}", daemon=True)
        self.service = service
        self.active = active
        self.frame = events
        self.interval = interval
        self.speed = speed
        self.max_events = max_events
        self._cancelled = threading.Event()
        self.sent = 0

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> None:
        try:
            frame = self.frame
            columns = self.active.columns
            prefix = "".join(random.choices(string.ascii_letters + string.digits, k=8))
            case_column = columns.case_id
            time_column = frame.attrs.get("time_column")
            times = pd.to_datetime(frame[time_column], utc=True, errors="coerce") if time_column else None
            frame = frame.assign(**{COMPLETE_INDICATOR: ~frame[case_column].duplicated(keep="last")})
            records = frame.astype(object)
            records = records.where(records.notna(), None).to_dict("records")
            due = time.monotonic()  # on a schedule: the time an event takes to ingest does not slow the pace
            for position, record in enumerate(records):
                if self._cancelled.is_set() or (self.max_events is not None and self.sent >= self.max_events):
                    break
                record[case_column] = f"{prefix}-{record[case_column]}"
                record = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in record.items()}
                self.service.ingest(self.active.project_id, record)
                self.sent += 1
                delay = self.interval
                if delay is None and times is not None and self.speed:
                    current = times.iloc[position]
                    following = times.iloc[position + 1] if position + 1 < len(times) else current
                    delay = max((following - current).total_seconds(), 0.0) / self.speed
                due += delay or 0.0
                wait = due - time.monotonic()
                if wait > 0:
                    self._cancelled.wait(wait)
        except errors.PrCoreError as exc:
            if not self._cancelled.is_set():
                log.warning("Simulation of project %s stopped: %s", self.active.project_id, exc.detail)
        except Exception:
            log.exception("Simulation of project %s failed", self.active.project_id)
        if not self._cancelled.is_set():
            # the end of the replay: drain what was queued, then the project goes back to TRAINED
            deadline = time.monotonic() + 60
            while not self.active.queue.empty() and time.monotonic() < deadline:
                time.sleep(0.01)
            with contextlib.suppress(errors.PrCoreError):  # already stopped by someone else
                self.service.stop(self.active.project_id, finished_reason="simulation finished")
