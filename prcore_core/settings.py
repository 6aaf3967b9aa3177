"""One settings object, read from ``PRCORE_*`` environment variables and passed in explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from prcore_core.reading import ReadingLimits


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Where the workbench keeps its state and how it behaves.

    Parameters
    ----------
    data_dir
        Directory for the database, uploaded files, parsed logs (Parquet) and models.
    database_url
        Any SQLAlchemy URL; default a SQLite file ``prcore.db`` in ``data_dir`` (WAL mode).
    training_share
        Share of cases, earliest by start time, used for training; the rest are held out for evaluation and
        simulation.
    max_workers
        Threads for parsing, training and prediction (and training processes, see below).
    training_processes
        Train plugins in worker processes instead of threads (``PRCORE_TRAINING_PROCESSES=1``), so that a server
        stays responsive while it trains; ``prcore-workbench serve`` turns it on. Plugins that another process
        cannot import (defined in a notebook) still train in a thread.
    prescribing_processes
        Prescribe for each streaming project in a process of its own (``PRCORE_PRESCRIBING_PROCESSES=1``), so that
        predicting does not take the interpreter from a server's event loop; ``prcore-workbench serve`` turns it on.
        Projects with a plugin another process cannot import prescribe in a thread.
    max_decompressed_bytes
        Largest event log inside an uploaded zip or gzip, decompressed (``PRCORE_MAX_DECOMPRESSED_BYTES``, 2 GiB);
        a larger one is refused with 413 while decompressing.
    max_columns
        Most columns of an uploaded CSV (``PRCORE_MAX_COLUMNS``, 2,000); more are refused with 413 from the header.
    result_ttl_hours
        How long the prescriptions for an uploaded dataset of ongoing cases stay readable by their key
        (``PRCORE_RESULT_TTL_HOURS``, 24).
    sse_format
        How prescriptions are sent by default over SSE and in dataset results (``PRCORE_SSE_FORMAT``): ``list``
        (the seed's list) or ``prcore`` (PrCore's object keyed by plugin id); a request's ``?format=`` overrides it.
    prescriber_timeout
        Seconds a prescriber process may take to answer one burst of events (``PRCORE_PRESCRIBER_TIMEOUT``, 30); one
        that takes longer (stopped, stuck) is ended and replaced, and its burst is delivered with the reason.
    sse_reader_timeout
        Seconds an SSE reader may take no data while there is data to send (``PRCORE_SSE_READER_TIMEOUT``, 30); a
        slower one is disconnected and may resume with ``Last-Event-ID`` (its events are stored, not held for it).
    """

    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("PRCORE_DATA_DIR") or "./prcore-data"))
    database_url: str | None = field(default_factory=lambda: os.environ.get("PRCORE_DATABASE_URL") or None)
    training_share: float = field(default_factory=lambda: _env_float("PRCORE_TRAINING_SHARE", 0.8))
    max_workers: int = field(default_factory=lambda: int(_env_float("PRCORE_MAX_WORKERS", 2)))
    training_processes: bool = field(default_factory=lambda: bool(_env_float("PRCORE_TRAINING_PROCESSES", 0)))
    prescribing_processes: bool = field(default_factory=lambda: bool(_env_float("PRCORE_PRESCRIBING_PROCESSES", 0)))
    max_decompressed_bytes: int = field(
        default_factory=lambda: int(_env_float("PRCORE_MAX_DECOMPRESSED_BYTES", ReadingLimits.max_decompressed_bytes))
    )
    max_columns: int = field(default_factory=lambda: int(_env_float("PRCORE_MAX_COLUMNS", ReadingLimits.max_columns)))
    result_ttl_hours: float = field(default_factory=lambda: _env_float("PRCORE_RESULT_TTL_HOURS", 24.0))
    sse_format: str = field(default_factory=lambda: os.environ.get("PRCORE_SSE_FORMAT") or "list")
    prescriber_timeout: float = field(default_factory=lambda: _env_float("PRCORE_PRESCRIBER_TIMEOUT", 30.0))
    sse_reader_timeout: float = field(default_factory=lambda: _env_float("PRCORE_SSE_READER_TIMEOUT", 30.0))

    def __post_init__(self):
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if not 0 < self.training_share < 1:
            raise ValueError(f"training_share must be between 0 and 1, got {self.training_share}")
        if self.sse_format not in ("list", "prcore"):
            raise ValueError(f"sse_format must be 'list' or 'prcore', got {self.sse_format!r}")
        if not self.result_ttl_hours > 0:
            raise ValueError(f"result_ttl_hours must be positive, got {self.result_ttl_hours}")
        for name in ("prescriber_timeout", "sse_reader_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be positive seconds, got {getattr(self, name)}")

    @property
    def reading_limits(self) -> ReadingLimits:
        """The bounds on the work of one upload."""
        return ReadingLimits(self.max_decompressed_bytes, self.max_columns)

    @property
    def url(self) -> str:
        """The database URL actually used."""
        return self.database_url or f"sqlite:///{self.data_dir / 'prcore.db'}"
