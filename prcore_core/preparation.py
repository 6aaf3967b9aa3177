"""From a stored event log and its definitions to the canonical, labelled, split data every plugin trains on.

Steps (reference 5.5, vectorised): parse values by column family, compute case durations, recognise lifecycle
transitions (fast or detailed), label cases with the outcome and treatment definitions, rename columns canonically
(reference 5.6), sort by case and time, and split cases by start time: the earliest share trains, the rest is held
out for evaluation and simulation, so no future case leaks into training.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prcore_core import conditions, errors, transitions, values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, family
from prcore_core.conditions import CaseDefinition
from prcore_core.dataset import (
    CASE_ID,
    OUTCOME_OBSERVED,
    TREATMENT_OBSERVED,
    Attribute,
    LabelledLog,
    order_time_column,
    sort_events,
    split_by_start_time,
)

#: Definitions whose columns are structure, not attributes to learn from.
_STRUCTURAL = {
    ColumnDefinition.CASE_ID,
    ColumnDefinition.ACTIVITY,
    ColumnDefinition.TIMESTAMP,
    ColumnDefinition.START_TIMESTAMP,
    ColumnDefinition.END_TIMESTAMP,
    ColumnDefinition.RESOURCE,
    ColumnDefinition.TRANSITION,
    ColumnDefinition.OUTCOME,
    ColumnDefinition.TREATMENT,
    ColumnDefinition.TREATMENT_RESOURCE,
    ColumnDefinition.COMPLETE_INDICATOR,
}
_FLAGS = (OUTCOME_OBSERVED, TREATMENT_OBSERVED)


@dataclass(frozen=True)
class ProjectDefinition:
    """The outcome and treatment definitions of a project."""

    outcome: CaseDefinition | None = None
    outcome_negative: bool = False
    treatment: CaseDefinition | None = None


@dataclass
class PreparedLog:
    """A project's canonical events, case labels and split.

    The events of each part are selected once and shared by every :meth:`part` (plugins train two at a time on
    one prepared log, and a copy of a wide log's events per plugin doubled the peak memory); plugins read their
    log and never change it.
    """

    events: pd.DataFrame
    labels: pd.DataFrame
    attributes: tuple[Attribute, ...]
    training_cases: pd.Index
    held_out_cases: pd.Index
    split_time: pd.Timestamp | None
    _parts: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_parts", "_parts_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _parts={}, _parts_lock=threading.Lock())

    def _part_data(self, which: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The events and labels of one part, selected on first use."""
        with self._parts_lock:
            if which not in self._parts:
                cases = self.training_cases if which == "training" else self.held_out_cases
                mask = self.events[CASE_ID].isin(cases)
                self._parts[which] = (self.events[mask].reset_index(drop=True),
                                      self.labels[self.labels.index.isin(cases)])  # fmt: skip
            return self._parts[which]

    def part(self, which: str, definition: ProjectDefinition | None = None, additional_info=None) -> LabelledLog:
        """The training (``"training"``) or held-out (``"held_out"``) cases as a :class:`LabelledLog`."""
        definition = definition or ProjectDefinition()
        events, labels = self._part_data("training" if which == "training" else "held_out")
        return LabelledLog(
            events,
            self.attributes,
            labels,
            definition.outcome.to_list() if definition.outcome else None,
            definition.treatment.to_list() if definition.treatment else None,
            dict(additional_info or {}),
        )

    def summary(self) -> dict:
        return {
            "training_cases": len(self.training_cases),
            "held_out_cases": len(self.held_out_cases),
            "split_time": self.split_time.isoformat() if self.split_time is not None else None,
            "events": len(self.events),
        }


def canonical_events(log: pd.DataFrame, columns: ColumnsDefinition) -> tuple[pd.DataFrame, tuple[Attribute, ...]]:
    """Rename a parsed log's columns canonically and list its attributes (ignored columns dropped)."""
    keep, attributes = {}, []
    for column in log.columns:
        if column in _FLAGS:
            keep[column] = column
            continue
        definition = columns.columns.get(column, ColumnDefinition.TEXT)
        if definition in (None, ColumnDefinition.TRANSITION, ColumnDefinition.COMPLETE_INDICATOR):
            continue  # ignored columns and lifecycle bookkeeping carry nothing to learn from
        renamed = columns.canonical_name(column)
        keep[column] = renamed
        if definition not in _STRUCTURAL:
            scope = "case" if column in columns.case_attributes else "event"
            attributes.append(Attribute(renamed, column, scope, family(definition)))
    events = log[list(keep)].rename(columns=keep)
    events[CASE_ID] = events[CASE_ID].astype("string")
    return events, tuple(attributes)


def _with_observed_flags(log: pd.DataFrame, columns: ColumnsDefinition, definition: ProjectDefinition, durations):
    """Add ``OUTCOME_OBSERVED``/``TREATMENT_OBSERVED``: is the outcome/treatment already visible at this event?

    Plugins use them to learn and evaluate only on prefixes where the answer is not yet known (an alarm after the
    outcome happened, or an uplift estimate after the treatment, would be worthless).
    """
    order = sort_events_frame(log, columns)
    log = log.iloc[order].reset_index(drop=True)
    evaluator = conditions.LogEvaluator(log, columns, durations.iloc[order].reset_index(drop=True))
    for name, case_definition in ((OUTCOME_OBSERVED, definition.outcome), (TREATMENT_OBSERVED, definition.treatment)):
        if case_definition is None:
            continue
        try:
            log[name] = evaluator.observed_rows(case_definition)
        except errors.InvalidConditionError:
            log[name] = False  # a condition on a column detailed mode merged away: never visible before the end
    return log


def sort_events_frame(log: pd.DataFrame, columns: ColumnsDefinition) -> np.ndarray:
    """Row order of :func:`prcore_core.dataset.sort_events` for a parsed log with the file's column names."""
    time = columns.time_column
    end = columns.column_of(ColumnDefinition.END_TIMESTAMP)
    keys = [columns.case_id] + ([time] if time else []) + ([end] if end and time != end else [])
    return log.sort_values(keys, kind="stable").index.to_numpy()


def prepare(
    frame: pd.DataFrame, columns: ColumnsDefinition, definition: ProjectDefinition, training_share: float = 0.8
) -> PreparedLog:
    """Run the whole preparation on a stored (text) event log."""
    parsed = values.parse_log(frame, columns)
    case_id = columns.case_id
    durations = conditions.case_durations(parsed, columns)
    per_case_duration = durations.groupby(parsed[case_id].to_numpy()).first()
    # Labels are read from one row per finished activity instance (fast mode), where every defined column still
    # exists; detailed mode then merges lifecycle rows for training and drops the timestamp/transition columns.
    labelled, _ = transitions.apply_transitions(parsed, columns, detailed=False)
    labelled = labelled[labelled[case_id].notna()].reset_index(drop=True)
    labels = conditions.label_cases(
        labelled,
        columns,
        definition.outcome,
        definition.outcome_negative,
        definition.treatment,
        durations=labelled[case_id].map(per_case_duration),
    )
    parsed, effective = transitions.apply_transitions(parsed, columns)
    parsed = parsed[parsed[case_id].notna()].reset_index(drop=True)
    parsed = _with_observed_flags(parsed, effective, definition, parsed[case_id].map(per_case_duration))
    events, attributes = canonical_events(parsed, effective)
    events = events[events[order_time_column(events)].notna()]
    events = sort_events(events)
    labels.index = labels.index.astype("string")
    labels.index.name = CASE_ID
    training, held_out, split_time = split_by_start_time(events, training_share)
    return PreparedLog(events, labels, attributes, training, held_out, split_time)


def held_out_events(frame: pd.DataFrame, columns: ColumnsDefinition, cases: pd.Index) -> pd.DataFrame:
    """The raw (text) events of some cases, one row per finished activity, sorted by time across cases.

    This is what a simulation replays: events as a monitoring system would post them (reference 10.2). The
    frame's ``attrs["time_column"]`` names the column that orders it.
    """
    case_id = columns.case_id
    raw = frame[frame[case_id].astype("string").isin(cases.astype("string"))]
    parsed = values.parse_log(raw, columns)
    parsed["_ROW"] = np.arange(len(parsed))
    kept, _ = transitions.apply_transitions(parsed, columns, detailed=False)
    time = columns.time_column
    kept = kept[kept[time].notna()].sort_values([time, "_ROW"], kind="stable")
    replay = raw.iloc[kept["_ROW"].to_numpy()].reset_index(drop=True)
    for column in replay.columns:
        if isinstance(replay[column].dtype, pd.DatetimeTZDtype):  # XES timestamps: send them as ISO text
            replay[column] = replay[column].map(lambda v: v.isoformat() if pd.notna(v) else None)
    replay.attrs["time_column"] = time
    return replay
