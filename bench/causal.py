"""Treatment effect against the truth on the demo log: ranking, gain captured, recommendations, interval coverage.

The protocol of issue 11's target ("demo log, any seed, >= 4,000 cases: Spearman rho >= 0.65 at decision points,
and following the advice captures >= 85 % of the oracle's gain without recommending more than the oracle plus 10
points"):

1. ``generate_demo_log(cases, seed)`` is prepared as a project prepares it and split by case start time (the
   earliest 80 % train, the rest are held out).
2. The causal treatment effect plugin is fitted on the training cases with its defaults (``--param name=value``
   overrides one); everything it chooses, it chooses on the training cases.
3. Every held-out case that reached an offer is asked at its decision point (its last ``Send offer`` before any
   ``Call customer``) and compared with the generator's true CATE:

   * ``rho``: Spearman correlation of the estimated and the true CATE (over the answered cases);
   * ``gain``: the share of the oracle's gain the advice captures, ``sum(true * recommended) / sum(true * (true >
     0))`` (the oracle treats exactly the cases with a positive true effect);
   * ``rec`` and ``oracle``: the shares of cases the advice and the oracle treat (the target: ``rec <= oracle +
     0.10``);
   * ``cover``: the share of intervals ``[cate_low, cate_high]`` that contain the true CATE (nominal:
     ``interval_level``);
   * ``fit_s``: the fit's wall time;
   * ``ms``: the median time of one-prefix predictions at ``--latency`` held-out decision points (each prefix alone
     in its batch, as a streamed event is).

``--runs`` fits each log that many times with different plugin seeds (``seed``, ``seed + 1``, ...) and reports each
run and the medians per log, then the medians over all logs' medians::

    python bench/causal.py --seeds 101 102 103 --cases 4000 6000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.causal_treatment_effect import CausalTreatmentEffect
from prcore_core.conformance import demo_logs
from prcore_core.context import PredictionContext
from prcore_core.dataset import ACTIVITY, CASE_ID, PrefixBatch
from prcore_core.demo import TREATMENT, generate_demo_log

FIGURES = ("rho", "gain", "rec", "oracle", "cover", "fit_s", "ms")


def decision_point_batch(log) -> PrefixBatch:
    """Each held-out case's last ``Send offer`` before any ``Call customer``."""
    events = log.events
    activity = events[ACTIVITY].astype(str).to_numpy()
    case = events[CASE_ID].to_numpy()
    called = pd.Series(activity == TREATMENT).groupby(case).cummax().to_numpy()
    offers = np.flatnonzero((activity == "Send offer") & ~called)
    last = pd.Series(offers).groupby(case[offers]).max().to_numpy()
    return PrefixBatch(events, np.sort(last), log.attributes)


def against_truth(plugin: CausalTreatmentEffect, held_out, truth: pd.Series) -> dict[str, float]:
    """The figures of one fitted plugin on the held-out decision points (see the module docstring)."""
    batch = decision_point_batch(held_out)
    predictions = plugin.predict(batch)
    frame = pd.DataFrame({
        "true": truth.reindex([str(c) for c in batch.case_ids]).to_numpy(),
        "cate": [p["output"]["cate"] if p["output"] else np.nan for p in predictions],
        "low": [p["output"]["cate_low"] if p["output"] else np.nan for p in predictions],
        "high": [p["output"]["cate_high"] if p["output"] else np.nan for p in predictions],
        "recommended": [bool(p["recommend_treatment"]) for p in predictions],
    })  # fmt: skip
    answered = frame.dropna(subset=["cate"])
    oracle = frame["true"] > 0
    return {
        "rho": float(answered["cate"].corr(answered["true"], method="spearman")),
        "gain": float((frame["true"] * frame["recommended"]).sum() / (frame["true"] * oracle).sum()),
        "rec": float(frame["recommended"].mean()),
        "oracle": float(oracle.mean()),
        "cover": float(((answered["true"] >= answered["low"]) & (answered["true"] <= answered["high"])).mean()),
        "n": len(frame),
    }


def one_prefix_milliseconds(plugin: CausalTreatmentEffect, held_out, n: int) -> float:
    """Median milliseconds of predicting one decision-point prefix alone (as a streamed event is)."""
    batch = decision_point_batch(held_out)
    case = held_out.events[CASE_ID].to_numpy()
    first = {c: i for i, c in reversed(list(enumerate(case)))}
    samples = []
    for end in batch.ends[:n]:
        single = PrefixBatch.from_prefixes([held_out.events.iloc[first[case[end]] : end + 1]], held_out.attributes)
        started = time.perf_counter()
        plugin.predict(single, PredictionContext())
        samples.append(time.perf_counter() - started)
    return 1000 * statistics.median(samples) if samples else float("nan")


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def row(label: str, figures: dict[str, float]) -> str:
    return f"{label:<24}" + "".join(f"{figures[name]:>8.3f}" for name in FIGURES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103], help="demo log seeds")
    parser.add_argument("--cases", type=int, nargs="+", default=[4000], help="demo log sizes (cases)")
    parser.add_argument("--runs", type=int, default=3, help="fits per log, with plugin seeds seed, seed + 1, ...")
    parser.add_argument("--latency", type=int, default=200, help="decision points timed one by one per run")
    parser.add_argument("--param", action="append", default=[], help="plugin parameter override, name=value")
    args = parser.parse_args(argv)
    params = dict(item.split("=", 1) for item in args.param)
    params = {name: parse_value(value) for name, value in params.items()}
    base_seed = params.pop("seed", CausalTreatmentEffect.parameter_defaults()["seed"])
    print(f"parameters: {params or 'defaults'}; plugin seeds {base_seed}..{base_seed + args.runs - 1}")
    print(f"{'log / run':<24}" + "".join(f"{name:>8}" for name in FIGURES))
    medians = []
    for n_cases in args.cases:
        for seed in args.seeds:
            training, held_out = demo_logs(n_cases=n_cases, seed=seed)
            truth = generate_demo_log(n_cases=n_cases, seed=seed).true_effect
            truth.index = truth.index.astype(str)
            runs = []
            for run in range(args.runs):
                started = time.perf_counter()
                plugin = CausalTreatmentEffect(seed=base_seed + run, **params).fit(training)
                fit_seconds = time.perf_counter() - started
                figures = {**against_truth(plugin, held_out, truth), "fit_s": fit_seconds,
                           "ms": one_prefix_milliseconds(plugin, held_out, args.latency)}  # fmt: skip
                runs.append(figures)
                print(row(f"  seed {seed} n {n_cases} #{run + 1}", figures) + f"  {plugin.learner_}", flush=True)
            median = {name: statistics.median(r[name] for r in runs) for name in FIGURES}
            medians.append(median)
            print(row(f"seed {seed} n {n_cases} median", median), flush=True)
    overall = {name: statistics.median(m[name] for m in medians) for name in FIGURES}
    print(row("median of the medians", overall))
    worst = {name: min(m[name] for m in medians) for name in ("rho", "gain")}
    excess = max(m["rec"] - m["oracle"] for m in medians)
    print(f"worst log: rho {worst['rho']:.3f} (target >= 0.65), gain {worst['gain']:.3f} (target >= 0.85), "
          f"rec - oracle {excess:+.3f} (target <= +0.10)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
