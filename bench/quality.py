"""Quality benchmark: every plugin scored from outside the project, beside strong baselines, on an honest hold-out.

The protocol is the one a new user (or an independent reviewer) follows:

1. The log's cases are split by start time: the earliest 80 % are uploaded as a new event log (rows in file order),
   the latest 20 % are held out and never reach the project.
2. The project trains (time from upload to TRAINED, ``--runs`` times on fresh data directories, median reported).
3. Every prefix of every held-out case is posted as an ongoing case of its own, its events in file order (the order
   a monitoring system posts them in: ties in time are not re-sorted), and the prescriptions are scored here:
   next activity on prefixes 1..n-1 (accuracy, top-1 ECE), the alarm on prefixes whose outcome is still undecided
   (ROC AUC, Brier, ECE), the remaining time on prefixes 1..n-1 (MAE, interval coverage) of held-out cases that
   completed, ending with an activity that ends at least 1 % of the uploaded cases (the end of the log cuts off
   many of the latest cases: their remaining time is unknown), and, for reference, on every prefix 1..n-1.
4. Baselines are fitted on the same uploaded cases in the same run and scored on the same prefixes: an n-gram with
   back-off and gradient boosting on aggregate + last-state features (:mod:`prcore_core.baselines`); for the
   remaining time, the mean by prefix length and by last activity.

It then prints each plugin's figure, the baselines' and the target, the project's own held-out figures, one-prefix
prediction latency, batch prescription time for ``--ongoing`` and peak memory.

    python bench/quality.py --log ../shared/data/bpic2012-CSV.zip --ongoing ../shared/data/bpic2012-ongoing-CSV.zip

Known logs (by file name) use the columns and definitions of PrCore's reference (section 14, see bench/ingest.py).
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import preset_for

from plugins.remaining_time import completed, final_activities
from prcore_core import PrCore
from prcore_core.baselines import AggregateBoostingAlarm, AggregateBoostingNextActivity, NGramNextActivity
from prcore_core.columns import validate_columns_definition
from prcore_core.conditions import CaseDefinition
from prcore_core.context import PredictionContext
from prcore_core.dataset import CASE_ID, PrefixBatch, order_time_column, outcome_observed
from prcore_core.encoding import seconds_since_epoch
from prcore_core.metrics import binary_probability_metrics, expected_calibration_error
from prcore_core.preparation import ProjectDefinition, prepare
from prcore_core.reading import read_event_log

RESOURCES = [f"Resource_{chr(ord('A') + i)}" for i in range(26)]  # reference 14: 26 resources, one hour
ADDITIONAL_INFO = {"resource-allocation": {"available_resources": RESOURCES, "treatment_duration": "1h"}}
TRAINING_SHARE = 0.8
MARK = "#"


def percentile(samples, q):
    return float(np.percentile(np.asarray(samples) * 1000, q))


def external_split(frame: pd.DataFrame, preset: dict):
    """The log prepared as the project would prepare it, split by case start time (80/20), and the raw split."""
    columns = validate_columns_definition(
        frame.columns, preset["columns"], preset["case_attributes"], preset["fast_mode"]
    )
    outcome = CaseDefinition.parse(preset["outcome"], columns) if preset["outcome"] else None
    treatment = CaseDefinition.parse(preset["treatment"], columns) if preset["treatment"] else None
    prepared = prepare(frame, columns, ProjectDefinition(outcome, False, treatment), TRAINING_SHARE)
    case = frame[columns.case_id].astype("string")
    uploaded = frame[case.isin(prepared.training_cases)]
    held_out = frame[case.isin(prepared.held_out_cases)]
    return prepared, columns, uploaded, held_out


def prefix_cases(held_out: pd.DataFrame, case_column: str) -> pd.DataFrame:
    """Every prefix (1..n) of every held-out case as an ongoing case ``<case>#<length>``, events in file order."""
    frames = []
    case = held_out[case_column].astype(str)
    position = case.groupby(case, sort=False).cumcount().to_numpy() + 1
    sizes = case.map(case.value_counts()).to_numpy()
    for length in range(1, int(sizes.max()) + 1):
        # prefix `length` of every case that long: its rows with position <= length
        rows = held_out[(position <= length) & (sizes >= length)]
        frames.append(rows.assign(**{case_column: rows[case_column].astype(str) + f"{MARK}{length}"}))
    return pd.concat(frames, ignore_index=True)


