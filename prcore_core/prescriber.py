"""Prescribing: one path for batch and streaming, and the prescriber that holds a streaming project's cases.

:func:`prescribe_prefixes` is the one way prefixes become prescriptions: every plugin predicts the whole batch in
one call, each prescription is numbered from its prefix's key and the plugin's position, and a plugin that fails
gives each prefix a prescription with ``output: null`` and the reason, never an exception that loses the others.
:meth:`PrCore.prescribe <prcore_core.facade.PrCore.prescribe>` (ongoing cases) and :class:`Prescriber` (bursts of
streamed events) both call it.

:class:`Prescriber` holds a project's open cases (:class:`~prcore_core.running_cases.RunningCases`) and loaded
models, and turns a burst of stored events into their prescriptions. A server runs it in a
:class:`PrescriberProcess`: predicting holds the interpreter lock for milliseconds per burst, and in the server's
own process that time would be taken from the event loop and the event journal, which then answer later. In a
process of its own it runs on the other core while the server keeps answering. A notebook runs it in a thread.
Starting such a process costs seconds (the plugins' dependencies are imported, causalml alone takes several): a
:class:`SparePrescriber` keeps one warm, so that activating a project only loads its models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prcore_core.columns import ColumnsDefinition
from prcore_core.context import PersistentState, PredictionContext, StoredState
from prcore_core.dataset import Attribute, PrefixBatch
from prcore_core.plugin import Plugin, null_output
from prcore_core.prescriptions import make_prescription
from prcore_core.project import PluginState
from prcore_core.running_cases import RunningCases

log = logging.getLogger(__name__)

#: Why an event that lifecycle handling drops (first of its case) has no prescription.
NO_PREFIX = "No event of the case can be prescribed from yet (lifecycle events other than completions are skipped)"
#: One event of a burst: (event id, case id, posted attributes, completes its case).
BurstEvent = tuple[int, str, Mapping[str, Any], bool]
#: Why a prefix has no prescription when its plugin answered nothing for it.
NO_PREDICTION = "The plugin gave no prediction for this prefix"


class PrescriberError(RuntimeError):
    """The prescriber process ended or could not start; the message says why."""


def _prescription_id(event_id: int, plugin_index: int) -> int:
    """Prescription ids derive from their event's id: unique, and stable when a burst is prescribed again."""
    return event_id * 1000 + plugin_index


def prescribe_prefixes(
    plugins: Sequence[tuple[PluginState, Plugin, PersistentState]],
    batch: PrefixBatch,
    keys: Sequence[int],
    now: dt.datetime,
    missing: str = NO_PREDICTION,
    finished: Callable[[PluginState], None] | None = None,
) -> list[list[dict[str, Any]]]:
    """Every plugin's prescription for each prefix of ``batch``, one model call per plugin.

    Parameters
    ----------
    plugins
        ``(state, model, persistent state)`` of every active plugin, in the order their prescriptions are listed.
    batch
        The prefixes, one row each.
    keys
        A key per prefix (a streamed event's id); prescription ids are ``key * 1000 + plugin position``, unique
        and the same when the prefix is prescribed again.
    now
        The time the plugins are told and the prescriptions are stamped with.
    missing
        The reason given when a plugin answers nothing for a prefix.
    finished
        Called with each plugin's state once it has predicted the whole batch (progress of a long batch).

    Returns
    -------
    list of list of dict
        Per prefix, one prescription per plugin. A plugin that raises gives every prefix ``output: null`` with
        ``detail`` saying why.
    """
    outputs: list[list[dict[str, Any]]] = [[] for _ in keys]
    for index, (state, model, stored) in enumerate(plugins):
        try:
            found = list(model.predict(batch, PredictionContext(now=now, state=stored)))
            if len(found) != len(keys):
                raise ValueError(f"{len(found)} predictions for {len(keys)} prefixes")
        except Exception as exc:
            log.exception("Plugin %s failed to predict", state.key)
            found = [null_output(f"Predicting prefix failed: {exc}")] * len(keys)
        for row, (key, prediction) in enumerate(zip(keys, found, strict=True)):
            prediction = prediction or null_output(missing)
            outputs[row].append(make_prescription(state, prediction, _prescription_id(key, index), now))
        if finished is not None:
            finished(state)
    return outputs


def failed_prescriptions(plugins: Sequence[PluginState], burst: Sequence[BurstEvent], detail: str) -> list[list]:
    """Prescriptions for a burst that could not be prescribed: every plugin's says why (completions get none)."""
    now = dt.datetime.now(dt.UTC)
    return [
        []
        if complete
        else [
            make_prescription(state, null_output(detail), _prescription_id(event_id, index), now)
            for index, state in enumerate(plugins)
        ]
        for event_id, _, _, complete in burst
    ]


