"""What plugins see: labelled event logs for training and batches of case prefixes for prediction.

Events are in canonical form (reference 5.6 names: ``CASE_ID``, ``ACTIVITY``, ``TIMESTAMP`` or
``START_TIMESTAMP``/``END_TIMESTAMP``, ``RESOURCE``, ``CASE_ATTRIBUTE_<TYPE>_<column>``,
``EVENT_ATTRIBUTE_<TYPE>_<column>``), typed (timestamps UTC, numbers float) and sorted by case, then time. A prefix
is the events of one case up to and including one event; a batch names its prefixes by the row where each ends, so
one event table serves every prefix of every case without copying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from prcore_core.columns import TIME_DEFINITIONS, Family

CASE_ID = "CASE_ID"
ACTIVITY = "ACTIVITY"
TIMESTAMP = "TIMESTAMP"
START_TIMESTAMP = "START_TIMESTAMP"
END_TIMESTAMP = "END_TIMESTAMP"
RESOURCE = "RESOURCE"
#: Separates a prefix number from the case id when separately given prefixes share one event table.
PREFIX_MARK = "\x1f"
OUTCOME = "OUTCOME"
TREATMENT = "TREATMENT"
#: Per event: has the outcome (treatment) definition already been satisfied by this event or an earlier one?
OUTCOME_OBSERVED = "OUTCOME_OBSERVED"
TREATMENT_OBSERVED = "TREATMENT_OBSERVED"


@dataclass(frozen=True)
class Attribute:
    """A case or event attribute column of the canonical events, with the family that decides its encoding."""

    name: str
    source: str
    scope: Literal["case", "event"]
    family: Family


def order_time_column(events: pd.DataFrame) -> str:
    """The column that orders events in time: ``TIMESTAMP``, else ``START_TIMESTAMP`` (reference 5.7)."""
    for column in map(str, TIME_DEFINITIONS):  # canonical names are the definitions' own (reference 5.6)
        if column in events.columns:
            return column
    raise KeyError("events have no timestamp column")


def time_order_keys(events: pd.DataFrame) -> list[str]:
    """Columns that order the events of one case: time (start, then end); ties keep their arrival order.

    Events with the same timestamp have no true order; files list them arbitrarily (in BPIC 2012 ties within a
    case appear in both orders about equally often) and a monitoring system posts them in either order. Any
    convention that reorders ties (by activity name, say) would make their order predictable in training and
    evaluation but not in a live stream, and so give accuracy that is not there. Sorts on these keys are stable:
    among equal times the order is the file's for uploads and ongoing datasets and the posting order for streams.
    """
    time = order_time_column(events)
    return [time] + ([END_TIMESTAMP] if time == START_TIMESTAMP and END_TIMESTAMP in events else [])


def sort_events(events: pd.DataFrame) -> pd.DataFrame:
    """Sort by case, then :func:`time_order_keys` (stable: ties keep their arrival order)."""
    return events.sort_values([CASE_ID, *time_order_keys(events)], kind="stable").reset_index(drop=True)


def column_values(events: pd.DataFrame, name: str):
    """The values of one column (a numpy or pandas array) without building a Series, or ``None`` without it.

    Plugins read a few columns of small tables for every streamed prefix; ``events[name]`` builds a new Series each
    time (tens of microseconds in pandas 3), the block manager's array costs a tenth of that. Falls back to the
    public path where pandas differs.
    """
    if name not in events.columns:
        return None
    try:
        return events._mgr.iget_values(events.columns.get_loc(name))
    except (AttributeError, TypeError):
        return events[name].array


def split_by_start_time(events: pd.DataFrame, training_share: float):
    """Cases ordered by their first event; the earliest ``training_share`` train, the rest are held out."""
    time = order_time_column(events)
    starts = events.groupby(CASE_ID, sort=False)[time].min()
    order = pd.DataFrame({"start": starts, "case": starts.index}).sort_values(["start", "case"], kind="stable")
    n_training = int(np.floor(len(order) * training_share))
    if len(order) >= 2:
        n_training = min(max(n_training, 1), len(order) - 1)
    training = pd.Index(order["case"].iloc[:n_training])
    held_out = pd.Index(order["case"].iloc[n_training:])
    split_time = order["start"].iloc[n_training] if len(held_out) else None
    return training, held_out, split_time


@dataclass
class PrefixBatch:
    """Many case prefixes over one event table.

    Parameters
    ----------
    events
        Canonical events of the cases involved, sorted by case then time.
    ends
        Row positions in ``events``; prefix ``i`` is the events of that row's case up to and including row
        ``ends[i]``.
    attributes
        The attribute columns of ``events``.
    memo
        Scratch space of the plugins predicting on this batch, for results two plugins would otherwise both compute
        (e.g. the causal estimates behind both the treatment effect and the resource allocation). Keys must
        identify the fitted model that produced the value.
    """

    events: pd.DataFrame
    ends: np.ndarray
    attributes: tuple[Attribute, ...] = ()
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ends)

    def chunks(self, size: int):
        """The batch as consecutive batches of at most ``size`` prefixes (bounding feature matrices), sharing this
        batch's events and memo."""
        for start in range(0, len(self.ends), size):
            yield PrefixBatch(self.events, self.ends[start : start + size], self.attributes, self.memo)

    @classmethod
    def last_events(cls, events: pd.DataFrame, attributes: tuple[Attribute, ...] = ()) -> PrefixBatch:
        """One prefix per case: all of its events (ongoing cases)."""
        events = sort_events(events)
        case = events[CASE_ID].to_numpy()
        last = np.flatnonzero(np.r_[case[1:] != case[:-1], True]) if len(case) else np.array([], dtype=int)
        return cls(events, last, attributes)

    @classmethod
    def from_prefixes(cls, prefixes: list[pd.DataFrame], attributes: tuple[Attribute, ...] = ()) -> PrefixBatch:
        """A batch from separate prefix tables (e.g. streamed cases), one prefix per table."""
        frames, ends, offset = [], [], 0
        for number, prefix in enumerate(prefixes):
            prefix = sort_events(prefix.assign(**{CASE_ID: f"{number}{PREFIX_MARK}" + prefix[CASE_ID].astype(str)}))
            frames.append(prefix)
            offset += len(prefix)
            ends.append(offset - 1)
        events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[CASE_ID, ACTIVITY])
        return cls(events, np.asarray(ends, dtype=int), attributes)

    @property
    def case_ids(self) -> np.ndarray:
        return self.events[CASE_ID].to_numpy()[self.ends]

    @property
    def source_case_ids(self) -> list[str]:
        """The real case id of each prefix (without the ``"<n>\x1f"`` mark of separately given prefixes)."""
        return [str(c).split(PREFIX_MARK, 1)[-1] for c in self.case_ids]

    @property
    def lengths(self) -> np.ndarray:
        """Number of events in each prefix."""
        return position_in_case(self.events)[self.ends] + 1


