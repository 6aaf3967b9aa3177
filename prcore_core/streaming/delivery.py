"""Delivery: the in-process broker that tells readers about prescribed events, and the cursor of what was sent.

A new reader starts after the last event some reader was given; a reader that reconnects with the id it saw last
gets exactly what it missed. One reader per project at a time (seed "Get Prescriptions"): the rule is kept here,
so a reader in Python is held to it as an SSE client is.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.db import EventRecord
from prcore_core.streaming.events import stream_event

log = logging.getLogger(__name__)


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


class Delivery:
    """What readers were given: prescribed events after a cursor, the cursor a new reader starts from, readers."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._readers: set[int] = set()
        self._lock = threading.Lock()

    def open_reader(self, project_id: int) -> None:
        """Register the project's one reader; ``StateError`` when it already has one."""
        with self._lock:
            if project_id in self._readers:
                raise errors.StateError(errors.PROJECT_ALREADY_READING)
            self._readers.add(project_id)

    def close_reader(self, project_id: int | None) -> None:
        """The project's reader has gone; another may connect."""
        with self._lock:
            self._readers.discard(project_id)

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
                stream_event(
                    e.id, e.prescribed_at, e.complete_indicator, e.attributes, e.prescriptions or [], e.created_at
                )
                for e in session.scalars(query)
            ]

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
