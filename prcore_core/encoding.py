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
    column_values,
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
        text = series.astype("string") if isinstance(series, pd.Series) else pd.Series(series).astype("string")
        codes = pd.Index(self.values, dtype="string").get_indexer(text).astype(np.int64)
        codes[(codes < 0) & text.notna().to_numpy()] = len(self.values)
        return codes

    def _small_codes(self, series: pd.Series) -> np.ndarray:
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            lookup = self.__dict__["_lookup"] = {value: code for code, value in enumerate(self.values)}
        unseen = len(self.values)
        raw = (series.to_numpy(dtype=object, na_value=None) if hasattr(series, "to_numpy")
               else np.asarray(series, dtype=object))  # fmt: skip
        return np.fromiter(
            (-1 if v is None or v is pd.NA or v != v else lookup.get(str(v), unseen) for v in raw), np.int64, len(raw)
        )

    @property
    def key(self) -> int:
        """Equal for vocabularies of equal values (a memo key)."""
        key = self.__dict__.get("_key")
        if key is None:
            key = self.__dict__["_key"] = hash(tuple(self.values))
        return key

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
        time = pd.to_datetime(pd.Series(time), utc=True, errors="coerce", format="ISO8601")
    dtype = time.dtype
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    array = time.array if isinstance(time, pd.Series) else time
    if isinstance(array, np.ndarray):
        array = pd.array(array)
    ticks = array.asi8  # integers in the column's unit, NaT as the smallest int64
    seconds = ticks / _TICKS_PER_SECOND[unit]
    seconds[ticks == np.iinfo(np.int64).min] = np.nan
    return seconds


def batch_column(batch: PrefixBatch, name: str):
    """The values of a column of the batch's events (:func:`~prcore_core.dataset.column_values`), or ``None``;
    read once per batch (several plugins encode the same streamed prefix)."""
    key = ("column", name)
    if key not in batch.memo:
        batch.memo[key] = column_values(batch.events, name)
    return batch.memo[key]


def batch_seconds(batch: PrefixBatch, name: str) -> np.ndarray | None:
    """:func:`seconds_since_epoch` of a column of the batch's events (``None`` without it), once per batch."""
    key = ("seconds", name)
    if key not in batch.memo:
        column = batch_column(batch, name)
        batch.memo[key] = None if column is None else seconds_since_epoch(column)
    return batch.memo[key]


def batch_case_starts(batch: PrefixBatch) -> np.ndarray:
    """The row where each event row's case starts (equal within a case: it also serves as a case code), once per
    batch.

    A streamed event is one case's prefix: the events are grouped by case, so equal first and last case ids mean
    one case, and the case ids need not be read (reading them is most of the cost of encoding one prefix).
    """
    if "case_starts" not in batch.memo:
        case, n = batch_column(batch, CASE_ID), len(batch.events)
        one_case = n > 0 and case[0] == case[n - 1]
        batch.memo["case_starts"] = np.zeros(n, dtype=np.int64) if one_case else case_starts(np.asarray(case))
    return batch.memo["case_starts"]


def batch_codes(batch: PrefixBatch, name: str, vocabulary: _Categories) -> np.ndarray:
    """``vocabulary.codes`` of a column of the batch's events (all missing without it), once per batch and
    vocabulary (plugins fitted on one log share their vocabularies' values)."""
    key = ("codes", name, vocabulary.key)
    if key not in batch.memo:
        column = batch_column(batch, name)
        batch.memo[key] = (np.full(len(batch.events), -1, dtype=np.int64) if column is None
                           else vocabulary.codes(column))  # fmt: skip
    return batch.memo[key]