class Prescriber:
    """The open cases and loaded plugins of one streaming project.

    Parameters
    ----------
    columns, attributes
        The project's columns definition and the attributes its plugins were trained with.
    plugins
        ``(state, model, persistent state)`` of every active plugin.
    histories
        The stored events of the cases that are open, per case id, in arrival order (after a restart).
    """

    def __init__(
        self,
        columns: ColumnsDefinition,
        attributes: Sequence[Attribute],
        plugins: Sequence[tuple[PluginState, Plugin, StoredState]],
        histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ):
        self.plugins = list(plugins)
        self.cases = RunningCases(columns, attributes)
        if histories:
            self.cases.restore(histories)

    def prescribe(self, burst: Sequence[BurstEvent]) -> list[list[dict[str, Any]]]:
        """Every plugin's prescription for each event of the burst (one model call per plugin).

        An event that completes its case closes it and gets no prescription. A plugin that fails gives each
        event a prescription with ``output: null`` and the reason; the burst is never dropped.
        """
        running = [(position, event) for position, event in enumerate(burst) if not event[3]]
        outputs: list[list[dict]] = [[] for _ in burst]
        now = dt.datetime.now(dt.UTC)
        if running:
            try:
                prefix_batch, has_prefix = self.cases.extend(
                    [(case_id, attributes) for _, (_, case_id, attributes, _) in running]
                )
                failure = NO_PREFIX
            except Exception as exc:  # the events are still delivered, each prescription saying why it is empty
                log.exception("Encoding %d events failed", len(running))
                prefix_batch, has_prefix, failure = None, [False] * len(running), f"The prefix could not be read: {exc}"
            wanted = [position for (position, _), has in zip(running, has_prefix, strict=True) if has]
            keys = [burst[position][0] for position in wanted]
            prescribed = prescribe_prefixes(self.plugins, prefix_batch, keys, now, failure) if wanted else []
            by_position = dict(zip(wanted, prescribed, strict=True))
            for position, (event_id, *_) in running:
                outputs[position] = by_position.get(position) or [
                    make_prescription(state, null_output(failure), _prescription_id(event_id, index), now)
                    for index, (state, *_) in enumerate(self.plugins)
                ]
        for _, case_id, _, complete in burst:
            if complete:
                self.cases.close(case_id)
        return outputs

    def close(self, wait: float = 0.0) -> None:
        """Nothing to release in this process (the same call as :meth:`PrescriberProcess.close`)."""


@dataclass
class PrescriberSpec:
    """What a process needs to build a project's :class:`Prescriber` (picklable: paths and plain values)."""

    project_id: int
    database_url: str
    data_dir: Path
    columns: ColumnsDefinition
    attributes: tuple[Attribute, ...]
    plugins: list[tuple[PluginState, str]]  # (state, model file relative to the data directory)
    histories: dict[str, list[dict[str, Any]]]


#: Told to a prescriber process that serves a project: drop its open cases (its models stay until another project's
#: come) and wait for another project.
UNLOAD = "unload"


def _serve_prescriber(connection, plugin_keys: Sequence[str] = ()) -> None:
    """The prescriber process: warm, then one project at a time until told to stop or the server ends.

    Warm means the plugins' slow dependencies are imported (causalml takes seconds): a project's activation then
    only loads its models. A project's prescriber answers bursts until ``None`` (the process ends) or
    :data:`UNLOAD` (its open cases are dropped and the process is warm again, for the next project). The last
    project's models stay loaded while it waits: the same project started again (a simulation after streaming, a
    restart of the stream) finds them, and another project's replace them (model files are never rewritten, so a
    path names one model).
    """
    from threadpoolctl import threadpool_limits

    from prcore_core import registry

    # a burst's numeric work is small: native thread pools only add threads that spin between calls, taking the
    # core the server needs
    threadpool_limits(limits=1)
    for key in plugin_keys:
        try:
            registry.get_plugin_class(key).load_dependencies()
        except Exception:  # the project that needs the plugin reports it when its models load
            log.warning("Importing the dependencies of plugin %s failed", key, exc_info=True)
    models: dict[str, Plugin] = {}
    while True:
        try:
            connection.send(("warm", os.getpid()))
            spec = connection.recv()
        except (EOFError, OSError):  # the server ended (even while this process was importing)
            return
        if spec is None:
            return
        if spec == UNLOAD:  # it has no project: warm already
            continue
        try:
            # another project's models go (freed as their last reference does; a full collection here would take a
            # second of the activation)
            models = {path: models[path] for _, path in spec.plugins if path in models}
            prescriber, engine = _load_prescriber(spec, models)
        except Exception as exc:
            connection.send(("error", f"{type(exc).__name__}: {exc}"))
            return
        connection.send(("ready", os.getpid()))
        unloaded = _answer_bursts(connection, prescriber)
        del prescriber
        engine.dispose()
        if not unloaded:
            return


