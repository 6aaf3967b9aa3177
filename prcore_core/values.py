"""Parsing of cell values by column family, vectorised over whole columns.

Event logs arrive as text. Every timestamp becomes a timezone-aware UTC ``datetime64`` (naive values are taken as
UTC, so logs with and without offsets compare consistently); numbers become ``float64``; booleans become pandas'
nullable ``boolean`` with the usual spellings (fixing PrCore's numeric-only parsing, reference 13.1 #11).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Family, family

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0", "off"})


def to_datetime(values: pd.Series) -> pd.Series:
    """Parse timestamps of mixed ISO-8601 precision (and other common forms) to UTC; unparsable → ``NaT``."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    text = values.astype("string").str.strip()
    try:
        return pd.to_datetime(text, format="ISO8601", utc=True, errors="raise")
    except (ValueError, TypeError):
        pass
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    missing = parsed.isna() & text.notna() & (text != "")
    if missing.any():
        parsed[missing] = pd.to_datetime(text[missing], format="mixed", utc=True, errors="coerce")
    return parsed


def to_datetime_scalar(value) -> pd.Timestamp | None:
    """Parse one timestamp to UTC, ``None`` if it is not one."""
    parsed = to_datetime(pd.Series([value], dtype="object"))
    return None if pd.isna(parsed.iloc[0]) else parsed.iloc[0]


def to_number(values: pd.Series) -> pd.Series:
    """Parse numbers; unparsable → ``NaN``."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype("float64")


def to_boolean(values: pd.Series) -> pd.Series:
    """Parse booleans from ``true/false``, ``yes/no``, ``1/0`` (any case); anything else → ``<NA>``."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    text = values.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[text.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    result[text.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    return result


def to_text(values: pd.Series) -> pd.Series:
    """Text with surrounding white space removed and empty cells missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def parse_column(values: pd.Series, definition: ColumnDefinition | None) -> pd.Series:
    """Parse one column according to its definition's family."""
    kind = family(definition)
    if kind is Family.DATETIME:
        return to_datetime(values)
    if kind is Family.NUMBER and definition is not ColumnDefinition.DURATION:
        return to_number(values)
    if kind is Family.BOOLEAN:
        return to_boolean(values)
    if definition is ColumnDefinition.DURATION:
        return to_duration_seconds(values)
    return to_text(values)


def to_duration_seconds(values: pd.Series) -> pd.Series:
    """Durations (``"2 days"``, ``"01:30:00"``, plain seconds) to seconds as ``float64``."""
    numbers = to_number(values)
    todo = numbers.isna() & values.notna()
    if todo.any():
        deltas = pd.to_timedelta(values[todo].astype("string").str.strip(), errors="coerce")
        numbers[todo] = deltas.dt.total_seconds()
    return numbers


def parse_log(frame: pd.DataFrame, definition: ColumnsDefinition) -> pd.DataFrame:
    """Parse every defined column of an event log by its family; undefined columns stay text.

    The result keeps the file's column names; it is the input of transition handling, labelling and renaming.
    """
    parsed = {}
    for column in frame.columns:
        parsed[column] = parse_column(frame[column], definition.columns.get(column))
    return pd.DataFrame(parsed, index=frame.index)


def is_missing(values: pd.Series) -> np.ndarray:
    """Boolean mask of missing cells, whatever the dtype."""
    return values.isna().to_numpy(dtype=bool)
