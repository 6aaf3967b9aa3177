"""The plugin lifecycle in the background: prepare a project's data, choose the applicable plugins, train them.

Everything heavy runs in the executor, never in the caller's thread. Each start of a project's training is a new
*run*; a job whose run is no longer the project's current one (the project was redefined or deleted meanwhile)
stops writing, so stale work can never overwrite fresh state. Each plugin trains in its own task: one failing
plugin does not fail the others. Progress (a fraction and a sentence) is written to the database, throttled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from prcore_core import errors, registry
from prcore_core.baselines import measure_baselines
from prcore_core.cache import DerivedCache
from prcore_core.db import PluginRecord, ProjectRecord
from prcore_core.definitions import columns_of, project_definition_of  # also where notebooks found them
from prcore_core.plugin import Plugin
from prcore_core.preparation import PreparedLog, ProjectDefinition, prepare
from prcore_core.settings import Settings
from prcore_core.status import (
    PLUGIN_DONE,
    PluginStatus,
    ProjectStatus,
    refresh_project_status,
    set_plugin_status,
    set_project_status,
)
from prcore_core.storage import Storage
from prcore_core.workers import importable, warm_worker, worker_context, worker_setup

log = logging.getLogger(__name__)
_PROGRESS_INTERVAL = 0.25


class StaleRun(Exception):
    """The project moved on (redefined, deleted); this job's results are no longer wanted."""


class Interrupted(Exception):
    """The trainer is closing (the server stops): the run is left as it is, and resumes at the next start."""


def current_project(session: Session, project_id: int, run: int) -> ProjectRecord:
    """The project if ``run`` is still its current training run, else :class:`StaleRun`."""
    project = session.get(ProjectRecord, project_id, populate_existing=True)
    if project is None or project.training_run != run:
        raise StaleRun
    return project


def plugin_progress(sessions: sessionmaker, project_id: int, run: int, plugin_id: int, low: float, high: float):
    """A plugin's progress callback: writes the fraction (mapped into ``[low, high]``) and sentence, throttled."""
    last = [0.0]

    def report(fraction: float, sentence: str) -> None:
        now = time.monotonic()
        if now - last[0] < _PROGRESS_INTERVAL and fraction < 1.0:
            return
        last[0] = now
        with sessions() as session:
            current_project(session, project_id, run)
            plugin = session.get(PluginRecord, plugin_id)
            if plugin is None:
                raise StaleRun
            plugin.progress = low + (high - low) * max(0.0, min(1.0, fraction))
            plugin.progress_message = sentence
            session.commit()

    return report


def fit_and_measure(
    plugin_class: type[Plugin],
    parameters: dict,
    prepared: PreparedLog,
    definition: ProjectDefinition,
    additional_info: dict,
    progress: Callable[[float, float], Callable],
    model_file,
) -> dict:
    """Fit a plugin on the training cases, measure it and its type's baselines on the held-out cases, save it.

    The baselines (:mod:`prcore_core.baselines`) are fitted on the same training cases in the same run, so the
    plugin's figures always stand beside what a strong simple model scores on the same prefixes.
    """
    training = prepared.part("training", definition, additional_info)
    held_out = prepared.part("held_out", definition, additional_info)
    started = time.perf_counter()
    instance = plugin_class.from_parameters(parameters)
    instance.fit(training, progress(0.0, 0.6))
    fit_seconds = time.perf_counter() - started
    metrics = instance.evaluate(held_out, progress(0.6, 0.75))
    evaluation_seconds = time.perf_counter() - started - fit_seconds
    instance.save(model_file)
    baselines_started = time.perf_counter()
    baselines = shared_baselines(
        plugin_class.prescription_type, training, held_out, Path(model_file).parent, progress(0.75, 0.98)
    )
    metrics = {
        **metrics,
        "training_seconds": round(fit_seconds, 3),
        "evaluation_seconds": round(evaluation_seconds, 3),
        "held_out_cases": held_out.n_cases,
    }
    if baselines:
        metrics["baselines"] = baselines
        metrics["baseline_seconds"] = round(time.perf_counter() - baselines_started, 3)
    return _json_safe(metrics)


