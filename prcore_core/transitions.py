"""Lifecycle-transition recognition (reference 5.4), vectorised.

An event log with a TRANSITION column records activity instances as several lifecycle events (``START``,
``COMPLETE``, ``ATE_ABORT``, ``SCHEDULE``, ...). :func:`apply_transitions` reduces it to what the rest of the
pipeline works on:

* **fast mode** (PrCore's default, and always for ongoing data): one row per finished activity instance, i.e. the
  complete and abort rows, with their TIMESTAMP;
* **detailed mode** (``fast_mode = false``): start and complete/abort rows are merged into one row per activity
  instance with new ``START_TIMESTAMP`` / ``END_TIMESTAMP`` columns; the TRANSITION and TIMESTAMP columns go.

Transition values are compared stripped and upper-cased. A configured transition of ``IGNORE`` is not used: a start
transition of ``IGNORE`` behaves as if starts never occur, a complete of ``IGNORE`` as if completes never occur, and
an abort of ``IGNORE`` disables abort handling (abort rows are then ordinary other-transition rows, which are dropped
once start and complete are recognised). If one value is configured for several roles, complete wins over abort,
and abort over start.

Decisions where this module deliberately differs from, or makes precise, PrCore's behaviour:

* *Start never occurs*: the complete rows **and the abort rows** (if abort is used) are kept. Without starts every
  complete or abort row is a finished instance of its own, exactly as in fast mode; PrCore keeps only complete rows
  and so silently loses aborted instances. *Complete never occurs*: only the start rows are kept (as in PrCore); an
  abort row would only repeat an instance its start row already represents.
* *Detailed mode, a second start of an activity that already has a pending start in the same case*: PrCore
  replaces the pending start and loses it; here the earlier start becomes an instance of its own with
  ``START = END = its time``, and the later start becomes the pending one. No event is silently lost.
* *Identical timestamps*: events are ordered by TIMESTAMP with ties kept in file order (PrCore's sort is not
  stable), so a start and a complete at the same instant pair up when the start comes first in the file.
* *Missing values*: events without a timestamp are ordered after all timed events of their case (as pandas'
  ``sort_values`` does); missing case ids and activities form groups of their own (the caller drops missing case
  ids afterwards); rows with a missing transition are treated as "other" transitions.
* *Detailed mode without a TIMESTAMP column* (a START/END log that also defines a TRANSITION column) cannot be
  ordered by event time, so fast-mode filtering is applied instead.
* In detailed mode, other columns defined as START_TIMESTAMP or END_TIMESTAMP (possible next to a TIMESTAMP) are
  kept as plain DATETIME columns in the effective definition, so each of the two definitions names one column; an
  existing column named exactly ``START_TIMESTAMP`` or ``END_TIMESTAMP`` is replaced by the new one.

Every result has a fresh ``RangeIndex`` and a deterministic row order: filtering keeps file order; detailed mode
groups rows by case (cases in order of their first start/complete/abort event) and orders instances within a case
by ``(START_TIMESTAMP, END_TIMESTAMP)``, ties by file position of the instance's first event.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from prcore_core import values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Transition

#: Names of the columns detailed mode adds (and the definitions they get).
START_TIMESTAMP = "START_TIMESTAMP"
END_TIMESTAMP = "END_TIMESTAMP"

# Role of each row, by its transition value.
_OTHER, _START, _CLOSE_COMPLETE, _CLOSE_ABORT = 0, 1, 2, 3

_NAT_LAST = np.iinfo(np.int64).max


def apply_transitions(
    log: pd.DataFrame, columns: ColumnsDefinition, detailed: bool | None = None
) -> tuple[pd.DataFrame, ColumnsDefinition]:
    """Recognise lifecycle transitions of a parsed event log (reference 5.4).

    Parameters
    ----------
    log
        A log as :func:`prcore_core.values.parse_log` returns it (original column names, DATETIME-family columns as
        UTC ``datetime64``).
    columns
        Its columns definition; its ``*_transition`` fields name the transitions.
    detailed
        Merge start and complete events into instances; ``None`` means ``not columns.fast_mode``.

    Returns
    -------
    tuple
        The transformed log (fresh ``RangeIndex``) and the columns definition that describes it: unchanged, except in
        detailed mode, where the TRANSITION and TIMESTAMP columns are replaced by ``START_TIMESTAMP`` and
        ``END_TIMESTAMP``.

    >>> log = pd.DataFrame({"case": ["1", "1", "1"], "act": ["A", "A", "A"],
    ...                     "tr": ["schedule", "start", "complete"],
    ...                     "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True)})
    >>> D = ColumnDefinition
    >>> cols = ColumnsDefinition({"case": D.CASE_ID, "act": D.ACTIVITY, "tr": D.TRANSITION, "ts": D.TIMESTAMP})
    >>> apply_transitions(log, cols)[0]
      case act        tr                        ts
    0    1   A  complete 2024-01-03 00:00:00+00:00
    >>> merged, effective = apply_transitions(log, cols, detailed=True)
    >>> merged
      case act           START_TIMESTAMP             END_TIMESTAMP
    0    1   A 2024-01-02 00:00:00+00:00 2024-01-03 00:00:00+00:00
    >>> dict(effective.columns)  # doctest: +NORMALIZE_WHITESPACE
    {'case': <ColumnDefinition.CASE_ID: 'CASE_ID'>, 'act': <ColumnDefinition.ACTIVITY: 'ACTIVITY'>,
     'START_TIMESTAMP': <ColumnDefinition.START_TIMESTAMP: 'START_TIMESTAMP'>,
     'END_TIMESTAMP': <ColumnDefinition.END_TIMESTAMP: 'END_TIMESTAMP'>}
    """
    if detailed is None:
        detailed = not columns.fast_mode
    transition_column = columns.transition
    if transition_column is None:
        return log.reset_index(drop=True), columns

    roles = transition_roles(log[transition_column], columns)
    starts = roles == _START
    closes = roles >= _CLOSE_COMPLETE
    has_start = bool(starts.any())
    has_complete = bool((roles == _CLOSE_COMPLETE).any())
    if not has_start and not has_complete:
        return log.reset_index(drop=True), columns
    if not has_start:
        return _keep(log, closes), columns
    if not has_complete:
        return _keep(log, starts), columns
    timestamp_column = columns.column_of(ColumnDefinition.TIMESTAMP)
    if not detailed or timestamp_column is None:
        return _keep(log, closes), columns
    return _merge_instances(log, columns, roles, transition_column, timestamp_column)


def transition_roles(transitions: pd.Series, columns: ColumnsDefinition) -> np.ndarray:
    """The role of every row (0 other, 1 start, 2 complete, 3 abort), from stripped, upper-cased values."""
    codes, uniques = pd.factorize(transitions, use_na_sentinel=True)
    role_of: dict[str, int] = {}
    for name, role in (
        (columns.start_transition, _START),
        (columns.abort_transition, _CLOSE_ABORT),
        (columns.complete_transition, _CLOSE_COMPLETE),
    ):
        if name is not None and Transition(name) is not Transition.IGNORE:
            role_of[str(Transition(name))] = role
    # One entry per distinct value (plus one for missing, at index -1): a handful of Python steps, not one per row.
    lookup = np.zeros(len(uniques) + 1, dtype=np.int8)
    for i, value in enumerate(uniques):
        lookup[i] = role_of.get(str(value).strip().upper(), _OTHER)
    return lookup[codes]


def _keep(log: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    return log.loc[mask].reset_index(drop=True)


def _time_keys(times: pd.Series) -> tuple[pd.api.extensions.ExtensionArray, np.ndarray]:
    """The timestamps as a datetime array and as sortable int64 keys (``NaT`` sorting last)."""
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        times = values.to_datetime(times)
    array = times.array
    keys = np.asarray(array.asi8, dtype=np.int64).copy()
    keys[np.asarray(array.isna())] = _NAT_LAST
    return array, keys


def _merge_instances(
    log: pd.DataFrame,
    columns: ColumnsDefinition,
    roles: np.ndarray,
    transition_column: str,
    timestamp_column: str,
) -> tuple[pd.DataFrame, ColumnsDefinition]:
    """Detailed mode: one row per activity instance, with START_TIMESTAMP and END_TIMESTAMP.

    Within one (case, activity) group ordered by time, at most one start is pending at any moment (a second start
    turns the pending one into an instance of its own, a complete/abort clears it). Hence a complete/abort row closes
    a pending start exactly when the row just before it in its group is a start; that is the whole pairing, done with
    one sort and one shifted comparison instead of a loop.
    """
    rows = np.flatnonzero(roles != _OTHER)  # positions in ``log`` of start/complete/abort events, in file order
    role = roles[rows]
    case_codes, _ = pd.factorize(log[columns.case_id].take(rows), use_na_sentinel=False)
    activity_codes, _ = pd.factorize(log[columns.activity].take(rows), use_na_sentinel=False)
    times, all_keys = _time_keys(log[timestamp_column])
    time_keys = all_keys[rows]

    # Order by (case, activity, time); np.lexsort is stable, so equal times keep file order.
    group = case_codes.astype(np.int64) * (int(activity_codes.max(initial=0)) + 1) + activity_codes
    order = np.lexsort((time_keys, group))
    role_sorted = role[order]
    group_sorted = group[order]

    closes_previous = np.zeros(len(order), dtype=bool)
    closes_previous[1:] = (
        (role_sorted[1:] != _START) & (role_sorted[:-1] == _START) & (group_sorted[1:] == group_sorted[:-1])
    )
    # An instance is anchored at every event that does not close the start before it.
    anchors = np.flatnonzero(~closes_previous)
    closed_by_next = np.zeros(len(order), dtype=bool)
    closed_by_next[:-1] = closes_previous[1:]
    ends = anchors + closed_by_next[anchors]

    anchor_index = order[anchors]  # index into ``rows``
    end_index = order[ends]
    start_keys = time_keys[anchor_index]
    end_keys = time_keys[end_index]
    # Instances grouped by case (first-appearance order), then by (START, END), ties by file position.
    final = np.lexsort((anchor_index, end_keys, start_keys, case_codes[anchor_index]))
    source_rows = rows[anchor_index[final]]
    end_rows = rows[end_index[final]]

    kept = [c for c in log.columns if c not in (transition_column, timestamp_column, START_TIMESTAMP, END_TIMESTAMP)]
    merged = log[kept].take(source_rows).reset_index(drop=True)
    merged[START_TIMESTAMP] = times.take(source_rows)
    merged[END_TIMESTAMP] = times.take(end_rows)
    return merged, _detailed_definition(columns, transition_column, timestamp_column)


def _detailed_definition(
    columns: ColumnsDefinition, transition_column: str, timestamp_column: str
) -> ColumnsDefinition:
    """The definition of a merged log: TRANSITION and TIMESTAMP columns replaced by START/END_TIMESTAMP."""
    removed = {transition_column, timestamp_column, START_TIMESTAMP, END_TIMESTAMP}
    definitions: dict[str, ColumnDefinition | None] = {}
    for column, definition in columns.columns.items():
        if column in removed:
            continue
        if definition in (ColumnDefinition.START_TIMESTAMP, ColumnDefinition.END_TIMESTAMP):
            definition = ColumnDefinition.DATETIME
        definitions[column] = definition
    definitions[START_TIMESTAMP] = ColumnDefinition.START_TIMESTAMP
    definitions[END_TIMESTAMP] = ColumnDefinition.END_TIMESTAMP
    case_attributes = tuple(c for c in columns.case_attributes if c not in removed)
    return dataclasses.replace(columns, columns=definitions, case_attributes=case_attributes)
