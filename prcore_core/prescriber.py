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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
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


def _serve_prescriber(connection, spec: PrescriberSpec) -> None:
    """The prescriber process: build the prescriber, then answer bursts until told to stop or the server ends."""
    from threadpoolctl import threadpool_limits

    from prcore_core import registry
    from prcore_core.db import make_engine, make_sessionmaker
    from prcore_core.storage import Storage

    # a burst's numeric work is small: native thread pools only add threads that spin between calls, taking the
    # core the server needs
    threadpool_limits(limits=1)
    try:
        sessions = make_sessionmaker(make_engine(spec.database_url))
        storage = Storage(spec.data_dir)
        plugins = []
        for state, model_path in spec.plugins:
            plugin_class = registry.get_plugin_class(state.key)
            plugin_class.load_dependencies()
            model = plugin_class.load(storage.path(model_path))
            plugins.append((state, model, StoredState(sessions, spec.project_id, state.key)))
        prescriber = Prescriber(spec.columns, spec.attributes, plugins, spec.histories)
    except Exception as exc:
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", os.getpid()))
    while True:
        try:
            burst = connection.recv()
        except (EOFError, OSError):  # the server ended
            return
        if burst is None:
            return
        try:
            connection.send(("outputs", prescriber.prescribe(burst)))
        except Exception as exc:  # e.g. an output that cannot be pickled
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class PrescriberProcess:
    """A :class:`Prescriber` in a process of its own; :meth:`prescribe` sends a burst and waits for the answer.

    The process ends when told to (:meth:`close`) or when the server's end of the pipe closes (the server ended,
    even by a crash). Called from one thread at a time (the project's prescriber thread).
    """

    def __init__(self, spec: PrescriberSpec, context, timeout: float = 120.0):
        self._connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve_prescriber, args=(child, spec), daemon=True, name=f"prescriber-{spec.project_id}"
        )
        self.process.start()
        child.close()
        if not self._connection.poll(timeout):
            self.close()
            raise PrescriberError(f"The prescriber process did not start within {timeout:g} s")
        kind, payload = self._receive()
        if kind != "ready":
            self.close()
            raise PrescriberError(f"The prescriber process could not load the models: {payload}")

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            raise PrescriberError(
                f"The prescriber process ended unexpectedly (exit code {self.process.exitcode})"
            ) from None

    def prescribe(self, burst: Sequence[BurstEvent]) -> list[list[dict[str, Any]]]:
        try:
            self._connection.send(list(burst))
        except (OSError, ValueError) as exc:
            raise PrescriberError(f"The prescriber process ended unexpectedly ({exc})") from None
        kind, payload = self._receive()
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
        self._connection.close()