def truth_by_prefix(prepared, which: str = "held_out", final: frozenset[str] | None = None) -> pd.DataFrame:
    """Per held-out prefix ``<case>#<length>``: next activity, undecided, negative outcome, remaining seconds, and
    whether the case completed (ended with one of the ``final`` activities)."""
    log = prepared.part(which)
    events = log.events
    case = events[CASE_ID].astype(str).to_numpy()
    position = pd.Series(case).groupby(case, sort=False).cumcount().to_numpy()
    has_next = np.r_[case[1:] == case[:-1], False]
    activity = events["ACTIVITY"].astype(str).to_numpy()
    time_column = "END_TIMESTAMP" if "END_TIMESTAMP" in events else order_time_column(events)
    seconds = seconds_since_epoch(events[time_column])
    end = pd.Series(seconds).groupby(case).transform("max").to_numpy()
    negative = (1 - log.labels["OUTCOME"].reindex(case).to_numpy(dtype=float)) if "OUTCOME" in log.labels else None
    return pd.DataFrame(
        {
            "prefix": [f"{c}{MARK}{p + 1}" for c, p in zip(case, position, strict=True)],
            "length": position + 1,
            "next": np.where(has_next, np.concatenate([activity[1:], [""]]), None),
            "undecided": ~outcome_observed(events),
            "negative": negative,
            "remaining": np.where(has_next, end - seconds, np.nan),
            "complete": completed(events, final),
        }
    ).set_index("prefix")


def score_prescriptions(result: dict, truth: pd.DataFrame) -> dict[str, dict]:
    """Figures of each plugin's prescriptions for the prefix cases, scored against ``truth``."""
    outputs: dict[tuple[str, str], dict] = {}
    for prefix, prescriptions in result.items():
        for prescription in prescriptions:
            outputs.setdefault((prescription["plugin"]["key"], prescription["type"]), {})[prefix] = prescription
    scores = {}
    for (key, kind), by_prefix in outputs.items():
        if kind == "NEXT_ACTIVITY":
            rows = truth[truth["next"].notna()]
            given = [by_prefix.get(p) for p in rows.index]
            predicted = np.array([g["output"] if g else None for g in given], dtype=object)
            confidence = np.array([g.get("probability") or 0.0 if g else 0.0 for g in given], dtype=float)
            right = predicted == rows["next"].to_numpy()
            scores[key] = {
                "type": kind,
                "accuracy": round(float(right.mean()), 4),
                "support": len(rows),
                "ece": expected_calibration_error(confidence, right),
                "by_length": pd.Series(right).groupby(np.minimum(rows["length"].to_numpy(), 31)).mean(),
            }
        elif kind == "ALARM" and truth["negative"].notna().any():
            rows = truth[truth["undecided"] & truth["negative"].notna()]
            probability = np.array(
                [
                    by_prefix[p]["output"] if p in by_prefix and by_prefix[p]["output"] is not None else 0.5
                    for p in rows.index
                ],
                dtype=float,
            )
            scores[key] = {
                "type": kind,
                **binary_probability_metrics(rows["negative"].to_numpy(int), probability),
                "support": len(rows),
            }
        elif kind == "REMAINING_TIME":
            every = truth[truth["remaining"].notna()]
            scores[key] = {"type": kind}
            for part, rows in (("complete", every[every["complete"]]), ("all", every)):
                given = [by_prefix.get(p) or {} for p in rows.index]
                estimate = np.array([g.get("output") if g.get("output") is not None else np.nan for g in given], float)
                lower = np.array([g.get("lower", np.nan) for g in given], dtype=float)
                upper = np.array([g.get("upper", np.nan) for g in given], dtype=float)
                actual = rows["remaining"].to_numpy()
                error = np.abs(np.nan_to_num(estimate, nan=0.0) - actual)
                scores[key][part] = {
                    "mae_days": round(float(error.mean()) / 86400, 3),
                    "median_ae_days": round(float(np.median(error)) / 86400, 3),
                    "coverage": round(float(((actual >= lower) & (actual <= upper)).mean()), 4),
                    "support": len(rows),
                }
    return scores


