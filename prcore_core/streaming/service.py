"""Streaming: events arrive one by one, each gets prescriptions from every active plugin, readers are told.

The path of an event (posted over REST, replayed by the simulation, or posted from a notebook):

1. :meth:`StreamingService.submit` validates it against the project's definition (:mod:`.events`) and hands it
   to the journal thread (:mod:`.journal`), which stores it (and its case) with whatever else was posted meanwhile
   in one transaction and commits **before** the event is acknowledged, so an acknowledged event survives any
   crash;
2. it is queued for the project's prescriber thread (:mod:`.prescribing`), which drains whatever has queued up and
   has the project's :class:`~prcore_core.prescriber.Prescriber` prescribe the whole burst with one model call per
   plugin (in a process of its own under a server, see ``Settings.prescribing_processes``);
3. the prescriptions are stored, then published through the in-process broker (:mod:`.delivery`) to SSE readers
   and open dashboards (adapters hop onto their own event loop; nothing here knows Tornado or Panel).

A project is activated (``TRAINED → ACTIVATING → STREAMING|SIMULATING``, :mod:`.activation`) by loading its
plugins' models into its prescriber; after a restart, streaming projects are activated again and events that were
acknowledged but not yet prescribed are prescribed then. :mod:`.simulation` replays held-out cases.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.db import ProjectRecord, project_record
from prcore_core.plugin import Plugin
from prcore_core.preparation import PreparedLog
from prcore_core.settings import Settings
from prcore_core.status import ProjectStatus
from prcore_core.storage import Storage
from prcore_core.streaming.activation import Activation
from prcore_core.streaming.delivery import Broker, Delivery
from prcore_core.streaming.events import validate_event
from prcore_core.streaming.journal import Journal, PostedEvent
from prcore_core.streaming.prescribing import ActiveProject, Prescribing

#: Events one bulk request may carry (``POST /project/{id}/stream/events``); more are refused with 413.
MAX_EVENTS_PER_REQUEST = 50_000


class StreamingService:
    """Activation, ingestion, prescription and publication of streamed events for every project.

    Parameters
    ----------
    sessions
        The database's sessions.
    executor
        Runs activations off the caller's thread.
    settings
        Whether prescribers run in processes of their own, and the database they reach from there.
    storage
        The data directory (raw logs replayed by simulations).
    prepared
        The prepared data of a project's current run.
    load_model
        ``load_model(project_id, plugin_key, model_path)``: a trained plugin, loaded (and cached by the caller).
    """

    def __init__(
        self,
        sessions: sessionmaker,
        executor,
        settings: Settings,
        storage: Storage,
        prepared: Callable[[ProjectRecord], PreparedLog],
        load_model: Callable[[int, str, str], Plugin],
    ):
        self.sessions = sessions
        self.broker = Broker()
        self.delivery = Delivery(sessions)
        self.journal = Journal(sessions)
        self.prescribing = Prescribing(sessions, settings, load_model, self.broker)
        self.activation = Activation(
            sessions, executor, storage, prepared, self.broker, self.journal, self.prescribing, post=self._replayed
        )

    @property
    def _active(self) -> dict[int, ActiveProject]:
        """The active projects by id (for tests and diagnostics)."""
        return self.activation.active

    # -- start / stop --------------------------------------------------------------------------------------------
    def is_open(self, project_id: int) -> bool:
        """Does the project accept events now?"""
        return self.activation.is_open(project_id)

    def start(self, project_id: int, mode: str = "streaming", **simulation) -> None:
        """Begin activation (reference 2.20/2.21); the project is STREAMING/SIMULATING once its models load."""
        self.activation.start(project_id, mode, **simulation)

    def stop(self, project_id: int, *, finished_reason: str = "stopped") -> None:
        """Stop streaming or simulating (reference 2.22): the project returns to TRAINED, readers get FINISHED."""
        self.activation.stop(project_id, finished_reason=finished_reason)

    def close_stream(self, project_id: int, reason: str) -> None:
        """End a stream because the project changes under it (redefinition, deletion); readers get FINISHED."""
        self.activation.close_stream(project_id, reason)

    def shutdown_all(self) -> None:
        """Stop every prescriber (process exit); statuses stay as they are so a restart reactivates."""
        self.activation.shutdown_all()

    def clear(self, project_id: int) -> None:
        """Stop streaming if running, then delete the project's streamed cases and events (reference 2.23)."""
        self.activation.clear(project_id)

    def recover(self) -> None:
        """After a restart: re-activate projects that were streaming; a simulation cannot resume, so it ends."""
        self.activation.recover()

    # -- ingestion -----------------------------------------------------------------------------------------------
    def ingest(self, project_id: int, body: Any) -> dict[str, Any]:
        """Validate, store (committed) and queue one event; returns the seed's ``event`` object."""
        return self.submit(project_id, body).result()

    def _replayed(self, project_id: int, body: Any) -> dict[str, Any]:
        """Store one event of a simulation's replay (the only events a SIMULATING project takes)."""
        return self.submit(project_id, body, replayed=True).result()

    def submit(self, project_id: int, body: Any, *, replayed: bool = False) -> Future:
        """Validate one event now and hand it to the journal; the future resolves once it is committed.

        Invalid events raise here, before anything is stored. The journal thread writes whatever has been
        submitted meanwhile in one transaction (group commit: concurrent posts share the cost of a commit), then
        queues the events for prescription and resolves each future with the seed's ``event`` object, or with the
        error that names why it was refused (e.g. its case is already completed).
        """
        active = self._accepting(project_id, replayed)
        if not isinstance(body, dict):
            raise errors.InvalidEventError("The event must be a JSON object of column names and values")
        attributes, case_id, complete = validate_event(body, active.columns)
        posted = PostedEvent(active, case_id, attributes, complete, Future())
        self.journal.post(posted)
        return posted.future

    def _accepting(self, project_id: int, replayed: bool = False) -> ActiveProject:
        """The project's stream, if it takes events now; else ``Project not found`` or ``Project not streaming``."""
        active = self.activation.active.get(project_id)
        # a simulating project takes only its replay's events (another client's would mix into the replayed cases)
        if active is None or not active.accepting or (active.mode is ProjectStatus.SIMULATING and not replayed):
            with self.sessions() as session:
                project_record(session, project_id)
            raise errors.StateError(errors.PROJECT_NOT_STREAMING)
        return active

    def submit_many(self, project_id: int, bodies: Any) -> list[Future]:
        """Validate each event on its own and hand the valid ones to the journal together (one commit per
        journal batch); one future per event, in order, a refused event's already holding its error."""
        if not isinstance(bodies, list):
            raise errors.InvalidEventError("The events must be a JSON array of event objects")
        if len(bodies) > MAX_EVENTS_PER_REQUEST:
            raise errors.InvalidEventError(
                f"{len(bodies):,} events in one request; at most {MAX_EVENTS_PER_REQUEST:,} are accepted "
                "(limit MAX_EVENTS_PER_REQUEST)",
                413,
            )
        self._accepting(project_id)
        futures: list[Future] = []
        for body in bodies:
            try:
                futures.append(self.submit(project_id, body))
            except errors.StateError:
                raise  # the project does not take events: the whole request is refused
            except errors.PrCoreError as exc:
                refused: Future = Future()
                refused.set_exception(exc)
                futures.append(refused)
        return futures

    # -- reading -------------------------------------------------------------------------------------------------
    def prescribed_events(self, project_id: int, after_id: int | None = None, limit: int = 10_000) -> list[dict]:
        """Prescribed events to deliver: after ``after_id`` (a resuming reader) or not yet sent to anyone."""
        return self.delivery.prescribed_events(project_id, after_id, limit)

    def last_sent_id(self, project_id: int) -> int:
        """The highest event id some reader was given (0 if none): where a new reader starts."""
        return self.delivery.last_sent_id(project_id)

    def mark_sent(self, event_ids: list[int]) -> None:
        """Remember that these events were given to a reader."""
        self.delivery.mark_sent(event_ids)