def case_starts(case: np.ndarray) -> np.ndarray:
    """Row position of the first event of each row's case (rows grouped by case).

    >>> case_starts(np.array(["a", "a", "b", "b", "b"])).tolist()
    [0, 0, 2, 2, 2]
    """
    if not len(case):
        return np.array([], dtype=np.int64)
    new = np.r_[True, case[1:] != case[:-1]]
    return np.maximum.accumulate(np.where(new, np.arange(len(case)), 0))


def sample_cases(case_ids: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Positions of the prefixes of whole cases, taken in a seeded random case order until ``cap`` prefixes.

    Prefixes of one case are correlated: a sample of cases keeps the mix of short and long cases that prefixes are
    evaluated on (thinning every case measured worse).

    >>> sample_cases(np.array(["a", "a", "b", "c", "c"]), cap=10, seed=0).tolist()
    [0, 1, 2, 3, 4]
    """
    if len(case_ids) <= cap:
        return np.arange(len(case_ids))
    codes, uniques = pd.factorize(case_ids)
    order = np.random.default_rng(seed).permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    taken = order[np.cumsum(sizes) <= cap]
    if not len(taken):  # one case longer than the cap
        taken = order[:1]
    return np.flatnonzero(np.isin(codes, taken))


def position_in_case(events: pd.DataFrame) -> np.ndarray:
    """0-based position of every event within its case (events sorted by case)."""
    return np.arange(len(events)) - case_starts(events[CASE_ID].to_numpy())


def outcome_observed(events: pd.DataFrame) -> np.ndarray:
    """Per event row: is the outcome already visible (all false without the ``OUTCOME_OBSERVED`` column)?"""
    if OUTCOME_OBSERVED not in events.columns:
        return np.zeros(len(events), dtype=bool)
    return events[OUTCOME_OBSERVED].fillna(False).to_numpy(dtype=bool)


@dataclass
class LabelledLog:
    """Canonical events of many complete cases with their case labels, for training and evaluation.

    Parameters
    ----------
    events
        Canonical events sorted by case then time.
    attributes
        Attribute columns of ``events``.
    labels
        Per case id (index): ``OUTCOME`` (1 = desired outcome) and ``TREATMENT`` (1 = treated) when defined.
    outcome_definition, treatment_definition
        The project's definitions as JSON lists (OR of AND groups), for plugins that echo them.
    additional_info
        The plugin's additional info (e.g. available resources), as given by the user.
    """

    events: pd.DataFrame
    attributes: tuple[Attribute, ...] = ()
    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    outcome_definition: list | None = None
    treatment_definition: list | None = None
    additional_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_cases(self) -> int:
        return int(self.events[CASE_ID].nunique())

    def has_label(self, name: str) -> bool:
        return name in self.labels.columns

    def prefixes(self, min_length: int = 1, with_next: bool = False) -> PrefixBatch:
        """Every prefix of every case as a batch (``with_next``: only prefixes followed by another event)."""
        position = position_in_case(self.events)
        case = self.events[CASE_ID].to_numpy()
        has_next = np.r_[case[1:] == case[:-1], False] if len(case) else np.array([], dtype=bool)
        keep = position + 1 >= min_length
        if with_next:
            keep &= has_next
        return PrefixBatch(self.events, np.flatnonzero(keep), self.attributes)

    def undecided_prefixes(self) -> PrefixBatch:
        """Prefixes whose outcome is not yet visible at their last event (``OUTCOME_OBSERVED`` false; every prefix
        without the flag): the ones an outcome prediction is for and is judged on."""
        return PrefixBatch(self.events, np.flatnonzero(~outcome_observed(self.events)), self.attributes)

    def negative_outcomes(self, batch: PrefixBatch) -> np.ndarray:
        """1 where the case of a prefix ends without the desired outcome (``1 - OUTCOME``), else 0."""
        outcome = self.labels[OUTCOME].reindex(self.events[CASE_ID].to_numpy()[batch.ends]).to_numpy(dtype=float)
        return (1 - np.nan_to_num(outcome, nan=0.0)).astype(np.int64)

    def next_activities(self, batch: PrefixBatch) -> np.ndarray:
        """The activity that follows each prefix of ``batch`` (a batch over these events, ``with_next``)."""
        return self.events[ACTIVITY].to_numpy()[batch.ends + 1]

    def split_by_start(self, later_share: float, min_cases: int = 1) -> tuple[LabelledLog, LabelledLog] | None:
        """The earlier and the later cases by start time (the latest ``later_share`` later), as the project's own
        split: a slice to tune or calibrate on that starts after the cases a model learns from, as the cases it will
        serve do. ``None`` when either part would have fewer than ``min_cases`` cases."""
        if self.events.empty:
            return None
        earlier, later, _ = split_by_start_time(self.events, 1.0 - later_share)
        if len(earlier) < min_cases or len(later) < min_cases:
            return None
        return self.subset(earlier), self.subset(later)

    def subset(self, case_ids) -> LabelledLog:
        """The same log restricted to some cases."""
        mask = self.events[CASE_ID].isin(case_ids)
        return LabelledLog(
            self.events[mask].reset_index(drop=True),
            self.attributes,
            self.labels[self.labels.index.isin(case_ids)],
            self.outcome_definition,
            self.treatment_definition,
            self.additional_info,
        )
