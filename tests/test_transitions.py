"""Tests of lifecycle-transition recognition (``prcore_core.transitions``, reference 5.4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from prcore_core import values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Transition
from prcore_core.transitions import END_TIMESTAMP, START_TIMESTAMP, apply_transitions

D = ColumnDefinition
COLUMNS = ColumnsDefinition(
    {"case": D.CASE_ID, "act": D.ACTIVITY, "tr": D.TRANSITION, "ts": D.TIMESTAMP, "res": D.RESOURCE},
    case_attributes=("amount",),
)
DETAILED = dataclasses.replace(COLUMNS, fast_mode=False)


def make_log(rows, definition: ColumnsDefinition = COLUMNS, strip: bool = True) -> pd.DataFrame:
    """A parsed log from ``(case, activity, transition, minute, resource)`` tuples; minute ``None`` = no time.

    The column ``amount`` (undefined, hence text) numbers the rows 100, 200, ...; ``strip=False`` keeps the text
    cells exactly as given (parse_log strips them).
    """
    frame = pd.DataFrame(
        {
            "case": [r[0] for r in rows],
            "act": [r[1] for r in rows],
            "tr": [r[2] for r in rows],
            "ts": [None if r[3] is None else f"2024-01-01T10:{r[3]:02d}:00+00:00" for r in rows],
            "res": [r[4] for r in rows],
        },
        dtype="object",
    )
    frame["amount"] = [f"{100 * (i + 1)}" for i in range(len(rows))]
    parsed = values.parse_log(frame, definition)
    if not strip:
        for column in ("case", "act", "tr", "res"):
            parsed[column] = frame[column].astype("string")
    return parsed


def minute(value) -> int | None:
    return None if pd.isna(value) else value.minute


def fast_rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        (c, a, None if pd.isna(t) else t, minute(ts), r)
        for c, a, t, ts, r in frame[["case", "act", "tr", "ts", "res"]].itertuples(index=False)
    ]


def instances(frame: pd.DataFrame) -> list[tuple]:
    """``(case, activity, start minute, end minute, resource)`` of a merged log, in row order."""
    return [
        (c, a, minute(s), minute(e), None if pd.isna(r) else r)
        for c, a, s, e, r in frame[["case", "act", START_TIMESTAMP, END_TIMESTAMP, "res"]].itertuples(index=False)
    ]


# ---------------------------------------------------------------------------------------------------------------
# Rules that select rows (fast mode and the degenerate cases)
# ---------------------------------------------------------------------------------------------------------------


def test_without_transition_column_the_log_is_unchanged():
    columns = ColumnsDefinition({"case": D.CASE_ID, "act": D.ACTIVITY, "ts": D.TIMESTAMP})
    log = make_log([("1", "A", "SCHEDULE", 1, "r"), ("1", "A", "START", 2, "r")], columns)
    log.index = [10, 20]
    out, effective = apply_transitions(log, columns, detailed=True)
    assert effective is columns
    assert list(out.index) == [0, 1]
    assert fast_rows(out) == [("1", "A", "SCHEDULE", 1, "r"), ("1", "A", "START", 2, "r")]


def test_neither_start_nor_complete_leaves_the_log_unchanged():
    rows = [("1", "A", "SCHEDULE", 1, "r"), ("1", "A", "ate_abort", 2, "r"), ("2", "B", None, 3, "s")]
    for columns in (COLUMNS, DETAILED):
        out, effective = apply_transitions(make_log(rows), columns)
        assert effective is columns
        assert fast_rows(out) == [
            ("1", "A", "SCHEDULE", 1, "r"),
            ("1", "A", "ate_abort", 2, "r"),
            ("2", "B", None, 3, "s"),
        ]


def test_start_never_occurs_keeps_complete_and_abort_rows():
    rows = [
        ("1", "A", "SCHEDULE", 1, "r"),
        ("1", "A", "COMPLETE", 2, "r"),
        ("1", "B", "ATE_ABORT", 3, "s"),
        ("2", "A", "complete", 1, "t"),
    ]
    for columns in (COLUMNS, DETAILED):
        out, effective = apply_transitions(make_log(rows), columns)
        assert effective is columns  # no merging without starts, even in detailed mode
        assert fast_rows(out) == [
            ("1", "A", "COMPLETE", 2, "r"),
            ("1", "B", "ATE_ABORT", 3, "s"),
            ("2", "A", "complete", 1, "t"),
        ]
        assert list(out.index) == [0, 1, 2]
    no_abort = dataclasses.replace(DETAILED, abort_transition=Transition.IGNORE)
    out, _ = apply_transitions(make_log(rows), no_abort)
    assert fast_rows(out) == [("1", "A", "COMPLETE", 2, "r"), ("2", "A", "complete", 1, "t")]


def test_complete_never_occurs_keeps_start_rows_only():
    rows = [
        ("1", "A", "SCHEDULE", 1, "r"),
        ("1", "A", "START", 2, "r"),
        ("1", "A", "ATE_ABORT", 3, "r"),
        ("2", "B", "start", 4, "s"),
    ]
    for columns in (COLUMNS, DETAILED):
        out, effective = apply_transitions(make_log(rows), columns)
        assert effective is columns
        assert fast_rows(out) == [("1", "A", "START", 2, "r"), ("2", "B", "start", 4, "s")]


def test_fast_mode_keeps_complete_and_abort_rows_in_file_order():
    rows = [
        ("2", "A", "SCHEDULE", 1, "r"),
        ("2", "A", "START", 2, "r"),
        ("1", "B", "START", 1, "s"),
        ("2", "A", "COMPLETE", 5, "q"),
        ("1", "B", "ATE_ABORT", 3, "s"),
        ("1", "C", "COMPLETE", 4, "t"),
        ("1", "C", "SUSPEND", 6, "t"),
    ]
    log = make_log(rows)
    log.index = range(100, 107)
    out, effective = apply_transitions(log, COLUMNS)
    assert effective is COLUMNS
    assert list(out.columns) == list(log.columns)  # TRANSITION and TIMESTAMP stay in fast mode
    assert fast_rows(out) == [
        ("2", "A", "COMPLETE", 5, "q"),
        ("1", "B", "ATE_ABORT", 3, "s"),
        ("1", "C", "COMPLETE", 4, "t"),
    ]
    assert list(out["amount"]) == ["400", "500", "600"]
    assert list(out.index) == [0, 1, 2]
    no_abort = dataclasses.replace(COLUMNS, abort_transition=Transition.IGNORE)
    out, _ = apply_transitions(log, no_abort)
    assert fast_rows(out) == [("2", "A", "COMPLETE", 5, "q"), ("1", "C", "COMPLETE", 4, "t")]


def test_detailed_none_follows_fast_mode_and_explicit_flag_overrides_it():
    rows = [("1", "A", "START", 1, "r"), ("1", "A", "COMPLETE", 2, "s")]
    out, _ = apply_transitions(make_log(rows), COLUMNS)
    assert "tr" in out.columns and START_TIMESTAMP not in out.columns
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [("1", "A", 1, 2, "r")]
    out, _ = apply_transitions(make_log(rows), DETAILED, detailed=False)
    assert fast_rows(out) == [("1", "A", "COMPLETE", 2, "s")]
    out, _ = apply_transitions(make_log(rows), COLUMNS, detailed=True)
    assert instances(out) == [("1", "A", 1, 2, "r")]


def test_transition_values_are_compared_stripped_and_upper_cased():
    rows = [
        ("1", "A", " start ", 1, "r"),
        ("1", "A", "Complete", 2, "s"),
        ("1", "B", "sTaRt", 3, "t"),
        ("1", "B", "ate_abort ", 4, "u"),
        ("1", "C", "COMPLETED", 5, "v"),  # not a complete
    ]
    log = make_log(rows, strip=False)
    assert log["tr"].iloc[0] == " start "
    out, _ = apply_transitions(log, COLUMNS)
    assert fast_rows(out) == [("1", "A", "Complete", 2, "s"), ("1", "B", "ate_abort ", 4, "u")]
    out, _ = apply_transitions(log, DETAILED)
    assert instances(out) == [("1", "A", 1, 2, "r"), ("1", "B", 3, 4, "t")]


def test_configured_transition_names_are_used():
    columns = dataclasses.replace(
        DETAILED,
        start_transition=Transition.RESUME,
        complete_transition=Transition.SUSPEND,
        abort_transition=Transition.WITHDRAW,
    )
    rows = [
        ("1", "A", "START", 1, "r"),
        ("1", "A", "resume", 2, "s"),
        ("1", "A", "COMPLETE", 3, "t"),
        ("1", "A", "suspend", 4, "u"),
        ("1", "B", "RESUME", 5, "v"),
        ("1", "B", "WITHDRAW", 6, "w"),
    ]
    out, _ = apply_transitions(make_log(rows), columns)
    assert instances(out) == [("1", "A", 2, 4, "s"), ("1", "B", 5, 6, "v")]
    out, _ = apply_transitions(make_log(rows), columns, detailed=False)
    assert fast_rows(out) == [("1", "A", "suspend", 4, "u"), ("1", "B", "WITHDRAW", 6, "w")]


def test_ignored_start_or_complete_transition_counts_as_never_occurring():
    rows = [("1", "A", "START", 1, "r"), ("1", "A", "COMPLETE", 2, "s"), ("1", "B", "ATE_ABORT", 3, "t")]
    no_start = dataclasses.replace(DETAILED, start_transition=Transition.IGNORE)
    out, effective = apply_transitions(make_log(rows), no_start)
    assert effective is no_start
    assert fast_rows(out) == [("1", "A", "COMPLETE", 2, "s"), ("1", "B", "ATE_ABORT", 3, "t")]
    no_complete = dataclasses.replace(DETAILED, complete_transition=Transition.IGNORE)
    out, effective = apply_transitions(make_log(rows), no_complete)
    assert effective is no_complete
    assert fast_rows(out) == [("1", "A", "START", 1, "r")]
    neither = dataclasses.replace(no_start, complete_transition=Transition.IGNORE)
    out, _ = apply_transitions(make_log(rows), neither)
    assert len(out) == 3


def test_missing_transition_values_are_other_transitions():
    rows = [("1", "A", None, 1, "r"), ("1", "A", "START", 2, "s"), ("1", "A", "COMPLETE", 3, "t")]
    out, _ = apply_transitions(make_log(rows), COLUMNS)
    assert fast_rows(out) == [("1", "A", "COMPLETE", 3, "t")]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [("1", "A", 2, 3, "s")]


# ---------------------------------------------------------------------------------------------------------------
# Detailed mode
# ---------------------------------------------------------------------------------------------------------------


def test_detailed_merges_start_and_complete_keeping_start_attributes():
    rows = [
        ("1", "A", "SCHEDULE", 0, "x"),
        ("1", "A", "START", 1, "alice"),
        ("1", "A", "COMPLETE", 4, "bob"),
        ("1", "B", "COMPLETE", 5, "carol"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert list(out.columns) == ["case", "act", "res", "amount", START_TIMESTAMP, END_TIMESTAMP]
    assert instances(out) == [("1", "A", 1, 4, "alice"), ("1", "B", 5, 5, "carol")]
    assert list(out["amount"]) == ["200", "400"]  # the start row's attributes, not the complete row's
    assert list(out.index) == [0, 1]
    assert out[START_TIMESTAMP].dtype == make_log(rows)["ts"].dtype
    assert str(out[END_TIMESTAMP].iloc[0]) == "2024-01-01 10:04:00+00:00"


def test_detailed_complete_without_start_and_start_without_complete():
    rows = [
        ("1", "A", "COMPLETE", 2, "a"),  # no start: instance of its own
        ("1", "B", "START", 3, "b"),  # never completed: kept with START = END
        ("1", "C", "START", 4, "c"),
        ("1", "C", "COMPLETE", 6, "c2"),
        ("1", "C", "COMPLETE", 7, "c3"),  # the start is already closed
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [
        ("1", "A", 2, 2, "a"),
        ("1", "B", 3, 3, "b"),
        ("1", "C", 4, 6, "c"),
        ("1", "C", 7, 7, "c3"),
    ]


def test_detailed_second_start_turns_the_pending_one_into_its_own_instance():
    rows = [
        ("1", "A", "START", 1, "first"),
        ("1", "A", "START", 2, "second"),
        ("1", "A", "COMPLETE", 5, "done"),
        ("1", "A", "START", 6, "third"),
        ("1", "A", "START", 7, "fourth"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [
        ("1", "A", 1, 1, "first"),
        ("1", "A", 2, 5, "second"),
        ("1", "A", 6, 6, "third"),
        ("1", "A", 7, 7, "fourth"),
    ]


def test_detailed_interleaved_activities_pair_by_activity_and_case():
    rows = [
        ("1", "A", "START", 1, "a1"),
        ("2", "A", "START", 2, "a2"),
        ("1", "B", "START", 3, "b1"),
        ("1", "A", "COMPLETE", 4, "x"),
        ("2", "A", "COMPLETE", 9, "y"),
        ("1", "B", "COMPLETE", 5, "z"),
        ("1", "C", "COMPLETE", 2, "c1"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [
        ("1", "A", 1, 4, "a1"),
        ("1", "C", 2, 2, "c1"),
        ("1", "B", 3, 5, "b1"),
        ("2", "A", 2, 9, "a2"),
    ]


def test_detailed_abort_closes_an_instance_and_ignored_abort_does_not():
    rows = [
        ("1", "A", "START", 1, "a"),
        ("1", "A", "ATE_ABORT", 2, "x"),
        ("1", "A", "START", 3, "b"),
        ("1", "A", "COMPLETE", 4, "y"),
        ("1", "B", "ATE_ABORT", 5, "c"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [("1", "A", 1, 2, "a"), ("1", "A", 3, 4, "b"), ("1", "B", 5, 5, "c")]
    no_abort = dataclasses.replace(DETAILED, abort_transition=Transition.IGNORE)
    out, _ = apply_transitions(make_log(rows), no_abort)
    assert instances(out) == [("1", "A", 1, 1, "a"), ("1", "A", 3, 4, "b")]


def test_detailed_identical_timestamps_keep_file_order():
    rows = [
        ("1", "A", "START", 1, "a"),
        ("1", "A", "COMPLETE", 1, "a-done"),  # start then complete at the same instant: one instance
        ("1", "B", "COMPLETE", 2, "b-done"),  # complete before start at the same instant: two instances
        ("1", "B", "START", 2, "b"),
        ("1", "C", "START", 2, "c"),
        ("1", "C", "COMPLETE", 3, "c-done"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [
        ("1", "A", 1, 1, "a"),
        ("1", "B", 2, 2, "b-done"),
        ("1", "B", 2, 2, "b"),
        ("1", "C", 2, 3, "c"),
    ]


def test_detailed_orders_instances_per_case_by_start_then_end():
    rows = [
        ("9", "X", "COMPLETE", 30, "late"),
        ("1", "A", "START", 5, "a"),
        ("1", "B", "START", 5, "b"),
        ("1", "C", "COMPLETE", 4, "c"),
        ("1", "B", "COMPLETE", 6, "b-done"),
        ("1", "A", "COMPLETE", 8, "a-done"),
        ("9", "Y", "START", 10, "early"),
    ]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    # cases in order of first appearance; within a case by (START, END)
    assert instances(out) == [
        ("9", "Y", 10, 10, "early"),
        ("9", "X", 30, 30, "late"),
        ("1", "C", 4, 4, "c"),
        ("1", "B", 5, 6, "b"),
        ("1", "A", 5, 8, "a"),
    ]


def test_detailed_events_without_timestamp_come_last_in_their_case():
    rows = [("1", "A", "START", None, "a"), ("1", "B", "START", 3, "b"), ("1", "B", "COMPLETE", 4, "b2")]
    out, _ = apply_transitions(make_log(rows), DETAILED)
    assert instances(out) == [("1", "B", 3, 4, "b"), ("1", "A", None, None, "a")]


def test_detailed_effective_columns_definition():
    columns = ColumnsDefinition(
        {
            "case": D.CASE_ID,
            "act": D.ACTIVITY,
            "tr": D.TRANSITION,
            "ts": D.TIMESTAMP,
            "res": D.RESOURCE,
            "amount": D.NUMBER,
            "begin": D.START_TIMESTAMP,
        },
        case_attributes=("amount",),
        fast_mode=False,
        start_transition=Transition.START,
        complete_transition=Transition.COMPLETE,
        abort_transition=Transition.IGNORE,
    )
    log = make_log([("1", "A", "START", 1, "a"), ("1", "A", "COMPLETE", 2, "b")], columns)
    log["begin"] = log["ts"]
    out, effective = apply_transitions(log, columns)
    assert dict(effective.columns) == {
        "case": D.CASE_ID,
        "act": D.ACTIVITY,
        "res": D.RESOURCE,
        "amount": D.NUMBER,
        "begin": D.DATETIME,  # one START_TIMESTAMP column only: the new one
        START_TIMESTAMP: D.START_TIMESTAMP,
        END_TIMESTAMP: D.END_TIMESTAMP,
    }
    assert effective.case_attributes == ("amount",)
    assert effective.fast_mode is False
    assert effective.abort_transition is Transition.IGNORE
    assert effective.transition is None
    assert effective.column_of(D.TIMESTAMP) is None
    assert effective.column_of(D.START_TIMESTAMP) == START_TIMESTAMP
    assert effective.column_of(D.END_TIMESTAMP) == END_TIMESTAMP
    assert set(effective.columns) == set(out.columns)
    assert columns.transition == "tr"  # the input definition is untouched


def test_detailed_mode_without_timestamp_column_filters_like_fast_mode():
    columns = ColumnsDefinition(
        {"case": D.CASE_ID, "act": D.ACTIVITY, "tr": D.TRANSITION, "ts": D.START_TIMESTAMP, "res": D.END_TIMESTAMP},
        fast_mode=False,
    )
    frame = pd.DataFrame(
        {
            "case": ["1", "1"],
            "act": ["A", "A"],
            "tr": ["START", "COMPLETE"],
            "ts": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"],
            "res": ["2024-01-01T11:00:00Z", "2024-01-01T11:00:00Z"],
        }
    )
    out, effective = apply_transitions(values.parse_log(frame, columns), columns)
    assert effective is columns
    assert list(out["tr"]) == ["COMPLETE"]


def test_input_log_is_not_modified():
    log = make_log([("1", "A", "START", 1, "a"), ("1", "A", "COMPLETE", 2, "b")])
    before = log.copy()
    apply_transitions(log, DETAILED)
    apply_transitions(log, COLUMNS)
    pd.testing.assert_frame_equal(log, before)


# ---------------------------------------------------------------------------------------------------------------
# Detailed mode against a straightforward per-event reference implementation
# ---------------------------------------------------------------------------------------------------------------


def reference_merge(log: pd.DataFrame, columns: ColumnsDefinition) -> list[tuple]:
    """The documented semantics, one event at a time: ``(case, activity, start, end, amount)`` per instance."""
    roles = {"START": "start", "COMPLETE": "close", "ATE_ABORT": "close"}
    events = []
    for position, row in enumerate(log.itertuples(index=False)):
        role = roles.get(str(row.tr).strip().upper()) if not pd.isna(row.tr) else None
        if role is not None:
            key = np.iinfo(np.int64).max if pd.isna(row.ts) else row.ts.value
            events.append((position, row.case, row.act, role, key, row.ts, row.amount))
    case_order = list(dict.fromkeys(e[1] for e in events))
    result = []
    for case in case_order:
        in_case = sorted((e for e in events if e[1] == case), key=lambda e: e[4])  # stable
        pending: dict = {}
        found = []  # (start key, end key, position, instance)
        for position, _, activity, role, key, ts, amount in in_case:
            if role == "start":
                if activity in pending:
                    p = pending.pop(activity)
                    found.append((p[1], p[1], p[0], (case, activity, p[2], p[2], p[3])))
                pending[activity] = (position, key, ts, amount)
            elif activity in pending:
                p = pending.pop(activity)
                found.append((p[1], key, p[0], (case, activity, p[2], ts, p[3])))
            else:
                found.append((key, key, position, (case, activity, ts, ts, amount)))
        for activity, p in pending.items():
            found.append((p[1], p[1], p[0], (case, activity, p[2], p[2], p[3])))
        result.extend(instance for *_, instance in sorted(found, key=lambda f: f[:3]))
    return result


@pytest.mark.parametrize("seed", range(6))
def test_detailed_matches_reference_on_random_logs(seed):
    rng = np.random.default_rng(seed)
    n = 400
    transitions = np.array(["START", "COMPLETE", "ate_abort", "SCHEDULE", "start"])
    rows = list(
        zip(
            rng.choice(["c1", "c2", "c3", "c4", "c5"], n),
            rng.choice(["A", "B", "C"], n),
            rng.choice(transitions, n, p=[0.3, 0.35, 0.1, 0.15, 0.1]),
            [None if m >= 58 else int(m) for m in rng.integers(0, 60, n)],  # few distinct times: many ties
            rng.choice(["r1", "r2"], n),
            strict=True,
        )
    )
    log = make_log(rows)
    out, _ = apply_transitions(log, DETAILED)
    got = list(out[["case", "act", START_TIMESTAMP, END_TIMESTAMP, "amount"]].itertuples(index=False, name=None))
    expected = reference_merge(log, DETAILED)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[:2] == e[:2] and g[4] == e[4]
        assert (pd.isna(g[2]) and pd.isna(e[2])) or g[2] == e[2]
        assert (pd.isna(g[3]) and pd.isna(e[3])) or g[3] == e[3]
