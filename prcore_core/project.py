"""What the facade hands out: read-only snapshots of event logs, projects and plugins.

Snapshots are taken from the database when asked for; they never change under the caller. ``to_dict`` gives the
JSON objects of PrCore's documentation (seed "Check Project Status"), extended only by added keys.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prcore_core import errors
from prcore_core.db import DefinitionRecord, EventLogRecord, PluginRecord, ProjectRecord
from prcore_core.status import PluginStatus, ProjectStatus

if TYPE_CHECKING:
    from prcore_core.facade import PrCore


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def definition_to_dict(record: DefinitionRecord | None) -> dict | None:
    """The seed's ``definition`` object (plus PrCore's other definition fields)."""
    if record is None:
        return None
    return {
        "id": record.id,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "columns_definition": dict(record.columns_definition),
        "outcome_definition": record.outcome_definition,
        "treatment_definition": record.treatment_definition,
        "case_attributes": record.case_attributes,
        "fast_mode": record.fast_mode,
        "start_transition": record.start_transition,
        "complete_transition": record.complete_transition,
        "abort_transition": record.abort_transition,
        "outcome_definition_negative": record.outcome_definition_negative,
    }


@dataclass(frozen=True)
class EventLog:
    """An uploaded event log.

    Attributes
    ----------
    columns_header
        The file's columns, in file order.
    inferred_definition
        The definition guessed for each column of ``columns_header`` (reference 5.2), ``None`` where no guess.
    preview
        The first rows, as text.
    """

    id: int
    file_name: str
    columns_header: list[str]
    inferred_definition: list[str | None]
    preview: list[list[str | None]]
    n_rows: int
    created_at: dt.datetime
    updated_at: dt.datetime | None
    definition: dict | None

    @classmethod
    def from_record(cls, record: EventLogRecord) -> EventLog:
        from prcore_core.columns import infer_definition

        header = list(record.columns_header)
        return cls(
            id=record.id,
            file_name=record.file_name,
            columns_header=header,
            inferred_definition=[(str(d) if (d := infer_definition(c)) else None) for c in header],
            preview=record.preview,
            n_rows=record.n_rows,
            created_at=record.created_at,
            updated_at=record.updated_at,
            definition=definition_to_dict(record.definition),
        )

    def to_dict(self) -> dict:
        """The seed's ``event_log`` object."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "file_name": self.file_name,
            "definition": self.definition,
        }

    def upload_response(self) -> dict:
        """PrCore's ``POST /event_log`` answer (reference 2.1)."""
        return {
            "message": "Event log uploaded",
            "event_log_id": self.id,
            "columns_header": self.columns_header,
            "columns_inferred_definition": self.inferred_definition,
            "columns_data": self.preview,
        }


@dataclass(frozen=True)
class PluginState:
    """One plugin of a project as it is now."""

    id: int
    key: str
    name: str
    prescription_type: str
    description: str | None
    status: PluginStatus
    error: str | None
    progress: float
    progress_message: str | None
    parameters: dict
    additional_info: dict
    disabled: bool
    metrics: dict | None
    created_at: dt.datetime
    updated_at: dt.datetime | None

    @classmethod
    def from_record(cls, record: PluginRecord) -> PluginState:
        return cls(
            id=record.id,
            key=record.key,
            name=record.name,
            prescription_type=record.prescription_type,
            description=record.description,
            status=PluginStatus(record.status),
            error=record.error,
            progress=record.progress,
            progress_message=record.progress_message,
            parameters=dict(record.parameters or {}),
            additional_info=dict(record.additional_info or {}),
            disabled=record.disabled,
            metrics=record.metrics,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    def to_dict(self) -> dict:
        """The seed's plugin object, extended."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "name": self.name,
            "prescription_type": self.prescription_type,
            "description": self.description,
            "status": self.error if self.status is PluginStatus.ERROR else str(self.status),
            "key": self.key,
            "error": self.error,
            "progress": round(self.progress, 4),
            "progress_message": self.progress_message,
            "parameters": self.parameters,
            "additional_info": self.additional_info,
            "disabled": self.disabled,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Project:
    """A project as it is now; ask the facade (or :meth:`refresh`) for a newer snapshot."""

    id: int
    name: str
    description: str | None
    status: ProjectStatus
    error: str | None
    progress: float
    progress_message: str | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    event_log: EventLog
    plugins: list[PluginState]
    split: dict | None
    excluded_plugins: dict
    core: PrCore | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: ProjectRecord, core: PrCore | None = None) -> Project:
        return cls(
            id=record.id,
            name=record.name,
            description=record.description,
            status=ProjectStatus(record.status),
            error=record.error,
            progress=record.progress,
            progress_message=record.progress_message,
            created_at=record.created_at,
            updated_at=record.updated_at,
            event_log=EventLog.from_record(record.event_log),
            plugins=[PluginState.from_record(p) for p in record.plugins],
            split=record.split,
            excluded_plugins=dict(record.excluded_plugins or {}),
            core=core,
        )

    def plugin(self, key: str) -> PluginState:
        """The plugin with ``key``."""
        for plugin in self.plugins:
            if plugin.key == key:
                return plugin
        raise errors.NotFoundError(errors.PLUGIN_NOT_FOUND)

    def to_dict(self) -> dict:
        """The seed's ``project`` object (keys, nesting and order), extended by added keys."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "name": self.name,
            "description": self.description,
            "status": self.error if self.status is ProjectStatus.ERROR else str(self.status),
            "event_log": self.event_log.to_dict(),
            "plugins": [p.to_dict() for p in self.plugins],
            "error": self.error,
            "progress": round(self.progress, 4),
            "progress_message": self.progress_message,
            "split": self.split,
            "excluded_plugins": self.excluded_plugins,
        }

    # -- conveniences for notebooks and scripts ------------------------------------------------------------------
    def refresh(self) -> Project:
        """A fresh snapshot of this project."""
        return self._core.get_project(self.id)

    def wait_until(self, status: str | ProjectStatus = ProjectStatus.TRAINED, timeout: float = 300.0) -> Project:
        """Block until the project reaches ``status``; returns the snapshot that has it.

        Raises
        ------
        ProjectFailedError
            If the project ends in an error status (the message is the project's error).
        TimeoutError
            If ``status`` is not reached within ``timeout`` seconds.
        """
        wanted = ProjectStatus(str(status).upper())
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            project = self.refresh()
            if project.status is wanted:
                return project
            if project.status is ProjectStatus.ERROR:
                raise errors.ProjectFailedError(project.error or "Project failed")
            if time.monotonic() > deadline:
                plugins = ", ".join(f"{p.key} {p.status} ({p.progress_message})" for p in project.plugins)
                raise TimeoutError(
                    f"Project {self.id} is {project.status} after {timeout} s, not {wanted}; "
                    f"plugins: {plugins or 'none yet'}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def prescribe(self, source, filename: str | None = None, separator: str | None = None) -> dict[str, Any]:
        """Prescriptions for a log of ongoing cases; see :meth:`PrCore.prescribe`."""
        return self._core.prescribe(self.id, source, filename=filename, separator=separator)

    @property
    def _core(self) -> PrCore:
        if self.core is None:
            raise errors.StateError("This project snapshot is not attached to a PrCore")
        return self.core