def _load_prescriber(spec: PrescriberSpec, models: dict[str, Plugin]):
    """The project's prescriber, its models loaded (or found in ``models``, which keeps them), and the database
    engine its plugins' state is kept with."""
    from prcore_core import registry
    from prcore_core.db import make_engine, make_sessionmaker
    from prcore_core.storage import Storage

    engine = make_engine(spec.database_url)
    sessions = make_sessionmaker(engine)
    storage = Storage(spec.data_dir)
    plugins = []
    for state, model_path in spec.plugins:
        if model_path not in models:
            plugin_class = registry.get_plugin_class(state.key)
            plugin_class.load_dependencies()
            models[model_path] = plugin_class.load(storage.path(model_path))
        plugins.append((state, models[model_path], StoredState(sessions, spec.project_id, state.key)))
    return Prescriber(spec.columns, spec.attributes, plugins, spec.histories), engine


def _answer_bursts(connection, prescriber: Prescriber) -> bool:
    """Prescribe each burst received; True when told to unload, False when told to stop or the server ended."""
    while True:
        try:
            burst = connection.recv()
        except (EOFError, OSError):  # the server ended
            return False
        if burst is None:
            return False
        if burst == UNLOAD:
            return True
        try:
            connection.send(("outputs", prescriber.prescribe(burst)))
        except Exception as exc:  # e.g. an output that cannot be pickled
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class PrescriberProcess:
    """A :class:`Prescriber` in a process of its own; :meth:`prescribe` sends a burst and waits for the answer.

    Given a ``spec``, the process starts and loads that project's models. Without one it only gets warm (imports
    the dependencies of ``plugin_keys``) and :meth:`load` gives it a project later; :meth:`unload` makes it warm
    again (see :class:`SparePrescriber`). The process ends when told to (:meth:`close`) or when the server's end of
    the pipe closes (the server ended, even by a crash). Called from one thread at a time.
    """

    def __init__(
        self,
        spec: PrescriberSpec | None,
        context,
        timeout: float = 120.0,
        plugin_keys: Sequence[str] = (),
        burst_timeout: float = 30.0,
    ):
        self.timeout = timeout
        #: Seconds a burst's answer may take; a process that takes longer (stopped, stuck) is ended.
        self.burst_timeout = burst_timeout
        self._warm = False
        self._connection, child = context.Pipe()
        name = f"prescriber-{spec.project_id}" if spec is not None else "prescriber-spare"
        self.process = context.Process(
            target=_serve_prescriber, args=(child, tuple(plugin_keys)), daemon=True, name=name
        )
        self.process.start()
        child.close()
        if spec is not None:
            self.load(spec)

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            raise PrescriberError(
                f"The prescriber process ended unexpectedly (exit code {self.process.exitcode})"
            ) from None

    def _answer(self, doing: str, timeout: float | None = None) -> tuple[str, Any]:
        """The process's next message, within the timeout; the process is ended if none comes."""
        timeout = self.timeout if timeout is None else timeout
        try:
            if self._connection.poll(timeout):
                return self._receive()
        except (OSError, ValueError):
            pass
        self.close(wait=1.0)
        raise PrescriberError(f"The prescriber process did not {doing} within {timeout:g} s; it was ended")

    def wait_warm(self) -> None:
        """Wait until the process has imported the plugins' dependencies and waits for a project."""
        if self._warm:
            return
        kind, payload = self._answer("start")
        if kind != "warm":
            self.close()
            raise PrescriberError(f"The prescriber process could not start: {payload}")
        self._warm = True

    def load(self, spec: PrescriberSpec) -> None:
        """Load a project's models and open cases (in the process, never in the caller's)."""
        self.wait_warm()
        try:
            self._connection.send(spec)
        except (OSError, ValueError) as exc:
            self.close()
            raise PrescriberError(f"The prescriber process ended unexpectedly ({exc})") from None
        self._warm = False
        kind, payload = self._answer("load the models")
        if kind != "ready":
            self.close()
            raise PrescriberError(f"The prescriber process could not load the models: {payload}")

    def unload(self, timeout: float = 10.0) -> bool:
        """Drop the project's open cases; True when the process is warm again, ready for another project."""
        try:
            self._connection.send(UNLOAD)
            if not self._connection.poll(timeout):
                return False
            kind, _ = self._receive()
        except (OSError, ValueError, PrescriberError):
            return False
        self._warm = kind == "warm"
        return self._warm

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def prescribe(self, burst: Sequence[BurstEvent]) -> list[list[dict[str, Any]]]:
        try:
            self._connection.send(list(burst))
        except (OSError, ValueError) as exc:
            raise PrescriberError(f"The prescriber process ended unexpectedly ({exc})") from None
        kind, payload = self._answer("answer", self.burst_timeout)
        if kind != "outputs":
            raise PrescriberError(f"The prescriber process failed: {payload}")
        return payload

    def close(self, wait: float = 5.0) -> None:
        """Tell the process to stop; end it if it does not within ``wait`` seconds."""
        with contextlib.suppress(OSError, ValueError):
            self._connection.send(None)
        self.process.join(wait)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(wait)
        if self.process.is_alive():  # a stopped process does not take SIGTERM
            self.process.kill()
            self.process.join(wait)
        self._connection.close()