def shared_baselines(prescription_type: str, training, held_out, directory: Path, progress) -> dict:
    """The baselines of a prescription type for this run, measured once: plugins of the same type (in threads or
    worker processes) share them through a file in the run's directory, written under a lock by the first."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"baselines-{prescription_type}.json"
    with (directory / f"baselines-{prescription_type}.lock").open("w") as lock, _file_lock(lock):
        if path.exists():
            return json.loads(path.read_text())
        baselines = _json_safe(measure_baselines(prescription_type, training, held_out, progress))
        path.with_suffix(".tmp").write_text(json.dumps(baselines))
        path.with_suffix(".tmp").replace(path)
        return baselines


_LOCAL_LOCK = threading.Lock()


@contextlib.contextmanager
def _file_lock(file):
    """An exclusive lock across processes (``flock``; where there is none, across this process's threads)."""
    try:
        import fcntl
    except ImportError:  # not on Windows: plugins train in threads there anyway
        with _LOCAL_LOCK:
            yield
        return
    fcntl.flock(file, fcntl.LOCK_EX)  # the second plugin of a type waits for the first one's figures
    try:
        yield
    finally:
        fcntl.flock(file, fcntl.LOCK_UN)


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    """Everything a separate process needs to train one plugin (picklable: no sessions, no data)."""

    settings: Settings
    project_id: int
    run: int
    plugin_id: int
    plugin_module: str
    plugin_name: str
    parameters: dict
    additional_info: dict
    definition: ProjectDefinition
    prepared_path: str
    attributes: list
    split: dict
    model_path: str


_process_state: dict[str, Any] = {}


def run_training_job(job: TrainingJob) -> dict:
    """Train one plugin in a worker process: read the prepared log from disk, report progress to the database."""
    import importlib

    if _process_state.get("url") != job.settings.url:
        from prcore_core.db import make_engine, make_sessionmaker

        _process_state.clear()
        _process_state.update(url=job.settings.url, sessions=make_sessionmaker(make_engine(job.settings.url)))
    sessions = _process_state["sessions"]
    storage = Storage(job.settings.data_dir)
    key = (job.prepared_path, job.run)
    if _process_state.get("prepared_key") != key:  # the next plugin of the same run reuses it
        _process_state["prepared"] = storage.read_prepared(job.prepared_path, job.attributes, job.split)
        _process_state["prepared_key"] = key
    plugin_class = getattr(importlib.import_module(job.plugin_module), job.plugin_name)
    plugin_class.load_dependencies()

    def progress(low: float, high: float):
        return plugin_progress(sessions, job.project_id, job.run, job.plugin_id, low, high)

    return fit_and_measure(
        plugin_class,
        job.parameters,
        _process_state["prepared"],
        job.definition,
        job.additional_info,
        progress,
        storage.path(job.model_path),
    )


class Trainer:
    """Runs preparation and plugin training for projects in an executor."""

    def __init__(
        self,
        sessions: sessionmaker,
        storage: Storage,
        settings: Settings,
        executor: Executor,
        cache: DerivedCache | None = None,
    ):
        self.sessions = sessions
        self.storage = storage
        self.settings = settings
        self.executor = executor
        #: Prepared data per project, of its current run (the facade's cache, shared with streaming).
        self.cache = cache if cache is not None else DerivedCache()
        self._lock = threading.Lock()
        # Serialises the end of plugin runs: each derives the project's status from all its plugins, and two
        # concurrent transactions would each see the other still training and leave the project TRAINING forever.
        self._outcome_lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        #: Set by :meth:`close`: what fails from then on failed because the workers were stopped, not on its own.
        self._closing = threading.Event()
        self.plugin_classes: Callable[[], dict[str, type[Plugin]]] = registry.available_plugins

    # -- entry points --------------------------------------------------------------------------------------------
    def start(self, session: Session, project: ProjectRecord) -> None:
        """Begin a new run for ``project`` (status PREPROCESSING); the caller commits, then calls :meth:`submit`."""
        project.training_run = (project.training_run or 0) + 1
        set_project_status(project, ProjectStatus.PREPROCESSING)
        project.progress, project.progress_message = 0.0, "Waiting to pre-process the event log"
        for plugin in list(project.plugins):
            session.delete(plugin)
        project.plugins.clear()
        project.excluded_plugins = {}

    def submit(self, project_id: int, run: int) -> None:
        self.executor.submit(self._run, project_id, run)

    # -- the job -------------------------------------------------------------------------------------------------
    def _current(self, session: Session, project_id: int, run: int) -> ProjectRecord:
        return current_project(session, project_id, run)

    def _run(self, project_id: int, run: int) -> None:
        try:
            self._prepare_and_dispatch(project_id, run)
        except StaleRun:
            log.info("Project %s run %s superseded", project_id, run)
        except Exception as exc:  # report any failure on the project instead of dying silently
            if self._closing.is_set():  # e.g. "cannot schedule new futures after shutdown": not the data's fault
                log.info(
                    "Pre-processing of project %s interrupted by the shutdown; it resumes at the next start", project_id
                )
                return
            log.exception("Pre-processing of project %s failed", project_id)
            detail = exc.detail if isinstance(exc, errors.PrCoreError) else f"{type(exc).__name__}: {exc}"
            self._fail_project(project_id, run, f"Failed to pre-process the data: {detail}")

    def _fail_project(self, project_id: int, run: int, message: str) -> None:
        with self.sessions() as session:
            try:
                project = self._current(session, project_id, run)
            except StaleRun:
                return
            set_project_status(project, ProjectStatus.ERROR, message)
            project.progress_message = message
            session.commit()

    def _prepare_and_dispatch(self, project_id: int, run: int) -> None:
        started = time.perf_counter()
        with self.sessions() as session:
            project = self._current(session, project_id, run)
            project.progress, project.progress_message = 0.05, "Reading the event log"
            session.commit()
            event_log = project.event_log
            columns = columns_of(event_log)
            definition = project_definition_of(event_log, columns)
            data_path = event_log.data_path
            parameters, additional_info = dict(project.parameters or {}), dict(project.additional_info or {})
        frame = self.storage.read_frame(data_path)
        self._progress_project(project_id, run, 0.2, f"Labelling {len(frame):,} events and splitting cases")
        prepared = prepare(frame, columns, definition, self.settings.training_share)
        if len(prepared.labels.index) == 0 or len(prepared.training_cases) == 0:  # (.empty is true without columns)
            raise errors.PrCoreError("The event log has no case with a valid timestamp")
        relative = self.storage.write_prepared(project_id, run, prepared)
        self.cache.put(("prepared", project_id), run, prepared)  # replaces the prepared data of earlier runs
        training = prepared.part("training", definition)
        plugin_classes = self.plugin_classes()
        chosen, excluded = [], {}
        for key, plugin_class in plugin_classes.items():
            with_info = dataclasses.replace(training, additional_info=additional_info.get(key, {}))
            reason = plugin_class.applicability(with_info)
            if reason is None:
                chosen.append(plugin_class)
            else:
                excluded[key] = reason
        with self.sessions() as session:
            project = self._current(session, project_id, run)
            project.prepared_path = relative
            project.split = {**prepared.summary(), "preparation_seconds": round(time.perf_counter() - started, 3)}
            project.attributes = [dataclasses.asdict(a) for a in prepared.attributes]
            project.excluded_plugins = excluded
            if not chosen:
                set_project_status(project, ProjectStatus.ERROR, "No plugin is applicable")
                session.commit()
                return
            records = []
            for plugin_class in chosen:
                record = PluginRecord(
                    key=plugin_class.key,
                    prescription_type=str(plugin_class.prescription_type),
                    name=plugin_class.title,
                    description=plugin_class.description,
                    parameters={**plugin_class.parameter_defaults(), **parameters.get(plugin_class.key, {})},
                    additional_info=additional_info.get(plugin_class.key, {}),
                    status=str(PluginStatus.WAITING),
                )
                project.plugins.append(record)
                records.append(record)
            set_project_status(project, ProjectStatus.TRAINING)
            project.progress, project.progress_message = 0.3, f"Training {len(records)} plugin(s)"
            session.commit()
            jobs = [(r.id, plugin_classes[r.key], dict(r.parameters), dict(r.additional_info)) for r in records]
        for _, plugin_class, _, _ in jobs:
            plugin_class.load_dependencies()
        for plugin_id, plugin_class, plugin_parameters, info in jobs:
            self.executor.submit(
                self._train_plugin, project_id, run, plugin_id, plugin_class, plugin_parameters, info, definition
            )

    def _progress_project(self, project_id: int, run: int, fraction: float, sentence: str) -> None:
        with self.sessions() as session:
            project = self._current(session, project_id, run)
            project.progress, project.progress_message = fraction, sentence
            session.commit()

    def retrain_plugin(self, session: Session, project: ProjectRecord, plugin: PluginRecord) -> Callable[[], None]:
        """Train one plugin of a trained project again (its parameters or additional info changed) in the
        project's current run, into a model file of its own; the project is TRAINING until it is done.

        Call in the caller's transaction; commit, then call the returned function to start the training.
        """
        plugin_class = registry.get_plugin_class(plugin.key)
        set_plugin_status(plugin, PluginStatus.TRAINING)
        plugin.progress, plugin.progress_message = 0.0, "Waiting to train with new settings"
        set_project_status(project, ProjectStatus.TRAINING)
        project.progress_message = f"Training {plugin.name} again"
        definition = project_definition_of(project.event_log, columns_of(project.event_log))
        self.prepared(project)  # a thread-trained plugin reads it from the cache
        run, project_id, plugin_id = project.training_run, project.id, plugin.id
        parameters, info = dict(plugin.parameters or {}), dict(plugin.additional_info or {})
        relative = self.storage.model_path(project_id, run, f"{plugin.key}-{uuid.uuid4().hex[:8]}")

        def start() -> None:
            plugin_class.load_dependencies()
            self.executor.submit(
                self._train_plugin, project_id, run, plugin_id, plugin_class, parameters, info, definition, relative
            )

        return start

    def _train_plugin(
        self, project_id, run, plugin_id, plugin_class, parameters, additional_info, definition, relative=None
    ):
        try:
            with self.sessions() as session:
                project = self._current(session, project_id, run)
                plugin = session.get(PluginRecord, plugin_id)
                set_plugin_status(plugin, PluginStatus.TRAINING)
                plugin.progress, plugin.progress_message = 0.0, "Starting"
                session.commit()
                stored = (project.prepared_path, list(project.attributes or []), dict(project.split or {}))
            relative = relative or self.storage.model_path(project_id, run, plugin_class.key)
            if self.settings.training_processes and importable(plugin_class):
                job = TrainingJob(
                    self.settings,
                    project_id,
                    run,
                    plugin_id,
                    plugin_class.__module__,
                    plugin_class.__qualname__,
                    parameters,
                    additional_info,
                    definition,
                    *stored,
                    relative,
                )
                metrics = self._in_process(job)
            else:
                prepared = self.cache.peek(("prepared", project_id), run)

                def progress(low: float, high: float):
                    return plugin_progress(self.sessions, project_id, run, plugin_id, low, high)

                metrics = fit_and_measure(
                    plugin_class,
                    parameters,
                    prepared,
                    definition,
                    additional_info,
                    progress,
                    self.storage.path(relative),
                )
            with self._outcome_lock, self.sessions() as session:
                project = self._current(session, project_id, run)
                plugin = session.get(PluginRecord, plugin_id)
                plugin.model_path = relative
                plugin.metrics = metrics
                plugin.progress, plugin.progress_message = 1.0, "Trained"
                set_plugin_status(plugin, PluginStatus.TRAINED)
                refresh_project_status(project)
                self._update_project_progress(project)
                session.commit()
        except StaleRun:
            return
        except Exception as exc:
            if self._closing.is_set():  # BrokenProcessPool, CancelledError, Interrupted: the workers were stopped
                log.info("Training of %s (project %s) interrupted by the shutdown", plugin_class.key, project_id)
                return  # the plugin keeps its status, the project stays TRAINING: PrCore._recover resumes it
            log.error("Plugin %s of project %s failed:\n%s", plugin_class.key, project_id, traceback.format_exc())
            detail = exc.detail if isinstance(exc, errors.PrCoreError) else f"{type(exc).__name__}: {exc}"
            with self._outcome_lock, self.sessions() as session:
                try:
                    project = self._current(session, project_id, run)
                except StaleRun:
                    return
                plugin = session.get(PluginRecord, plugin_id)
                if plugin is None:
                    return
                set_plugin_status(plugin, PluginStatus.ERROR, f"Training failed: {detail}")
                plugin.progress_message = plugin.error
                refresh_project_status(project)
                self._update_project_progress(project)
                session.commit()

    def _processes(self) -> ProcessPoolExecutor:
        """Worker processes for plugin training (``Settings.training_processes``), started on first use.

        Training in threads shares the interpreter lock with whatever else the process does; pandas and
        scikit-learn hold it for long stretches, which a server answering requests beside training feels as
        latency spikes. Workers come from a fork server (a clean process, not a fork of this threaded one).
        """
        with self._lock:
            if self._closing.is_set():
                raise Interrupted  # no new workers while the server stops
            if self._pool is None:
                import os

                self._pool = ProcessPoolExecutor(
                    self.settings.max_workers,
                    mp_context=worker_context(),
                    initializer=worker_setup,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _in_process(self, job: TrainingJob) -> dict:
        """Train in a worker process. A worker that dies (killed for its memory, say) breaks the whole pool, and
        every job in it fails with ``BrokenProcessPool``: the pool is replaced and the job tried once more, so a
        plugin that merely shared the pool does not fail, and no later training meets the broken pool."""
        pool = self._processes()
        try:
            return pool.submit(run_training_job, job).result()
        except BrokenProcessPool:
            if self._closing.is_set():
                raise
            log.warning("A training process ended abruptly; training %s again in new processes", job.plugin_name)
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
        return self._processes().submit(run_training_job, job).result()

    def warm_up(self) -> None:
        """Start the training processes now and import the plugins' dependencies in them (a few seconds the first
        training would otherwise wait); a no-op when plugins train in threads."""
        if not self.settings.training_processes:
            return
        keys = [key for key, cls in self.plugin_classes().items() if importable(cls)]
        pool = self._processes()
        for _ in range(self.settings.max_workers):
            pool.submit(warm_worker, keys)

    def close(self) -> None:
        """Stop the training processes at once (terminated, not waited for); the runs they leave are interrupted,
        not failed: their plugins keep their status, and the run resumes at the next start (``PrCore._recover``)."""
        self._closing.set()  # first: the jobs about to fail must see that it is the shutdown that fails them
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            workers = list((getattr(pool, "_processes", None) or {}).values())  # no public way to stop running jobs
            for worker in workers:
                worker.terminate()
            # in a thread of its own: shutdown takes the pool's lock, which a worker being started holds until the
            # fork server answers (seconds while it imports the plugins at start-up)
            stop = functools.partial(pool.shutdown, wait=False, cancel_futures=True)
            threading.Thread(target=stop, name="prcore-training-stop", daemon=True).start()

    @staticmethod
    def _update_project_progress(project: ProjectRecord) -> None:
        done = [p for p in project.plugins if p.status in PLUGIN_DONE]
        project.progress = 0.3 + 0.7 * len(done) / max(len(project.plugins), 1)
        project.progress_message = (
            "Trained" if len(done) == len(project.plugins) else f"{len(done)} of {len(project.plugins)} plugins done"
        )

    def prepared(self, project: ProjectRecord) -> PreparedLog:
        """The prepared data of a project's current run (loaded from disk after a restart)."""
        return self.cache.get(
            ("prepared", project.id),
            project.training_run,
            lambda: self.storage.read_prepared(project.prepared_path, project.attributes, project.split),
        )


def _json_safe(value):
    """Metrics as plain JSON (numpy scalars and NaN made serialisable)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
