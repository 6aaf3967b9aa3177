"""Streamed prefixes are encoded exactly like the same prefixes of the prepared training log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prcore_core.columns import ColumnDefinition, ColumnsDefinition
from prcore_core.dataset import PrefixBatch, sort_events
from prcore_core.demo import generate_demo_log
from prcore_core.encoding import BLOCKS, PrefixEncoder
from prcore_core.preparation import ProjectDefinition, prepare
from prcore_core.reading import read_event_log
from prcore_core.running_cases import RunningCases


@pytest.fixture(scope="module")
def log():
    demo = generate_demo_log(n_cases=60, seed=3)
    columns = ColumnsDefinition(
        {c: ColumnDefinition(d) for c, d in demo.columns_definition.items()}, tuple(demo.case_attributes)
    )
    raw = read_event_log(demo.to_csv(), filename="demo.csv")  # text cells, as a client would post them
    prepared = prepare(raw, columns, ProjectDefinition(), training_share=0.5)
    return raw, columns, prepared


def reference_features(prepared, encoder, case_ids, lengths) -> np.ndarray:
    """Features of the prefixes (case, length) cut from the prepared log."""
    events = prepared.events
    prefixes = [events[events["CASE_ID"] == case].iloc[:length] for case, length in zip(case_ids, lengths, strict=True)]
    return encoder.transform(PrefixBatch.from_prefixes(prefixes, prepared.attributes))


def test_streamed_bursts_encode_like_the_prepared_log(log):
    raw, columns, prepared = log
    encoder = PrefixEncoder(BLOCKS, history=3).fit(prepared.events, prepared.attributes)
    # arrival order: by time across cases (ties in file order), as a monitoring system would post them
    arrival = raw.assign(_t=pd.to_datetime(raw["timestamp"])).sort_values("_t", kind="stable").drop(columns="_t")
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in arrival.to_dict("records")]
    cases = RunningCases(columns, prepared.attributes)
    rng = np.random.default_rng(0)
    seen: dict[str, int] = {}
    position = 0
    while position < len(records):
        burst = records[position : position + int(rng.integers(1, 25))]
        position += len(burst)
        batch, has_prefix = cases.extend([(str(event["case_id"]), event) for event in burst])
        assert all(has_prefix)
        case_ids, lengths = [], []
        for event in burst:
            case = str(event["case_id"])
            seen[case] = seen.get(case, 0) + 1
            case_ids.append(case)
            lengths.append(seen[case])
        assert batch.source_case_ids == case_ids
        assert batch.lengths.tolist() == lengths
        streamed = encoder.transform(batch)
        expected = reference_features(prepared, encoder, case_ids, lengths)
        np.testing.assert_allclose(streamed, expected, rtol=1e-6, atol=1e-6)


def test_restore_rebuilds_open_cases_and_close_forgets_them(log):
    raw, columns, prepared = log
    case = str(raw["case_id"].iloc[0])
    events = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in raw[raw["case_id"] == raw["case_id"].iloc[0]].to_dict("records")
    ]
    restored = RunningCases(columns, prepared.attributes)
    restored.restore({case: events[:-1]})
    batch, _ = restored.extend([(case, events[-1])])
    assert batch.lengths.tolist() == [len(events)]
    assert (
        batch.events["ACTIVITY"].tolist()
        == sort_events(prepared.events[prepared.events["CASE_ID"] == case])["ACTIVITY"].tolist()
    )
    restored.close(case)
    assert case not in restored and len(restored) == 0


def test_mixed_json_types_in_one_burst_parse_like_text():
    # a resource posted as 112 in one event and missing in another must stay "112", not become "112.0"
    columns = ColumnsDefinition(
        {
            "case": ColumnDefinition.CASE_ID,
            "act": ColumnDefinition.ACTIVITY,
            "ts": ColumnDefinition.TIMESTAMP,
            "res": ColumnDefinition.RESOURCE,
        }
    )
    cases = RunningCases(columns)
    first = {"case": "c", "act": "A", "ts": "2024-01-01T10:00:00", "res": 112}
    second = {"case": "c", "act": "B", "ts": "2024-01-01T11:00:00.5Z", "res": None}
    batch, _ = cases.extend([("c", first), ("c", second)])
    assert batch.events["RESOURCE"].tolist()[:1] == ["112"]
    assert batch.events["TIMESTAMP"].dt.tz is not None


def test_lifecycle_events_dropped_by_fast_mode_leave_no_prefix():
    columns = ColumnsDefinition(
        {
            "case": ColumnDefinition.CASE_ID,
            "act": ColumnDefinition.ACTIVITY,
            "ts": ColumnDefinition.TIMESTAMP,
            "tr": ColumnDefinition.TRANSITION,
        }
    )
    cases = RunningCases(columns)
    _, has_prefix = cases.extend(
        [
            ("c", {"case": "c", "act": "A", "ts": "2024-01-01T10:00", "tr": "start"}),
            ("c", {"case": "c", "act": "A", "ts": "2024-01-01T11:00", "tr": "complete"}),
        ]
    )
    assert has_prefix == [False, True]
    assert "c" in cases


def test_text_and_json_spellings_of_an_event_agree():
    # posted values arrive as JSON scalars or text; both spellings of one event give the same canonical row
    columns = ColumnsDefinition(
        {
            "case": ColumnDefinition.CASE_ID,
            "act": ColumnDefinition.ACTIVITY,
            "ts": ColumnDefinition.TIMESTAMP,
            "amount": ColumnDefinition.NUMBER,
        },
        ("amount",),
    )
    text = {"case": "c", "act": " A", "ts": "2024-01-01T10:00", "amount": "2500"}
    json = {"case": "c", "act": "A", "ts": "2024-01-01T10:00", "amount": 2500}
    as_text, as_json = RunningCases(columns).extend([("c", text)]), RunningCases(columns).extend([("c", json)])
    pd.testing.assert_frame_equal(as_text[0].events, as_json[0].events)


def test_late_events_take_their_place_in_time(log):
    # a monitoring system may post an event after a later one of the same case: the prefix is in time order
    raw, columns, prepared = log
    first_case = raw["case_id"].iloc[0]
    events = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in raw[raw["case_id"] == first_case].to_dict("records")
    ]
    shuffled = [events[i] for i in np.random.default_rng(1).permutation(len(events))]
    cases = RunningCases(columns, prepared.attributes)
    for count, event in enumerate(shuffled, start=1):
        batch, _ = cases.extend([(str(first_case), event)])
        received = pd.DataFrame(shuffled[:count])
        received["_t"] = pd.to_datetime(received["timestamp"])
        expected = received.sort_values(["_t", "activity"], kind="stable")["activity"].str.strip().tolist()
        assert batch.events["ACTIVITY"].tolist() == expected