class SparePrescriber:
    """One prescriber process kept warm, so that activating a project only loads its models.

    Starting a process and importing the plugins' dependencies takes 5 to 10 s (causalml alone several), and
    loading a trained project's models a fraction of a second: with a spare, a project is live within a second of
    ``stream/start``. The process of a project that stops is kept as the spare when none is ready, its open cases
    dropped and its models kept (starting the same project again loads nothing); some time after an activation took
    the spare, :meth:`fill` starts a new one.

    Parameters
    ----------
    start
        Starts a new warm process (``PrescriberProcess(None, context, plugin_keys=...)``).
    """

    def __init__(self, start: Callable[[], PrescriberProcess]):
        self._start = start
        self._changed = threading.Condition()
        self._ready: PrescriberProcess | None = None
        #: What becomes the spare next: a process warming or unloading (or a token until it exists).
        self._coming: object | None = None
        self._timers: list[threading.Timer] = []
        self._closed = False

    def fill(self, after: float = 0.0) -> None:
        """Start a new spare in the background (in ``after`` seconds), unless one is ready or coming then.

        Importing the plugins' dependencies takes a core for seconds: right after an activation it would compete
        with the project's first events and a simulation's replay, and a project that stops soon gives its own
        process back instead.
        """
        if after > 0:
            timer = threading.Timer(after, self.fill)
            timer.daemon = True
            with self._changed:
                if self._closed:
                    return
                self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
            return
        with self._changed:
            if self._closed or self._ready is not None or self._coming is not None:
                return
            self._coming = token = object()
        threading.Thread(target=self._settle, args=(token, None), name="prescriber-spare", daemon=True).start()

    def give_back(self, process: PrescriberProcess) -> bool:
        """Keep a stopped project's process as the spare unless one is ready; False when the caller must close it.

        It is warm again sooner than a new spare still importing, which it replaces.
        """
        with self._changed:
            if self._closed or self._ready is not None or not process.alive:
                return False
            replaced, self._coming = self._coming, process
        if isinstance(replaced, PrescriberProcess):
            replaced.process.terminate()  # its thread sees the process end and closes it
        threading.Thread(target=self._settle, args=(process, process), name="prescriber-spare", daemon=True).start()
        return True

    def _settle(self, token: object, process: PrescriberProcess | None) -> None:
        ready = False
        try:
            if process is None:
                process = self._start()
                with self._changed:
                    wanted = self._coming is token and not self._closed
                    if wanted:
                        self._coming = token = process  # close() or give_back() can end it while it warms
                if wanted:
                    process.wait_warm()
                    ready = True
            else:
                ready = process.unload()
        except Exception:
            with self._changed:
                if self._coming is token and not self._closed:  # not ended on purpose
                    log.warning("Starting a spare prescriber process failed", exc_info=True)
        with self._changed:
            kept = ready and self._coming is token and not self._closed and self._ready is None
            if self._coming is token:
                self._coming = None
            if kept:
                self._ready = process
            self._changed.notify_all()
        if not kept and process is not None:
            process.close(wait=1.0)

    def take(self, wait: float = 120.0) -> PrescriberProcess | None:
        """The warm spare (waiting up to ``wait`` seconds for one coming), or ``None``."""
        deadline = time.monotonic() + wait
        with self._changed:
            while self._ready is None and self._coming is not None and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            process, self._ready = self._ready, None
        if process is not None and not process.alive:
            process.close(wait=0.0)
            return None
        return process

    def close(self) -> None:
        """End the spare, and one still coming."""
        with self._changed:
            self._closed = True
            ready, self._ready = self._ready, None
            coming = self._coming
            timers, self._timers = self._timers, []
            self._changed.notify_all()
        for timer in timers:
            timer.cancel()
        if ready is not None:
            ready.close(wait=1.0)
        if isinstance(coming, PrescriberProcess):
            coming.process.terminate()