def remaining_time_baselines(prepared, final: frozenset[str]) -> dict[str, dict[str, float]]:
    """MAE (days) of the mean remaining time by prefix length and by last activity, fitted on the uploaded cases
    that completed, on the held-out prefixes of completed cases (``complete``) and on every one (``all``)."""
    fitted = truth_by_prefix(prepared, "training", final).dropna(subset=["remaining"])
    fitted = fitted[fitted["complete"]]
    fitted["last"] = _last_activities(prepared.part("training"))[fitted.index]
    held = truth_by_prefix(prepared, final=final).dropna(subset=["remaining"])
    held["last"] = _last_activities(prepared.part("held_out"))[held.index]
    overall = fitted["remaining"].mean()
    figures = {}
    for name, key in (("mean by prefix length", "length"), ("mean by last activity", "last")):
        means = fitted.groupby(key)["remaining"].mean()
        figures[name] = {}
        for part, rows in (("complete", held[held["complete"]]), ("all", held)):
            estimate = rows[key].map(means).fillna(overall).to_numpy()
            mae = float(np.abs(estimate - rows["remaining"].to_numpy()).mean()) / 86400
            figures[name][part] = round(mae, 3)
    return figures


def _last_activities(log) -> pd.Series:
    case = log.events[CASE_ID].astype(str)
    position = case.groupby(case, sort=False).cumcount() + 1
    return pd.Series(log.events["ACTIVITY"].astype(str).to_numpy(), index=case + MARK + position.astype(str))


def single_prefix_latency(model, held_out, n: int, seed: int = 0) -> list[float]:
    """Seconds per one-prefix prediction, for ``n`` random held-out prefixes (as streamed events are)."""
    rng = np.random.default_rng(seed)
    batch = held_out.prefixes()
    chosen = rng.choice(batch.ends, size=min(n, len(batch)), replace=False)
    case = held_out.events[CASE_ID].to_numpy()
    starts = {c: i for i, c in reversed(list(enumerate(case)))}
    samples = []
    for end in chosen:
        prefix = held_out.events.iloc[starts[case[end]] : end + 1]
        single = PrefixBatch.from_prefixes([prefix], held_out.attributes)
        started = time.perf_counter()
        model.predict(single, PredictionContext())
        samples.append(time.perf_counter() - started)
    return samples


