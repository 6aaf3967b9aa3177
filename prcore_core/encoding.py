"""Prefix encoding: from case prefixes to feature rows, shared by every plugin (built-in or third-party).

One encoder serves every prefix length, so a prefix of any length gets features (PrCore trained one model per
length and could not predict unseen lengths, reference 13.1 #25). The features, each optional:

* ``last``: the last ``history`` activities, one-hot per position (PrCore's ``SIMPLE_INDEX`` idea without the
  ordinal codes that make distances meaningless);
* ``counts``: how often each activity occurred so far (``FREQUENCY_BASED``), or whether it did (``BOOLEAN``);
* ``time``: prefix length, elapsed time since the case started, time since the previous event, weekday and hour;
* ``duration``: how long the last event took (end minus start), for logs with start and end times;
* ``resource``: the last event's resource, one-hot over the frequent ones;
* ``attributes``: case attributes and the latest value of event attributes, by family.

Activities and values never seen in training are not dropped and never take another value's code: they fall into
an explicit "unseen" column. Everything is computed vectorised over the event table of a batch.

Durations are logarithms of ``1 + time`` in the encoder's ``time_unit`` (hours by default); the unit changes the
shape of the scale (seconds spread short gaps apart, which suits distance-based models) and the feature names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prcore_core.columns import Family
from prcore_core.dataset import (
    ACTIVITY,
    CASE_ID,
    END_TIMESTAMP,
    RESOURCE,
    START_TIMESTAMP,
    Attribute,
    PrefixBatch,
    case_starts,
    order_time_column,
)

UNSEEN = "<unseen>"
ENCODINGS = ("COMBINED", "SIMPLE_INDEX", "BOOLEAN", "FREQUENCY_BASED")
#: Every feature block an encoder can produce (``blocks_for`` names the usual combinations).
BLOCKS = ("last", "counts", "presence", "time", "duration", "resource", "attributes")
#: Units the ``time`` and ``duration`` blocks can measure in, as seconds.
TIME_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
_TICKS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_SECONDS_PER_DAY = 86400.0
#: Below this many values, codes are looked up in a dictionary (pandas' conversion costs ~1 ms whatever the size).
_SMALL = 256


def blocks_for(encoding: str) -> tuple[str, ...]:
    """Feature blocks used by one of PrCore's encoding names (plus ``COMBINED``, all of them)."""
    return {
        "COMBINED": ("last", "counts", "time", "resource", "attributes"),
        "SIMPLE_INDEX": ("last",),
        "BOOLEAN": ("presence",),
        "FREQUENCY_BASED": ("counts",),
    }[encoding]


@dataclass
class _Categories:
    values: list[str]

    def codes(self, series: pd.Series) -> np.ndarray:
        """Codes ``0..n-1`` for known values, ``n`` for unseen ones, ``-1`` for missing."""
        if len(series) <= _SMALL:
            return self._small_codes(series)
        text = series.astype("string")
        codes = pd.Index(self.values, dtype="string").get_indexer(text).astype(np.int64)
        codes[(codes < 0) & text.notna().to_numpy()] = len(self.values)
        return codes

    def _small_codes(self, series: pd.Series) -> np.ndarray:
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            lookup = self.__dict__["_lookup"] = {value: code for code, value in enumerate(self.values)}
        unseen = len(self.values)
        raw = series.to_numpy(dtype=object, na_value=None)
        return np.fromiter(
            (-1 if v is None or v is pd.NA or v != v else lookup.get(str(v), unseen) for v in raw), np.int64, len(raw)
        )

    def __getstate__(self):
        return {"values": self.values}


