"""The open cases of a streaming project, kept as canonical events so a new event costs parsing only itself.

Every posted event extends its case's prefix, and every plugin needs that prefix in the canonical, typed form it
was trained on. Re-parsing whole prefixes for every burst (as PrCore rebuilt them from its database) costs more the
longer cases get and is most of a prescription's time; here each event is parsed once, when it arrives, by the
same vectorised functions that parsed the training log (so a streamed prefix is encoded exactly like a training
prefix), and a burst's :class:`~prcore_core.dataset.PrefixBatch` is assembled from the kept rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from prcore_core import transitions, values
from prcore_core.columns import ColumnDefinition, ColumnsDefinition, Family, family
from prcore_core.dataset import CASE_ID, PREFIX_MARK, Attribute, PrefixBatch, time_order_keys
from prcore_core.preparation import canonical_events

#: The flag a posted event may carry; bookkeeping, not an attribute to learn from.
COMPLETE_INDICATOR = "COMPLETE_INDICATOR"
_ARRIVAL = "\x1farrival"
_SKIP = object()
#: The dtype of each family in canonical events (what :func:`~prcore_core.values.parse_column` returns), except
#: text, kept as Python strings: the encoders read a few cells of many columns per burst, and Arrow-backed strings
#: cost more to read cell by cell than they save.
_DTYPES = {Family.NUMBER: "float64", Family.DATETIME: "datetime64[ns, UTC]", Family.BOOLEAN: "boolean"}


class RunningCases:
    """Canonical events of the open cases of one streaming project.

    Parameters
    ----------
    columns
        The project's columns definition (names of the posted fields).
    attributes
        The attribute columns the plugins were trained with.

    Examples
    --------
    >>> from prcore_core.columns import ColumnDefinition as D
    >>> columns = ColumnsDefinition({"case": D.CASE_ID, "act": D.ACTIVITY, "ts": D.TIMESTAMP})
    >>> cases = RunningCases(columns)
    >>> batch, kept = cases.extend([("c1", {"case": "c1", "act": " A ", "ts": "2024-01-01T10:00"}),
    ...                             ("c1", {"case": "c1", "act": "B", "ts": "2024-01-01T11:00"})])
    >>> kept, batch.lengths.tolist(), batch.events["ACTIVITY"].tolist()
    ([True, True], [1, 2], ['A', 'A', 'B'])
    """

    def __init__(self, columns: ColumnsDefinition, attributes: Sequence[Attribute] = ()):
        self.columns = columns
        self.attributes = tuple(attributes)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._dtypes: dict[str, Any] = {}
        self._plan: dict[str, Any] = {}
        self._order: list[str] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, case_id: str) -> bool:
        return case_id in self._rows

    def close(self, case_id: str) -> None:
        """Forget a completed case."""
        self._rows.pop(case_id, None)

    def restore(self, histories: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Rebuild open cases from their stored events (after a restart or a re-activation), parsed in one pass."""
        events = [(case_id, event) for case_id, history in histories.items() for event in history]
        if events:
            self._append(events)

    def extend(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[PrefixBatch, list[bool]]:
        """Add events ``(case id, posted fields)`` in arrival order; return the prefix ending at each of them.

        Returns
        -------
        tuple
            A batch with the prefix ending at each event (its case's events so far, in time order), in event
            order, and per event whether it has a prefix: an event that lifecycle handling drops (e.g. a ``start``
            transition in fast mode) as the first of its case leaves its case empty and is skipped in the batch.
        """
        lengths = self._append(events)
        rows, owners = [], []  # every case's rows are kept in time order, so the prefixes need no sorting
        for number, ((case_id, _), length) in enumerate(zip(events, lengths, strict=True)):
            if not length:
                continue
            marked = f"{number}{PREFIX_MARK}{case_id}"
            # the prefix ends at its own event, even when its case has later events in the same burst
            rows.extend({**row, CASE_ID: marked} for row in self._rows[case_id][:length])
            owners.extend([number] * length)
        has_prefix = [length > 0 for length in lengths]
        if not rows:
            return PrefixBatch(
                pd.DataFrame(columns=list(self._dtypes)), np.array([], dtype=np.int64), self.attributes
            ), has_prefix
        frame = pd.DataFrame.from_records(rows, columns=list(self._dtypes))
        for column, dtype in self._dtypes.items():
            if frame[column].dtype != dtype:
                frame[column] = frame[column].astype(dtype)
        prefix = np.asarray(owners, dtype=np.int64)
        ends = np.flatnonzero(np.r_[prefix[1:] != prefix[:-1], True])
        return PrefixBatch(frame, ends, self.attributes), has_prefix

    def _append(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Parse the new events together, append each kept one to its case; the case's length after each event."""
        canonical, arrival = self._canonical([event for _, event in events])
        kept = dict(zip(arrival, canonical, strict=True))
        lengths = []
        for number, (case_id, _) in enumerate(events):
            history = self._rows.setdefault(case_id, [])
            if number in kept:
                self._insert(history, kept[number])
            lengths.append(len(history))
        for case_id, _ in events:
            if not self._rows.get(case_id, True):
                del self._rows[case_id]  # only dropped lifecycle events so far: nothing to keep
        return lengths

    def _insert(self, history: list[dict[str, Any]], row: dict[str, Any]) -> None:
        """Insert ``row`` in time order (:func:`~prcore_core.dataset.time_order_keys`, missing times last; after
        rows with equal keys, as a stable sort by arrival would): usually an append, events mostly arrive in order."""
        if self._order is None:
            self._order = time_order_keys(pd.DataFrame(columns=list(row)))
        key = self._key(row)
        if not history or self._key(history[-1]) <= key:
            history.append(row)
        else:
            history.insert(bisect.bisect_right([self._key(r) for r in history], key), row)

    def _key(self, row: dict[str, Any]) -> tuple:
        key = []
        for name in self._order:
            value = row.get(name)
            missing = value is None or value is pd.NaT or value != value
            key.append((1, "") if missing else (0, value))
        return tuple(key)

    def _canonical(self, raw: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
        """Canonical rows of the posted events that lifecycle handling keeps, and the position of each.

        Without a transition column (whose handling looks at the whole burst) and without durations, each event is
        parsed on its own by :func:`~prcore_core.values.parse_value`, which agrees with the vectorised parsing and
        avoids its fixed cost per burst; otherwise the burst goes through the vectorised pipeline.
        """
        if self.columns.transition is None and ColumnDefinition.DURATION not in self.columns.columns.values():
            return [self._canonical_row(event) for event in raw], list(range(len(raw)))
        # object dtype from the start: a burst mixing 112 and None must not turn the resource into "112.0"
        frame = pd.DataFrame(
            [{k: v for k, v in event.items() if k != COMPLETE_INDICATOR} for event in raw], dtype=object
        )
        frame = frame.where(frame.notna(), None)
        parsed = values.parse_log(frame, self.columns)
        parsed[_ARRIVAL] = np.arange(len(parsed))
        parsed, effective = transitions.apply_transitions(parsed, self.columns, detailed=False)
        arrival = parsed.pop(_ARRIVAL).tolist()
        events, _ = canonical_events(parsed, effective)
        for column in events.columns:
            self._dtypes.setdefault(column, events[column].dtype)
        return events.to_dict("records"), arrival

    def _canonical_row(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One event as :func:`~prcore_core.preparation.canonical_events` names and types it."""
        row = {}
        for key, value in event.items():
            plan = self._plan.get(key)
            if plan is None:
                plan = self._plan[key] = self._plan_for(key)
            if plan is _SKIP:
                continue
            name, definition = plan
            row[name] = values.parse_value(value, definition)
        return row

    def _plan_for(self, key: str):
        """Canonical name and definition of a posted field (``_SKIP`` for bookkeeping and ignored columns)."""
        if key == COMPLETE_INDICATOR and key not in self.columns.columns:
            return _SKIP
        definition = self.columns.columns.get(key, ColumnDefinition.TEXT)
        if definition in (None, ColumnDefinition.TRANSITION, ColumnDefinition.COMPLETE_INDICATOR):
            return _SKIP
        name = self.columns.canonical_name(key)
        self._dtypes.setdefault(name, _DTYPES.get(family(definition), object))
        return name, definition
