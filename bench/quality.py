"""Quality benchmark: train a project on a real log and measure every plugin honestly on held-out cases.

For each plugin it prints the held-out metrics next to simple baselines fitted in the same run on the same split
(next activity: an n-gram over the last activities with back-off; alarm: a random forest on activity counts only),
training and evaluation time, the latency of one-prefix predictions (p50/p95 over many single prefixes), batch
throughput, the time from upload to TRAINED, batch prescription of an ongoing-cases log, and peak memory.

    python bench/quality.py --log ../shared/data/bpic2012-CSV.zip --ongoing ../shared/data/bpic2012-ongoing-CSV.zip

Known logs (by file name) use the columns and definitions of PrCore's reference (section 14, see bench/ingest.py).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import PRESETS, preset_for

from prcore_core import PrCore
from prcore_core.context import PredictionContext
from prcore_core.dataset import CASE_ID, PrefixBatch

RESOURCES = [f"Resource_{chr(ord('A') + i)}" for i in range(26)]  # reference 14: 26 resources, one hour
ADDITIONAL_INFO = {"resource-allocation": {"available_resources": RESOURCES, "treatment_duration": "1h"}}
HEADLINE = ("accuracy", "f1_score", "roc_auc", "precision", "recall", "qini", "auuc")


def percentile(samples, q):
    return float(np.percentile(np.asarray(samples) * 1000, q))


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


def metric_line(metrics: dict) -> str:
    shown = {k: metrics[k] for k in HEADLINE if metrics.get(k) is not None}
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path, help="event log to train on")
    parser.add_argument("--ongoing", type=Path, help="log of ongoing cases for batch prescriptions")
    parser.add_argument("--latency-samples", type=int, default=300, help="single prefixes timed per plugin")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the batch prescription (median reported)")
    args = parser.parse_args()
    from plugins.ngram_next_activity import NGramNextActivity
    from plugins.random_forest_alarm import RandomForestAlarm

    with tempfile.TemporaryDirectory() as directory, PrCore(data_dir=directory) as core:
        started = time.perf_counter()
        event_log = core.upload_event_log(args.log)
        preset = preset_for(args.log, event_log.columns_header, event_log.inferred_definition)
        core.set_columns_definition(event_log.id, preset["columns"], preset["case_attributes"], preset["fast_mode"])
        project = core.create_project(event_log.id, positive_outcome=preset["outcome"],
                                      treatment=preset["treatment"], additional_info=ADDITIONAL_INFO)  # fmt: skip
        project = project.wait_until("TRAINED", timeout=1800)
        to_trained = time.perf_counter() - started
        print(f"{args.log.name}: upload -> TRAINED in {to_trained:.2f} s (target <= 15 s; PrCore: 28 s)")
        print(f"  split by case start time: {project.split}")
        for key, reason in project.excluded_plugins.items():
            print(f"  not used: {key}: {reason}")

        training, held_out = core.project_data(project.id)
        models = {state.key: model for state, model in core.active_plugins(project.id)}

        print("\nplugin metrics on held-out cases")
        for plugin in project.plugins:
            metrics = plugin.metrics or {}
            print(f"  {plugin.key:<26} {plugin.status}: {metric_line(metrics)}")
            print(f"  {'':<26} fit {metrics.get('training_seconds')} s, evaluate {metrics.get('evaluation_seconds')} s")

        print("\nbaselines (same split, same run)")
        baselines = {
            "knn-next-activity": ("n-gram with back-off", NGramNextActivity()),
            "random-forest-alarm": ("random forest on activity counts", RandomForestAlarm(encoding="FREQUENCY_BASED")),
        }
        for key, (label, baseline) in baselines.items():
            if key not in models:
                continue
            fit_started = time.perf_counter()
            baseline.fit(training)
            metrics = baseline.evaluate(held_out)
            ours = project.plugin(key).metrics
            headline = "accuracy" if "accuracy" in ours and "roc_auc" not in ours else "roc_auc"
            verdict = "above" if ours[headline] > metrics[headline] else "NOT above"
            print(f"  {label:<34} {metric_line(metrics)}  ({time.perf_counter() - fit_started:.1f} s)")
            print(f"  {'':<34} {key} {headline} {ours[headline]:.4f} is {verdict} the baseline {metrics[headline]:.4f}")

        print("\none-prefix prediction latency (ms) and batch throughput")
        last = PrefixBatch.last_events(held_out.events, held_out.attributes)
        for key, model in models.items():
            samples = single_prefix_latency(model, held_out, args.latency_samples)
            started = time.perf_counter()
            model.predict(last, PredictionContext())
            seconds = time.perf_counter() - started
            print(f"  {key:<26} p50 {percentile(samples, 50):6.2f}  p95 {percentile(samples, 95):6.2f}   "
                  f"batch of {len(last):,} prefixes: {len(last) / seconds:,.0f} prefixes/s")  # fmt: skip

        if args.ongoing:
            runs = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = core.prescribe(project.id, args.ongoing)
                runs.append(time.perf_counter() - started)
            print(f"\nprescribe({args.ongoing.name}): {len(result):,} cases, median {statistics.median(runs):.2f} s "
                  f"[{', '.join(f'{r:.2f}' for r in runs)}] (target <= 5 s; PrCore: 52 s)")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS): {peak:,.0f} MiB")


if __name__ == "__main__":
    assert PRESETS  # the known logs' definitions
    main()
