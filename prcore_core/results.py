"""Prescriptions for uploaded datasets of ongoing cases, fetched later by key (reference 2.18-2.19, section 7).

A dataset arrives with its event log (the ``test`` file of the upload, waiting for a project on that log) or for
a trained project. It is stored first, so a restart loses nothing: the database row says where it is in its life,
the dataset and the finished result are files. Once the project can prescribe, every active plugin prescribes
for the last event of each case in one batch, through the same path as streamed events.

Unlike PrCore, whose results lived in the memory of one process and could be read once, a result stays readable
until it expires (``Settings.result_ttl_hours``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import string
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import pandas as pd
from sqlalchemy import delete, select, update
from sqlalchemy.orm import sessionmaker

from prcore_core import errors
from prcore_core.db import DatasetResultRecord, ProjectRecord, utcnow
from prcore_core.status import PRESCRIBABLE, ProjectStatus
from prcore_core.storage import Storage

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, ERROR = "PENDING", "RUNNING", "DONE", "ERROR"
KEY_ALPHABET = string.ascii_letters + string.digits
#: Seconds between looks for datasets whose project has become ready (only while some wait).
POLL_SECONDS = 1.0
#: Seconds between sweeps for expired results while no dataset waits.
IDLE_SECONDS = 300.0

#: ``(project_id, frame, finished) -> {case_id: [prescription, ...]}``; ``finished(key)`` after each plugin.
PrescribeFrame = Callable[[int, pd.DataFrame, Callable[[str], None]], dict[str, list[dict]]]
#: ``(project_id, source bytes, file name, separator) -> frame`` checked against the project's definition.
ReadDataset = Callable[[int, bytes, str, str | None], tuple[pd.DataFrame, dict[str, Any]]]


def new_key() -> str:
    """Eight random letters and digits, as PrCore's result keys."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(8))


def events_by_case(frame: pd.DataFrame, case_column: str) -> dict[str, list[list[str | None]]]:
    """Each case's rows as lists of text in the frame's column order, in file order (reference 2.19 ``events``)."""
    text = frame.astype(object).where(frame.notna(), None)
    rows: dict[str, list[list[str | None]]] = {}
    for case, row in zip(frame[case_column].astype(str), text.itertuples(index=False, name=None), strict=True):
        rows.setdefault(case, []).append([None if v is None else str(v) for v in row])
    return rows


