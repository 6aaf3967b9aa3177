"""The public facade: everything a user can do, one call each, for the dashboard, REST and notebooks alike.

>>> from prcore_core import PrCore  # doctest: +SKIP
>>> core = PrCore("./prcore-data")  # doctest: +SKIP
>>> log = core.upload_event_log("bpic2012-CSV.zip")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from prcore_core import errors, registry, transitions, values
from prcore_core.analysis import DefinedLog
from prcore_core.cache import DerivedCache
from prcore_core.columns import ColumnsDefinition, validate_columns_definition
from prcore_core.conditions import CaseDefinition
from prcore_core.context import StoredState
from prcore_core.dataset import LabelledLog, PrefixBatch, sort_events
from prcore_core.db import (
    DatasetResultRecord,
    DefinitionRecord,
    EventLogRecord,
    PluginRecord,
    ProjectRecord,
    make_engine,
    make_sessionmaker,
    project_record,
)
from prcore_core.plugin import Plugin
from prcore_core.preparation import canonical_events
from prcore_core.prescriber import prescribe_prefixes
from prcore_core.project import EventLog, PluginState, Project
from prcore_core.reading import check_file_name, read_event_log
from prcore_core.results import DatasetResults
from prcore_core.settings import Settings
from prcore_core.status import (
    IN_TRAINING,
    LIVE,
    PRESCRIBABLE,
    REDEFINABLE,
    PluginStatus,
    ProjectStatus,
    set_plugin_status,
    set_project_status,
)
from prcore_core.storage import Storage
from prcore_core.streaming import DEFAULT_INTERVAL, StreamingService, stream_target
from prcore_core.training import Trainer, columns_of, project_definition_of

log = logging.getLogger(__name__)

#: Above this many rows detailed transition mode is refused (reference 2.2).
MAX_DETAILED_ROWS = 1_000_000
PREVIEW_ROWS = 5


def _preview(frame: pd.DataFrame) -> list[list[str | None]]:
    head = frame.head(PREVIEW_ROWS)
    return [[None if pd.isna(v) else str(v) for v in row] for row in head.itertuples(index=False)]


def _source_bytes(source, filename: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        if not filename:
            raise errors.InvalidEventLogError("A file name (with its extension) is needed when uploading bytes")
        return bytes(source), filename
    path = Path(os.fspath(source))
    if not path.is_file():
        raise errors.InvalidEventLogError(f"No such file: {path}")
    return path.read_bytes(), filename or path.name


def _result_of(future: Future) -> dict[str, Any]:
    """One event's answer in a bulk post: the stored event, or why it was refused."""
    try:
        return {"event": future.result()}
    except errors.PrCoreError as exc:
        return {"detail": exc.detail, "status_code": exc.status_code}


def _stored_suffix(name: str) -> str:
    """The extension the raw upload is stored with: the accepted one (``.csv``, ``.xes.gz``, ...), never the
    rest of a long, odd file name."""
    suffixes = [s.lower() for s in Path(name).suffixes[-2:] if len(s) <= 8]
    return "".join(suffixes) or ".bin"


