"""What a plugin may know and keep while it prescribes: the time, and a small persistent state.

Some prescriptions change the world they prescribe for: a resource allocated to one case is busy for the next.
Such plugins keep their state in a :class:`PersistentState` that the core backs with the database, so it survives
restarts, and that serialises concurrent prescriptions: :meth:`PersistentState.transaction` hands out the state
under a lock and writes it back (committed) before the lock is released.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from prcore_core.db import Base, Timestamped


class PersistentState:
    """A JSON-serialisable dict a plugin reads and changes atomically (in memory; see :class:`StoredState`)."""

    def __init__(self, initial: dict[str, Any] | None = None):
        self._state = dict(initial or {})
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """The state, exclusively; changes made to it are kept when the block ends without an exception."""
        with self._lock:
            working = copy.deepcopy(self._state)
            yield working
            self._save(working)
            self._state = working

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._state)

    def _save(self, state: dict[str, Any]) -> None:
        """Persist ``state`` (nothing to do in memory)."""


class PluginStateRecord(Timestamped, Base):
    """Persistent state of one plugin of one project (e.g. resource allocations)."""

    __tablename__ = "plugin_state"
    __table_args__ = (UniqueConstraint("project_id", "plugin_key"), {"sqlite_autoincrement": True})
    project_id: Mapped[int] = mapped_column(Integer, ForeignKey("project.id", ondelete="CASCADE"))
    plugin_key: Mapped[str] = mapped_column(String)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class StoredState(PersistentState):
    """A :class:`PersistentState` kept in the database; each transaction commits before it releases the lock."""

    _locks: ClassVar[dict[tuple[int, str], threading.Lock]] = {}
    _locks_guard = threading.Lock()

    def __init__(self, sessions: sessionmaker, project_id: int, plugin_key: str):
        self.sessions = sessions
        self.project_id = project_id
        self.plugin_key = plugin_key
        with self._locks_guard:
            self._lock = self._locks.setdefault((project_id, plugin_key), threading.Lock())

    def _record(self, session) -> PluginStateRecord:
        query = select(PluginStateRecord).where(
            PluginStateRecord.project_id == self.project_id, PluginStateRecord.plugin_key == self.plugin_key
        )
        record = session.scalar(query)
        if record is None:
            record = PluginStateRecord(project_id=self.project_id, plugin_key=self.plugin_key, state={})
            session.add(record)
        return record

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        with self._lock, self.sessions() as session:
            record = self._record(session)
            working = copy.deepcopy(record.state or {})
            yield working
            record.state = working
            session.commit()

    def snapshot(self) -> dict[str, Any]:
        with self.sessions() as session:
            return copy.deepcopy(self._record(session).state or {})


@dataclass
class PredictionContext:
    """Passed to :meth:`Plugin.predict`: the current time and the plugin's persistent state."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    state: PersistentState = field(default_factory=PersistentState)
