"""Scale benchmark: how time and memory grow with the log, through the facade.

Builds BPIC 2012 × 1, × 4 and × 10 (copies of every case with renamed case ids, each copy shifted in time by the
log's span, so the log grows in cases and in calendar time as a real one does) and a synthetic wide log (the first
150,000 events of BPIC 2012 with 123 extra event attributes, half text of 5 to 5,000 distinct values, half numbers).
Each log is measured in a fresh process, so that each peak memory (max RSS) is its own:

* parse: ``read_event_log`` of the CSV bytes;
* upload: parse, the raw copy, Parquet and the database row (``PrCore.upload_event_log``);
* define: the columns definition (validation and analysis);
* train: ``create_project`` to TRAINED (preparation, every applicable plugin and its baselines, evaluation);
* prescribe: batch prescriptions for the ongoing cases, copied as the log was (BPIC 2012's 2,618 ongoing cases × the
  factor; the wide log's own last events);
* peak RSS of the process, against the limit (2 GiB; 4 GiB for × 10).

It then prints the growth of each figure between sizes against the growth of the log (linear growth has ratio 1).

    python bench/scale.py --log ../shared/data/bpic2012-CSV.zip --ongoing ../shared/data/bpic2012-ongoing-CSV.zip
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from ingest import preset_for

from prcore_core import PrCore
from prcore_core.reading import read_event_log

GIB = 2**30
#: Peak memory allowed per log size (issue 16): 2 GiB, and 4 GiB for BPIC 2012 × 10.
LIMITS = {"x1": 2 * GIB, "x4": 2 * GIB, "x10": 4 * GIB, "wide": 2 * GIB}
TIME_COLUMNS = ("start_time", "end_time", "REG_DATE")
WIDE_EVENTS = 150_000
WIDE_TEXT, WIDE_NUMBERS = 62, 61


def copies(frame: pd.DataFrame, factor: int, case_column: str = "Case ID") -> pd.DataFrame:
    """``factor`` copies of every case; copy ``k`` has case ids ``<id>-k`` and times shifted by ``k`` spans."""
    if factor == 1:
        return frame
    times = {c: pd.to_datetime(frame[c], utc=True, format="ISO8601") for c in TIME_COLUMNS if c in frame}
    span = times["start_time"].max() - times["start_time"].min() + pd.Timedelta(days=1)
    parts = []
    for k in range(factor):
        part = frame.copy()
        part[case_column] = frame[case_column].astype(str) + f"-{k}"
        for column, values in times.items():
            part[column] = (values + k * span).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def widened(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, dict[str, str]]:
    """The first ``WIDE_EVENTS`` events with extra text and number event attributes, and their column types."""
    rng = np.random.default_rng(seed)
    wide = frame.iloc[:WIDE_EVENTS].copy()
    extra: dict[str, np.ndarray] = {}
    types = {}
    for i in range(WIDE_TEXT):
        cardinality = int(np.geomspace(5, 5000, WIDE_TEXT)[i])
        extra[f"text_{i:03d}"] = np.char.add("v", rng.integers(0, cardinality, len(wide)).astype(str))
        types[f"text_{i:03d}"] = "TEXT"
    for i in range(WIDE_NUMBERS):
        extra[f"number_{i:03d}"] = np.round(rng.normal(100, 30, len(wide)), 2).astype(str)
        types[f"number_{i:03d}"] = "NUMBER"
    return pd.concat([wide.reset_index(drop=True), pd.DataFrame(extra)], axis=1), types


def as_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def make(name: str, log: Path, ongoing: Path | None, directory: Path) -> dict:
    """Write the log of one size (and its ongoing cases) as CSV files into ``directory``; their description."""
    base = read_event_log(log.read_bytes(), filename=log.name)
    preset = dict(preset_for(log, list(base.columns), [None] * len(base.columns)))
    columns = dict(preset["columns"])
    if name == "wide":
        frame, types = widened(base)
        columns.update(types)
        ongoing_frame = frame.groupby("Case ID", sort=False).head(3).iloc[:30_000]
    else:
        factor = int(name[1:])
        frame = copies(base, factor)
        ongoing_frame = None
        if ongoing is not None:
            ongoing_frame = copies(read_event_log(ongoing.read_bytes(), filename=ongoing.name), factor)
    (directory / "log.csv").write_bytes(as_csv(frame))
    if ongoing_frame is not None:
        (directory / "ongoing.csv").write_bytes(as_csv(ongoing_frame))
    return {"preset": {**preset, "columns": columns}, "events": len(frame), "columns": frame.shape[1]}


def measure(name: str, directory: Path) -> dict:
    """Every figure of one log size, in this process (the data was written by another, see :func:`make`)."""
    made = json.loads((directory / "made.json").read_text())
    preset, columns = made["preset"], made["preset"]["columns"]
    data = (directory / "log.csv").read_bytes()
    ongoing_path = directory / "ongoing.csv"
    ongoing_frame = read_event_log(ongoing_path) if ongoing_path.exists() else None
    figures: dict = {"name": name, "events": made["events"], "columns": made["columns"], "csv_mib": len(data) / 2**20}
    started = time.perf_counter()
    read_event_log(data, filename="log.csv")
    figures["parse_s"] = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as directory, PrCore(data_dir=directory) as core:
        started = time.perf_counter()
        event_log = core.upload_event_log(data, filename=f"{name}.csv")
        figures["upload_s"] = time.perf_counter() - started
        figures["peak_after_upload_mib"] = _peak_mib()
        del data
        started = time.perf_counter()
        core.set_columns_definition(event_log.id, columns, preset["case_attributes"], preset["fast_mode"])
        figures["define_s"] = time.perf_counter() - started
        figures["peak_after_define_mib"] = _peak_mib()
        started = time.perf_counter()
        project = core.create_project(event_log.id, positive_outcome=preset["outcome"], treatment=preset["treatment"])
        project = project.wait_until("TRAINED", timeout=3600)
        figures["train_s"] = time.perf_counter() - started
        figures["plugin_seconds"] = {p.key: (p.metrics or {}).get("training_seconds") for p in project.plugins}
        figures["peak_after_train_mib"] = _peak_mib()
        if ongoing_frame is not None:
            started = time.perf_counter()
            result = core.prescribe(project.id, ongoing_frame)
            figures["prescribe_s"] = time.perf_counter() - started
            figures["ongoing_cases"] = len(result)
    figures["peak_rss_mib"] = _peak_mib()
    return figures


def _peak_mib() -> float:
    """Peak RSS so far of this process and of its finished children (training may run in worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path, help="BPIC 2012 CSV (zipped or not)")
    parser.add_argument("--ongoing", type=Path, help="ongoing cases of the same log, copied as the log is")
    parser.add_argument("--sizes", default="x1,x4,x10,wide", help="comma-separated: x<factor> and/or wide")
    parser.add_argument("--make", help=argparse.SUPPRESS)  # a child process writes one size's data
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process measures one size
    parser.add_argument("--directory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        made = make(args.make, args.log, args.ongoing, args.directory)
        (args.directory / "made.json").write_text(json.dumps(made))
        return
    if args.one:
        print(json.dumps(measure(args.one, args.directory)))
        return

    rows = []
    for name in args.sizes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"prcore-scale-{name}-") as directory:
            command = [sys.executable, __file__, "--log", str(args.log), "--directory", directory]
            if args.ongoing:
                command += ["--ongoing", str(args.ongoing)]
            subprocess.run([*command, "--make", name], check=True)
            done = subprocess.run([*command, "--one", name], capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"{name}: failed (exit {done.returncode})\n{done.stderr[-3000:]}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(figures)
        limit = LIMITS.get(name, 2 * GIB) / 2**20
        shown = ", ".join(
            f"{key[:-2]} {figures[key]:.1f} s"
            for key in ("parse_s", "upload_s", "define_s", "train_s", "prescribe_s")
            if key in figures
        )
        verdict = "met" if figures["peak_rss_mib"] <= limit else "NOT met"
        print(
            f"{name:>5}: {figures['events']:,} events x {figures['columns']} columns ({figures['csv_mib']:.0f} MiB CSV)"
            f"; {shown}; peak RSS {figures['peak_rss_mib']:,.0f} MiB (limit {limit:,.0f}: {verdict})",
            flush=True,
        )
        if "ongoing_cases" in figures:
            print(f"       batch prescriptions for {figures['ongoing_cases']:,} ongoing cases")
        stages = ", ".join(f"{s} {figures[f'peak_after_{s}_mib']:,.0f}" for s in ("upload", "define", "train"))
        print(f"       peak RSS (MiB) after: {stages}")
        fits = ", ".join(f"{key} {seconds}" for key, seconds in figures["plugin_seconds"].items())
        print(f"       training seconds by plugin: {fits}")
    copies_measured = [r for r in rows if r["name"].startswith("x")]
    for smaller, larger in itertools.pairwise(copies_measured):
        growth = larger["events"] / smaller["events"]
        ratios = ", ".join(
            f"{key[:-2]} {larger[key] / smaller[key] / growth:.2f}"
            for key in ("parse_s", "upload_s", "define_s", "train_s", "prescribe_s", "peak_rss_mib")
            if key in smaller and key in larger and smaller[key]
        )
        print(f"growth {smaller['name']} -> {larger['name']} ({growth:.1f}x events), per unit of log: {ratios}")
    big = next((r for r in rows if r["name"] == "x10"), None)
    if big is not None:
        fast = big["upload_s"] + big["define_s"] + big["train_s"] <= 180
        print(f"x10 uploaded to TRAINED: {big['upload_s'] + big['define_s'] + big['train_s']:.0f} s "
              f"(target <= 180 s: {'met' if fast else 'NOT met'})")  # fmt: skip
        if "prescribe_s" in big:
            print(f"x10 batch prescriptions: {big['prescribe_s']:.1f} s (target <= 10 s: "
                  f"{'met' if big['prescribe_s'] <= 10 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
