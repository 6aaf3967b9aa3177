"""The event journal: posted events are written in group commits and acknowledged only after the commit.

A validated event is handed to the journal thread, which writes everything posted meanwhile (and the cases it
opens or completes) in one transaction, so concurrent posts share the cost of a commit and an acknowledged event
survives any crash. Each event is then queued for its project's prescriber thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.db import CaseRecord, EventRecord
from prcore_core.streaming.events import _iso, renamed_attributes
from prcore_core.streaming.prescribing import MAX_BATCH, ActiveProject, QueuedEvent

log = logging.getLogger(__name__)


@dataclass
class PostedEvent:
    """A validated event waiting for the journal's next commit."""

    active: ActiveProject
    case_id: str
    attributes: dict[str, Any]
    complete: bool
    future: Future


class Journal:
    """The one thread that writes posted events, for every project."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._pending: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def post(self, posted: PostedEvent) -> None:
        """Hand a validated event to the journal thread (started when there is none)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._journal_loop, name="event-journal", daemon=True)
                self._thread.start()
            self._pending.put(posted)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is written (or refused)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
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
            posted = [p for p in batch if isinstance(p, PostedEvent)]
            if posted:
                self._commit(posted)
            for marker in markers:
                marker.set_result(None)

    def _commit(self, posted: list[PostedEvent]) -> None:
        """Write a batch in one transaction; if it fails, write its events one by one, so that one client's event the
        database refuses never refuses the events other clients posted beside it."""
        try:
            self._write(posted)
            return
        except Exception:
            for item in posted:
                item.active.known_cases.clear()  # re-read from the database, which rolled back
            if len(posted) == 1:
                self._refuse(posted[0])
                return
            log.warning("Writing %d events in one transaction failed; writing them one by one", len(posted))
        for item in posted:
            try:
                self._write([item])
            except Exception:
                item.active.known_cases.clear()
                self._refuse(item)

    @staticmethod
    def _refuse(item: PostedEvent) -> None:
        """The database failed on this event: nothing was acknowledged, the client may post it again (503)."""
        log.exception("Writing an event of case %r failed", item.case_id)
        if not item.future.done():
            item.future.set_exception(
                errors.StorageError("The event could not be stored; nothing was acknowledged, post it again")
            )

    def _write(self, batch: list[PostedEvent]) -> None:
        """One transaction for a batch of submitted events; queue and acknowledge them after the commit.

        Refusals are answered after the commit too: if the transaction fails, each event is written again alone
        and a refusal that came from another event of the failed batch (its case completed there) is not kept.
        """
        accepted: list[tuple[PostedEvent, int]] = []
        completed: list[tuple[ActiveProject, str, int]] = []
        refused: list[tuple[PostedEvent, Exception]] = []
        with self.sessions() as session:
            for posted in batch:
                active = posted.active
                if not active.accepting:
                    refused.append((posted, errors.StateError(errors.PROJECT_NOT_STREAMING)))
                    continue
                case = active.known_cases.get(posted.case_id)
                if case is None:
                    case = self._case(session, active.project_id, posted.case_id)
                    active.known_cases[posted.case_id] = case
                case_pk, done = case
                if done:
                    message = f"Case '{posted.case_id}' is already completed by an earlier event"
                    refused.append((posted, errors.InvalidEventError(message)))
                    continue
                if posted.complete:
                    active.known_cases[posted.case_id] = (case_pk, True)
                    completed.append((active, posted.case_id, case_pk))
                accepted.append((posted, case_pk))
            rows = []
            if accepted:
                rows = session.execute(
                    insert(EventRecord).returning(EventRecord.id, EventRecord.created_at, sort_by_parameter_order=True),
                    [
                        {
                            "project_id": p.active.project_id,
                            "case_pk": pk,
                            "attributes": p.attributes,
                            "complete_indicator": p.complete,
                        }
                        for p, pk in accepted
                    ],
                ).all()
            if completed:
                session.execute(
                    update(CaseRecord).where(CaseRecord.id.in_([pk for _, _, pk in completed])).values(completed=True)
                )
            session.commit()
        for posted, refusal in refused:
            posted.future.set_exception(refusal)
        for active, case_id, _ in completed:
            active.known_cases.pop(case_id, None)  # a later post of the case finds it completed in the database
        for (posted, _), (event_id, created_at) in zip(accepted, rows, strict=True):
            active = posted.active
            active.queue.put(QueuedEvent(event_id, posted.case_id, posted.attributes, posted.complete, created_at))
            posted.future.set_result(
                {
                    "project_id": active.project_id,
                    "attributes": renamed_attributes(posted.attributes, active.columns, posted.complete),
                    "id": event_id,
                    "created_at": _iso(created_at),
                    "updated_at": None,
                }
            )

    @staticmethod
    def _case(session, project_id: int, case_id: str) -> tuple[int, bool]:
        """The case's row id and whether it is completed, creating the case when it is new."""
        found = session.execute(
            select(CaseRecord.id, CaseRecord.completed).where(
                CaseRecord.project_id == project_id, CaseRecord.case_id == case_id
            )
        ).first()
        if found is not None:
            return found.id, bool(found.completed)
        created = session.execute(
            insert(CaseRecord).values(project_id=project_id, case_id=case_id, completed=False).returning(CaseRecord.id)
        )
        return created.scalar_one(), False