class PrCore:
    """The PrCore workbench: event logs, definitions, projects and their plugins.

    Parameters
    ----------
    data_dir
        Where state is kept; default ``PRCORE_DATA_DIR`` or ``./prcore-data``.
    database_url
        SQLAlchemy URL; default ``PRCORE_DATABASE_URL`` or a SQLite file in ``data_dir``.
    settings
        A complete :class:`Settings` instead of the two arguments above.
    """

    def __init__(self, data_dir=None, database_url: str | None = None, settings: Settings | None = None):
        if settings is None:
            given = {"data_dir": data_dir, "database_url": database_url}
            settings = Settings(**{k: v for k, v in given.items() if v is not None})
        self.settings = settings
        self.storage = Storage(settings.data_dir)
        self.engine = make_engine(settings.url)
        self.sessions = make_sessionmaker(self.engine)
        self.executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="prcore")
        #: The one owner of in-memory copies: defined logs, prepared data, loaded models.
        self.cache = DerivedCache()
        self.trainer = Trainer(self.sessions, self.storage, settings, self.executor, self.cache)
        self.streaming = StreamingService(
            self.sessions, self.executor, settings, self.storage, self.trainer.prepared, self._model
        )
        self.results = DatasetResults(
            self.sessions,
            self.storage,
            self.executor,
            settings.result_ttl_hours,
            self._read_dataset,
            self._prescribe_frame,
            self._expected_plugins,
        )
        self._recover()

    def close(self, wait: bool = True) -> None:
        """Stop background work and release the database (streaming projects are re-activated on restart).

        ``wait=False`` does not wait for the background threads still running (pandas cannot be interrupted): a
        server told to stop leaves them, and training they were doing resumes at the next start.
        """
        self.trainer.close()  # first: training that fails from now on was interrupted, not failed
        self.results.close()
        self.streaming.shutdown_all()
        self.executor.shutdown(wait=wait, cancel_futures=True)
        self.engine.dispose()

    def __enter__(self) -> PrCore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrCore(data_dir={str(self.settings.data_dir)!r})"

    def _recover(self) -> None:
        """Resume work a restart interrupted: nothing stays PREPROCESSING/TRAINING forever."""
        resumed = []
        with self.sessions() as session:
            for project in session.scalars(select(ProjectRecord)):
                status = ProjectStatus(project.status)
                if status in IN_TRAINING:
                    self.trainer.start(session, project)
                    project.progress_message = "Resumed after a restart"
                    resumed.append((project.id, project.training_run))
            session.commit()
        for project_id, run in resumed:
            log.warning("Resuming training of project %s interrupted by a restart", project_id)
            self.trainer.submit(project_id, run)
        self.streaming.recover()
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Files of uploads or results a crash interrupted before their row was written are removed at start."""
        with self.sessions() as session:
            referenced = {"/".join(Path(p).parts[:2]) for p in session.scalars(select(EventLogRecord.data_path))}
            referenced |= {f"results/{k}" for k in session.scalars(select(DatasetResultRecord.key))}
            referenced |= {self.storage.project_dir(i) for i in session.scalars(select(ProjectRecord.id))}
        removed = self.storage.remove_orphans(referenced)
        if removed:
            log.warning("Removed %d file(s) a crash left behind: %s", len(removed), ", ".join(removed[:5]))

    # -- plugins -------------------------------------------------------------------------------------------------
    def available_plugins(self) -> dict[str, dict[str, Any]]:
        """Every plugin a new project can use, by key, with its declared parameters."""
        return {key: cls.info() for key, cls in registry.available_plugins().items()}

    # -- event logs ----------------------------------------------------------------------------------------------
    def upload_event_log(
        self,
        source,
        filename: str | None = None,
        separator: str | None = None,
        test=None,
        test_filename: str | None = None,
    ) -> EventLog:
        """Parse and store an event log (CSV, XES, zip or gzip; a path or bytes).

        ``test`` (a path or bytes with ``test_filename``) is a dataset of ongoing cases kept with the log: the
        project created on the log prescribes it once trained, under the key :meth:`dataset_results` lists
        (PrCore's "Ongoing Dataset Example", reference 2.1 and 2.12).

        Raises
        ------
        InvalidEventLogError
            With PrCore's message when the file is not a readable event log.
        """
        data, name = _source_bytes(source, filename)
        check_file_name(name)
        if test is not None:
            test_data, test_name = _source_bytes(test, test_filename)
            check_file_name(test_name)
        frame = read_event_log(data, filename=name, separator=separator, limits=self.settings.reading_limits)
        if test is not None:
            try:
                read_event_log(test_data, filename=test_name, separator=separator, limits=self.settings.reading_limits)
            except errors.PrCoreError as exc:
                exc.detail = f"{exc.detail} (the test file {test_name})"
                raise
        directory, raw, parquet = self._store_log_files(name, data, frame)
        try:
            with self.sessions() as session:
                record = EventLogRecord(
                    file_name=name,
                    raw_path=raw,
                    data_path=parquet,
                    n_rows=len(frame),
                    columns_header=[str(c) for c in frame.columns],
                    preview=_preview(frame),
                )
                session.add(record)
                session.commit()
                uploaded = EventLog.from_record(record)
        except BaseException:
            self.storage.remove(directory)
            raise
        if test is not None:
            self.results.hold_for_event_log(uploaded.id, test_data, Path(test_name).name, separator)
        return uploaded

    def _store_log_files(self, name: str, data: bytes, frame: pd.DataFrame) -> tuple[str, str, str]:
        """Write an upload's bytes and its parsed frame into a new directory (removed again if a write fails);
        returns the directory, the raw file and the Parquet file (relative to the data directory)."""
        directory = self.storage.new_event_log_dir()
        try:
            raw = self.storage.write_bytes(f"{directory}/raw{_stored_suffix(name)}", data)
            parquet = self.storage.write_frame(f"{directory}/log.parquet", frame)
        except BaseException:
            self.storage.remove(directory)
            raise
        return directory, raw, parquet

    def reupload_event_log(
        self, event_log_id: int, source, filename: str | None = None, separator: str | None = None
    ) -> dict[str, Any]:
        """Replace the event log of a project with a new file with the same columns, and retrain on it.

        The definitions are kept; the project stops streaming and trains again with its plugins' settings.
        Returns the analysis of :meth:`set_columns_definition` (reference 2.3, with PrCore's bugs fixed: the new
        data is the data trained on, and the answer is complete).
        """
        data, name = _source_bytes(source, filename)
        check_file_name(name)
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id)
            project = session.scalar(select(ProjectRecord).where(ProjectRecord.event_log_id == event_log_id))
            if project is None:
                raise errors.NotFoundError(errors.PROJECT_NOT_FOUND)
            if ProjectStatus(project.status) not in {*LIVE, ProjectStatus.TRAINED, ProjectStatus.ERROR}:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            defined = dict(record.definition.columns_definition or {}) if record.definition else {}
            fast_mode = record.definition.fast_mode if record.definition else True
        frame = read_event_log(data, filename=name, separator=separator, limits=self.settings.reading_limits)
        if any(column not in frame.columns for column in defined):
            raise errors.InvalidEventLogError(errors.EVENT_LOG_COLUMNS_MISMATCH)
        if not fast_mode and len(frame) > MAX_DETAILED_ROWS:
            raise errors.StateError(errors.FAST_MODE_ENFORCED)
        directory, raw, parquet = self._store_log_files(name, data, frame)
        try:
            with self.sessions() as session:
                record = self._event_log_record(session, event_log_id)
                project = session.scalar(select(ProjectRecord).where(ProjectRecord.event_log_id == event_log_id))
                if ProjectStatus(project.status) not in {*LIVE, ProjectStatus.TRAINED, ProjectStatus.ERROR}:
                    raise errors.StateError(errors.PROJECT_NOT_READY)
                self.streaming.close_stream(project.id, "the event log was uploaded again")
                old_directory = str(Path(record.data_path).parent)
                record.file_name, record.raw_path, record.data_path = name, raw, parquet
                record.n_rows, record.preview = len(frame), _preview(frame)
                record.columns_header = [str(c) for c in frame.columns]
                self.cache.forget("defined_log", event_log_id)
                self.cache.forget("process_map", event_log_id)
                columns = columns_of(record)
                analysis = self._analyse(record, columns)
                self.trainer.start(session, project)
                project.progress_message = "Event log uploaded again: pre-processing it"
                session.commit()
                project_id, run = project.id, project.training_run
        except BaseException:
            self.storage.remove(directory)
            raise
        self.storage.remove(old_directory)
        self.trainer.submit(project_id, run)
        return {"message": "Event log updated", "event_log_id": event_log_id, **analysis}

    def event_log_definition(self, event_log_id: int) -> dict[str, Any]:
        """The columns definition of a log beside its columns and first rows (reference 2.5).

        Unlike PrCore, every column of the file is listed, with ``None`` where it is not defined, so the header,
        the definitions and the rows line up.
        """
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id)
            if record.definition is None or not record.definition.columns_definition:
                raise errors.NotFoundError(errors.EVENT_LOG_DEFINITION_NOT_FOUND)
            defined = dict(record.definition.columns_definition)
            header = list(record.columns_header)
            return {
                "message": "Event log definition retrieved successfully",
                "event_log_id": event_log_id,
                "columns_header": header,
                "columns_old_definition": [defined.get(c) for c in header],
                "columns_data": record.preview,
                "case_attributes": record.definition.case_attributes,
            }

    def _event_log_record(self, session, event_log_id: int, status_code: int = 404) -> EventLogRecord:
        record = session.get(EventLogRecord, event_log_id)
        if record is None:
            raise errors.NotFoundError(errors.EVENT_LOG_NOT_FOUND, status_code)
        return record

    def get_event_log(self, event_log_id: int) -> EventLog:
        with self.sessions() as session:
            return EventLog.from_record(self._event_log_record(session, event_log_id))

    def list_event_logs(self) -> list[EventLog]:
        with self.sessions() as session:
            records = session.scalars(select(EventLogRecord).order_by(EventLogRecord.id))
            return [EventLog.from_record(r) for r in records]

    def read_event_log_frame(self, event_log_id: int) -> pd.DataFrame:
        """The stored (parsed, text) event log as a DataFrame."""
        with self.sessions() as session:
            path = self._event_log_record(session, event_log_id).data_path
        return self.storage.read_frame(path)

    def count_cases(self, event_log_id: int) -> int | None:
        """Cases of the log by its case ID column: the defined one, else the inferred one (``None`` if neither).

        Only that column is read from the stored log.
        """
        event_log = self.get_event_log(event_log_id)
        inferred = dict(zip(event_log.columns_header, event_log.inferred_definition, strict=True))
        definition = (event_log.definition or {}).get("columns_definition") or inferred
        case_column = next((c for c, d in definition.items() if d == "CASE_ID"), None)
        if case_column is None:
            return None
        with self.sessions() as session:
            path = self._event_log_record(session, event_log_id).data_path
        cases = pd.read_parquet(self.storage.path(path), columns=[case_column])[case_column]
        return int(cases.nunique(dropna=True))

    def log_analysis(self, event_log_id: int) -> dict[str, Any]:
        """Activity and resource counts and the number of cases of a defined log (from :meth:`defined_log`).

        What a view shows for a log defined earlier, without defining it again.
        """
        defined = self.defined_log(event_log_id)
        resource = defined.columns.resource
        resources = defined.log[resource].dropna().astype(str).value_counts() if resource else pd.Series(dtype=int)
        return {
            "activities_count": {str(k): int(v) for k, v in defined.activity_frequencies().items()},
            "resources_count": {str(k): int(v) for k, v in resources.items()},
            "n_cases": defined.n_cases,
        }

    def set_columns_definition(
        self,
        event_log_id: int,
        columns_definition: Mapping[str, str | None],
        case_attributes: list[str] | None = None,
        fast_mode: bool = True,
        start_transition: str = "START",
        complete_transition: str = "COMPLETE",
        abort_transition: str = "ATE_ABORT",
    ) -> dict[str, Any]:
        """Say what each column means; returns PrCore's analysis (reference 2.2).

        Redefining the columns of a log that has a project resets the project's outcome and treatment and sets
        it back to ``WAITING``.
        """
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id)
            project = session.scalar(select(ProjectRecord).where(ProjectRecord.event_log_id == event_log_id))
            if project is not None and ProjectStatus(project.status) not in REDEFINABLE:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            if not fast_mode and record.n_rows > MAX_DETAILED_ROWS:
                raise errors.StateError(errors.FAST_MODE_ENFORCED)
            columns = validate_columns_definition(
                record.columns_header,
                columns_definition,
                case_attributes,
                fast_mode,
                start_transition,
                complete_transition,
                abort_transition,
            )
            analysis = self._analyse(record, columns)
            stored = columns.to_dict()
            if record.definition is None:
                record.definition = DefinitionRecord(**stored)
            else:
                for key, value in stored.items():
                    setattr(record.definition, key, value)
                record.definition.outcome_definition = None
                record.definition.outcome_definition_negative = False
                record.definition.treatment_definition = None
            if project is not None:
                self.streaming.close_stream(project.id, "the columns were redefined")
                project.training_run += 1  # any job still running for the old definition is now stale
                for plugin in project.plugins:
                    set_plugin_status(plugin, PluginStatus.WAITING)
                set_project_status(project, ProjectStatus.WAITING)
                project.progress, project.progress_message = 0.0, "Waiting for a new outcome and treatment definition"
            session.commit()
            return {"message": "Event log updated", "event_log_id": event_log_id, **analysis}

    def _analyse(self, record: EventLogRecord, columns: ColumnsDefinition) -> dict[str, Any]:
        needed = [c for c in (columns.activity, columns.resource, columns.transition, columns.case_id) if c]
        frame = self.storage.read_frame(record.data_path)[needed]
        parsed = values.parse_log(frame, columns)
        parsed, _ = transitions.apply_transitions(parsed, columns, detailed=False)

        def counts(column):
            if not column:
                return {}
            return {str(k): int(v) for k, v in parsed[column].dropna().value_counts().items()}

        return {
            "received_definition": columns.to_dict()["columns_definition"],
            "activities_count": counts(columns.activity),
            "resources_count": counts(columns.resource),
            "outcome_options": columns.outcome_columns,
            "treatment_options": columns.condition_columns,
        }

    def defined_log(self, event_log_id: int) -> DefinedLog:
        """The parsed, defined log for live questions (case counts, values, process map); cached per definition."""
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id)
            if record.definition is None:
                raise errors.StateError(errors.EVENT_LOG_DEFINITION_NOT_FOUND)
            columns = columns_of(record)
            version = record.definition.updated_at or record.definition.created_at
            data_path = record.data_path
        return self.cache.get(
            ("defined_log", event_log_id),
            version,
            lambda: DefinedLog.build(self.storage.read_frame(data_path), columns),
        )

    def process_map(self, event_log_id: int) -> tuple[pd.DataFrame, pd.Series, int]:
        """The directly-follows relation, the activity frequencies and the number of cases of a defined log.

        Computing the relation reads every event (about 0.1 s for BPIC 2012's 164,000 events), so it is kept with
        the defined log's version, as the defined log itself is.
        """
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id)
            version = (record.definition.updated_at or record.definition.created_at) if record.definition else None

        def compute():
            defined = self.defined_log(event_log_id)
            return defined.directly_follows(), defined.activity_frequencies(), defined.n_cases

        return self.cache.get(("process_map", event_log_id), version, compute)

    def count_matching_cases(self, event_log_id: int, definition) -> tuple[int, int]:
        """``(matching, total)``: how many cases an outcome or treatment definition labels positive (live counts)."""
        defined = self.defined_log(event_log_id)
        return defined.count_matching(definition), defined.n_cases

    # -- projects ------------------------------------------------------------------------------------------------
    def _plugin_settings(self, parameters, additional_info) -> tuple[dict, dict]:
        """Per-plugin parameters and additional info keyed by plugin key (aliases resolved), validated."""
        plugins = registry.available_plugins()
        resolved_parameters, resolved_info = {}, {}
        for given, target in ((parameters, resolved_parameters), (additional_info, resolved_info)):
            if given is None:
                continue
            if not isinstance(given, Mapping):
                raise errors.InvalidParameterError("parameters and additional_info must map plugin keys to objects")
            for key, value in given.items():
                if not isinstance(value, Mapping):
                    raise errors.InvalidParameterError(f"Settings for plugin '{key}' must be an object")
                target[registry.resolve_key(key, plugins)] = dict(value)
        for key, value in resolved_parameters.items():
            plugins[key].from_parameters(value)
        for key, value in resolved_info.items():
            plugins[key].validate_additional_info(value)
        return resolved_parameters, resolved_info

    @staticmethod
    def _project_definitions(columns, positive_outcome, negative_outcome, treatment):
        if positive_outcome is not None and negative_outcome is not None:
            raise errors.InvalidConditionError(errors.PROJECT_DEFINITION_CONFLICT)
        raw_outcome = positive_outcome if positive_outcome is not None else negative_outcome
        outcome = CaseDefinition.parse(raw_outcome, columns) if raw_outcome is not None else None
        treated = CaseDefinition.parse(treatment, columns) if treatment is not None else None
        return outcome, negative_outcome is not None, treated

    def create_project(
        self,
        event_log_id: int,
        positive_outcome=None,
        negative_outcome=None,
        treatment=None,
        parameters: Mapping[str, Mapping] | None = None,
        additional_info: Mapping[str, Mapping] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Project:
        """Create a project on a defined event log; it pre-processes and trains in the background.

        ``positive_outcome`` or ``negative_outcome`` (not both) and ``treatment`` are OR-of-AND condition lists;
        ``parameters`` and ``additional_info`` are keyed by plugin key. Returns at once, status
        ``PREPROCESSING``.
        """
        with self.sessions() as session:
            record = self._event_log_record(session, event_log_id, status_code=400)
            if record.definition is None or not record.definition.columns_definition:
                raise errors.StateError(errors.EVENT_LOG_DEFINITION_NOT_FOUND)
            if session.scalar(select(ProjectRecord.id).where(ProjectRecord.event_log_id == event_log_id)):
                raise errors.StateError(errors.PROJECT_EXISTED)
            columns = columns_of(record)
            outcome, negative, treated = self._project_definitions(
                columns, positive_outcome, negative_outcome, treatment
            )
            plugin_parameters, plugin_info = self._plugin_settings(parameters, additional_info)
            record.definition.outcome_definition = outcome.to_list() if outcome else None
            record.definition.outcome_definition_negative = negative
            record.definition.treatment_definition = treated.to_list() if treated else None
            project = ProjectRecord(
                name=name or record.file_name,
                description=description,
                status=str(ProjectStatus.WAITING),
                event_log=record,
                parameters=plugin_parameters,
                additional_info=plugin_info,
            )
            session.add(project)
            self.trainer.start(session, project)
            session.flush()
            self.results.attach(session, event_log_id, project.id)
            session.commit()
            project_id, run = project.id, project.training_run
            snapshot = Project.from_record(project, self)
        self.results.wake()
        self.trainer.submit(project_id, run)
        return snapshot

    def get_project(self, project_id: int) -> Project:
        with self.sessions() as session:
            return Project.from_record(project_record(session, project_id), self)

    def list_projects(self) -> list[Project]:
        """Every project, newest first."""
        with self.sessions() as session:
            query = select(ProjectRecord).order_by(ProjectRecord.created_at.desc(), ProjectRecord.id.desc())
            return [Project.from_record(p, self) for p in session.scalars(query)]

    def update_project(self, project_id: int, name: str | None = None, description: str | None = None) -> Project:
        """Rename or describe a project (any status)."""
        with self.sessions() as session:
            project = project_record(session, project_id)
            if name is not None:
                if not str(name).strip():
                    raise errors.InvalidParameterError("A project name cannot be empty")
                project.name = str(name)
            if description is not None:
                project.description = str(description)
            session.commit()
            return Project.from_record(project, self)

    def redefine_project(
        self,
        project_id: int,
        positive_outcome=None,
        negative_outcome=None,
        treatment=None,
        parameters=None,
        additional_info=None,
    ) -> Project:
        """New outcome/treatment definitions: retrain from scratch with fresh plugin instances.

        Plugins left out before (e.g. the treatment effect when no treatment was defined) are reconsidered.
        """
        with self.sessions() as session:
            project = project_record(session, project_id)
            if ProjectStatus(project.status) not in REDEFINABLE:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            record = project.event_log
            columns = columns_of(record)
            outcome, negative, treated = self._project_definitions(
                columns, positive_outcome, negative_outcome, treatment
            )
            plugin_parameters, plugin_info = self._plugin_settings(parameters, additional_info)
            self.streaming.close_stream(project_id, "the project was redefined")
            record.definition.outcome_definition = outcome.to_list() if outcome else None
            record.definition.outcome_definition_negative = negative
            record.definition.treatment_definition = treated.to_list() if treated else None
            project.parameters, project.additional_info = plugin_parameters, plugin_info
            self.trainer.start(session, project)
            session.commit()
            run = project.training_run
            snapshot = Project.from_record(project, self)
        self.trainer.submit(project_id, run)
        return snapshot

    def delete_project(self, project_id: int) -> int:
        """Delete a project with its event log, definition, plugins, dataset results and files."""
        with self.sessions() as session:
            project_record(session, project_id)
        self.streaming.close_stream(project_id, "the project was deleted")
        with self.sessions() as session:
            project = project_record(session, project_id)
            record = project.event_log
            record_id = record.id
            files = [self.storage.project_dir(project_id), str(Path(record.data_path).parent)]
            owned = (DatasetResultRecord.project_id == project_id) | (DatasetResultRecord.event_log_id == record_id)
            for result in session.scalars(select(DatasetResultRecord).where(owned)):
                files.append(f"results/{result.key}")
                session.delete(result)
            definition = record.definition
            session.delete(project)
            session.flush()
            session.delete(record)
            if definition is not None:
                session.delete(definition)
            session.commit()
        for relative in files:
            self.storage.remove(relative)
        self.cache.forget("model", project_id)
        self.cache.forget("prepared", project_id)
        self.cache.forget("defined_log", record_id)
        self.cache.forget("process_map", record_id)
        return project_id

    def project_data(self, project_id: int) -> tuple[LabelledLog, LabelledLog]:
        """A project's ``(training, held_out)`` labelled logs, exactly as its plugins were trained and evaluated."""
        with self.sessions() as session:
            project = project_record(session, project_id)
            if not project.prepared_path:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            definition = project_definition_of(project.event_log, columns_of(project.event_log))
            prepared = self.trainer.prepared(project)
        return prepared.part("training", definition), prepared.part("held_out", definition)

    # -- plugins of projects ---------------------------------------------------------------------------------------
    def list_plugins(self) -> list[PluginState]:
        """The plugins of every project, in the order they were created."""
        with self.sessions() as session:
            records = session.scalars(select(PluginRecord).order_by(PluginRecord.id))
            return [PluginState.from_record(r) for r in records]

    def get_plugin(self, plugin_id: int) -> PluginState:
        """One plugin of a project by its id."""
        with self.sessions() as session:
            return PluginState.from_record(self._plugin_record(session, plugin_id))

    @staticmethod
    def _plugin_record(session, plugin_id: int, trained: bool = False) -> PluginRecord:
        """The plugin, and with ``trained`` the checks of PrCore's plugin updates (reference 2.10, bug 6 fixed)."""
        plugin = session.get(PluginRecord, plugin_id)
        if plugin is None:
            raise errors.NotFoundError(errors.PLUGIN_NOT_FOUND)
        if trained:
            if ProjectStatus(plugin.project.status) is not ProjectStatus.TRAINED:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            if PluginStatus(plugin.status) is not PluginStatus.TRAINED:
                raise errors.StateError(errors.PLUGIN_NOT_READY)
        return plugin

    def update_plugin(
        self,
        plugin_id: int,
        parameters: Mapping[str, Any] | None = None,
        additional_info: Mapping[str, Any] | None = None,
    ) -> PluginState:
        """Change a trained plugin's parameters or additional info; it trains again when they change.

        Both are merged into the stored ones (PrCore's shallow merge, reference 2.10). The built-in plugins read
        their additional info while fitting (resource allocation's resources), so a change to either retrains
        that plugin alone, in a fresh instance; the project is TRAINING meanwhile.
        """
        for name, given in (("parameters", parameters), ("additional_info", additional_info)):
            if given is not None and not isinstance(given, Mapping):
                raise errors.InvalidParameterError(f"{name} must be an object")
        with self.sessions() as session:
            plugin = self._plugin_record(session, plugin_id, trained=True)
            plugin_class = registry.get_plugin_class(plugin.key)
            merged_parameters = {**(plugin.parameters or {}), **dict(parameters or {})}
            merged_info = {**(plugin.additional_info or {}), **dict(additional_info or {})}
            plugin_class.from_parameters(merged_parameters)
            plugin_class.validate_additional_info(merged_info)
            changed = merged_parameters != (plugin.parameters or {}) or merged_info != (plugin.additional_info or {})
            plugin.parameters, plugin.additional_info = merged_parameters, merged_info
            start = self.trainer.retrain_plugin(session, plugin.project, plugin) if changed else None
            session.commit()
            state = PluginState.from_record(plugin)
        if start is not None:
            start()
        return state

    def set_plugin_enabled(self, plugin_id: int, enabled: bool) -> PluginState:
        """Enable or disable a trained plugin: a disabled one prescribes nowhere (batch, datasets, streams)."""
        with self.sessions() as session:
            plugin = self._plugin_record(session, plugin_id, trained=True)
            if bool(plugin.disabled) == (not enabled):
                raise errors.StateError(errors.PLUGIN_ALREADY_ENABLED if enabled else errors.PLUGIN_ALREADY_DISABLED)
            if not enabled and all(p.disabled for p in plugin.project.plugins if p.id != plugin.id):
                raise errors.StateError("At least one plugin of a project must stay enabled")
            plugin.disabled = not enabled
            session.commit()
            return PluginState.from_record(plugin)

    # -- datasets of ongoing cases ------------------------------------------------------------------------------
    def submit_dataset(self, project_id: int, source, filename: str | None = None, separator: str | None = None) -> str:
        """Store a dataset of ongoing cases for a trained project and prescribe it in the background.

        Returns the key :meth:`dataset_result` answers to (reference 2.18). The file is read and checked against
        the project's columns before anything is stored.

        Raises
        ------
        InvalidEventError
            ``There was an error processing the dataset: <why>`` when it cannot be read or misses a column.
        """
        data, name = _source_bytes(source, filename)
        check_file_name(name)
        with self.sessions() as session:
            project = project_record(session, project_id)
            if ProjectStatus(project.status) is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if ProjectStatus(project.status) not in PRESCRIBABLE:
                raise errors.StateError(errors.PROJECT_NOT_READY)
        self._read_dataset(project_id, data, name, separator)
        return self.results.submit(project_id, data, Path(name).name, separator)

    def dataset_result(self, project_id: int, key: str) -> dict[str, Any]:
        """A dataset's prescriptions once every expected plugin has prescribed (reference 2.19).

        Returns ``{"status", "project_status", "expected_plugins", "finished_plugins", "result"}``; ``result``
        (``cases_count``, ``columns``, ``columns_definition``, ``case_attributes``, ``cases``) once ``status``
        is ``DONE``. It stays readable until it expires.
        """
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
        if status is ProjectStatus.ERROR:
            raise errors.StateError(errors.PROJECT_ERROR)
        state = self.results.get(project_id, key)
        if state["status"] == "ERROR":
            raise errors.InvalidEventError(f"{errors.PROCESS_DATASET_ERROR}: {state['error']}")
        return {"project_status": str(status), **{k: v for k, v in state.items() if k not in ("error", "result_path")}}

    def dataset_results(self, project_id: int) -> list[dict[str, Any]]:
        """The project's dataset results, newest first: key, status, file name, and when they expire."""
        with self.sessions() as session:
            project_record(session, project_id)
            records = session.scalars(
                select(DatasetResultRecord)
                .where(DatasetResultRecord.project_id == project_id)
                .order_by(DatasetResultRecord.id.desc())
            )
            return [
                {
                    "key": r.key,
                    "status": r.status,
                    "file_name": r.file_name,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                }
                for r in records
            ]

    def _read_dataset(self, project_id: int, data: bytes, name: str, separator: str | None):
        """A dataset's frame, checked against the project's columns, and what describes it in a result."""
        with self.sessions() as session:
            columns = columns_of(project_record(session, project_id).event_log)
        try:
            frame = read_event_log(data, filename=name, separator=separator, limits=self.settings.reading_limits)
        except errors.UploadTooLargeError:
            raise
        except errors.PrCoreError as exc:
            raise errors.InvalidEventError(f"{errors.PROCESS_DATASET_ERROR}: {exc.detail}") from None
        missing = [c for c, d in columns.columns.items() if d is not None and c not in frame.columns]
        missing += [c for c in columns.case_attributes if c not in frame.columns and c not in missing]
        if missing:
            raise errors.InvalidEventError(
                f"{errors.PROCESS_DATASET_ERROR}: missing pre-defined column(s) {', '.join(missing)}"
            )
        described = {
            "case_column": columns.case_id,
            "columns_definition": {c: (str(d) if d is not None else None) for c, d in columns.columns.items()},
            "case_attributes": list(columns.case_attributes),
        }
        return frame, described

    def _expected_plugins(self, project_id: int) -> list[str]:
        return [state.key for state, _ in self.active_plugins(project_id)]

    # -- downloads ----------------------------------------------------------------------------------------------
    DATASET_TYPES = ("original", "processed", "ongoing", "simulation")

    def dataset_file(self, project_id: int, dataset_type: str, seed: int | None = None) -> tuple[str, bytes]:
        """A project's data as a file ``(name, content)`` (reference 2.26).

        ``original``: the uploaded file; ``processed``: the training cases' events as the plugins see them, with
        their labels; ``simulation``: the held-out cases' events as uploaded; ``ongoing``: a random prefix of 3 to
        n-1 events of each held-out case of at least 4 events (``seed`` makes it repeatable).
        """
        from prcore_core import downloads

        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            raw_path, file_name = project.event_log.raw_path, project.event_log.file_name
            if dataset_type == "original":
                return downloads.original_name(file_name, raw_path), self.storage.path(raw_path).read_bytes()
            if status not in {ProjectStatus.TRAINING, *PRESCRIBABLE} or not project.prepared_path:
                raise errors.StateError(errors.PROJECT_NOT_PREPROCESSED)
            if dataset_type not in self.DATASET_TYPES:
                raise errors.InvalidParameterError(errors.INVALID_DATASET_TYPE)
            columns = columns_of(project.event_log)
            prepared = self.trainer.prepared(project)
            data_path = project.event_log.data_path
        if dataset_type == "processed":
            return downloads.csv_file(downloads.processed(prepared))
        frame = self.storage.read_frame(data_path)
        simulation = downloads.held_out_rows(frame, columns, prepared.held_out_cases)
        if dataset_type == "simulation":
            return downloads.csv_file(simulation)
        return downloads.csv_file(downloads.ongoing(simulation, columns.case_id, seed))

    # -- prescriptions -------------------------------------------------------------------------------------------
    def _model(self, project_id: int, plugin_key: str, model_path: str) -> Plugin:
        def load() -> Plugin:
            plugin_class = registry.get_plugin_class(plugin_key)
            plugin_class.load_dependencies()
            return plugin_class.load(self.storage.path(model_path))

        # a model file is never rewritten (each run writes its own), so its path is its version
        return self.cache.get(("model", project_id, model_path), model_path, load, exclusive=True)

    def active_plugins(self, project_id: int) -> list[tuple[PluginState, Plugin]]:
        """The trained, enabled plugins of a project with their loaded models."""
        with self.sessions() as session:
            project = project_record(session, project_id)
            status = ProjectStatus(project.status)
            if status is ProjectStatus.ERROR:
                raise errors.StateError(errors.PROJECT_ERROR)
            if status not in PRESCRIBABLE:
                raise errors.StateError(errors.PROJECT_NOT_READY)
            plugins = [
                (PluginState.from_record(p), p.model_path)
                for p in project.plugins
                if not p.disabled and p.model_path and p.status != PluginStatus.ERROR
            ]
        return [(state, self._model(project_id, state.key, path)) for state, path in plugins]

    def prescribe(self, project_id: int, source, filename: str | None = None, separator: str | None = None) -> dict:
        """Prescriptions for every case of a log of ongoing cases, from every active plugin.

        ``source`` is a path, bytes (with ``filename``) or a DataFrame with the columns of the project's
        definition. Returns ``{case_id: [prescription, ...]}``, one prescription per active plugin, through the same
        path as streamed events (:func:`~prcore_core.prescriber.prescribe_prefixes`): a case's prescriptions are
        numbered from its position in the log (``position * 1000 + plugin``, positions from 1), and a plugin that
        fails gives ``output: null`` with the reason instead of failing the call.
        """
        if isinstance(source, pd.DataFrame):
            frame = source
        else:
            data, name = _source_bytes(source, filename)
            frame = read_event_log(data, filename=name, separator=separator, limits=self.settings.reading_limits)
        return self._prescribe_frame(project_id, frame)

    def _prescribe_frame(self, project_id: int, frame: pd.DataFrame, finished=None) -> dict:
        """:meth:`prescribe` for a frame; ``finished(plugin_key)`` after each plugin has prescribed every case."""
        plugins = self.active_plugins(project_id)
        with self.sessions() as session:
            project = project_record(session, project_id)
            columns = columns_of(project.event_log)
            prepared = self.trainer.prepared(project)
        missing = [c for c, d in columns.columns.items() if d is not None and c not in frame.columns]
        if missing:
            raise errors.InvalidEventError(f"Missing pre-defined column {missing[0]}")
        parsed = values.parse_log(frame, columns)
        parsed, effective = transitions.apply_transitions(parsed, columns, detailed=False)
        events, _ = canonical_events(parsed, effective)
        events = sort_events(events.dropna(subset=["CASE_ID"]))
        batch = PrefixBatch.last_events(events, prepared.attributes)
        stored = [(state, model, StoredState(self.sessions, project_id, state.key)) for state, model in plugins]
        keys = range(1, len(batch.case_ids) + 1)
        done = (lambda state: finished(state.key)) if finished is not None else None
        prescribed = prescribe_prefixes(stored, batch, keys, dt.datetime.now(dt.UTC), finished=done)
        return {str(case): row for case, row in zip(batch.case_ids, prescribed, strict=True)}

    # -- streaming -----------------------------------------------------------------------------------------------
    @staticmethod
    def stream_mode(mode: str) -> str:
        """The stream mode ``mode`` names (``"streaming"`` or ``"simulating"``), checked before anything starts.

        Raises
        ------
        StateError
            ``Invalid streaming type`` for any other name (reference 2.20).
        """
        return str(stream_target(mode)).lower()

    def start_streaming(
        self,
        project_id: int,
        mode: str = "streaming",
        interval: float | None = DEFAULT_INTERVAL,
        speed: float | None = None,
        max_events: int | None = None,
    ) -> Project:
        """Switch a TRAINED project to ``streaming`` (posted events) or ``simulating`` (held-out cases replayed).

        The project goes ``ACTIVATING`` while its plugins load their models, then ``STREAMING``/``SIMULATING``.
        A simulation posts one event every ``interval`` seconds (at most an hour), or, with ``interval=None``,
        follows the log's real gaps sped up ``speed`` times (0.01 to a billion); it stops by itself after the last
        held-out event (or ``max_events``).

        Raises
        ------
        InvalidParameterError
            For a pace that is not a finite number in those bounds.
        """
        for name, value, low, high in (("interval", interval, 0.0, 3600.0), ("speed", speed, 0.01, 1e9)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise errors.InvalidParameterError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
        if max_events is not None and (isinstance(max_events, bool) or not 0 <= max_events <= 10**9):
            raise errors.InvalidParameterError(f"max_events must be from 0 to 1e9, got {max_events!r}")
        self.streaming.start(project_id, mode, interval=interval, speed=speed, max_events=max_events)
        return self.get_project(project_id)

    def stop_streaming(self, project_id: int) -> Project:
        """Stop streaming or simulating; the project returns to TRAINED and SSE readers get FINISHED."""
        self.streaming.stop(project_id)
        return self.get_project(project_id)

    def clear_stream(self, project_id: int) -> Project:
        """Stop streaming if needed and delete the project's streamed cases and events."""
        self.streaming.clear(project_id)
        return self.get_project(project_id)

    def post_event(self, project_id: int, event: Mapping[str, Any]) -> dict[str, Any]:
        """Ingest one event of a running case; returns the stored event (seed "Stream Data" ``event``).

        The event is committed before this returns; its prescriptions follow asynchronously through
        :attr:`broker` (and SSE). ``COMPLETE_INDICATOR: true`` closes the case without prescribing.
        """
        return self.streaming.ingest(project_id, event)

    def submit_event(self, project_id: int, event: Mapping[str, Any]) -> Future:
        """Like :meth:`post_event` without waiting: validation errors raise at once, the returned future resolves
        to the stored event once it is committed (for servers, which await it instead of blocking a thread).
        """
        return self.streaming.submit(project_id, event)

    def post_events(self, project_id: int, events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Ingest many events at once (bulk): each is validated on its own, the valid ones are committed together.

        Returns one result per event, in order: ``{"event": <stored event>}``, or ``{"detail": <why it was
        refused>, "status_code": <HTTP status>}``; one bad event does not refuse the others. Raises
        ``StateError`` when the project does not take events.
        """
        return [_result_of(future) for future in self.submit_events(project_id, events)]

    def submit_events(self, project_id: int, events: list[Mapping[str, Any]]) -> list[Future]:
        """Like :meth:`post_events` without waiting: one future per event (a refused one holds its error)."""
        return self.streaming.submit_many(project_id, events)

    @property
    def broker(self):
        """The in-process broker publishing prescribed events per project."""
        return self.streaming.broker

    # -- reading a stream ----------------------------------------------------------------------------------------
    def stream_is_open(self, project_id: int) -> bool:
        """Does the project accept events now (its stream is activated, not stopping)?"""
        return self.streaming.is_open(project_id)

    def open_stream_reader(self, project_id: int) -> None:
        """Become the project's one reader (seed "Get Prescriptions"); :meth:`close_stream_reader` when done.

        Raises
        ------
        StateError
            When the project already has a reader.
        """
        self.streaming.delivery.open_reader(project_id)

    def close_stream_reader(self, project_id: int) -> None:
        """The project's reader has gone; another may connect."""
        self.streaming.delivery.close_reader(project_id)

    def stream_cursor(self, project_id: int) -> int:
        """Where a new reader starts: the highest event id some reader was given (0 if none)."""
        return self.streaming.last_sent_id(project_id)

    def stream_events(self, project_id: int, after_id: int | None = None, limit: int = 10_000) -> list[dict]:
        """Prescribed events to deliver: after ``after_id`` (a resuming reader), else those nobody was given."""
        return self.streaming.prescribed_events(project_id, after_id, limit)

    def mark_delivered(self, event_ids: list[int]) -> None:
        """Remember that these events were given to a reader (a new reader starts after them)."""
        self.streaming.mark_sent(event_ids)

    def warm_up(self) -> None:
        """Start the training processes now, with the plugins' dependencies imported (a server calls it at start)."""
        self.trainer.warm_up()

    def simulation_settings(self, project_id: int) -> dict[str, Any] | None:
        """The pace the project's running simulation was started with, so that every view can show it.

        A dashboard opened (or reloaded) during a simulation would otherwise show its default pace while the
        simulation follows another one.

        Parameters
        ----------
        project_id
            The project.

        Returns
        -------
        dict or None
            ``{"interval", "speed", "max_events", "sent"}`` (as :meth:`start_streaming` takes them, and the events
            posted so far); ``None`` when the project runs no simulation (streaming, stopped, still activating).
        """
        active = self.streaming.activation.active.get(project_id)
        simulation = active.simulation if active is not None else None
        if simulation is None or not simulation.is_alive():
            return None
        return {
            "interval": simulation.interval,
            "speed": simulation.speed,
            "max_events": simulation.max_events,
            "sent": simulation.sent,
        }