def _numbers(values: pd.Series) -> np.ndarray:
    """Floats of a number or boolean column (``NaN`` for missing or unparseable values)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64)
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    text = pd.Series(values).astype("string")
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


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
    max_attribute_features
        Columns the ``attributes`` block may have in all (64), so that a log of a hundred text attributes does not
        become thousands of one-hot columns per prefix (memory grows with prefixes × columns). A number takes two
        columns (value, missing) and numbers come first, in their declared order; a text attribute takes one column
        for its other values plus one per kept value, and the values kept are the most frequent (attribute, value)
        pairs over all text attributes that fit, at most ``max_categories`` per attribute.
        ``skipped_attributes_`` names the attributes left out.

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
        max_attribute_features: int = 64,
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
        self.max_attribute_features = max_attribute_features

    def fit(self, events: pd.DataFrame, attributes: Sequence[Attribute] = ()) -> PrefixEncoder:
        """Learn activities, frequent values and numeric scales from training events."""
        self.activities_ = _Categories(sorted(events[ACTIVITY].dropna().astype(str).unique()))
        self.durations_ = START_TIMESTAMP in events.columns and END_TIMESTAMP in events.columns
        self.resources_ = None
        if RESOURCE in events.columns:
            self.resources_ = _Categories(self._frequent(events[RESOURCE]))
        self.attributes_, self.skipped_attributes_ = [], []
        budget = self.max_attribute_features if "attributes" in self.blocks else float("inf")
        numbers, texts = {}, {}
        for attribute in attributes:
            if attribute.family is Family.DATETIME:
                continue  # absolute dates do not generalise to future cases; elapsed time covers time
            values = events[attribute.name]
            if attribute.family in (Family.NUMBER, Family.BOOLEAN):
                if budget < 2:
                    continue
                parsed = pd.Series(_numbers(values))
                center = float(parsed.median()) if parsed.notna().any() else 0.0
                spread = float(parsed.quantile(0.9) - parsed.quantile(0.1)) if parsed.notna().any() else 1.0
                numbers[attribute.name] = (center, spread or 1.0)
                budget -= 2
            else:
                texts[attribute.name] = values.dropna().astype(str).value_counts().iloc[: self.max_categories]
        kept = self._kept_values(texts, budget)
        for attribute in attributes:
            if attribute.name in numbers:
                self.attributes_.append((attribute, "number", numbers[attribute.name]))
            elif kept.get(attribute.name):
                self.attributes_.append((attribute, "category", _Categories(kept[attribute.name])))
            elif attribute.family is not Family.DATETIME:
                self.skipped_attributes_.append(attribute.name)
        self.feature_names_ = self._names()
        return self

    @staticmethod
    def _kept_values(frequent: dict[str, pd.Series], budget: float) -> dict[str, list[str]]:
        """Per text attribute, its values kept within ``budget`` columns, sorted: the most frequent (attribute,
        value) pairs first; an attribute's first value also costs its column for the other values."""
        pairs = sorted((-int(count), order, str(value)) for order, counts in enumerate(frequent.values())
                       for value, count in counts.items())  # fmt: skip
        names = list(frequent)
        kept: dict[str, list[str]] = {name: [] for name in names}
        for _, order, value in pairs:
            values = kept[names[order]]
            cost = 1 if values else 2
            if cost <= budget:
                values.append(value)
                budget -= cost
        return {name: sorted(values) for name, values in kept.items()}

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
            codes = batch_codes(batch, ACTIVITY, self.activities_)
        position = ends - batch_case_starts(batch)[ends]
        out = np.full((len(ends), n), -1, dtype=np.int64)
        for k in range(n):
            valid = position >= k
            out[valid, k] = codes[ends[valid] - k]
        return out

    def transform(self, batch: PrefixBatch) -> np.ndarray:
        """Feature rows, one per prefix of ``batch``."""
        ends = np.asarray(batch.ends, dtype=np.int64)
        if not len(ends):
            return np.zeros((0, len(self.feature_names_)), dtype=np.float32)
        starts = batch_case_starts(batch)
        width = len(self.activities_.values) + 1
        parts: list[np.ndarray] = []
        position = np.arange(len(starts)) - starts
        if {"last", "counts", "presence"} & set(self.blocks):
            codes = batch_codes(batch, ACTIVITY, self.activities_)
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
            parts.append(self._time(batch, starts, ends, position))
        if "duration" in self.blocks and getattr(self, "durations_", False):
            parts.append(self._duration(batch, ends))
        if "resource" in self.blocks and self.resources_ is not None:
            codes = batch_codes(batch, RESOURCE, self.resources_)
            parts.append(_one_hot(codes[ends], len(self.resources_.values) + 1))
        if "attributes" in self.blocks:
            parts.extend(self._attributes(batch, starts, ends))
        if not parts:
            return np.zeros((len(ends), 0), dtype=np.float32)
        return np.hstack(parts).astype(np.float32, copy=False)

    def _time(self, batch, starts, ends, position) -> np.ndarray:
        seconds = batch_seconds(batch, order_time_column(batch.events))
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

    def _duration(self, batch, ends) -> np.ndarray:
        """``log1p`` of the last event's end minus its start (0 when either is unknown)."""
        if START_TIMESTAMP not in batch.events.columns or END_TIMESTAMP not in batch.events.columns:
            return np.zeros((len(ends), 1), dtype=np.float32)
        duration = batch_seconds(batch, END_TIMESTAMP) - batch_seconds(batch, START_TIMESTAMP)
        duration = duration[ends] / TIME_UNITS[self._unit]
        return np.log1p(np.maximum(np.nan_to_num(duration), 0.0)).astype(np.float32)[:, None]

    def _attributes(self, batch, starts, ends) -> list[np.ndarray]:
        parts = []
        for attribute, kind, state in self.attributes_:
            values = batch_column(batch, attribute.name)
            if kind == "number":
                raw = np.full(len(batch.events), np.nan) if values is None else _numbers(values)
                missing = np.isnan(raw)
            else:
                raw = batch_codes(batch, attribute.name, state)
                missing = raw < 0
            # case attributes at the prefix's last event; event attributes: the latest known value within the prefix
            rows = _latest_in_case(raw, missing, starts)[ends] if attribute.scope == "event" else ends
            if kind == "number":
                center, spread = state
                numbers = np.where(rows >= 0, raw[np.maximum(rows, 0)], np.nan)
                missing = np.isnan(numbers)
                parts.append(np.column_stack([np.where(missing, 0.0, (numbers - center) / spread), missing]))
            else:
                parts.append(_one_hot(np.where(rows >= 0, raw[np.maximum(rows, 0)], -1), len(state.values) + 1))
        return [p.astype(np.float32) for p in parts]


