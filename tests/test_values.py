"""Cell parsing: one value at a time (streaming) agrees with whole columns (uploads), odd values included."""

from __future__ import annotations

import pandas as pd
import pytest

from prcore_core import values
from prcore_core.columns import ColumnDefinition

ODD_VALUES = [
    None,
    "",
    "  ",
    True,
    False,
    0,
    1,
    7,
    7.5,
    1700000000,
    float("nan"),
    "0",
    "1",
    "-0",
    "7",
    "1.0",
    " 12 ",
    "+5",
    "1e3",
    "1,5",
    "1_000",
    "0x10",
    "inf",
    "Infinity",
    "nan",
    "٣",
    "yes",
    "No",
    "T",
    "off",
    "not a time",
    "2012-02-03T16:17:11.047Z",
    " 2012-02-03T16:17:11.047 ",
    "2012-02-03 16:17",
    "2024-01-01T10:00:00+02:00",
    "2024-01-01T10:00:00.123456789Z",
    "03/02/2012 10:00",
    "March 3 2024",
    "20240101",
    "2024-13-01",
    "2024-W01",
]
DEFINITIONS = [
    ColumnDefinition.NUMBER,
    ColumnDefinition.TEXT,
    ColumnDefinition.BOOLEAN,
    ColumnDefinition.TIMESTAMP,
    ColumnDefinition.ACTIVITY,
    ColumnDefinition.CASE_ID,
    None,
]


def same(column_value, scalar) -> bool:
    if pd.isna(column_value):
        return scalar is None or scalar != scalar
    return bool(scalar == column_value)


@pytest.mark.parametrize("definition", DEFINITIONS, ids=str)
def test_parse_value_agrees_with_parse_column(definition):
    column = values.parse_column(pd.Series(ODD_VALUES, dtype=object), definition)
    for value, parsed in zip(ODD_VALUES, column, strict=True):
        alone = values.parse_column(pd.Series([value], dtype=object), definition).iloc[0]
        scalar = values.parse_value(value, definition)
        assert same(parsed, scalar), f"{value!r} as {definition}: column {parsed!r}, scalar {scalar!r}"
        assert same(alone, scalar), f"{value!r} as {definition}: alone {alone!r}, scalar {scalar!r}"


def test_misread_dates_are_missing_not_year_one():
    # the lenient fallback reads "1,5" as 0001-01-05 and ISO reads "-0" as year 0; neither is an event time, and
    # mixing them with real times used to overflow the column's resolution
    parsed = values.to_datetime(pd.Series(["2012-02-03T16:17:11.047Z", "1,5", "-0", "03/02/2012 10:00"]))
    assert parsed.isna().tolist() == [False, True, True, False]
    assert parsed.iloc[3] == pd.Timestamp("2012-03-02 10:00", tz="UTC")


def test_timestamps_become_utc():
    assert values.parse_value("2024-01-01T10:00:00+02:00", ColumnDefinition.TIMESTAMP) == pd.Timestamp(
        "2024-01-01T08:00:00Z"
    )
    assert values.parse_value("2024-01-01T10:00:00", ColumnDefinition.TIMESTAMP).tzinfo is not None
