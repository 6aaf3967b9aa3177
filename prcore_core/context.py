"""What a plugin may know and keep while it prescribes: the time, and a small persistent state.

Some prescriptions change the world they prescribe for: a resource allocated to one case is busy for the next.
Such plugins keep their state in a :class:`PersistentState` that the core backs with the database, so it survives
restarts, and that serialises concurrent prescriptions: :meth:`PersistentState.transaction` hands out the state
under a lock and writes it back (committed) before the lock is released. In the database the lock is the row's
(``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so prescribers in different processes (the
server's batch prescriptions and a streaming project's prescriber process) never book the same resource twice.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from prcore_core.db import Base, Timestamped, utcnow


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
    """A :class:`PersistentState` kept in the database; each transaction commits before it releases the lock.

    The thread lock orders this process's prescribers; the row lock taken in :meth:`transaction` orders them with
    other processes' (an ORM read, change and write under ``READ COMMITTED`` or SQLite's autocommit reads would
    let two of them read the same state and the later write lose the earlier booking).
    """

    _locks: ClassVar[dict[tuple[int, str], threading.Lock]] = {}
    _locks_guard = threading.Lock()

    def __init__(self, sessions: sessionmaker, project_id: int, plugin_key: str):
        self.sessions = sessions
        self.project_id = project_id
        self.plugin_key = plugin_key
        with self._locks_guard:
            self._lock = self._locks.setdefault((project_id, plugin_key), threading.Lock())

    def _query(self):
        return select(PluginStateRecord).where(
            PluginStateRecord.project_id == self.project_id, PluginStateRecord.plugin_key == self.plugin_key
        )

    def _locked_record(self, session: Session) -> PluginStateRecord:
        """The state's row, created when missing, locked until the session commits or rolls back.

        ``INSERT ... ON CONFLICT DO NOTHING`` makes the row exist whoever creates it first (two processes inserting
        it meet the unique constraint, not an error); on SQLite it also takes the database's write lock, which a
        plain ``SELECT`` would not. On PostgreSQL ``FOR UPDATE`` then locks the row: a second transaction waits
        here and reads the state as the first committed it.
        """
        row = {"project_id": self.project_id, "plugin_key": self.plugin_key, "state": {}, "created_at": utcnow()}
        dialect = session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PluginStateRecord)
            session.execute(upsert.values(row).on_conflict_do_nothing(index_elements=["project_id", "plugin_key"]))
        elif session.scalar(self._query()) is None:
            session.execute(insert(PluginStateRecord).values(row))
        return session.scalars(self._query().with_for_update()).one()

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        with self._lock, self.sessions() as session:
            record = self._locked_record(session)
            working = copy.deepcopy(record.state or {})
            yield working
            record.state = working
            session.commit()

    def snapshot(self) -> dict[str, Any]:
        with self.sessions() as session:
            record = session.scalar(self._query())
            return copy.deepcopy(record.state if record is not None and record.state else {})


@dataclass
class PredictionContext:
    """Passed to :meth:`Plugin.predict`: the current time and the plugin's persistent state."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    state: PersistentState = field(default_factory=PersistentState)