def _latest_in_case(values: np.ndarray, missing: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per row, the row of the latest non-missing value at or before it within its case (``-1`` if none).

    >>> _latest_in_case(np.array([1.0, np.nan, 3.0, np.nan]), np.array([False, True, False, True]),
    ...                 np.array([0, 0, 2, 2])).tolist()
    [0, 0, 2, 2]
    """
    rows = np.where(missing, -1, np.arange(len(values)))
    latest = np.maximum.accumulate(rows) if len(rows) else rows
    return np.where(latest >= starts, latest, -1)


class TreeEncoder:
    """Prefix features for gradient-boosted trees: categorical codes and missing values kept, nothing scaled.

    Trees split on thresholds, so they need neither one-hot columns nor standardisation, and they learn from a
    missing value (``NaN``) as well as from a value; distance-based models need :class:`PrefixEncoder` instead. Per
    prefix, from its events only:

    * **last state**: the last ``history`` activities and the last ``resource_history`` resources as integer codes
      (``categorical_`` lists their columns), whether the resource changed;
    * **times**: prefix length, elapsed time, time since the previous event's start and end, the last three events'
      durations, hour, weekday and minute of the last event, the hour its work ended, summed durations, how long the
      longest-running earlier work item still runs past the last start, how many events share the last start;
    * **aggregates**: activity counts, time since each activity last occurred, distinct resources;
    * **attributes**: case attributes and the latest value of event attributes (numbers as they are, text and
      booleans as codes).

    Durations are ``log1p`` of seconds; a prefix of one event has no "previous" figures (``NaN``). Codes: ``0..n-1``
    known values, ``n`` unseen, ``n + 1`` none (before the case start, or missing).

    Parameters
    ----------
    history, resource_history
        How many last activities and last resources are encoded.
    max_categories
        Most frequent values kept per resource or text attribute; the rest are "unseen".
    max_attributes
        Attributes encoded at most, in their declared order (``skipped_attributes_`` names the rest): each costs
        a column per prefix and a histogram per boosting round, and a log of a hundred attributes would otherwise
        spend most of the fitting time and memory on them.

    Examples
    --------
    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b"], "ACTIVITY": ["x", "y", "x"],
    ...                        "TIMESTAMP": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True)})
    >>> encoder = TreeEncoder(history=2, resource_history=0).fit(events)
    >>> encoder.transform(PrefixBatch(events, np.array([1])))[0, :2].tolist()  # last activities: y, then x
    [1.0, 0.0]
    """

    def __init__(self, history: int = 5, resource_history: int = 2, max_categories: int = 80, max_attributes: int = 32):
        self.history = history
        self.resource_history = resource_history
        self.max_categories = max_categories
        self.max_attributes = max_attributes

    def fit(self, events: pd.DataFrame, attributes: Sequence[Attribute] = ()) -> TreeEncoder:
        """Learn the activity, resource and text-attribute vocabularies of the training events."""
        self.activities_ = _Categories(sorted(events[ACTIVITY].dropna().astype(str).unique()))
        self.resources_ = _Categories(self._frequent(events[RESOURCE]) if RESOURCE in events.columns else [])
        self.attributes_: list[tuple[Attribute, _Categories | None]] = []
        self.skipped_attributes_: list[str] = []
        for attribute in attributes:
            if attribute.family is Family.DATETIME:
                continue  # absolute dates do not generalise to future cases; elapsed time covers time
            if len(self.attributes_) >= self.max_attributes:
                self.skipped_attributes_.append(attribute.name)
                continue
            numeric = attribute.family is Family.NUMBER
            vocabulary = None if numeric else _Categories(self._frequent(events[attribute.name]))
            self.attributes_.append((attribute, vocabulary))
        activities = [*self.activities_.values, UNSEEN]
        names = [f"last_{k}" for k in range(1, self.history + 1)]
        names += [f"resource_{k}" for k in range(1, self.resource_history + 1)]
        names += [a.name for a, codes in self.attributes_ if codes is not None]
        self.categorical_ = list(range(len(names)))
        names += ["same_resource", "prefix_length", "log_elapsed", "log_since_previous_start",
                  "log_since_previous_end", "log_duration_1", "log_duration_2", "log_duration_3", "hour", "weekday",
                  "minute_of_day", "end_hour", "tied_before", "log_total_duration", "log_running_past_start",
                  "distinct_resources"]  # fmt: skip
        names += [f"count={a}" for a in activities] + [f"log_since={a}" for a in activities]
        names += [a.name for a, codes in self.attributes_ if codes is None]
        self.feature_names_ = names
        return self

    def _frequent(self, values: pd.Series) -> list[str]:
        counts = values.dropna().astype(str).value_counts()
        return sorted(counts.index[: self.max_categories])

    def transform(self, batch: PrefixBatch) -> np.ndarray:
        """Feature rows (``float32``, ``NaN`` for missing), one per prefix of ``batch``."""
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        if not len(ends):
            return np.zeros((0, len(self.feature_names_)), dtype=np.float32)
        case = starts = batch_case_starts(batch)  # the case start row is a case code
        first = starts[ends]
        position = ends - first
        n_activities, n_resources = len(self.activities_.values), len(self.resources_.values)
        codes = batch_codes(batch, ACTIVITY, self.activities_)
        codes = np.where(codes < 0, n_activities, codes)  # a missing activity counts as unseen
        resources = batch_codes(batch, RESOURCE, self.resources_)
        resources = np.where(resources < 0, n_resources + 1, resources)
        start = batch_seconds(batch, order_time_column(events))
        end = batch_seconds(batch, END_TIMESTAMP) if END_TIMESTAMP in events.columns else start
        end = np.where(np.isnan(end), start, end)
        duration = np.log1p(np.maximum(end - start, 0.0))
        previous, has_previous = np.maximum(ends - 1, 0), position >= 1

        columns = [np.where(position >= k, codes[np.maximum(ends - k, 0)], n_activities + 1)
                   for k in range(self.history)]  # fmt: skip
        columns += [np.where(position >= k, resources[np.maximum(ends - k, 0)], n_resources + 1)
                    for k in range(self.resource_history)]  # fmt: skip
        numbers = []
        for attribute, vocabulary in self.attributes_:
            if vocabulary is None:
                values = batch_column(batch, attribute.name)
                raw = np.full(len(events), np.nan) if values is None else _numbers(values)
                missing = np.isnan(raw)
            else:
                raw = batch_codes(batch, attribute.name, vocabulary).astype(np.float64)
                missing = raw < 0
            latest = _latest_in_case(raw, missing, starts)[ends] if attribute.scope == "event" else ends
            if vocabulary is None:
                numbers.append(np.where(latest >= 0, raw[np.maximum(latest, 0)], np.nan))
            else:
                value = raw[np.maximum(latest, 0)]
                columns.append(np.where((latest >= 0) & (value >= 0), value, len(vocabulary.values) + 1))
        last = start[ends]
        columns.append(np.where(has_previous, (resources[ends] == resources[previous]).astype(float), np.nan))
        columns.append(position + 1.0)
        columns.append(np.log1p(np.maximum(last - start[first], 0.0)))
        columns.append(np.where(has_previous, np.log1p(np.maximum(last - start[previous], 0.0)), np.nan))
        gap = last - end[previous]
        columns.append(np.where(has_previous, np.sign(gap) * np.log1p(np.abs(gap)), np.nan))
        columns += [np.where(position >= k, duration[np.maximum(ends - k, 0)], np.nan) for k in range(3)]
        day = np.floor(last / _SECONDS_PER_DAY)
        second_of_day = last - day * _SECONDS_PER_DAY
        columns += [np.floor(second_of_day / 3600.0), (day + 3) % 7, second_of_day / 60.0]
        columns.append(np.floor((end[ends] - np.floor(end[ends] / _SECONDS_PER_DAY) * _SECONDS_PER_DAY) / 3600.0))
        new_run = np.r_[True, (start[1:] != start[:-1]) | (case[1:] != case[:-1])]
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(start)), 0))
        columns.append((ends - run_start[ends]).astype(np.float64))  # earlier events at the same instant
        total = np.cumsum(np.maximum(end - start, 0.0))
        before = np.where(first > 0, total[np.maximum(first - 1, 0)], 0.0)
        columns.append(np.log1p(np.maximum(total[ends] - before, 0.0)))
        latest_end = _case_running_max(end, np.r_[True, case[1:] != case[:-1]])[ends] - last
        columns.append(np.sign(latest_end) * np.log1p(np.abs(latest_end)))
        seen = np.zeros(len(events))
        _, first_use = np.unique(starts * (n_resources + 2) + resources, return_index=True)
        seen[first_use] = 1.0
        seen = np.cumsum(seen)
        columns.append(seen[ends] - np.where(first > 0, seen[np.maximum(first - 1, 0)], 0.0))
        head = np.column_stack(columns)

        width = n_activities + 1
        onehot = np.zeros((len(codes), width), dtype=np.float32)
        onehot[np.arange(len(codes)), codes] = 1.0
        cumulative = np.cumsum(onehot, axis=0)
        counts = cumulative[ends] - np.where((first > 0)[:, None], cumulative[np.maximum(first - 1, 0)], 0.0)
        rows = np.where(onehot > 0, np.arange(len(codes))[:, None], -1)
        last_row = np.maximum.accumulate(rows, axis=0)[ends]
        since = np.where(last_row >= first[:, None], np.log1p(np.maximum(last[:, None] - start[np.maximum(last_row, 0)],
                                                                          0.0)), np.nan)  # fmt: skip
        parts = [head, counts, since]
        if numbers:
            parts.append(np.column_stack(numbers))
        return np.hstack(parts).astype(np.float32)


def _case_running_max(values: np.ndarray, new_case: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` that restarts at every new case (``NaN`` counts as lowest).

    Exact whatever the batch: values become integer ranks, offset by the case number, so no float rounding depends
    on how many cases precede a prefix (a prefix alone and in a batch get the same features).

    >>> _case_running_max(np.array([3.0, 1.0, 2.0, 0.0, 5.0]), np.array([True, False, True, False, False])).tolist()
    [3.0, 3.0, 2.0, 2.0, 5.0]
    """
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    if not new_case[1:].any():  # one case (a streamed prefix): the plain running maximum is as exact
        return np.maximum.accumulate(values)
    distinct, rank = np.unique(values, return_inverse=True)
    offset = (np.cumsum(new_case) - 1).astype(np.int64) * len(distinct)
    return distinct[np.maximum.accumulate(rank.ravel() + offset) - offset]
