"""Column definitions: what each column of an event log means.

Holds the column types of PrCore (reference 5.3), their families (which decide the operators of the condition
language and how values are parsed), the inference of a type from a column name (reference 5.2), the validation of
a user's definition and the canonical renaming used for training data, ongoing data and streamed prefixes
(reference 5.6).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from prcore_core import errors


class ColumnDefinition(StrEnum):
    """The meaning a user gives to a column (reference 5.3)."""

    CASE_ID = "CASE_ID"
    TRANSITION = "TRANSITION"
    OUTCOME = "OUTCOME"
    TREATMENT = "TREATMENT"
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    CATEGORICAL = "CATEGORICAL"
    ACTIVITY = "ACTIVITY"
    TIMESTAMP = "TIMESTAMP"
    RESOURCE = "RESOURCE"
    DURATION = "DURATION"
    COST = "COST"
    START_TIMESTAMP = "START_TIMESTAMP"
    END_TIMESTAMP = "END_TIMESTAMP"
    TREATMENT_RESOURCE = "TREATMENT_RESOURCE"
    COMPLETE_INDICATOR = "COMPLETE_INDICATOR"


class Family(StrEnum):
    """How values of a column are parsed and compared."""

    TEXT = "TEXT"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    CATEGORICAL = "CATEGORICAL"


class Transition(StrEnum):
    """XES lifecycle transitions; ``IGNORE`` switches the use of a transition off (reference 5.3)."""

    ASSIGN = "ASSIGN"
    ATE_ABORT = "ATE_ABORT"
    AUTOSKIP = "AUTOSKIP"
    COMPLETE = "COMPLETE"
    MANUALSKIP = "MANUALSKIP"
    PI_ABORT = "PI_ABORT"
    REASSIGN = "REASSIGN"
    RESUME = "RESUME"
    SCHEDULE = "SCHEDULE"
    START = "START"
    SUSPEND = "SUSPEND"
    UNKNOWN = "UNKNOWN"
    WITHDRAW = "WITHDRAW"
    IGNORE = "IGNORE"


D = ColumnDefinition

FAMILY: dict[ColumnDefinition, Family] = {
    D.TEXT: Family.TEXT,
    D.ACTIVITY: Family.TEXT,
    D.RESOURCE: Family.TEXT,
    D.NUMBER: Family.NUMBER,
    D.DURATION: Family.NUMBER,
    D.COST: Family.NUMBER,
    D.BOOLEAN: Family.BOOLEAN,
    D.DATETIME: Family.DATETIME,
    D.TIMESTAMP: Family.DATETIME,
    D.START_TIMESTAMP: Family.DATETIME,
    D.END_TIMESTAMP: Family.DATETIME,
    D.CATEGORICAL: Family.CATEGORICAL,
}

#: The definitions of the column that orders events in time, in order of preference (reference 5.7).
TIME_DEFINITIONS = (D.TIMESTAMP, D.START_TIMESTAMP, D.END_TIMESTAMP)

#: Definitions whose column is renamed to the definition's own name (reference 5.6).
SPECIAL = frozenset(
    {
        D.CASE_ID,
        D.ACTIVITY,
        D.TIMESTAMP,
        D.START_TIMESTAMP,
        D.END_TIMESTAMP,
        D.RESOURCE,
        D.DURATION,
        D.COST,
        D.OUTCOME,
        D.TREATMENT,
        D.TREATMENT_RESOURCE,
        D.COMPLETE_INDICATOR,
    }
)

#: Definitions a user may build outcome conditions on (reference 2.2, ``outcome_options``).
CONDITION_TYPES = frozenset(
    {
        D.TEXT,
        D.NUMBER,
        D.BOOLEAN,
        D.DATETIME,
        D.ACTIVITY,
        D.RESOURCE,
        D.DURATION,
        D.COST,
        D.TIMESTAMP,
        D.START_TIMESTAMP,
        D.END_TIMESTAMP,
    }
)

#: The pseudo-column every outcome definition may use: the case's duration.
DURATION_COLUMN = "DURATION"


def family(definition: ColumnDefinition | str | None) -> Family:
    """The family of a definition; unclassified ones (CASE_ID, TRANSITION, ``None``) behave as TEXT."""
    if definition is None:
        return Family.TEXT
    return FAMILY.get(ColumnDefinition(definition), Family.TEXT)


_XES_PREFIXES = {"concept", "lifecycle", "org", "time", "case"}
_XES_NAMES = {
    "case:concept:name": D.CASE_ID,
    "concept:name": D.ACTIVITY,
    "time:timestamp": D.TIMESTAMP,
    "lifecycle:transition": D.TRANSITION,
    "org:resource": D.RESOURCE,
}
_RESOURCE_NAMES = {
    "resource",
    "user",
    "person",
    "agent",
    "employee",
    "operator",
    "representative",
    "personnel",
    "specialist",
    "worker",
    "staff",
    "technician",
    "technologist",
}
_SEP = r"[_ \-:.]?"
_START_RE = re.compile(rf"^(start|begin){_SEP}(time|date|timestamp)$")
_END_RE = re.compile(rf"^(end|finish|complete|stop){_SEP}(time|date|timestamp)$")


def infer_definition(column: str) -> ColumnDefinition | None:
    """Guess a column's definition from its name, by PrCore's rules (reference 5.2).

    >>> infer_definition("Case ID"), infer_definition("start_time"), infer_definition("AMOUNT_REQ")
    (<ColumnDefinition.CASE_ID: 'CASE_ID'>, <ColumnDefinition.START_TIMESTAMP: 'START_TIMESTAMP'>, None)
    """
    if ":" in column and column.split(":", 1)[0] in _XES_PREFIXES:
        return _XES_NAMES.get(column)
    name = column.strip().lower()
    if name in {"case id", "case_id", "caseid"}:
        return D.CASE_ID
    if name in {"activity", "task", "action"}:
        return D.ACTIVITY
    if "timestamp" in name:
        return D.TIMESTAMP
    if "transition" in name:
        return D.TRANSITION
    if name in _RESOURCE_NAMES:
        return D.RESOURCE
    if _START_RE.match(name):
        return D.START_TIMESTAMP
    if _END_RE.match(name):
        return D.END_TIMESTAMP
    if "duration" in name:
        return D.DURATION
    if "cost" in name:
        return D.COST
    return None


@dataclass(frozen=True)
class ColumnsDefinition:
    """A validated columns definition of one event log.

    ``columns`` maps every defined column (file name) to its definition or ``None`` (ignored column); columns of
    the file that are not listed are treated as TEXT event attributes.
    """

    columns: Mapping[str, ColumnDefinition | None]
    case_attributes: tuple[str, ...] = ()
    fast_mode: bool = True
    start_transition: Transition = Transition.START
    complete_transition: Transition = Transition.COMPLETE
    abort_transition: Transition = Transition.ATE_ABORT
    _by_definition: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        by_definition: dict[ColumnDefinition, list[str]] = {}
        for column, definition in self.columns.items():
            if definition is not None:
                by_definition.setdefault(definition, []).append(column)
        object.__setattr__(self, "_by_definition", by_definition)

    def column_of(self, definition: ColumnDefinition) -> str | None:
        """The (first) column defined as ``definition``, or ``None``."""
        found = self._by_definition.get(definition)
        return found[0] if found else None

    @property
    def case_id(self) -> str:
        return self.column_of(D.CASE_ID)

    @property
    def activity(self) -> str:
        return self.column_of(D.ACTIVITY)

    @property
    def resource(self) -> str | None:
        return self.column_of(D.RESOURCE)

    @property
    def transition(self) -> str | None:
        return self.column_of(D.TRANSITION)

    def renamed(self, column: str) -> str:
        """The canonical name of a column in training data, ongoing data and prefixes (reference 5.6).

        >>> d = ColumnsDefinition({"Case ID": ColumnDefinition.CASE_ID, "AMOUNT_REQ": ColumnDefinition.NUMBER},
        ...                       case_attributes=("AMOUNT_REQ",))
        >>> d.renamed("Case ID"), d.renamed("AMOUNT_REQ"), d.renamed("note")
        ('CASE_ID', 'CASE_ATTRIBUTE_NUMBER_AMOUNT_REQ', 'EVENT_ATTRIBUTE_TEXT_note')
        """
        definition = self.columns.get(column)
        if definition in SPECIAL:
            return str(definition)
        if definition is D.CATEGORICAL:
            return f"CATEGORICAL_{column}"
        kind = str(definition) if definition is not None else "TEXT"
        scope = "CASE_ATTRIBUTE" if column in self.case_attributes else "EVENT_ATTRIBUTE"
        return f"{scope}_{kind}_{column}"

    def canonical_name(self, column: str) -> str:
        """The canonical name of any column of a file or a posted event: a column the definition lists is
        :meth:`renamed`, any other is a text event attribute.

        >>> d = ColumnsDefinition({"Case ID": ColumnDefinition.CASE_ID}, case_attributes=("branch",))
        >>> d.canonical_name("Case ID"), d.canonical_name("branch")
        ('CASE_ID', 'EVENT_ATTRIBUTE_TEXT_branch')
        """
        return self.renamed(column) if column in self.columns else f"EVENT_ATTRIBUTE_TEXT_{column}"

    @property
    def time_column(self) -> str | None:
        """The column that orders events in time: the timestamp, else the start, else the end timestamp.

        >>> ColumnsDefinition({"start": ColumnDefinition.START_TIMESTAMP, "end": ColumnDefinition.END_TIMESTAMP}
        ...                   ).time_column
        'start'
        """
        return next((c for c in map(self.column_of, TIME_DEFINITIONS) if c), None)

    def to_dict(self) -> dict:
        """The definition as PrCore serialises it (``columns_definition``, ``case_attributes``, ...)."""
        return {
            "columns_definition": {c: (str(d) if d is not None else None) for c, d in self.columns.items()},
            "case_attributes": list(self.case_attributes) or None,
            "fast_mode": self.fast_mode,
            "start_transition": str(self.start_transition),
            "complete_transition": str(self.complete_transition),
            "abort_transition": str(self.abort_transition),
        }

    @property
    def condition_columns(self) -> list[str]:
        """Columns a treatment may be defined on (reference 2.2, ``treatment_options``)."""
        return [c for c, d in self.columns.items() if d in CONDITION_TYPES]

    @property
    def outcome_columns(self) -> list[str]:
        """Columns an outcome may be defined on: the treatment options plus the ``DURATION`` pseudo-column."""
        options = self.condition_columns
        if D.DURATION not in self._by_definition:
            options.append(DURATION_COLUMN)
        return options


def _parse_transition(name: str, value) -> Transition:
    try:
        return Transition(str(value).strip().upper())
    except ValueError:
        allowed = ", ".join(t.value for t in Transition)
        raise errors.InvalidColumnsDefinitionError(f"Invalid {name} '{value}': must be one of {allowed}") from None


def validate_columns_definition(
    columns_header: Iterable[str],
    columns_definition: Mapping[str, str | None],
    case_attributes: Iterable[str] | None = None,
    fast_mode: bool = True,
    start_transition: str = "START",
    complete_transition: str = "COMPLETE",
    abort_transition: str = "ATE_ABORT",
) -> ColumnsDefinition:
    """Check a user's columns definition against the file's columns, in PrCore's order (reference 5.3).

    Raises
    ------
    InvalidColumnsDefinitionError
        With PrCore's message, e.g. ``"No case ID column found"``.
    """
    header = set(columns_header)
    if not isinstance(columns_definition, Mapping) or not columns_definition:
        raise errors.InvalidColumnsDefinitionError(errors.INVALID_COLUMN_DEFINITION)
    parsed: dict[str, ColumnDefinition | None] = {}
    for column, definition in columns_definition.items():
        if column not in header:
            raise errors.InvalidColumnsDefinitionError(errors.INVALID_COLUMN_DEFINITION)
        if definition is None or definition == "":
            parsed[column] = None
            continue
        try:
            parsed[column] = ColumnDefinition(str(definition).strip().upper())
        except ValueError:
            raise errors.InvalidColumnsDefinitionError(
                f"Invalid column definition '{definition}' for column '{column}'"
            ) from None

    def count(definition):
        return sum(1 for d in parsed.values() if d is definition)

    for definition, missing, multiple in (
        (D.CASE_ID, "No case ID column found", "Multiple case ID columns found"),
        (D.ACTIVITY, "No activity column found", "Multiple activity columns found"),
    ):
        if count(definition) == 0:
            raise errors.InvalidColumnsDefinitionError(missing)
        if count(definition) > 1:
            raise errors.InvalidColumnsDefinitionError(multiple)
    timestamps, starts, ends = count(D.TIMESTAMP), count(D.START_TIMESTAMP), count(D.END_TIMESTAMP)
    if timestamps + starts + ends == 0:
        raise errors.InvalidColumnsDefinitionError("No timestamp column found")
    if timestamps > 1:
        raise errors.InvalidColumnsDefinitionError("Multiple timestamp columns found")
    if starts > 1:
        raise errors.InvalidColumnsDefinitionError("Multiple start timestamp columns found")
    if ends > 1:
        raise errors.InvalidColumnsDefinitionError("Multiple end timestamp columns found")
    if timestamps == 0 and not (starts and ends):
        raise errors.InvalidColumnsDefinitionError(errors.INVALID_COLUMN_DEFINITION)
    attributes = tuple(dict.fromkeys(case_attributes or ()))
    if any(a not in header for a in attributes):
        raise errors.InvalidColumnsDefinitionError(errors.INVALID_CASE_ATTRIBUTES)
    return ColumnsDefinition(
        columns=parsed,
        case_attributes=attributes,
        fast_mode=bool(fast_mode),
        start_transition=_parse_transition("start_transition", start_transition),
        complete_transition=_parse_transition("complete_transition", complete_transition),
        abort_transition=_parse_transition("abort_transition", abort_transition),
    )