def context_keys(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """One key per row of activity codes (e.g. :meth:`PrefixEncoder.last_activities`), equal exactly when the rows
    are equal: ``int64`` when the rows fit in one integer, else fixed-size byte strings. ``n_codes`` is the number of
    activity codes (known activities plus the unseen code); ``-1`` (before the case start) is allowed, codes beyond
    ``n_codes - 1`` count as unseen.

    >>> context_keys(np.array([[0, -1], [2, 1], [0, -1]]), n_codes=3).tolist()
    [4, 14, 4]
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError("codes must be a 2-D array, one row per prefix")
    base = n_codes + 1
    codes = np.clip(codes, -1, n_codes - 1) + 1
    if base ** codes.shape[1] < 2**62:
        keys = np.zeros(len(codes), dtype=np.int64)
        for column in range(codes.shape[1]):
            keys = keys * base + codes[:, column]
        return keys
    rows = np.ascontiguousarray(codes)
    return rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()


def _one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width), dtype=np.float32)
    valid = codes >= 0
    out[np.flatnonzero(valid), codes[valid]] = 1.0
    return out


def seconds_since_epoch(time: pd.Series) -> np.ndarray:
    """Seconds since the epoch as floats (``NaN`` for missing), whatever the resolution of the datetime column.

    Naive datetimes count as UTC; other columns are parsed first.
    """
    if not pd.api.types.is_datetime64_any_dtype(time.dtype):
        time = pd.to_datetime(time, utc=True, errors="coerce", format="ISO8601")
    dtype = time.dtype
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    ticks = time.array.asi8  # integers in the column's unit, NaT as the smallest int64
    seconds = ticks / _TICKS_PER_SECOND[unit]
    seconds[ticks == np.iinfo(np.int64).min] = np.nan
    return seconds


def _numbers(values: pd.Series) -> np.ndarray:
    """Floats of a number or boolean column (``NaN`` for missing or unparseable values)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values.astype("string"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)



class PrefixEncoder:
    """Learns the vocabulary of a training log and encodes prefixes as ``float32`` feature rows.

    Parameters
    ----------
    blocks
        Which feature blocks to produce (see the module docstring).
    history
        How many last activities the ``last`` block encodes.
    max_categories
        Most frequent values kept per text attribute and for resources; the rest share an "other" column.
    time_unit
        Unit of the ``time`` and ``duration`` blocks' durations (a key of ``TIME_UNITS``), before ``log1p``.

    Examples
    --------
    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b"], "ACTIVITY": ["x", "y", "x"],
    ...                        "TIMESTAMP": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True)})
    >>> encoder = PrefixEncoder(blocks=("last", "counts"), history=2).fit(events)
    >>> encoder.transform(PrefixBatch(events, np.array([1]))).tolist()
    [[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]
    """

    def __init__(
        self,
        blocks: Sequence[str] = blocks_for("COMBINED"),
        history: int = 3,
        max_categories: int = 20,
        time_unit: str = "hours",
    ):
        unknown = sorted(set(blocks) - set(BLOCKS))
        if unknown:
            raise ValueError(f"Unknown feature block(s) {', '.join(unknown)}; known: {', '.join(BLOCKS)}")
        if time_unit not in TIME_UNITS:
            raise ValueError(f"Unknown time unit {time_unit!r}; known: {', '.join(TIME_UNITS)}")
        self.blocks = tuple(blocks)
        self.history = history
        self.max_categories = max_categories
        self.time_unit = time_unit

    def fit(self, events: pd.DataFrame, attributes: Sequence[Attribute] = ()) -> PrefixEncoder:
        """Learn activities, frequent values and numeric scales from training events."""
        self.activities_ = _Categories(sorted(events[ACTIVITY].dropna().astype(str).unique()))
        self.durations_ = START_TIMESTAMP in events.columns and END_TIMESTAMP in events.columns
        self.resources_ = None
        if RESOURCE in events.columns:
            self.resources_ = _Categories(self._frequent(events[RESOURCE]))
        self.attributes_ = []
        for attribute in attributes:
            values = events[attribute.name]
            if attribute.family in (Family.NUMBER, Family.BOOLEAN):
                numbers = pd.Series(_numbers(values))
                center = float(numbers.median()) if numbers.notna().any() else 0.0
                spread = float(numbers.quantile(0.9) - numbers.quantile(0.1)) if numbers.notna().any() else 1.0
                self.attributes_.append((attribute, "number", (center, spread or 1.0)))
            elif attribute.family is Family.DATETIME:
                continue  # absolute dates do not generalise to future cases; elapsed time covers time
            else:
                self.attributes_.append((attribute, "category", _Categories(self._frequent(values))))
        self.feature_names_ = self._names()
        return self

    def _frequent(self, values: pd.Series) -> list[str]:
        counts = values.dropna().astype(str).value_counts()
        return sorted(counts.index[: self.max_categories])

    def _names(self) -> list[str]:
        """Feature names; also sets ``feature_blocks_`` and ``feature_kinds_`` (one per feature)."""
        acts = [*self.activities_.values, UNSEEN]
        columns: list[tuple[str, str, str]] = []  # (name, block, kind)

        def add(block: str, kind: str, names) -> None:
            columns.extend((name, block, kind) for name in names)

        if "last" in self.blocks:
            add("last", "binary", [f"last_{k}={a}" for k in range(1, self.history + 1) for a in acts])
        if "counts" in self.blocks:
            add("counts", "count", [f"count={a}" for a in acts])
        if "presence" in self.blocks:
            add("presence", "binary", [f"seen={a}" for a in acts])
        unit = self._unit
        if "time" in self.blocks:
            time_names = ["prefix_length", f"log_elapsed_{unit}", f"log_{unit}_since_previous", "weekday", "hour"]
            add("time", "number", time_names)
        if "duration" in self.blocks and self.durations_:
            add("duration", "number", [f"log_duration_{unit}"])
        if "resource" in self.blocks and self.resources_ is not None:
            add("resource", "binary", [f"resource={r}" for r in [*self.resources_.values, UNSEEN]])
        if "attributes" in self.blocks:
            for attribute, kind, state in self.attributes_:
                if kind == "number":
                    add("attributes", "number", [attribute.name])
                    add("attributes", "binary", [f"{attribute.name}:missing"])
                else:
                    add("attributes", "binary", [f"{attribute.name}={v}" for v in [*state.values, UNSEEN]])
        #: The block of each feature (``"last"``, ``"counts"``, ...) and its kind (``"binary"``, ``"count"``,
        #: ``"number"``), e.g. to scale or weight blocks for distance-based models.
        self.feature_blocks_ = [block for _, block, _ in columns]
        self.feature_kinds_ = [kind for _, _, kind in columns]
        return [name for name, _, _ in columns]

    @property
    def _unit(self) -> str:
        return getattr(self, "time_unit", "hours")  # encoders pickled before the option existed use hours

    def activity_codes(self, events: pd.DataFrame) -> np.ndarray:
        """Activity code of every event: ``0..n-1`` known, ``n`` unseen (``UNSEEN``), ``-1`` missing."""
        return self.activities_.codes(events[ACTIVITY])

    def last_activities(self, batch: PrefixBatch, n: int, codes: np.ndarray | None = None) -> np.ndarray:
        """Codes of the last ``n`` activities of each prefix, most recent first, ``-1`` before the case start.

        ``codes`` are :meth:`activity_codes` of ``batch.events`` when already computed.
        """
        ends = np.asarray(batch.ends, dtype=np.int64)
        if codes is None:
            codes = self.activity_codes(batch.events)
        position = ends - case_starts(batch.events[CASE_ID].to_numpy())[ends]
        out = np.full((len(ends), n), -1, dtype=np.int64)
        for k in range(n):
            valid = position >= k
            out[valid, k] = codes[ends[valid] - k]
        return out

    def transform(self, batch: PrefixBatch) -> np.ndarray:
        """Feature rows, one per prefix of ``batch``."""
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        if not len(ends):
            return np.zeros((0, len(self.feature_names_)), dtype=np.float32)
        case = events[CASE_ID].to_numpy()
        starts = case_starts(case)
        width = len(self.activities_.values) + 1
        parts: list[np.ndarray] = []
        position = np.arange(len(case)) - starts
        if {"last", "counts", "presence"} & set(self.blocks):
            codes = self.activity_codes(events)
        if "last" in self.blocks:
            last = self.last_activities(batch, self.history, codes)
            parts.extend(_one_hot(last[:, k], width) for k in range(self.history))
        if "counts" in self.blocks or "presence" in self.blocks:
            cumulative = np.cumsum(_one_hot(codes, width), axis=0, dtype=np.float32)
            before = np.where((starts[ends] > 0)[:, None], cumulative[np.maximum(starts[ends] - 1, 0)], 0.0)
            counts = cumulative[ends] - before
            if "counts" in self.blocks:
                parts.append(counts)
            if "presence" in self.blocks:
                parts.append((counts > 0).astype(np.float32))
        if "time" in self.blocks:
            parts.append(self._time(events, starts, ends, position))
        if "duration" in self.blocks and getattr(self, "durations_", False):
            parts.append(self._duration(events, ends))
        if "resource" in self.blocks and self.resources_ is not None:
            resource = events[RESOURCE] if RESOURCE in events.columns else pd.Series(pd.NA, index=events.index)
            parts.append(_one_hot(self.resources_.codes(resource)[ends], len(self.resources_.values) + 1))
        if "attributes" in self.blocks:
            parts.extend(self._attributes(events, starts, ends))
        if not parts:
            return np.zeros((len(ends), 0), dtype=np.float32)
        return np.hstack(parts).astype(np.float32, copy=False)

    def _time(self, events, starts, ends, position) -> np.ndarray:
        seconds = seconds_since_epoch(events[order_time_column(events)])
        unit = TIME_UNITS[self._unit]
        elapsed = np.nan_to_num(seconds[ends] - seconds[starts[ends]]) / unit
        previous = np.where(position[ends] > 0, seconds[np.maximum(ends - 1, 0)], seconds[ends])
        since = np.nan_to_num(seconds[ends] - previous) / unit
        days = np.floor(seconds[ends] / _SECONDS_PER_DAY)
        weekday = np.nan_to_num((days + 3) % 7) / 6.0  # 1970-01-01 was a Thursday; Monday is 0 (UTC)
        hour = np.nan_to_num(np.floor((seconds[ends] - days * _SECONDS_PER_DAY) / 3600.0)) / 23.0
        length = np.log1p(position[ends] + 1.0)
        return np.column_stack(
            [length, np.log1p(np.maximum(elapsed, 0)), np.log1p(np.maximum(since, 0)), weekday, hour]
        ).astype(np.float32)

    def _duration(self, events, ends) -> np.ndarray:
        """``log1p`` of the last event's end minus its start (0 when either is unknown)."""
        if START_TIMESTAMP not in events.columns or END_TIMESTAMP not in events.columns:
            return np.zeros((len(ends), 1), dtype=np.float32)
        duration = seconds_since_epoch(events[END_TIMESTAMP]) - seconds_since_epoch(events[START_TIMESTAMP])
        duration = duration[ends] / TIME_UNITS[self._unit]
        return np.log1p(np.maximum(np.nan_to_num(duration), 0.0)).astype(np.float32)[:, None]

    def _attributes(self, events, starts, ends) -> list[np.ndarray]:
        parts = []
        for attribute, kind, state in self.attributes_:
            values = events.get(attribute.name, pd.Series(pd.NA, index=events.index))
            if attribute.scope == "event":
                # the latest known value within the prefix (forward fill inside the case)
                values = values.groupby(events[CASE_ID].to_numpy(), sort=False).ffill()
            if kind == "number":
                center, spread = state
                numbers = _numbers(values)[ends]
                missing = np.isnan(numbers)
                parts.append(np.column_stack([np.where(missing, 0.0, (numbers - center) / spread), missing]))
            else:
                parts.append(_one_hot(state.codes(values)[ends], len(state.values) + 1))
        return [p.astype(np.float32) for p in parts]
