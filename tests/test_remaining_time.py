"""The remaining-time plugin: contract, known durations (interval coverage, baselines), batch equality, facade."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from plugins.remaining_time import RemainingTime, completed, conformal_quantile, final_activities, remaining_times
from prcore_core import registry
from prcore_core.columns import Family
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import CASE_ID, TIMESTAMP, Attribute, LabelledLog, PrefixBatch, sort_events

AMOUNT = Attribute("CASE_ATTRIBUTE_NUMBER_amount", "amount", "case", Family.NUMBER)
#: Median hours from the middle activity to the end, by middle activity (the known durations of the synthetic log).
MEDIAN_HOURS = {"Quick check": 4.0, "Standard check": 24.0, "Deep check": 120.0}
NOISE_SIGMA = 0.5  # log-normal noise of the last gap


def synthetic_log(n_cases: int, seed: int, first_start: str = "2024-01-01") -> LabelledLog:
    """Cases ``Receive -> <check> -> Close``: the check depends on the amount; the time from it to the close is
    ``MEDIAN_HOURS[check] * (1 + amount / 10_000) * LogNormal(0, NOISE_SIGMA)``. Cases start an hour apart."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(first_start, tz="UTC") + pd.to_timedelta(np.arange(n_cases), unit="h")
    amount = rng.uniform(0, 20_000, n_cases)
    check = np.where(amount < 5_000, "Quick check", np.where(amount < 12_000, "Standard check", "Deep check"))
    surprise = rng.random(n_cases) < 0.15  # some cases take another check than their amount says
    check = np.where(surprise, rng.choice(list(MEDIAN_HOURS), n_cases), check)
    first_gap = rng.uniform(0.5, 2.0, n_cases)
    last_gap = np.array([MEDIAN_HOURS[c] for c in check]) * (1 + amount / 10_000)
    last_gap *= rng.lognormal(0.0, NOISE_SIGMA, n_cases)
    cases = [f"C{seed}-{i:05d}" for i in range(n_cases)]
    rows = []
    for i, case in enumerate(cases):
        checked = start[i] + pd.Timedelta(hours=first_gap[i])
        for activity, time in (("Receive", start[i]), (check[i], checked),
                               ("Close", checked + pd.Timedelta(hours=last_gap[i]))):  # fmt: skip
            rows.append({CASE_ID: case, "ACTIVITY": activity, TIMESTAMP: time, AMOUNT.name: amount[i]})
    events = sort_events(pd.DataFrame(rows))
    return LabelledLog(events, (AMOUNT,), pd.DataFrame(index=pd.Index(cases, name=CASE_ID)))


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def synthetic():
    training = synthetic_log(1500, seed=1)
    fresh = synthetic_log(600, seed=2, first_start="2024-04-01")  # later cases from the same process
    plugin = RemainingTime().fit(training)
    return plugin, training, fresh


# -- contract and declaration ----------------------------------------------------------------------------------------
def test_passes_check_plugin(logs):
    check_plugin(RemainingTime, logs)


def test_declaration_and_registration(logs):
    assert RemainingTime.key == "remaining-time"
    assert RemainingTime.prescription_type == "REMAINING_TIME"
    assert RemainingTime.title == "Remaining time prediction"
    assert not RemainingTime.needs_outcome and not RemainingTime.needs_treatment
    assert registry.available_plugins()["remaining-time"] is RemainingTime
    defaults = RemainingTime.parameter_defaults()
    declared = {"n_estimators", "learning_rate", "num_leaves", "calibration_share", "max_training_prefixes", "seed"}
    assert defaults["interval"] == 0.8 and set(defaults) >= declared
    json.dumps(RemainingTime.info())
    training = logs[0]
    unlabelled = LabelledLog(training.events, training.attributes, pd.DataFrame(index=training.labels.index))
    assert RemainingTime.applicability(unlabelled) is None  # timestamps are enough
    one_event = LabelledLog(training.events.groupby(CASE_ID).head(1).reset_index(drop=True), training.attributes)
    assert "two events" in RemainingTime.applicability(one_event)


