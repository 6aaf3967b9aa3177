"""The simulation: a project's held-out cases replayed through the ingestion path, in timestamp order.

What a simulation posts (the raw events of the held-out cases, in time order, each marked when it is its case's
last) is worked out once per training run and kept as a Parquet file beside the prepared data (:class:`Replay`).
Working it out parses the held-out part of the raw log (pandas holding the interpreter lock for about a second on
BPIC 2012); under a server it runs in a worker process while the project's models load, so neither the activation
nor the server's answers wait for it. The simulation then reads the file a batch at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prcore_core import errors
from prcore_core.columns import ColumnsDefinition
from prcore_core.running_cases import COMPLETE_INDICATOR
from prcore_core.streaming.prescribing import ActiveProject

log = logging.getLogger(__name__)

#: The replay file's column of seconds until the next event in the log (the pace of ``speed``), never posted.
GAP = "__replay_gap_seconds__"
#: Events read from the replay file at a time.
READ_BATCH = 256


@dataclass(frozen=True)
class ReplaySource:
    """Where a project's replay comes from, by path (picklable: a worker process builds it from this).

    Parameters
    ----------
    data_dir
        The data directory.
    raw_path
        The event log's stored frame (raw text values, as a client would post them).
    prepared_path, split
        The project's prepared run: which cases are held out.
    columns
        The event log's columns definition.
    """

    data_dir: Path
    raw_path: str
    prepared_path: str
    split: dict
    columns: ColumnsDefinition

    @property
    def path(self) -> Path:
        """The replay file: in the run's directory, named for the log and definition it was made from."""
        made_from = json.dumps([self.raw_path, self.columns.to_dict()], sort_keys=True, default=str)
        digest = hashlib.sha256(made_from.encode()).hexdigest()[:16]
        return Path(self.data_dir) / self.prepared_path / f"replay-{digest}.parquet"


def write_replay(source: ReplaySource) -> Path:
    """Work out the replay of ``source`` and store it (under a temporary name, renamed into place)."""
    from prcore_core.preparation import held_out_events
    from prcore_core.storage import PRIVATE_FILE, Storage

    storage = Storage(source.data_dir)
    held_out = storage.read_prepared(source.prepared_path, (), source.split).held_out_cases
    replay = held_out_events(storage.read_frame(source.raw_path), source.columns, held_out)
    replay[COMPLETE_INDICATOR] = ~replay[source.columns.case_id].duplicated(keep="last")
    time_column = replay.attrs.get("time_column")
    if time_column:
        times = pd.to_datetime(replay[time_column], utc=True, errors="coerce")
        replay[GAP] = (times.shift(-1) - times).dt.total_seconds().clip(lower=0.0).fillna(0.0)
    else:
        replay[GAP] = 0.0
    target = source.path
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")  # two builds never write the same file
    replay.to_parquet(tmp, index=False)
    tmp.chmod(PRIVATE_FILE)
    tmp.replace(target)
    return target


def _build_replay(source: ReplaySource, server_pid: int) -> None:
    """A worker process's job: the replay file, at a low priority, ending with the server."""
    from prcore_core.workers import worker_setup

    worker_setup(server_pid)
    write_replay(source)


class Replay:
    """The events a simulation posts: built once per training run, then read from their file a batch at a time.

    Parameters
    ----------
    source
        Where the replay comes from.
    context
        A multiprocessing context to build the file in a worker process, started at once (under a server, where
        pandas would hold the server's interpreter lock); ``None`` builds it in the simulation's thread.
    """

    def __init__(self, source: ReplaySource, context=None):
        self.source = source
        self._process = None
        if context is not None and not source.path.exists():
            self._process = context.Process(
                target=_build_replay, args=(source, os.getpid()), name="replay", daemon=True
            )
            self._process.start()

    def _ready(self, cancelled: threading.Event) -> bool:
        """Wait for the file (building it here when no worker does); False when cancelled first."""
        if self._process is not None:
            while self._process.is_alive():
                if cancelled.wait(0.05):
                    return False
            if self._process.exitcode != 0 or not self.source.path.exists():
                raise RuntimeError(f"The replay could not be built (exit code {self._process.exitcode})")
        elif not self.source.path.exists():
            write_replay(self.source)
        return not cancelled.is_set()

    def records(self, cancelled: threading.Event) -> Iterator[tuple[dict[str, Any], float]]:
        """Each event as posted (text values, ``COMPLETE_INDICATOR``) with the seconds to the next one in the log."""
        import pyarrow.parquet as pq

        if not self._ready(cancelled):
            return
        with pq.ParquetFile(self.source.path) as file:
            for batch in file.iter_batches(batch_size=READ_BATCH):
                for record in batch.to_pylist():
                    gap = record.pop(GAP, 0.0) or 0.0
                    yield {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in record.items()}, gap


class Simulation(threading.Thread):
    """Replays a project's held-out cases through the ingestion path, in timestamp order (reference 10.2).

    Parameters
    ----------
    post
        Ingests one event of the project, as a client's post is ingested.
    finish
        Stops the project's stream once the replay is over (``finish(active, finished_reason=...)``: this replay's
        stream, not one started after it).
    replay
        The events to post.
    interval
        Seconds between two events (fixed pace); ``None`` to use the log's real gaps divided by ``speed``.
    speed
        Speed-up of the real gaps (e.g. 3600: an hour of the log per second) when ``interval`` is ``None``.
    max_events
        Stop after this many events (PrCore stopped at 1,800); ``None`` replays everything.
    """

    def __init__(
        self,
        post: Callable[[int, dict], Any],
        finish: Callable[..., None],
        active: ActiveProject,
        replay: Replay,
        interval: float | None = 0.0,
        speed: float | None = None,
        max_events: int | None = None,
    ):
        super().__init__(name=f"simulation-{active.project_id}", daemon=True)
        self.post = post
        self.finish = finish
        self.active = active
        self.replay = replay
        self.interval = interval
        self.speed = speed
        self.max_events = max_events
        self._cancelled = threading.Event()
        self.sent = 0

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> None:
        try:
            prefix = "".join(random.choices(string.ascii_letters + string.digits, k=8))
            case_column = self.active.columns.case_id
            due = time.monotonic()  # on a schedule: the time an event takes to ingest does not slow the pace
            for record, gap in self.replay.records(self._cancelled):
                if self._cancelled.is_set() or (self.max_events is not None and self.sent >= self.max_events):
                    break
                record[case_column] = f"{prefix}-{record[case_column]}"
                self.post(self.active.project_id, record)
                self.sent += 1
                delay = self.interval
                if delay is None and self.speed:
                    delay = gap / self.speed
                due += delay or 0.0
                wait = due - time.monotonic()
                if wait > 0:
                    self._cancelled.wait(wait)
        except errors.PrCoreError as exc:
            if not self._cancelled.is_set():
                log.warning("Simulation of project %s stopped: %s", self.active.project_id, exc.detail)
        except Exception:
            log.exception("Simulation of project %s failed", self.active.project_id)
        if not self._cancelled.is_set():
            # the end of the replay: drain what was queued, then the project goes back to TRAINED
            deadline = time.monotonic() + 60
            while not self.active.queue.empty() and time.monotonic() < deadline:
                time.sleep(0.01)
            with contextlib.suppress(errors.PrCoreError):  # already stopped by someone else
                self.finish(self.active, finished_reason="simulation finished")
