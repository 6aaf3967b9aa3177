"""Events as they arrive and leave: validation of a posted event, and the shapes of the wire.

An event is checked against the project's columns definition the moment it is posted, before anything is stored,
with a message naming the problem. What is answered (seed "Stream Data") and what readers are sent (seed "Get
Prescriptions") are built here, so the REST handlers, the SSE stream and notebooks see the same objects.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from prcore_core import errors, values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Family, family
from prcore_core.errors import quoted
from prcore_core.prescriptions import prcore_prescriptions  # noqa: F401  (a wire shape, kept beside the others)
from prcore_core.running_cases import COMPLETE_INDICATOR
from prcore_core.status import ProjectStatus

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}
#: What a stream is started as, by the name PrCore's endpoint takes (reference 2.20/2.21).
STREAM_MODES = {"streaming": ProjectStatus.STREAMING, "simulating": ProjectStatus.SIMULATING}
#: Seconds between two simulated events when neither an interval nor a speed-up is given.
DEFAULT_INTERVAL = 1.0


def stream_target(mode: str) -> ProjectStatus:
    """The status a stream started as ``mode`` ends up in; ``StateError`` for an unknown mode.

    >>> stream_target(" Simulating ")
    <ProjectStatus.SIMULATING: 'SIMULATING'>
    """
    try:
        return STREAM_MODES[str(mode).strip().lower()]
    except KeyError:
        raise errors.StateError(errors.INVALID_STREAMING_TYPE) from None


def parse_complete_indicator(value) -> bool:
    """``COMPLETE_INDICATOR`` as PrCore accepts it: booleans, 1/0 and their spellings (reference 2.24)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.InvalidEventError(f"Invalid value for {COMPLETE_INDICATOR}: {quoted(value)} (expected true or false)")


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


#: Longest text value of a posted event (characters); a longer one is refused with 413 before any parsing.
MAX_VALUE_LENGTH = 10_000
#: Most characters of an event's names and text values together (an event of many long values is refused with 413).
MAX_EVENT_LENGTH = 200_000
#: Most attributes (keys) of one event.
MAX_EVENT_KEYS = 2_000
#: Longest value parsed as a time or a number: no timestamp or number is longer, and parsing is not linear in it.
MAX_PARSED_LENGTH = 100


def _check_text(key: str, value) -> None:
    """Refuse what cannot be stored: text too long for an event, or not encodable as UTF-8 (a lone surrogate)."""
    for name, text in (("name", key), ("value", value)):
        if not isinstance(text, str):
            continue
        if len(text) > MAX_VALUE_LENGTH:
            raise errors.InvalidEventError(
                f"The {name} of {quoted(key)} has {len(text):,} characters; at most {MAX_VALUE_LENGTH:,} are "
                "accepted (limit MAX_VALUE_LENGTH)",
                status_code=413,
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.InvalidEventError(
                f"The {name} of {quoted(key)} is not valid text: it holds a character UTF-8 cannot encode"
            ) from None


def validate_event(body: dict, columns: ColumnsDefinition) -> tuple[dict, str, bool]:
    """Check one posted event against the definition; returns (stored attributes, case id, completes the case).

    Raises ``InvalidEventError`` naming the problem: a missing defined column or case attribute, an unparsable
    timestamp, a non-numeric number, a non-boolean boolean, an empty case id or activity, text that cannot be
    stored (413 when too long). Work is linear in the event's size, and errors quote at most
    :data:`~prcore_core.errors.QUOTED_LENGTH` characters of a value.
    """
    complete_column = columns.column_of(ColumnDefinition.COMPLETE_INDICATOR) or COMPLETE_INDICATOR
    complete = parse_complete_indicator(body.get(complete_column))
    for column, definition in columns.columns.items():
        if definition is None or definition in (ColumnDefinition.COMPLETE_INDICATOR, ColumnDefinition.TRANSITION):
            continue
        if column not in body:
            raise errors.InvalidEventError(f"Missing pre-defined column {column}")
    for column in columns.case_attributes:
        if column not in body:
            raise errors.InvalidEventError(f"Missing case attribute {column}")
    if len(body) > MAX_EVENT_KEYS:
        raise errors.InvalidEventError(
            f"The event has {len(body):,} attributes; at most {MAX_EVENT_KEYS:,} are accepted (limit MAX_EVENT_KEYS)",
            status_code=413,
        )
    attributes: dict[str, Any] = {}
    length = 0
    for key, value in body.items():
        _check_text(str(key), value)
        length += len(str(key)) + (len(value) if isinstance(value, str) else 0)
        if length > MAX_EVENT_LENGTH:
            raise errors.InvalidEventError(
                f"The event's names and text values have more than {MAX_EVENT_LENGTH:,} characters together "
                "(limit MAX_EVENT_LENGTH)",
                status_code=413,
            )
        if isinstance(value, dict | list):
            raise errors.InvalidEventError(f"Invalid value for {key}: nested objects and lists are not supported")
        attributes[str(key)] = _json_value(value)
        definition = columns.columns.get(key)
        if value is None or value == "" or definition is None:
            continue
        kind = family(definition)
        too_long = isinstance(value, str) and len(value) > MAX_PARSED_LENGTH
        if kind is Family.DATETIME and (too_long or values.parse_value(value, definition) is None):
            raise errors.InvalidEventError(f"Invalid datetime value for {key}: {quoted(value)}")
        if kind is Family.NUMBER and definition is not ColumnDefinition.DURATION:
            try:
                if isinstance(value, bool) or too_long:
                    raise ValueError
                float(value)
            except (TypeError, ValueError, OverflowError):
                raise errors.InvalidEventError(f"Invalid number value for {key}: {quoted(value)}") from None
        if kind is Family.BOOLEAN and (too_long or values.parse_value(value, definition) is None):
            raise errors.InvalidEventError(f"Invalid boolean value for {key}: {quoted(value)}")
    for definition, name in ((ColumnDefinition.CASE_ID, "case id"), (ColumnDefinition.ACTIVITY, "activity")):
        column = columns.column_of(definition)
        if body.get(column) in (None, "") or not str(body.get(column)).strip():
            raise errors.InvalidEventError(f"The {name} ({column}) must not be empty")
    time_column = columns.time_column
    if body.get(time_column) in (None, ""):
        raise errors.InvalidEventError(f"The timestamp ({time_column}) must not be empty")
    return attributes, str(body[columns.case_id]).strip(), complete


def renamed_attributes(attributes: dict, columns: ColumnsDefinition, complete: bool) -> dict[str, str | None]:
    """The event's attributes under canonical names with text values, as PrCore answered (seed "Stream Data")."""
    renamed = {}
    for key, value in attributes.items():
        if key == COMPLETE_INDICATOR:
            continue
        name = columns.canonical_name(key)
        renamed[name] = None if value is None else str(value)
    renamed[COMPLETE_INDICATOR] = str(bool(complete))
    return renamed


def stream_event(event_id, prescribed_at, complete, attributes, prescriptions, created_at=None) -> dict[str, Any]:
    """One element of an SSE message (seed "Get Prescriptions")."""
    return {
        "id": event_id,
        "timestamp": _iso(prescribed_at),
        "case_completed": bool(complete),
        "data": {k: v for k, v in attributes.items() if k != COMPLETE_INDICATOR},
        "prescriptions": prescriptions,
        "created_at": _iso(created_at),
    }