class DatasetResults:
    """The stored dataset results and the thread that prescribes them once their project is ready."""

    def __init__(
        self,
        sessions: sessionmaker,
        storage: Storage,
        executor: Executor,
        ttl_hours: float,
        read_dataset: ReadDataset,
        prescribe_frame: PrescribeFrame,
        expected_plugins: Callable[[int], list[str]],
    ):
        self.sessions = sessions
        self.storage = storage
        self.executor = executor
        self.ttl = dt.timedelta(hours=ttl_hours)
        self.read_dataset = read_dataset
        self.prescribe_frame = prescribe_frame
        self.expected_plugins = expected_plugins
        self._wake = threading.Event()
        self._closed = False
        with self.sessions() as session:  # prescribing interrupted by a restart starts again
            session.execute(
                update(DatasetResultRecord).where(DatasetResultRecord.status == RUNNING).values(status=PENDING)
            )
            session.commit()
        self._thread = threading.Thread(target=self._watch, name="prcore-dataset-results", daemon=True)
        self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # -- storing ------------------------------------------------------------------------------------------------
    def _store(self, data: bytes, file_name: str, separator: str | None, **owner) -> str:
        key = new_key()
        relative = self.storage.write_bytes(f"results/{key}/{file_name}", data)
        with self.sessions() as session:
            session.add(
                DatasetResultRecord(
                    key=key,
                    file_name=file_name,
                    separator=separator,
                    source_path=relative,
                    expires_at=utcnow() + self.ttl,
                    **owner,
                )
            )
            session.commit()
        self._wake.set()
        return key

    def hold_for_event_log(self, event_log_id: int, data: bytes, file_name: str, separator: str | None) -> str:
        """Keep the ``test`` file uploaded with an event log until a project is created on it."""
        return self._store(data, file_name, separator, event_log_id=event_log_id)

    def submit(self, project_id: int, data: bytes, file_name: str, separator: str | None) -> str:
        """Store a dataset for a project (already checked by the caller); returns its key."""
        return self._store(data, file_name, separator, project_id=project_id)

    def attach(self, session, event_log_id: int, project_id: int) -> str | None:
        """Give the datasets held for an event log to its new project (in the caller's transaction); the newest
        one's key, or ``None`` when none was uploaded; :meth:`wake` once the transaction is committed."""
        held = session.scalars(
            select(DatasetResultRecord)
            .where(DatasetResultRecord.event_log_id == event_log_id, DatasetResultRecord.project_id.is_(None))
            .order_by(DatasetResultRecord.id)
        ).all()
        for record in held:
            record.project_id = project_id
            record.expires_at = utcnow() + self.ttl  # counted from when it can start, not from the upload
        return held[-1].key if held else None

    def wake(self) -> None:
        """Look for datasets to start now: call after committing a change that may let one start (woken before
        the commit, the watcher would read the old state and sleep until the next dataset arrives)."""
        self._wake.set()

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, project_id: int, key: str) -> dict[str, Any]:
        """The result's state and, once done, its cases (reference 2.19; raises ``Result not found``)."""
        with self.sessions() as session:
            record = session.scalar(select(DatasetResultRecord).where(DatasetResultRecord.key == key))
            if record is None or record.project_id != project_id or record.expires_at < utcnow():
                raise errors.NotFoundError(errors.RESULT_NOT_FOUND)
            state = {
                "status": record.status,
                "error": record.error,
                "expected_plugins": list(record.expected_plugins or []),
                "finished_plugins": list(record.finished_plugins or []),
                "result_path": record.result_path,
            }
        if state["status"] == DONE:
            state["result"] = json.loads(self.storage.path(state["result_path"]).read_text())
        return state

    # -- prescribing --------------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Start each dataset whose project can prescribe; fail those whose project failed; drop expired ones."""
        while not self._closed:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            if self._closed:
                return
            try:
                waiting = self._start_ready()
                self._expire()
            except Exception:  # e.g. the database is closing; try again next time
                log.exception("Looking for datasets to prescribe failed")
                waiting = True
            if not waiting:
                self._wake.wait(IDLE_SECONDS)  # nothing waits for a project: sleep until a dataset arrives

    def _start_ready(self) -> bool:
        """Start what can start; whether some dataset still waits for its project."""
        waiting, ready = False, []
        with self.sessions() as session:
            records = session.scalars(select(DatasetResultRecord).where(DatasetResultRecord.status == PENDING)).all()
            for record in records:
                if record.project_id is None:
                    continue
                project = session.get(ProjectRecord, record.project_id)
                if project is None:
                    continue
                status = ProjectStatus(project.status)
                if status is ProjectStatus.ERROR:
                    record.status, record.error = ERROR, errors.PROJECT_ERROR
                elif status in PRESCRIBABLE:
                    record.status = RUNNING
                    record.expected_plugins = self.expected_plugins(record.project_id)
                    record.finished_plugins = []
                    ready.append(record.key)
                else:
                    waiting = True
            session.commit()
        for key in ready:
            self.executor.submit(self._prescribe, key)
        return waiting

    def _expire(self) -> None:
        with self.sessions() as session:
            expired = session.scalars(
                select(DatasetResultRecord.key).where(DatasetResultRecord.expires_at < utcnow())
            ).all()
            if not expired:
                return
            session.execute(delete(DatasetResultRecord).where(DatasetResultRecord.key.in_(expired)))
            session.commit()
        for key in expired:
            self.storage.remove(f"results/{key}")

    def _prescribe(self, key: str) -> None:
        with self.sessions() as session:
            record = session.scalar(select(DatasetResultRecord).where(DatasetResultRecord.key == key))
            if record is None or record.status != RUNNING:
                return
            project_id, source = record.project_id, (record.source_path, record.file_name, record.separator)
        try:
            data = self.storage.path(source[0]).read_bytes()
            frame, described = self.read_dataset(project_id, data, source[1], source[2])

            def finished(plugin_key: str) -> None:
                with self.sessions() as session:
                    done = session.scalar(select(DatasetResultRecord).where(DatasetResultRecord.key == key))
                    done.finished_plugins = [*done.finished_plugins, plugin_key]
                    session.commit()

            prescribed = self.prescribe_frame(project_id, frame, finished)
            rows = events_by_case(frame, described["case_column"])
            cases = {case: {"prescriptions": prescribed.get(case, []), "events": rows[case]} for case in rows}
            result = {
                "cases_count": len(cases),
                "columns": [str(c) for c in frame.columns],
                "columns_definition": described["columns_definition"],
                "case_attributes": described["case_attributes"],
                "cases": cases,
            }
            relative = self.storage.write_bytes(f"results/{key}/result.json", json.dumps(result, default=str).encode())
            status, error = DONE, None
        except errors.PrCoreError as exc:
            relative, status, error = None, ERROR, exc.detail
        except Exception as exc:
            log.exception("Prescribing dataset %s failed", key)
            relative, status, error = None, ERROR, f"{type(exc).__name__}: {exc}"
        with self.sessions() as session:
            record = session.scalar(select(DatasetResultRecord).where(DatasetResultRecord.key == key))
            if record is not None:
                record.status, record.error, record.result_path = status, error, relative
                session.commit()
