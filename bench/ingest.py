"""Ingest benchmark: parse + store an event log, define its columns, label its cases.

Prints, as medians of ``--repeat`` runs: parse time (``read_event_log``), upload time (parse + raw copy + Parquet +
database row), columns-definition time (validation and analysis), preparation steps (value parsing, transitions,
outcome and treatment labelling), rows per second, and the process's peak memory.

    python bench/ingest.py --log ../shared/data/bpic2012-CSV.zip --log ../shared/data/bpic2012-XES.zip

Known logs (by file name) get the columns and definitions of PrCore's reference (section 14); other logs use the
inferred column definition and no outcome.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prcore_core import PrCore, conditions, transitions, values
from prcore_core.columns import validate_columns_definition
from prcore_core.conditions import CaseDefinition
from prcore_core.reading import read_event_log


def _condition(column, value):
    return [[{"column": column, "operator": "EQUAL", "value": value}]]


PRESETS = {
    "bpic2012-CSV": {
        "columns": {"Case ID": "CASE_ID", "start_time": "START_TIMESTAMP", "end_time": "END_TIMESTAMP",
                    "AMOUNT_REQ": "NUMBER", "REG_DATE": "DATETIME", "Activity": "ACTIVITY", "Resource": "RESOURCE"},
        "case_attributes": ["AMOUNT_REQ", "REG_DATE"],
        "fast_mode": True,
        "outcome": _condition("Activity", "A_APPROVED"),
        "treatment": _condition("Activity", "O_SENT_BACK"),
    },
    "bpic2012-XES": {
        "columns": {"org:resource": "RESOURCE", "lifecycle:transition": "TRANSITION", "concept:name": "ACTIVITY",
                    "time:timestamp": "TIMESTAMP", "case:REG_DATE": "DATETIME", "case:concept:name": "CASE_ID",
                    "case:AMOUNT_REQ": "NUMBER"},
        "case_attributes": ["case:REG_DATE", "case:AMOUNT_REQ"],
        "fast_mode": False,
        "outcome": _condition("concept:name", "A_APPROVED"),
        "treatment": _condition("concept:name", "O_SENT_BACK"),
    },
}  # fmt: skip


def preset_for(path: Path, header, inferred) -> dict:
    for name, preset in PRESETS.items():
        if path.name.startswith(name):
            return preset
    return {"columns": {c: d for c, d in zip(header, inferred, strict=True) if d}, "case_attributes": [],
            "fast_mode": True, "outcome": None, "treatment": None}  # fmt: skip


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def bench(path: Path, repeat: int) -> None:
    data = path.read_bytes()
    figures: dict[str, list[float]] = {}

    def record(name, seconds):
        figures.setdefault(name, []).append(seconds)

    for _ in range(repeat):
        seconds, frame = timed(read_event_log, data, path.name)
        record("parse", seconds)
        with tempfile.TemporaryDirectory() as directory, PrCore(data_dir=directory) as core:
            seconds, event_log = timed(core.upload_event_log, data, path.name)
            record("upload (parse + store)", seconds)
            preset = preset_for(path, event_log.columns_header, event_log.inferred_definition)
            seconds, _ = timed(core.set_columns_definition, event_log.id, preset["columns"],
                               preset["case_attributes"], preset["fast_mode"])  # fmt: skip
            record("columns definition + analysis", seconds)
        columns = validate_columns_definition(frame.columns, preset["columns"], preset["case_attributes"],
                                              preset["fast_mode"])  # fmt: skip
        seconds, parsed = timed(values.parse_log, frame, columns)
        record("parse values by family", seconds)
        seconds, _ = timed(conditions.case_durations, parsed, columns)
        record("case durations", seconds)
        seconds, (parsed, effective) = timed(transitions.apply_transitions, parsed, columns)
        record(f"transitions ({'fast' if columns.fast_mode else 'detailed'})", seconds)
        if preset["outcome"]:
            outcome = CaseDefinition.parse(preset["outcome"], effective)
            treatment = CaseDefinition.parse(preset["treatment"], effective)
            seconds, labels = timed(conditions.label_cases, parsed, effective, outcome, False, treatment)
            record("outcome + treatment labels", seconds)
    rows = len(frame)
    print(f"\n{path.name}: {rows:,} rows, {frame.shape[1]} columns, {len(parsed):,} rows after transitions")
    if preset["outcome"]:
        print(f"  cases labelled: {len(labels):,} (outcome positive {int(labels['OUTCOME'].sum()):,}, "
              f"treated {int(labels['TREATMENT'].sum()):,})")  # fmt: skip
    for name, samples in figures.items():
        median = statistics.median(samples)
        runs = ", ".join(f"{s:.3f}" for s in samples)
        print(f"  {name:<34} median {median:7.3f} s   [{runs}]")
    parse = statistics.median(figures["parse"])
    print(f"  {'rows per second (parse)':<34} {rows / parse:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", action="append", required=True, type=Path, help="event log file (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per log (median reported)")
    args = parser.parse_args()
    started = time.perf_counter()
    for path in args.log:
        bench(path, args.repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS of this process): {peak:,.0f} MiB; total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
