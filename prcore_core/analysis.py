"""Looking at a defined event log before a project exists: live case counts for definitions, the process map.

Both are computed on the log in fast transition mode (one row per finished activity instance), vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prcore_core import conditions, transitions, values
from prcore_core.columns import ColumnsDefinition
from prcore_core.conditions import CaseDefinition, LogEvaluator


@dataclass
class DefinedLog:
    """A parsed event log with its columns definition, ready for repeated questions (kept in a small cache)."""

    log: pd.DataFrame
    columns: ColumnsDefinition
    evaluator: LogEvaluator

    @classmethod
    def build(cls, frame: pd.DataFrame, columns: ColumnsDefinition) -> DefinedLog:
        parsed = values.parse_log(frame, columns)
        durations = conditions.case_durations(parsed, columns)
        per_case = durations.groupby(parsed[columns.case_id].to_numpy()).first()
        parsed, _ = transitions.apply_transitions(parsed, columns, detailed=False)
        parsed = parsed[parsed[columns.case_id].notna()].reset_index(drop=True)
        return cls(parsed, columns, LogEvaluator(parsed, columns, parsed[columns.case_id].map(per_case)))

    @property
    def n_cases(self) -> int:
        return len(self.evaluator.cases)

    def count_matching(self, raw_definition) -> int:
        """How many cases a (raw, JSON) OR-of-AND definition labels positive; raises ``InvalidConditionError``."""
        definition = CaseDefinition.parse(raw_definition, self.columns)
        return int(self.evaluator.evaluate_array(definition).sum())

    def values_of(self, column: str, limit: int = 200) -> list[str]:
        """The most frequent values of a column (e.g. activities to offer in a condition editor)."""
        counts = self.log[column].dropna().astype(str).value_counts()
        return counts.index[:limit].tolist()

    def directly_follows(self) -> pd.DataFrame:
        """Directly-follows relation with frequencies: ``source``, ``target``, ``frequency``.

        Start and end of cases appear as the artificial activities ``▶`` and ``■``.
        """
        case, activity = self.columns.case_id, self.columns.activity
        time = self.columns.time_column
        ordered = self.log.sort_values([case, time], kind="stable") if time else self.log
        cases = ordered[case].to_numpy()
        acts = ordered[activity].astype(str).to_numpy()
        same = np.r_[cases[1:] == cases[:-1], False] if len(cases) else np.array([], dtype=bool)
        first = np.r_[True, ~same[:-1]] if len(cases) else same
        pairs = pd.DataFrame(
            {
                "source": np.concatenate(
                    [acts[:-1][same[:-1]] if len(acts) else acts, np.full(first.sum(), "▶"), acts[~same]]
                ),
                "target": np.concatenate(
                    [acts[1:][same[:-1]] if len(acts) else acts, acts[first], np.full((~same).sum(), "■")]
                ),
            }
        )
        return (
            pairs.value_counts()
            .rename("frequency")
            .reset_index()
            .sort_values("frequency", ascending=False, ignore_index=True)
        )

    def activity_frequencies(self) -> pd.Series:
        return self.log[self.columns.activity].astype(str).value_counts()
