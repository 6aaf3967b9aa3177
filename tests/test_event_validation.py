"""Validating one posted event: linear work, errors that quote a bad value briefly, nothing unstorable accepted."""

from __future__ import annotations

import time

import pytest

from prcore_core import errors
from prcore_core.columns import ColumnDefinition as D
from prcore_core.columns import ColumnsDefinition
from prcore_core.streaming.events import MAX_VALUE_LENGTH, validate_event

COLUMNS = ColumnsDefinition({"case": D.CASE_ID, "act": D.ACTIVITY, "time": D.TIMESTAMP, "amount": D.NUMBER})


def event(**values):
    return {"case": "1", "act": "A", "time": "2024-01-01T10:00:00Z", "amount": 5, **values}


def test_a_valid_event_passes():
    attributes, case_id, complete = validate_event(event(), COLUMNS)
    assert case_id == "1" and not complete and attributes["amount"] == 5


@pytest.mark.parametrize("column", ["time", "amount"])
def test_a_long_bad_value_is_refused_at_once_and_quoted_briefly(column):
    value = "2024" * 2_000  # 8,000 characters: under the event limit, far over any time or number
    started = time.perf_counter()
    with pytest.raises(errors.InvalidEventError) as caught:
        validate_event(event(**{column: value}), COLUMNS)
    assert time.perf_counter() - started < 0.01  # no parsing of 8,000 characters
    assert caught.value.status_code == 400
    assert len(caught.value.detail) < 200 and "(8,002 characters)" in caught.value.detail


def test_a_value_over_the_event_limit_is_413_naming_it():
    with pytest.raises(errors.InvalidEventError) as caught:
        validate_event(event(note="x" * (MAX_VALUE_LENGTH + 1)), COLUMNS)
    assert caught.value.status_code == 413
    assert caught.value.detail == (
        "The value of 'note' has 10,001 characters; at most 10,000 are accepted (limit MAX_VALUE_LENGTH)"
    )


def test_an_event_of_many_long_values_is_413_naming_the_limit():
    values = {f"note{n}": "x" * 9_000 for n in range(30)}  # each value is fine; 270,000 characters together are not
    with pytest.raises(errors.InvalidEventError, match="limit MAX_EVENT_LENGTH") as caught:
        validate_event(event(**values), COLUMNS)
    assert caught.value.status_code == 413
    with pytest.raises(errors.InvalidEventError, match="limit MAX_EVENT_KEYS"):
        validate_event(event(**{f"k{n}": 1 for n in range(3_000)}), COLUMNS)


@pytest.mark.parametrize("where", ["value", "name"])
def test_text_utf8_cannot_encode_is_refused_before_it_reaches_the_journal(where):
    body = event(case="\ud800") if where == "value" else {**event(), "\udfff": "x"}
    with pytest.raises(errors.InvalidEventError, match="UTF-8 cannot encode") as caught:
        validate_event(body, COLUMNS)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("word", ["now", "today", "yesterday"])
def test_a_relative_time_word_is_not_a_timestamp(word):
    # pandas reads them as the clock's time when the event is posted, not the time the event happened
    with pytest.raises(errors.InvalidEventError, match=f"Invalid datetime value for time: '{word}'"):
        validate_event(event(time=word), COLUMNS)