def test_remaining_time_is_until_the_latest_end():
    events = pd.DataFrame({
        CASE_ID: ["a", "a", "a"],
        "START_TIMESTAMP": pd.to_datetime(["2024-01-01 08:00", "2024-01-01 09:00", "2024-01-01 09:30"], utc=True),
        "END_TIMESTAMP": pd.to_datetime(["2024-01-01 08:30", "2024-01-01 12:00", None], utc=True),
    })  # fmt: skip
    # the second work item ends last (12:00); the third has no end, so its start counts
    assert (remaining_times(events) / 3600).tolist() == [3.5, 0.0, 2.5]
    assert conformal_quantile(np.arange(1.0, 11.0), 0.8) == 9.0


# -- known durations -------------------------------------------------------------------------------------------------
def test_interval_covers_at_its_nominal_rate_on_fresh_cases(synthetic):
    plugin, _, fresh = synthetic
    batch = fresh.prefixes(with_next=True)
    assert len(batch) >= 1000
    truth = remaining_times(fresh.events)[batch.ends]
    predictions = plugin.predict(batch)
    lower = np.array([p["lower"] for p in predictions])
    upper = np.array([p["upper"] for p in predictions])
    output = np.array([p["output"] for p in predictions])
    assert (lower <= output).all() and (output <= upper).all()
    coverage = float(np.mean((truth >= lower) & (truth <= upper)))
    assert 0.72 <= coverage <= 0.88
    assert plugin.interval_calibration_["method"] == "conformalized quantile regression"
    # after the check, the only uncertainty is the known log-normal noise: the median is predicted closely
    after_check = batch.lengths == 2
    median_error = np.median(np.abs(np.log(output[after_check] / truth[after_check])))
    assert median_error < 0.6 * NOISE_SIGMA + 0.1


def test_beats_both_baselines_and_reports_them(synthetic):
    plugin, _, fresh = synthetic
    metrics = plugin.evaluate(fresh)
    json.dumps(metrics)
    baselines = metrics["baselines"]
    assert set(baselines) == {"mean_by_prefix_length", "mean_by_last_activity"}
    for figures in baselines.values():  # the shape the dashboard draws beside the plugin's figures
        assert figures["title"].startswith("Mean remaining time by") and figures["support"] == metrics["support"]
        assert [row["prefix_length"] for row in figures["by_prefix_length"]] == [1, 2]
    best = min(figures["mae_seconds"] for figures in baselines.values())
    assert metrics["mae_seconds"] < 0.9 * best
    assert metrics["mae_ratio_to_best_baseline"] == round(metrics["mae_seconds"] / best, 4) < 0.9
    assert 0.72 <= metrics["coverage"] <= 0.88 and metrics["interval"] == 0.8
    assert metrics["support"] == len(fresh.prefixes(with_next=True))
    assert metrics["mae_days"] == round(metrics["mae_seconds"] / 86400, 4)
    rows = metrics["by_prefix_length"]
    assert [row["prefix_length"] for row in rows] == [1, 2]
    assert sum(row["support"] for row in rows) == metrics["support"]
    for row in rows:
        assert {"mae_days", "coverage", "mean_interval_width_days", "mean_by_prefix_length_mae_days",
                "mean_by_last_activity_mae_days"} <= set(row)  # fmt: skip


def cut_off(log: LabelledLog, share: float, seed: int) -> LabelledLog:
    """``log`` with the ``Close`` of a random ``share`` of its cases removed: cases the end of the log cut off."""
    rng = np.random.default_rng(seed)
    cases = log.events[CASE_ID].unique()
    cut = set(rng.choice(cases, round(share * len(cases)), replace=False))
    keep = ~(log.events[CASE_ID].isin(cut) & (log.events["ACTIVITY"] == "Close"))
    return LabelledLog(log.events[keep].reset_index(drop=True), log.attributes, log.labels)


