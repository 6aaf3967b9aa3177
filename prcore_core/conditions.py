"""The condition language of outcome and treatment definitions (reference 6).

A definition is an OR of AND groups of conditions, written in JSON as a list of lists::

    [[{"column": "Activity", "operator": "EQUAL", "value": "A_APPROVED"}],
     [{"column": "DURATION", "operator": "LESS_THAN", "value": "10d"}]]

A case satisfies a group when at least one *single event row* satisfies every condition of the group (row-wise AND);
it satisfies the definition when it satisfies any group.

Why this module exists
----------------------
PrCore validated only some value types when a definition was stored and evaluated conditions case by case, with
several bugs (reference 13.1 #9-#13, #28). Here every condition is validated against its column's family when the
definition is parsed, so evaluation cannot fail later, and evaluation is vectorised over the whole log: one boolean
mask per condition, a row-wise AND per group and one scatter per group onto integer case codes. The dashboard relies
on that to show live counts of positive cases while a user edits a definition (:class:`LogEvaluator` keeps the
per-log work, such as the case codes, between evaluations).

The fixes, relative to PrCore:

* ``LATER_THAN_OR_EQUAL`` means ``>=`` (PrCore never matched, #9);
* CATEGORICAL ``NOT_EQUAL`` negates ``EQUAL`` and BOOLEAN columns accept only ``IS_TRUE``/``IS_FALSE`` (#10);
* BOOLEAN cells are read by :func:`prcore_core.values.to_boolean`, so ``"false"``/``"no"`` are false (#11);
* ``CONTAINS`` is a plain, case-insensitive substring test, so ``"a.b"`` or ``"("`` are literal (#13); missing text
  cells never crash: ``EQUAL``/``CONTAINS`` are false and ``NOT_EQUAL``/``NOT_CONTAINS`` true for them;
* negative number thresholds work (#13);
* every family's values are validated when the definition is parsed (#28).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from prcore_core import errors, values
from prcore_core.columns import DURATION_COLUMN, ColumnDefinition, ColumnsDefinition, Family, family

__all__ = [
    "OPERATORS",
    "CaseDefinition",
    "Condition",
    "LogEvaluator",
    "Operator",
    "case_durations",
    "evaluate",
    "label_cases",
    "operators_for",
    "parse_duration",
]


class Operator(StrEnum):
    """Comparison operators of the condition language (reference 6.2)."""

    EQUAL = "EQUAL"
    NOT_EQUAL = "NOT_EQUAL"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    EARLIER_THAN = "EARLIER_THAN"
    EARLIER_THAN_OR_EQUAL = "EARLIER_THAN_OR_EQUAL"
    LATER_THAN = "LATER_THAN"
    LATER_THAN_OR_EQUAL = "LATER_THAN_OR_EQUAL"
    IS_TRUE = "IS_TRUE"
    IS_FALSE = "IS_FALSE"
    IS = "IS"


_O = Operator

#: The operators each column family accepts (reference 6.2). Public so that a user interface offers only these.
#: BOOLEAN deliberately lacks ``IS``: PrCore accepted it and then never matched (13.1 #10).
OPERATORS: dict[Family, tuple[Operator, ...]] = {
    Family.TEXT: (_O.EQUAL, _O.NOT_EQUAL, _O.CONTAINS, _O.NOT_CONTAINS),
    Family.NUMBER: (
        _O.EQUAL,
        _O.NOT_EQUAL,
        _O.LESS_THAN,
        _O.LESS_THAN_OR_EQUAL,
        _O.GREATER_THAN,
        _O.GREATER_THAN_OR_EQUAL,
    ),
    Family.BOOLEAN: (_O.IS_TRUE, _O.IS_FALSE),
    Family.DATETIME: (
        _O.EQUAL,
        _O.NOT_EQUAL,
        _O.EARLIER_THAN,
        _O.EARLIER_THAN_OR_EQUAL,
        _O.LATER_THAN,
        _O.LATER_THAN_OR_EQUAL,
    ),
    Family.CATEGORICAL: (_O.EQUAL, _O.NOT_EQUAL, _O.IS),
}

# Label column names (reference 5.5 step 6).
OUTCOME = "OUTCOME"
TREATMENT = "TREATMENT"
TREATMENT_RESOURCE = "TREATMENT_RESOURCE"

# Spellings that make the first value of an OUTCOME / TREATMENT column true (reference 6.3).
_OUTCOME_WORDS = frozenset({"true", "1", "yes", "y", "positive"})
_OUTCOME_PREFIXES = ("complete", "finish", "close", "success", "succeed")
_TREATMENT_WORDS = frozenset({"true", "1", "yes", "y", "positive", "treatment", "treat", "treated"})


# --------------------------------------------------------------------------------------------------------------------
# Durations


_SECOND, _MINUTE, _HOUR, _DAY = 1.0, 60.0, 3600.0, 86400.0
_UNIT_SECONDS = {
    **dict.fromkeys(("months", "month", "mo", "m"), 30 * _DAY),
    **dict.fromkeys(("weeks", "week", "wk", "w"), 7 * _DAY),
    **dict.fromkeys(("days", "day", "d"), _DAY),
    **dict.fromkeys(("hours", "hour", "hr", "h"), _HOUR),
    **dict.fromkeys(("minutes", "minute", "min"), _MINUTE),
    **dict.fromkeys(("seconds", "second", "sec", "s"), _SECOND),
}
_DIGITS_RE = re.compile(r"[0-9]+")
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]{1,2})?)\s*([a-z]+)")


def parse_duration(text) -> float:
    """Read a duration threshold as seconds, with PrCore's syntax (reference 6.2, ``convert_to_seconds``).

    The text is trimmed and lower-cased. Only digits mean seconds; otherwise it must be a number with at most two
    decimals, optional spaces and a unit. ``m`` means **months** (30 days), as in PrCore, so that definitions keep
    their meaning when moved between PrCore and this workbench; minutes are ``min``. Compound forms such as
    ``"1h 30min"`` are rejected on purpose: PrCore rejects them, and accepting them would invite ``"1h 30m"``,
    which under PrCore's units silently means one hour and thirty *months*.

    Parameters
    ----------
    text : str or int
        The duration as written by the user; a JSON integer is read as its decimal text.

    Returns
    -------
    float
        The duration in seconds.

    Raises
    ------
    InvalidConditionError
        If the text is not a duration in this syntax (negative values are impossible by syntax).

    Examples
    --------
    >>> parse_duration("3600"), parse_duration(" 1.5 H"), parse_duration("2d"), parse_duration("1m")
    (3600.0, 5400.0, 172800.0, 2592000.0)
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise errors.InvalidConditionError(f"Invalid duration value {text!r}")
    normalised = str(text).strip().lower()
    if _DIGITS_RE.fullmatch(normalised):
        return float(normalised)
    match = _DURATION_RE.fullmatch(normalised)
    if match is None or match.group(2) not in _UNIT_SECONDS:
        raise errors.InvalidConditionError(f"Invalid duration value {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def case_durations(log: pd.DataFrame, columns: ColumnsDefinition) -> pd.Series:
    """The duration of each row's case in seconds, repeated on every row (reference 5.5 step 2).

    The sources, in PrCore's order of preference: a column defined as DURATION (its own parsed values, per row);
    else the TIMESTAMP column (per case, latest minus earliest); else START/END timestamps (rows ordered by start
    then end; the end of the last row minus the start of the first). Rows without a case id, or cases without usable
    timestamps, get ``NaN``.

    Parameters
    ----------
    log : pandas.DataFrame
        The parsed log (:func:`prcore_core.values.parse_log`), with the file's column names.
    columns : ColumnsDefinition
        The log's columns definition.

    Returns
    -------
    pandas.Series
        ``float64`` seconds, aligned with ``log``'s index.
    """
    duration_column = columns.column_of(ColumnDefinition.DURATION)
    if duration_column is not None and duration_column in log:
        return values.to_duration_seconds(log[duration_column]).astype("float64")
    result = np.full(len(log), np.nan)
    case_id = columns.case_id
    if case_id is None or case_id not in log or not len(log):
        return pd.Series(result, index=log.index, dtype="float64")
    codes, uniques = pd.factorize(log[case_id])
    valid = codes >= 0
    timestamp = columns.column_of(ColumnDefinition.TIMESTAMP)
    start = columns.column_of(ColumnDefinition.START_TIMESTAMP)
    end = columns.column_of(ColumnDefinition.END_TIMESTAMP)
    if timestamp is not None and timestamp in log:
        times = _as_datetime(log[timestamp]).reset_index(drop=True)[valid]
        grouped = times.groupby(codes[valid])
        per_case = (grouped.max() - grouped.min()).dt.total_seconds()
    elif start is not None and end is not None and start in log and end in log:
        frame = pd.DataFrame(
            {
                "start": _as_datetime(log[start]).reset_index(drop=True),
                "end": _as_datetime(log[end]).reset_index(drop=True),
                "case": codes,
            }
        )[valid]
        frame = frame.sort_values(["start", "end"], kind="stable")
        grouped = frame.groupby("case", sort=False)
        per_case = (grouped["end"].last() - grouped["start"].first()).dt.total_seconds()
    else:
        return pd.Series(result, index=log.index, dtype="float64")
    lookup = np.full(len(uniques), np.nan)
    lookup[per_case.index.to_numpy()] = per_case.to_numpy(dtype="float64", na_value=np.nan)
    result[valid] = lookup[codes[valid]]
    return pd.Series(result, index=log.index, dtype="float64")


# --------------------------------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True)
class Condition:
    """One comparison of a column (or the ``DURATION`` pseudo-column) with a value.

    ``value`` is kept as text, as PrCore stores it; it is interpreted by the column's family when evaluated.
    """

    column: str
    operator: Operator
    value: str | None

    def to_dict(self) -> dict:
        """The JSON form, e.g. ``{"column": "Activity", "operator": "EQUAL", "value": "A"}``."""
        return {"column": self.column, "operator": str(self.operator), "value": self.value}


@dataclass(frozen=True)
class CaseDefinition:
    """An outcome or treatment definition: an OR of AND groups of conditions (reference 6.1).

    Build one with :meth:`parse`, which validates it against a columns definition; constructing it directly skips
    validation (evaluation still checks every condition and raises :class:`~prcore_core.errors.InvalidConditionError`).

    Examples
    --------
    >>> from prcore_core.columns import ColumnDefinition as D, ColumnsDefinition
    >>> columns = ColumnsDefinition({"case": D.CASE_ID, "Activity": D.ACTIVITY, "time": D.TIMESTAMP})
    >>> definition = CaseDefinition.parse([[{"column": "Activity", "operator": "EQUAL", "value": "A"}]], columns)
    >>> definition.to_list()
    [[{'column': 'Activity', 'operator': 'EQUAL', 'value': 'A'}]]
    """

    groups: tuple[tuple[Condition, ...], ...]

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(tuple(group) for group in self.groups))

    def to_list(self) -> list[list[dict]]:
        """The JSON list-of-lists form PrCore stores and returns."""
        return [[condition.to_dict() for condition in group] for group in self.groups]

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every condition, group by group."""
        return tuple(condition for group in self.groups for condition in group)

    @classmethod
    def parse(cls, raw, columns: ColumnsDefinition) -> CaseDefinition:
        """Validate a user's definition against the columns definition, in PrCore's order and words (reference 6.2).

        First the shape of the whole definition (what PrCore's request model checks), then each condition in order:
        its column, its operator, its value. Unlike PrCore, values of every family are checked (13.1 #28), so an
        accepted definition always evaluates.

        Parameters
        ----------
        raw : list of list of dict
            The JSON form; a :class:`CaseDefinition` or :class:`Condition` objects are accepted too. Operators are
            read case-insensitively; values given as JSON numbers are turned into their text (``5`` -> ``"5"``).
        columns : ColumnsDefinition
            The event log's columns definition.

        Returns
        -------
        CaseDefinition

        Raises
        ------
        InvalidConditionError
            With PrCore's message, e.g. ``Column 'x' is not defined``.
        """
        if isinstance(raw, CaseDefinition):
            raw = raw.to_list()
        if not isinstance(raw, list | tuple) or not raw:
            raise errors.InvalidConditionError(errors.INVALID_DEFINITION)
        shaped = []
        for group in raw:
            if not isinstance(group, list | tuple) or not group:
                raise errors.InvalidConditionError(errors.INVALID_DEFINITION)
            shaped.append([_shape_condition(item) for item in group])
        groups = []
        for group in shaped:
            conditions = []
            for column, operator, value in group:
                kind = _column_kind(column, columns)
                operator = _check_operator(operator, kind, column)
                condition = Condition(column, operator, value)
                _threshold(condition, kind)
                conditions.append(condition)
            groups.append(tuple(conditions))
        return cls(tuple(groups))


def operators_for(column: str, columns: ColumnsDefinition) -> tuple[Operator, ...]:
    """The operators a condition on ``column`` may use, for offering only valid choices.

    >>> from prcore_core.columns import ColumnDefinition as D, ColumnsDefinition
    >>> operators_for("DURATION", ColumnsDefinition({"case": D.CASE_ID}))[:3]
    (<Operator.EQUAL: 'EQUAL'>, <Operator.NOT_EQUAL: 'NOT_EQUAL'>, <Operator.LESS_THAN: 'LESS_THAN'>)
    """
    return OPERATORS[_family_of_kind(_column_kind(column, columns))]


def value_kind(column: str, columns: ColumnsDefinition) -> str | Family:
    """What a condition's value on ``column`` is read as: ``"duration"`` (``10d``, ``4h``, seconds) or the family.

    Undefined columns read as text (an editor may show them before the definition says more).

    >>> from prcore_core.columns import ColumnDefinition as D, ColumnsDefinition
    >>> d = ColumnsDefinition({"case": D.CASE_ID, "amount": D.NUMBER})
    >>> value_kind("DURATION", d), value_kind("amount", d), value_kind("note", d)
    ('duration', <Family.NUMBER: 'NUMBER'>, <Family.TEXT: 'TEXT'>)
    """
    try:
        kind = _column_kind(column, columns)
    except errors.InvalidConditionError:
        return family(None)
    return "duration" if kind == _DURATION else Family(kind)


# A column's "kind" is its family, or _DURATION for the case-duration comparisons (a DURATION-defined column or the
# DURATION pseudo-column), which are NUMBER-family by operators but read their thresholds with parse_duration.
_DURATION = "DURATION_KIND"


def _family_of_kind(kind: str) -> Family:
    return Family.NUMBER if kind == _DURATION else Family(kind)


def _column_kind(column: str, columns: ColumnsDefinition) -> str:
    definition = columns.columns.get(column)
    if definition is not None:
        return _DURATION if definition is ColumnDefinition.DURATION else family(definition)
    if column == DURATION_COLUMN:
        return _DURATION
    raise errors.InvalidConditionError(f"Column '{column}' is not defined")


def _shape_condition(item) -> tuple[str, object, str | None]:
    """Check one condition's shape (PrCore's request model) and coerce its value to text."""
    if isinstance(item, Condition):
        return item.column, item.operator, item.value
    if not isinstance(item, Mapping) or not isinstance(item.get("column"), str):
        raise errors.InvalidConditionError(errors.INVALID_DEFINITION)
    operator, value = item.get("operator"), item.get("value")
    if not isinstance(operator, str):
        raise errors.InvalidConditionError(errors.INVALID_DEFINITION)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    elif value is not None and not isinstance(value, str):
        raise errors.InvalidConditionError(errors.INVALID_DEFINITION)
    return item["column"], operator, value


def _check_operator(operator, kind: str, column: str) -> Operator:
    try:
        parsed = Operator(str(operator).strip().upper())
    except ValueError:
        parsed = None
    if parsed is None or parsed not in OPERATORS[_family_of_kind(kind)]:
        raise errors.InvalidConditionError(f"Operator '{operator}' not supported for column '{column}'")
    return parsed


def _threshold(condition: Condition, kind: str):
    """The condition's value read for its column's kind; raises PrCore's value messages when it cannot be read."""
    column, value = condition.column, condition.value
    if condition.operator not in OPERATORS[_family_of_kind(kind)]:
        raise errors.InvalidConditionError(f"Operator '{condition.operator}' not supported for column '{column}'")
    if kind == _DURATION:
        try:
            return parse_duration(value)
        except errors.InvalidConditionError:
            raise errors.InvalidConditionError(f"Invalid duration value for {column}") from None
    if kind == Family.NUMBER:
        try:
            number = float(value.strip())
        except (AttributeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise errors.InvalidConditionError(f"Invalid number value for {column}")
        return number
    if kind == Family.DATETIME:
        moment = values.to_datetime_scalar(value) if isinstance(value, str) else None
        if moment is None:
            raise errors.InvalidConditionError(f"Invalid datetime value for {column}")
        return moment
    if kind == Family.CATEGORICAL:
        if not isinstance(value, str):
            raise errors.InvalidConditionError(f"Invalid categorical value for {column},value must be a string")
        return value
    if kind == Family.TEXT:
        if not isinstance(value, str):
            raise errors.InvalidConditionError(f"Invalid text value for {column}")
        return value
    return None  # BOOLEAN: the operator says it all


# --------------------------------------------------------------------------------------------------------------------
# Evaluation


def _as_datetime(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series
    return values.to_datetime(series)


class LogEvaluator:
    """Evaluates definitions on one parsed log, keeping per-log work between evaluations.

    The case codes (``pandas.factorize`` of the case ids, sorted), the case durations and the factorised text
    columns are computed once, so that re-evaluating edited definitions, as the dashboard does for its live counts,
    costs only the comparisons. The log must not change while an evaluator is in use.

    Parameters
    ----------
    log : pandas.DataFrame
        The parsed log (:func:`prcore_core.values.parse_log`).
    columns : ColumnsDefinition
        Its columns definition.
    durations : pandas.Series, optional
        Case durations in seconds per row, aligned with ``log`` (default: :func:`case_durations`).
    """

    def __init__(self, log: pd.DataFrame, columns: ColumnsDefinition, durations: pd.Series | None = None):
        self.log = log
        self.columns = columns
        codes, uniques = pd.factorize(log[columns.case_id], sort=True)
        self.codes = np.asarray(codes, dtype=np.intp)
        self.cases = pd.Index(uniques, name=columns.case_id)
        self._valid = self.codes >= 0
        self._valid_codes = self.codes[self._valid]
        self._durations = durations
        self._cache: dict = {}

    # -- per-log caches ------------------------------------------------------------------------------------------

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _column(self, column: str) -> pd.Series:
        if column not in self.log:
            raise errors.InvalidConditionError(f"Missing pre-defined column {column}")
        return self.log[column]

    def _text(self, column: str) -> tuple[np.ndarray, pd.Series]:
        """Row codes and lower-cased distinct values of a text column: comparisons run on the few distinct values."""

        def compute():
            codes, uniques = pd.factorize(self._column(column))
            return np.asarray(codes, dtype=np.intp), pd.Series(uniques).astype("string").str.lower()

        return self._cached(("text", column), compute)

    def _numbers(self, column: str) -> np.ndarray:
        return self._cached(("number", column), lambda: values.to_number(self._column(column)).to_numpy("float64"))

    def _datetimes(self, column: str) -> pd.Series:
        return self._cached(("datetime", column), lambda: _as_datetime(self._column(column)))

    def _booleans(self, column: str) -> pd.Series:
        def compute():
            series = self._column(column)
            return series if series.dtype == "boolean" else values.to_boolean(series)

        return self._cached(("boolean", column), compute)

    def _duration_seconds(self, column: str) -> np.ndarray:
        """Case durations for the pseudo-column and the DURATION column; other DURATION-defined columns as parsed."""

        def compute():
            if column != DURATION_COLUMN and column != self.columns.column_of(ColumnDefinition.DURATION):
                return values.to_duration_seconds(self._column(column)).to_numpy("float64")
            durations = self._durations
            if durations is None:
                durations = case_durations(self.log, self.columns)
            elif not durations.index.equals(self.log.index):
                durations = durations.reindex(self.log.index)
            return durations.to_numpy(dtype="float64", na_value=np.nan)

        key = DURATION_COLUMN if column == self.columns.column_of(ColumnDefinition.DURATION) else column
        return self._cached(("duration", key), compute)

    # -- masks -----------------------------------------------------------------------------------------------------

    def condition_mask(self, condition: Condition) -> np.ndarray:
        """Which rows satisfy one condition (a boolean array over the log's rows)."""
        return self._cached(("condition", condition), lambda: self._condition_mask(condition))

    def _condition_mask(self, condition: Condition) -> np.ndarray:
        kind = _column_kind(condition.column, self.columns)
        threshold = _threshold(condition, kind)
        operator, column = condition.operator, condition.column
        if kind in (Family.TEXT, Family.CATEGORICAL):
            codes, lowered = self._text(column)
            if operator in (_O.CONTAINS, _O.NOT_CONTAINS):
                hits = lowered.str.contains(threshold.lower(), regex=False)
            else:
                hits = lowered == threshold.strip().lower()
            # Code -1 (missing cell) picks the appended False: a missing cell equals / contains nothing.
            mask = np.append(hits.to_numpy(dtype=bool, na_value=False), False)[codes]
            return ~mask if operator in (_O.NOT_EQUAL, _O.NOT_CONTAINS) else mask
        if kind == Family.BOOLEAN:
            series = self._booleans(column)
            series = series if operator == _O.IS_TRUE else ~series
            return series.to_numpy(dtype=bool, na_value=False)
        if kind == Family.DATETIME:
            data = self._datetimes(column)
        elif kind == _DURATION:
            data = self._duration_seconds(column)
        else:
            data = self._numbers(column)
        with np.errstate(invalid="ignore"):
            result = _COMPARE[operator](data, threshold)
        return np.asarray(result, dtype=bool)

    def group_mask(self, group: Iterable[Condition]) -> np.ndarray:
        """Rows satisfying every condition of an AND group (row-wise AND)."""
        mask = np.ones(len(self.log), dtype=bool)
        for condition in group:
            mask &= self.condition_mask(condition)
        return mask

    def observed_rows(self, definition: CaseDefinition) -> np.ndarray:
        """Rows at which the definition becomes visible in the case so far (log sorted by case, then time).

        A row-level group is observed by the first row that satisfies it; a group involving the case duration is
        only known once the case is over, so it is observed at the case's last row. Cumulative within the case.
        """
        case = self.codes
        last = np.r_[case[1:] != case[:-1], True] if len(case) else np.array([], dtype=bool)
        hit = np.zeros(len(self.log), dtype=bool)
        for group in definition.groups:
            mask = self.group_mask(group)
            if any(self._column_kind_is_duration(c) for c in group):
                mask &= last
            hit |= mask
        # cumulative "any so far" within each case
        seen = np.maximum.accumulate(np.where(hit, np.arange(len(hit)), -1)) if len(hit) else hit.astype(np.intp)
        starts = (
            np.maximum.accumulate(np.where(np.r_[True, case[1:] != case[:-1]], np.arange(len(case)), 0))
            if len(case)
            else seen
        )
        return seen >= starts

    def _column_kind_is_duration(self, condition: Condition) -> bool:
        return _column_kind(condition.column, self.columns) == _DURATION

    def _cases_with(self, row_mask: np.ndarray) -> np.ndarray:
        """Per case: does any of its rows satisfy ``row_mask``? (``groupby(codes).any()`` as one scatter.)"""
        hit = np.zeros(len(self.cases), dtype=bool)
        hit[self._valid_codes[row_mask[self._valid]]] = True
        return hit

    def evaluate_array(self, definition: CaseDefinition) -> np.ndarray:
        """:meth:`evaluate` as a boolean array in the order of :attr:`cases`."""
        result = np.zeros(len(self.cases), dtype=bool)
        for group in definition.groups:
            result |= self._cases_with(self.group_mask(group))
        return result

    def evaluate(self, definition: CaseDefinition) -> pd.Series:
        """Whether each case satisfies the definition, indexed by case id (sorted)."""
        return pd.Series(self.evaluate_array(definition), index=self.cases, dtype=bool)

    def first_rows(self, definition: CaseDefinition) -> np.ndarray:
        """Per case, the position of the first row (in log order) satisfying the first group the case satisfies.

        ``-1`` for cases satisfying no group. This is the row whose resource PrCore records as the treatment
        resource.
        """
        first = np.full(len(self.cases), -1, dtype=np.intp)
        for group in definition.groups:
            rows = np.flatnonzero(self.group_mask(group) & self._valid)
            cases, at = np.unique(self.codes[rows], return_index=True)  # rows ascend, so `at` is each case's first
            new = first[cases] < 0
            first[cases[new]] = rows[at[new]]
        return first

    def first_value_flags(self, column: str, words: frozenset[str], prefixes: tuple[str, ...] = ()) -> np.ndarray:
        """Interpret the first non-missing value of ``column`` in each case as a yes/no label (reference 6.3).

        True for numbers > 0, for one of ``words`` and for text starting with one of ``prefixes`` (case-insensitive).
        """
        series = self._column(column).reset_index(drop=True)[self._valid]
        first = series.groupby(self._valid_codes).first().reindex(range(len(self.cases)))
        text = first.astype("string").str.strip().str.lower()
        flags = (pd.to_numeric(text, errors="coerce") > 0).to_numpy(dtype=bool, na_value=False)
        flags |= text.isin(words).to_numpy(dtype=bool, na_value=False)
        for prefix in prefixes:
            flags |= text.str.startswith(prefix).to_numpy(dtype=bool, na_value=False)
        return flags

    def label_cases(
        self, outcome: CaseDefinition | None, outcome_negative: bool, treatment: CaseDefinition | None
    ) -> pd.DataFrame:
        """See :func:`label_cases`."""
        labels = pd.DataFrame(index=self.cases)
        outcome_column = self.columns.column_of(ColumnDefinition.OUTCOME)
        if outcome is not None:
            positive = self.evaluate_array(outcome)
            labels[OUTCOME] = (~positive if outcome_negative else positive).astype("int64")
        elif outcome_column is not None:
            labels[OUTCOME] = self.first_value_flags(outcome_column, _OUTCOME_WORDS, _OUTCOME_PREFIXES).astype("int64")
        treatment_column = self.columns.column_of(ColumnDefinition.TREATMENT)
        if treatment is not None:
            resource = self.columns.resource
            if resource is not None and resource in self.log:
                first = self.first_rows(treatment)
                labels[TREATMENT] = (first >= 0).astype("int64")
                taken = self.log[resource].astype("string").iloc[np.maximum(first, 0)].to_numpy()
                labels[TREATMENT_RESOURCE] = pd.array(taken, dtype="string")
                labels.loc[first < 0, TREATMENT_RESOURCE] = pd.NA
            else:
                labels[TREATMENT] = self.evaluate_array(treatment).astype("int64")
        elif treatment_column is not None:
            labels[TREATMENT] = self.first_value_flags(treatment_column, _TREATMENT_WORDS).astype("int64")
        return labels


_COMPARE = {
    _O.EQUAL: lambda data, threshold: data == threshold,
    _O.NOT_EQUAL: lambda data, threshold: ~np.asarray(data == threshold, dtype=bool),  # missing cells: true
    _O.LESS_THAN: lambda data, threshold: data < threshold,
    _O.LESS_THAN_OR_EQUAL: lambda data, threshold: data <= threshold,
    _O.GREATER_THAN: lambda data, threshold: data > threshold,
    _O.GREATER_THAN_OR_EQUAL: lambda data, threshold: data >= threshold,
    _O.EARLIER_THAN: lambda data, threshold: data < threshold,
    _O.EARLIER_THAN_OR_EQUAL: lambda data, threshold: data <= threshold,
    _O.LATER_THAN: lambda data, threshold: data > threshold,
    _O.LATER_THAN_OR_EQUAL: lambda data, threshold: data >= threshold,  # PrCore never matched here (13.1 #9)
}


def evaluate(
    definition: CaseDefinition,
    log: pd.DataFrame,
    columns: ColumnsDefinition,
    durations: pd.Series | None = None,
) -> pd.Series:
    """Whether each case of a parsed log satisfies a definition (reference 6.3, with the fixes listed above).

    A group holds for a case when one of its rows satisfies all the group's conditions; the definition holds when
    any group does. Missing cells never satisfy ``EQUAL``, ``CONTAINS``, comparisons or ``IS_TRUE``/``IS_FALSE``;
    they always satisfy ``NOT_EQUAL`` and ``NOT_CONTAINS`` (the negations). Text comparisons ignore case. Datetime
    thresholds without an offset are taken as UTC, like the log's own naive timestamps.

    Parameters
    ----------
    definition : CaseDefinition
    log : pandas.DataFrame
        The parsed log (:func:`prcore_core.values.parse_log`).
    columns : ColumnsDefinition
    durations : pandas.Series, optional
        Case durations per row in seconds (default: :func:`case_durations` of ``log``).

    Returns
    -------
    pandas.Series
        ``bool`` per case, indexed by case id (sorted); rows without a case id are ignored. ``.sum()`` is the
        number of cases the definition holds for.

    Examples
    --------
    >>> from prcore_core.columns import ColumnDefinition as D, ColumnsDefinition
    >>> from prcore_core.values import parse_log
    >>> columns = ColumnsDefinition({"case": D.CASE_ID, "act": D.ACTIVITY, "time": D.TIMESTAMP})
    >>> log = parse_log(pd.DataFrame({"case": ["1", "1", "2"], "act": ["A", "B", "A"],
    ...                               "time": ["2024-01-01", "2024-01-03", "2024-01-01"]}), columns)
    >>> b_or_long = CaseDefinition.parse([[{"column": "act", "operator": "EQUAL", "value": "b"}],
    ...                                   [{"column": "DURATION", "operator": "GREATER_THAN", "value": "1d"}]], columns)
    >>> evaluate(b_or_long, log, columns).to_dict()
    {'1': True, '2': False}
    """
    return LogEvaluator(log, columns, durations).evaluate(definition)


def label_cases(
    log: pd.DataFrame,
    columns: ColumnsDefinition,
    outcome: CaseDefinition | None,
    outcome_negative: bool,
    treatment: CaseDefinition | None,
    durations: pd.Series | None = None,
) -> pd.DataFrame:
    """The outcome and treatment labels of every case (reference 5.5 step 6 and 6.3).

    Parameters
    ----------
    log : pandas.DataFrame
        The parsed log.
    columns : ColumnsDefinition
    outcome : CaseDefinition or None
        Cases satisfying it have the desired outcome, or, with ``outcome_negative``, the undesired one.
    outcome_negative : bool
        Whether ``outcome`` describes the negative outcome; the label is inverted so that ``OUTCOME = 1`` always
        means the desired outcome.
    treatment : CaseDefinition or None
        Cases satisfying it are treated.
    durations : pandas.Series, optional
        Case durations per row in seconds (default: :func:`case_durations`).

    Returns
    -------
    pandas.DataFrame
        Indexed by case id (sorted). ``OUTCOME`` (0/1) when an outcome definition is given, else when a column is
        defined as OUTCOME (its first value per case: a number > 0, ``true/1/yes/y/positive`` or text starting with
        ``complete/finish/close/success/succeed``). ``TREATMENT`` (0/1) likewise from the treatment definition or a
        TREATMENT column (``true/1/yes/y/positive/treatment/treat/treated`` or a number > 0). ``TREATMENT_RESOURCE``
        (text) when a treatment definition is given and a RESOURCE column exists: the resource of the first row, in
        log order, satisfying the first group the case satisfies; missing for untreated cases. A given definition
        takes precedence over an OUTCOME / TREATMENT column.
    """
    return LogEvaluator(log, columns, durations).label_cases(outcome, outcome_negative, treatment)
