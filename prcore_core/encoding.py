"""Prefix encoding: from case prefixes to feature rows, shared by every plugin (built-in or third-party).

One encoder serves every prefix length, so a prefix of any length gets features (PrCore trained one model per
length and could not predict unseen lengths, reference 13.1 #25). The features, each optional:

* ``last``: the last ``history`` activities, one-hot per position (PrCore's ``SIMPLE_INDEX`` idea without the
  ordinal codes that make distances meaningless);
* ``counts``: how often each activity occurred so far (``FREQUENCY_BASED``), or whether it did (``BOOLEAN``);
* ``time``: prefix length, elapsed time since the case started, time since the previous event, weekday and hour;
* ``resource``: the last event's resource, one-hot over the frequent ones;
* ``attributes``: case attributes and the latest value of event attributes, by family.

Activities and values never seen in training are not dropped and never take another value's code: they fall into
an explicit "unseen" column. Everything is computed vectorised over the event table of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prcore_core.columns import Family
from prcore_core.dataset import ACTIVITY, CASE_ID, RESOURCE, Attribute, PrefixBatch, order_time_column

UNSEEN = "<unseen>"
ENCODINGS = ("COMBINED", "SIMPLE_INDEX", "BOOLEAN", "FREQUENCY_BASED")
_SECONDS_PER_HOUR = 3600.0


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
        text = series.astype("string")
        codes = pd.Index(self.values, dtype="string").get_indexer(text).astype(np.int64)
        codes[(codes < 0) & text.notna().to_numpy()] = len(self.values)
        return codes


def _one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width), dtype=np.float32)
    valid = codes >= 0
    out[np.flatnonzero(valid), codes[valid]] = 1.0
    return out


def _case_starts(case: np.ndarray) -> np.ndarray:
    """Row position of the first event of each row's case."""
    if not len(case):
        return np.array([], dtype=np.int64)
    new = np.r_[True, case[1:] != case[:-1]]
    return np.maximum.accumulate(np.where(new, np.arange(len(case)), 0))


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

    Examples
    --------
    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b"], "ACTIVITY": ["x", "y", "x"],
    ...                        "TIMESTAMP": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True)})
    >>> encoder = PrefixEncoder(blocks=("last", "counts"), history=2).fit(events)
    >>> encoder.transform(PrefixBatch(events, np.array([1]))).tolist()
    [[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]
    """

    def __init__(self, blocks: Sequence[str] = blocks_for("COMBINED"), history: int = 3, max_categories: int = 20):
        self.blocks = tuple(blocks)
        self.history = history
        self.max_categories = max_categories

    def fit(self, events: pd.DataFrame, attributes: Sequence[Attribute] = ()) -> PrefixEncoder:
        """Learn activities, frequent values and numeric scales from training events."""
        self.activities_ = _Categories(sorted(events[ACTIVITY].dropna().astype(str).unique()))
        self.resources_ = None
        if RESOURCE in events.columns:
            self.resources_ = _Categories(self._frequent(events[RESOURCE]))
        self.attributes_ = []
        for attribute in attributes:
            values = events[attribute.name]
            if attribute.family in (Family.NUMBER, Family.BOOLEAN):
                numbers = pd.to_numeric(values.astype("float64"), errors="coerce")
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
        acts = [*self.activities_.values, UNSEEN]
        names: list[str] = []
        if "last" in self.blocks:
            names += [f"last_{k}={a}" for k in range(1, self.history + 1) for a in acts]
        if "counts" in self.blocks:
            names += [f"count={a}" for a in acts]
        if "presence" in self.blocks:
            names += [f"seen={a}" for a in acts]
        if "time" in self.blocks:
            names += ["prefix_length", "log_elapsed_hours", "log_hours_since_previous", "weekday", "hour"]
        if "resource" in self.blocks and self.resources_ is not None:
            names += [f"resource={r}" for r in [*self.resources_.values, UNSEEN]]
        if "attributes" in self.blocks:
            for attribute, kind, state in self.attributes_:
                if kind == "number":
                    names += [attribute.name, f"{attribute.name}:missing"]
                else:
                    names += [f"{attribute.name}={v}" for v in [*state.values, UNSEEN]]
        return names

    def transform(self, batch: PrefixBatch) -> np.ndarray:
        """Feature rows, one per prefix of ``batch``."""
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        if not len(ends):
            return np.zeros((0, len(self.feature_names_)), dtype=np.float32)
        # Only the rows up to the last prefix end of each case are needed.
        case = events[CASE_ID].to_numpy()
        starts = _case_starts(case)
        width = len(self.activities_.values) + 1
        codes = self.activities_.codes(events[ACTIVITY])
        parts: list[np.ndarray] = []
        position = np.arange(len(case)) - starts
        if "last" in self.blocks:
            for k in range(self.history):
                rows = ends - k
                valid = position[ends] >= k
                parts.append(_one_hot(np.where(valid, codes[np.where(valid, rows, 0)], -1), width))
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
        if "resource" in self.blocks and self.resources_ is not None:
            resource = events[RESOURCE] if RESOURCE in events.columns else pd.Series(pd.NA, index=events.index)
            parts.append(_one_hot(self.resources_.codes(resource)[ends], len(self.resources_.values) + 1))
        if "attributes" in self.blocks:
            parts.extend(self._attributes(events, starts, ends))
        return np.hstack(parts).astype(np.float32, copy=False)

    @staticmethod
    def _time(events, starts, ends, position) -> np.ndarray:
        time = events[order_time_column(events)]
        seconds = (time.astype("int64") // 10**9).to_numpy(dtype=np.float64)
        seconds[time.isna().to_numpy()] = np.nan
        elapsed = np.nan_to_num(seconds[ends] - seconds[starts[ends]]) / _SECONDS_PER_HOUR
        previous = np.where(position[ends] > 0, seconds[np.maximum(ends - 1, 0)], seconds[ends])
        since = np.nan_to_num(seconds[ends] - previous) / _SECONDS_PER_HOUR
        stamp = pd.DatetimeIndex(time.to_numpy()[ends])
        weekday = np.nan_to_num(stamp.weekday.to_numpy(dtype=np.float64)) / 6.0
        hour = np.nan_to_num(stamp.hour.to_numpy(dtype=np.float64)) / 23.0
        length = np.log1p(position[ends] + 1.0)
        return np.column_stack(
            [length, np.log1p(np.maximum(elapsed, 0)), np.log1p(np.maximum(since, 0)), weekday, hour]
        ).astype(np.float32)

    def _attributes(self, events, starts, ends) -> list[np.ndarray]:
        parts = []
        for attribute, kind, state in self.attributes_:
            values = events.get(attribute.name, pd.Series(pd.NA, index=events.index))
            if attribute.scope == "event":
                # the latest known value within the prefix (forward fill inside the case)
                values = values.groupby(events[CASE_ID].to_numpy(), sort=False).ffill()
            if kind == "number":
                center, spread = state
                numbers = pd.to_numeric(values.astype("float64"), errors="coerce").to_numpy()[ends]
                missing = np.isnan(numbers)
                parts.append(np.column_stack([np.where(missing, 0.0, (numbers - center) / spread), missing]))
            else:
                parts.append(_one_hot(state.codes(values)[ends], len(state.values) + 1))
        return [p.astype(np.float32) for p in parts]
