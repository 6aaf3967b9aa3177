"""A project's data as downloadable files (reference 2.26): what was uploaded, trained on and held out.

Names are random, as PrCore's were (eight letters and digits and the file's extension); columns are the
uploaded ones, except ``processed``, which is the training data as the plugins see it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prcore_core.columns import ColumnsDefinition
from prcore_core.preparation import PreparedLog
from prcore_core.results import new_key

#: Fewest events a held-out case needs to give an ongoing prefix; prefixes keep 3 to n-1 events.
MIN_ONGOING_EVENTS = 4


def original_name(file_name: str, raw_path: str) -> str:
    """A random name with the uploaded file's extension."""
    return new_key() + ("".join(Path(raw_path).suffixes[-2:]) or Path(file_name).suffix)


def csv_file(frame: pd.DataFrame) -> tuple[str, bytes]:
    """``(random name, CSV bytes)``; datetimes as ISO text."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda v: v.isoformat() if pd.notna(v) else None)
    return f"{new_key()}.csv", out.to_csv(index=False).encode()


def processed(prepared: PreparedLog) -> pd.DataFrame:
    """The training cases' events with the renamed columns and each case's labels (``OUTCOME``, ...)."""
    training = prepared.events[prepared.events["CASE_ID"].astype(str).isin(prepared.training_cases.astype(str))]
    labels = prepared.labels.copy()
    labels.index = labels.index.astype(str)
    labels = labels.loc[:, [c for c in labels.columns if c not in training.columns]]
    joined = training.assign(CASE_ID=training["CASE_ID"].astype(str)).join(labels, on="CASE_ID")
    return joined.reset_index(drop=True)


def held_out_rows(frame: pd.DataFrame, columns: ColumnsDefinition, cases: pd.Index) -> pd.DataFrame:
    """The held-out cases' rows as uploaded (the cases a simulation replays), in file order."""
    kept = frame[columns.case_id].astype(str).isin(cases.astype(str))
    return frame[kept].reset_index(drop=True)


def ongoing(rows: pd.DataFrame, case_column: str, seed: int | None = None) -> pd.DataFrame:
    """A random prefix of 3 to n-1 rows of each case of at least 4 rows: cases as they look while running."""
    rng = np.random.default_rng(seed)
    case = rows[case_column].astype(str).reset_index(drop=True)
    sizes = case.value_counts(sort=False)
    sizes = sizes[sizes >= MIN_ONGOING_EVENTS]
    lengths = pd.Series(rng.integers(3, sizes.to_numpy()), index=sizes.index)  # 3 .. size - 1 rows
    keep = case.map(lengths).fillna(0).to_numpy()
    position = case.groupby(case, sort=False).cumcount().to_numpy()
    return rows[position < keep].reset_index(drop=True)