def train_project(core: PrCore, uploaded: pd.DataFrame, name: str, preset: dict):
    buffer = io.BytesIO()
    uploaded.to_csv(buffer, index=False)
    started = time.perf_counter()
    event_log = core.upload_event_log(buffer.getvalue(), filename=f"{name}-earliest-80.csv")
    core.set_columns_definition(event_log.id, preset["columns"], preset["case_attributes"], preset["fast_mode"])
    project = core.create_project(
        event_log.id, positive_outcome=preset["outcome"], treatment=preset["treatment"], additional_info=ADDITIONAL_INFO
    )
    project = project.wait_until("TRAINED", timeout=1800)
    return project, time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path, help="event log to split, train on and score")
    parser.add_argument("--ongoing", type=Path, help="log of ongoing cases for timing batch prescriptions")
    parser.add_argument("--runs", type=int, default=3, help="trainings from upload to TRAINED (median reported)")
    parser.add_argument("--latency-samples", type=int, default=300, help="single prefixes timed per plugin")
    args = parser.parse_args()

    frame = read_event_log(args.log.read_bytes(), filename=args.log.name)
    preset = preset_for(args.log, list(frame.columns), [None] * len(frame.columns))
    prepared, columns, uploaded, held_out = external_split(frame, preset)
    if len(held_out) != len(prepared.part("held_out").events):
        print(
            "warning: rows and canonical events differ (lifecycle rows, missing times): prefixes are matched by "
            "position and may not align"
        )
    print(
        f"{args.log.name}: {frame[columns.case_id].nunique():,} cases split by start time: "
        f"{len(prepared.training_cases):,} uploaded (earliest 80 %), {len(prepared.held_out_cases):,} held out"
    )

    seconds_to_trained = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as directory, PrCore(data_dir=directory) as core:
            project, seconds = train_project(core, uploaded, args.log.stem, preset)
            seconds_to_trained.append(seconds)
            if run < args.runs - 1:
                continue
            print(
                f"upload -> TRAINED: median {statistics.median(seconds_to_trained):.1f} s "
                f"[{', '.join(f'{s:.1f}' for s in seconds_to_trained)}] (target <= 15 s)"
            )
            for key, reason in project.excluded_plugins.items():
                print(f"  not used: {key}: {reason}")
            print("\nthe project's own held-out figures (its internal split of the uploaded cases)")
            for plugin in project.plugins:
                metrics = plugin.metrics or {}
                shown = {
                    k: metrics[k]
                    for k in (
                        "accuracy",
                        "roc_auc",
                        "brier_score",
                        "ece",
                        "mae_days",
                        "coverage",
                        "qini",
                        "auuc",
                        "policy_value",
                        "policy_value_low",
                        "policy_value_high",
                        "recommend_share",
                    )
                    if metrics.get(k) is not None
                }
                line = ", ".join(f"{k} {v}" for k, v in shown.items())
                print(f"  {plugin.key:<34} {line}; fit {metrics.get('training_seconds')} s")
                if plugin.prescription_type == "TREATMENT_EFFECT":
                    identified = "identifiable" if metrics.get("identifiable") else "NOT identifiable"
                    print(f"    {identified}: {metrics.get('detail') or 'the identification checks passed'}")
                for key, figures in (metrics.get("baselines") or {}).items():
                    shown = {
                        k: figures[k]
                        for k in ("accuracy", "roc_auc", "brier_score", "ece", "mae_days", "policy_value")
                        if figures.get(k) is not None
                    }
                    print(f"    baseline {key:<31} {', '.join(f'{k} {v}' for k, v in shown.items())}")

            started = time.perf_counter()
            prefixes = prefix_cases(held_out, columns.case_id)
            result = core.prescribe(project.id, prefixes)
            prescribe_seconds = time.perf_counter() - started
            final = final_activities(prepared.part("training").events)
            scores = score_prescriptions(result, truth_by_prefix(prepared, final=final))
            print(
                f"\nscored from outside: {len(result):,} held-out prefixes posted as ongoing cases "
                f"({len(prefixes):,} rows, prescribed in {prescribe_seconds:.1f} s)"
            )

            training, held = prepared.part("training"), prepared.part("held_out")
            baselines = {}
            for baseline in (NGramNextActivity(), AggregateBoostingNextActivity(), AggregateBoostingAlarm()):
                if baseline.applicability(training) is None:
                    fit_started = time.perf_counter()
                    baselines[baseline.key] = (
                        baseline.fit(training).evaluate(held),
                        time.perf_counter() - fit_started,
                        baseline.prescription_type,
                    )
            for key, (figures, seconds, _) in baselines.items():
                shown = {k: figures[k] for k in ("accuracy", "roc_auc", "brier_score", "ece") if figures.get(k)}
                print(
                    f"  baseline {key:<32} {', '.join(f'{k} {v}' for k, v in shown.items())} "
                    f"(support {figures.get('support'):,}; fit + score {seconds:.1f} s)"
                )
            best_accuracy = max((f["accuracy"] for f, _, k in baselines.values() if k == "NEXT_ACTIVITY"), default=0)
            alarm = baselines.get("aggregate-boosting-alarm", ({}, 0, ""))[0]
            remaining = remaining_time_baselines(prepared, final)
            for name, mae in remaining.items():
                print(
                    f"  baseline remaining time, {name:<23} mae_days {mae['complete']} (completed cases), "
                    f"{mae['all']} (every prefix)"
                )
            for key, figures in scores.items():
                kind = figures["type"]
                if kind == "NEXT_ACTIVITY":
                    ok = figures["accuracy"] >= max(0.80, best_accuracy + 0.02)
                    print(
                        f"  {key:<41} accuracy {figures['accuracy']} ece {figures['ece']} "
                        f"(support {figures['support']:,}); target >= 0.80 and >= {best_accuracy + 0.02:.4f}: "
                        f"{verdict(ok)}"
                    )
                    by_length = figures["by_length"]
                    print(
                        f"  {'':<41} by prefix length: "
                        + ", ".join(f"{int(n) if n < 31 else '>30'}: {v:.3f}" for n, v in list(by_length.items())[:12])
                    )
                elif kind == "ALARM":
                    ok = figures["roc_auc"] >= max(0.83, (alarm.get("roc_auc") or 0) + 0.02)
                    brier_ok = figures["brier_score"] <= (alarm.get("brier_score") or 1)
                    print(
                        f"  {key:<41} roc_auc {figures['roc_auc']} brier {figures['brier_score']} ece "
                        f"{figures['ece']} (support {figures['support']:,}); target roc_auc >= 0.83 and >= "
                        f"{(alarm.get('roc_auc') or 0) + 0.02:.4f}: {verdict(ok)}; brier <= "
                        f"{alarm.get('brier_score')}: {verdict(brier_ok)}"
                    )
                elif kind == "REMAINING_TIME":
                    for part, title in (("complete", "completed cases"), ("all", "every prefix, cut-off cases too")):
                        better = min(mae[part] for mae in remaining.values())
                        shown = figures[part]
                        ok = shown["mae_days"] <= 0.8 * better
                        cover = 0.75 <= shown["coverage"] <= 0.85
                        print(
                            f"  {key:<41} {title} (support {shown['support']:,}): mae_days {shown['mae_days']} "
                            f"(ratio {shown['mae_days'] / better:.3f}) median_ae_days {shown['median_ae_days']} "
                            f"coverage {shown['coverage']}; target mae <= {0.8 * better:.3f}: {verdict(ok)}, "
                            f"coverage 0.75-0.85: {verdict(cover)}"
                        )
                    print(f"  {'':<41} a case completed when it ended with one of: {', '.join(sorted(final))}")

            print("\none-prefix prediction latency (ms; target p50 <= 1 ms per plugin)")
            _, project_held_out = core.project_data(project.id)
            for state, model in core.active_plugins(project.id):
                samples = single_prefix_latency(model, project_held_out, args.latency_samples)
                print(f"  {state.key:<34} p50 {percentile(samples, 50):6.2f}  p95 {percentile(samples, 95):6.2f}")
            if args.ongoing:
                runs = []
                for _ in range(3):
                    started = time.perf_counter()
                    ongoing = core.prescribe(project.id, args.ongoing)
                    runs.append(time.perf_counter() - started)
                print(
                    f"\nprescribe({args.ongoing.name}): {len(ongoing):,} cases, median {statistics.median(runs):.2f}"
                    f" s [{', '.join(f'{r:.2f}' for r in runs)}]"
                )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
