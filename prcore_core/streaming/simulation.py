"""The simulation: a project's held-out cases replayed through the ingestion path, in timestamp order."""

from __future__ import annotations

import contextlib
import logging
import random
import string
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from prcore_core import errors
from prcore_core.running_cases import COMPLETE_INDICATOR
from prcore_core.streaming.prescribing import ActiveProject

log = logging.getLogger(__name__)


class Simulation(threading.Thread):
    """Replays a project's held-out cases through the ingestion path, in timestamp order (reference 10.2).

    Parameters
    ----------
    post
        Ingests one event of the project, as a client's post is ingested.
    finish
        Stops the project's stream once the replay is over (``finish(project_id, finished_reason=...)``).
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
        events: pd.DataFrame,
        interval: float | None = 0.0,
        speed: float | None = None,
        max_events: int | None = None,
    ):
        super().__init__(name=f"simulation-{active.project_id}", daemon=True)
        self.post = post
        self.finish = finish
        self.active = active
        self.frame = events
        self.interval = interval
        self.speed = speed
        self.max_events = max_events
        self._cancelled = threading.Event()
        self.sent = 0

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> None:
        try:
            frame = self.frame
            columns = self.active.columns
            prefix = "".join(random.choices(string.ascii_letters + string.digits, k=8))
            case_column = columns.case_id
            time_column = frame.attrs.get("time_column")
            times = pd.to_datetime(frame[time_column], utc=True, errors="coerce") if time_column else None
            frame = frame.assign(**{COMPLETE_INDICATOR: ~frame[case_column].duplicated(keep="last")})
            records = frame.astype(object)
            records = records.where(records.notna(), None).to_dict("records")
            due = time.monotonic()  # on a schedule: the time an event takes to ingest does not slow the pace
            for position, record in enumerate(records):
                if self._cancelled.is_set() or (self.max_events is not None and self.sent >= self.max_events):
                    break
                record[case_column] = f"{prefix}-{record[case_column]}"
                record = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in record.items()}
                self.post(self.active.project_id, record)
                self.sent += 1
                delay = self.interval
                if delay is None and times is not None and self.speed:
                    current = times.iloc[position]
                    following = times.iloc[position + 1] if position + 1 < len(times) else current
                    delay = max((following - current).total_seconds(), 0.0) / self.speed
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
                self.finish(self.active.project_id, finished_reason="simulation finished")