def test_cases_cut_off_by_the_end_of_the_log_are_neither_learnt_from_nor_scored(synthetic):
    plugin, training, fresh = synthetic
    few_cut = cut_off(training, 0.005, seed=3)  # a few training cases end with a check: not a way cases end
    assert final_activities(few_cut.events) == {"Close"}
    learnt = RemainingTime(n_estimators=30).fit(few_cut)
    assert learnt.final_activities_ == {"Close"}
    fitting, _ = few_cut.split_by_start(learnt.calibration_share, min_cases=20)
    ended = fitting.events.groupby(CASE_ID, sort=False)["ACTIVITY"].last()
    assert (ended != "Close").sum() >= 2
    assert learnt.n_training_cases_ == (ended == "Close").sum()  # the cut-off ones are not learnt from
    # held out, the end of the log cut off 30 % of the latest cases: their remaining time is unknown
    fresh_cut = cut_off(fresh, 0.3, seed=4)
    with_close = completed(fresh_cut.events, plugin.final_activities_)
    assert 0.6 < with_close.mean() < 0.8
    metrics = plugin.evaluate(fresh_cut)
    every = fresh_cut.prefixes(with_next=True)
    assert metrics["final_activities"] == ["Close"]
    assert metrics["support"] == int(with_close[every.ends].sum())
    assert metrics["all_prefixes"]["support"] == len(every) > metrics["support"]
    assert 0.72 <= metrics["coverage"] <= 0.88  # the completed cases are covered at the nominal rate
    # counted as complete at their last check, the cut-off cases would look covered less often
    assert metrics["all_prefixes"]["coverage"] < metrics["coverage"]


def test_one_prefix_alone_equals_its_prediction_in_a_batch(synthetic):
    plugin, _, fresh = synthetic
    batch = fresh.prefixes()
    together = plugin.predict(batch)
    case = fresh.events[CASE_ID].to_numpy()
    first = {c: i for i, c in reversed(list(enumerate(case)))}
    for number in range(0, len(batch), 97):
        end = int(batch.ends[number])
        prefix = fresh.events.iloc[first[case[end]] : end + 1]
        assert plugin.predict(PrefixBatch.from_prefixes([prefix], fresh.attributes)) == [together[number]]


def test_output_shape_and_missing_time(synthetic):
    plugin, _, fresh = synthetic
    prefix = fresh.events.iloc[:2]
    (prediction,) = plugin.predict(PrefixBatch.from_prefixes([prefix], fresh.attributes))
    assert set(prediction) == {"output", "lower", "upper", "unit", "interval", "expected_end"}
    assert prediction["unit"] == "seconds" and prediction["interval"] == 0.8
    assert isinstance(prediction["output"], float) and prediction["output"] == round(prediction["output"])
    expected = prefix[TIMESTAMP].iloc[-1] + pd.Timedelta(seconds=prediction["output"])
    end = dt.datetime.fromisoformat(prediction["expected_end"])
    assert end.utcoffset() == dt.timedelta(0) and abs((pd.Timestamp(end) - expected).total_seconds()) <= 1
    untimed = prefix.assign(**{TIMESTAMP: [prefix[TIMESTAMP].iloc[0], pd.NaT]})
    (missing,) = plugin.predict(PrefixBatch.from_prefixes([untimed], fresh.attributes))
    assert missing["output"] is None and "no time" in missing["detail"]
    assert RemainingTime().predict(PrefixBatch.from_prefixes([prefix], fresh.attributes))[0]["output"] is None


# -- through the facade ----------------------------------------------------------------------------------------------
def test_project_trains_and_prescribes_remaining_times(core, defined_log, demo):
    project = core.create_project(defined_log.id).wait_until("TRAINED", timeout=180)  # no outcome needed
    state = next(p for p in project.plugins if p.key == "remaining-time")
    assert state.status == "TRAINED" and state.prescription_type == "REMAINING_TIME"
    assert state.metrics["mae_days"] > 0 and "mean_by_last_activity" in state.metrics["baselines"]
    cases = demo.events["case_id"].unique()[:5]
    ongoing = demo.events[demo.events["case_id"].isin(cases)].groupby("case_id").head(3)
    prescriptions = project.prescribe(ongoing)
    assert set(prescriptions) == {str(c) for c in cases}
    for case_prescriptions in prescriptions.values():
        (remaining,) = [p for p in case_prescriptions if p["type"] == "REMAINING_TIME"]
        assert remaining["output"] >= 0 and remaining["lower"] <= remaining["output"] <= remaining["upper"]
        assert remaining["plugin"]["key"] == "remaining-time"
        dt.datetime.fromisoformat(remaining["expected_end"])
