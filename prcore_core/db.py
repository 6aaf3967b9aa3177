"""Persistence: the SQLAlchemy 2.0 typed ORM model and the database engine.

The database is the truth about event logs, definitions, projects and plugins; files on disk (raw uploads,
Parquet logs, models) are referenced from it. SQLite runs in WAL mode so readers never wait for a writer;
PostgreSQL (``postgresql+psycopg://...``, the ``postgres`` extra) is the other backend the tests run on.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import weakref
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

from prcore_core import errors


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class StoredText(TypeDecorator):
    r"""Text that every backend stores: PostgreSQL's text cannot hold NUL, so there NUL (and the escape character
    itself) is escaped; a case id or a name must not be storable on SQLite and refused on PostgreSQL.

    The escape is a private-use character that real text practically never holds: text is stored as it is.

    >>> text, postgresql = StoredText(), type("Dialect", (), {"name": "postgresql"})()
    >>> stored = text.process_bind_param("a\x00b\ue000c", postgresql)
    >>> "\x00" in stored, text.process_result_value(stored, postgresql) == "a\x00b\ue000c"
    (False, True)
    """

    impl = String
    cache_ok = True
    ESCAPE = "\ue000"
    _ESCAPED = re.compile("\ue000(.)", re.DOTALL)

    def process_bind_param(self, value, dialect):
        if not isinstance(value, str) or dialect.name != "postgresql":
            return value
        if "\x00" not in value and self.ESCAPE not in value:
            return value
        return value.replace(self.ESCAPE, self.ESCAPE * 2).replace("\x00", self.ESCAPE + "0")

    def process_result_value(self, value, dialect):
        if not isinstance(value, str) or dialect.name != "postgresql" or self.ESCAPE not in value:
            return value
        return self._ESCAPED.sub(lambda m: "\x00" if m[1] == "0" else m[1], value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    __table_args__: ClassVar[dict] = {"sqlite_autoincrement": True}  # ids handed to clients are never reused
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=None, onupdate=utcnow)


class DefinitionRecord(Timestamped, Base):
    """Columns definition of a log plus the outcome and treatment definitions of its project."""

    __tablename__ = "definition"
    columns_definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    case_attributes: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    fast_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    start_transition: Mapped[str] = mapped_column(StoredText, default="START")
    complete_transition: Mapped[str] = mapped_column(StoredText, default="COMPLETE")
    abort_transition: Mapped[str] = mapped_column(StoredText, default="ATE_ABORT")
    outcome_definition: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    outcome_definition_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    treatment_definition: Mapped[list[Any] | None] = mapped_column(JSON, default=None)


class EventLogRecord(Timestamped, Base):
    """An uploaded event log: the raw file as uploaded and its parsed form as Parquet."""

    __tablename__ = "event_log"
    file_name: Mapped[str] = mapped_column(StoredText)
    raw_path: Mapped[str] = mapped_column(StoredText)
    data_path: Mapped[str] = mapped_column(StoredText)
    n_rows: Mapped[int] = mapped_column(Integer)
    columns_header: Mapped[list[Any]] = mapped_column(JSON)
    preview: Mapped[list[Any]] = mapped_column(JSON, default=list)
    definition_id: Mapped[int | None] = mapped_column(ForeignKey("definition.id"), default=None)
    definition: Mapped[DefinitionRecord | None] = relationship(lazy="joined")


class ProjectRecord(Timestamped, Base):
    """A project: one event log, its definitions and the plugins trained on it."""

    __tablename__ = "project"
    name: Mapped[str] = mapped_column(StoredText)
    description: Mapped[str | None] = mapped_column(StoredText, default=None)
    status: Mapped[str] = mapped_column(StoredText)
    error: Mapped[str | None] = mapped_column(StoredText, default=None)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(StoredText, default=None)
    event_log_id: Mapped[int] = mapped_column(ForeignKey("event_log.id"), unique=True)
    training_run: Mapped[int] = mapped_column(Integer, default=0)
    prepared_path: Mapped[str | None] = mapped_column(StoredText, default=None)
    split: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attributes: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    excluded_plugins: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    additional_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event_log: Mapped[EventLogRecord] = relationship(lazy="joined")
    plugins: Mapped[list[PluginRecord]] = relationship(
        back_populates="project", lazy="selectin", order_by="PluginRecord.id", cascade="all, delete-orphan"
    )


class PluginRecord(Timestamped, Base):
    """One plugin of a project: its settings, status, progress, model file and held-out metrics."""

    __tablename__ = "plugin"
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    key: Mapped[str] = mapped_column(StoredText)
    prescription_type: Mapped[str] = mapped_column(StoredText)
    name: Mapped[str] = mapped_column(StoredText)
    description: Mapped[str | None] = mapped_column(StoredText, default=None)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    additional_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(StoredText)
    error: Mapped[str | None] = mapped_column(StoredText, default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(StoredText, default=None)
    model_path: Mapped[str | None] = mapped_column(StoredText, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    project: Mapped[ProjectRecord] = relationship(back_populates="plugins")


class CaseRecord(Timestamped, Base):
    """A case seen while streaming (posted or simulated), open until its last event arrives."""

    __tablename__ = "case"
    __table_args__ = (
        UniqueConstraint("project_id", "case_id").ddl_if(
            callable_=lambda *_, dialect, **__: dialect.name != "postgresql"
        ),
        # PostgreSQL's B-tree entries are at most ~2.7 kB, a posted case id up to 10,000 characters: uniqueness
        # through a hash index instead (it keeps 32-bit hashes and compares the rows), lookups through another
        ExcludeConstraint(
            (text("(project_id::text || ' ' || case_id)"), "="), name="uq_case_project_case", using="hash"
        ).ddl_if(dialect="postgresql"),
        Index("ix_case_case_id_hash", "case_id", postgresql_using="hash").ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[str] = mapped_column(StoredText)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)


class EventRecord(Timestamped, Base):
    """A streamed event as acknowledged, and the prescriptions it received.

    ``attributes`` keeps the event as posted (original column names); ``prescriptions`` is the list of
    prescription objects; ``sent`` says whether some SSE reader has been given it.
    """

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_project_prescribed", "project_id", "prescribed", "sent"),
        {"sqlite_autoincrement": True},
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    complete_indicator: Mapped[bool] = mapped_column(Boolean, default=False)
    prescriptions: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    prescribed: Mapped[bool] = mapped_column(Boolean, default=False)
    prescribed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    sent: Mapped[bool] = mapped_column(Boolean, default=False)


class DatasetResultRecord(Timestamped, Base):
    """Prescriptions for an uploaded dataset of ongoing cases, fetched by ``key`` (reference 2.18-2.19, section 7).

    A dataset sent with its event log (the ``test`` file) waits here without a project until one is created on
    that log. ``status`` is ``PENDING`` until prescribing starts, then ``RUNNING``, ``DONE`` or ``ERROR``; the
    dataset and the finished result are files (``source_path``, ``result_path``).
    """

    __tablename__ = "dataset_result"
    key: Mapped[str] = mapped_column(StoredText, unique=True)
    event_log_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), default=None)
    status: Mapped[str] = mapped_column(StoredText, default="PENDING")
    error: Mapped[str | None] = mapped_column(StoredText, default=None)
    file_name: Mapped[str] = mapped_column(StoredText)
    separator: Mapped[str | None] = mapped_column(StoredText, default=None)
    source_path: Mapped[str] = mapped_column(StoredText)
    result_path: Mapped[str | None] = mapped_column(StoredText, default=None)
    expected_plugins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    finished_plugins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


def project_record(session: Session, project_id: int) -> ProjectRecord:
    """The project with this id, or the user's error: PrCore answers an unknown project with 400 (reference 2)."""
    project = session.get(ProjectRecord, project_id)
    if project is None:
        raise errors.NotFoundError(errors.PROJECT_NOT_FOUND, 400)
    return project


#: Every engine of this process, so that a forked child can drop the connections it inherited.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
#: The PostgreSQL advisory lock held while the schema is created: processes starting at once on a new database
#: would otherwise race to create the same tables and types.
_SCHEMA_LOCK = 0x5072436F7265  # "PrCore"


def _forget_inherited_connections() -> None:
    """In a forked child: leave the parent's pooled connections to the parent (a connection is one socket; two
    processes talking over it corrupt both sessions), the child opens its own."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with the schema created; SQLite gets WAL, a busy timeout and cross-thread use,
    PostgreSQL a pre-ping (a server restarted under a long-running workbench)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.add(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        Base.metadata.create_all(connection)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
