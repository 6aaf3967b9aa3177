"""The random forest alarm plugin on the synthetic demo log: contract, labels, threshold, metrics, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from plugins.random_forest_alarm import (
    RandomForestAlarm,
    _FlatForest,
    case_costs,
    choose_threshold,
    open_ends,
)
from prcore_core import errors, registry
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import (
    ACTIVITY,
    CASE_ID,
    OUTCOME,
    OUTCOME_OBSERVED,
    TREATMENT_OBSERVED,
    LabelledLog,
    PrefixBatch,
)
from prcore_core.demo import APPROVE
from prcore_core.metrics import alarm_metrics


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def fitted(logs):
    return RandomForestAlarm().fit(logs[0])


@pytest.fixture(scope="module")
def metrics(fitted, logs):
    return fitted.evaluate(logs[1])


def _relabelled(log: LabelledLog, labels: pd.DataFrame) -> LabelledLog:
    return LabelledLog(log.events, log.attributes, labels, log.outcome_definition, log.treatment_definition)


# -- contract and declaration ----------------------------------------------------------------------------------------
def test_passes_check_plugin(logs):
    check_plugin(RandomForestAlarm, logs)


def test_declaration_and_registration():
    assert RandomForestAlarm.key == "random-forest-alarm"
    assert RandomForestAlarm.title == "Random forest negative outcome probability"
    assert RandomForestAlarm.description == "This plugin provides the probability of negative outcome."
    assert RandomForestAlarm.prescription_type == "ALARM"
    assert RandomForestAlarm.needs_outcome and not RandomForestAlarm.needs_treatment
    assert registry.available_plugins()["random-forest-alarm"] is RandomForestAlarm
    assert registry.resolve_key("plugin-random-forest-alarm") == "random-forest-alarm"
    defaults = RandomForestAlarm.parameter_defaults()
    assert (defaults["encoding"], defaults["threshold"], defaults["estimator"]) == ("COMBINED", None, "random_forest")
    json.dumps(RandomForestAlarm.info())


@pytest.mark.parametrize(
    "parameters", [{"threshold": 1.5}, {"cost_ratio": -1}, {"estimator": "svm"}, {"encoding": "NOPE"}, {"seed": "x"}]
)
def test_invalid_parameters_are_refused(parameters):
    with pytest.raises(errors.InvalidParameterError):
        RandomForestAlarm.from_parameters(parameters)


def test_applicability_says_why(logs):
    training = logs[0]
    assert RandomForestAlarm.applicability(training) is None
    no_outcome = _relabelled(training, training.labels.drop(columns=[OUTCOME]))
    assert RandomForestAlarm.applicability(no_outcome) == (
        "Random forest negative outcome probability needs an outcome definition"
    )
    single = _relabelled(training, training.labels.assign(**{OUTCOME: 1}))
    assert RandomForestAlarm.applicability(single) == "The OUTCOME column must have two classes at least"
    with pytest.raises(errors.PrCoreError, match="two classes"):
        RandomForestAlarm().fit(single)


# -- what it learns from ---------------------------------------------------------------------------------------------
def test_learns_only_before_the_outcome_is_visible(logs, fitted):
    events = logs[0].events
    ends = open_ends(events)
    assert not events[OUTCOME_OBSERVED].to_numpy(dtype=bool)[ends].any()
    assert len(ends) == int((~events[OUTCOME_OBSERVED].to_numpy(dtype=bool)).sum())
    # the demo's outcome is read when "Approve loan" happens: that activity decides it, the desired way
    assert fitted.decisive_activities_ == [APPROVE]
    assert fitted.decided_probability_ == 0.0
    # the threshold was chosen on held-back (later) cases, so the forest saw fewer cases than the log has
    assert fitted.threshold_selection_["method"] == "cost"
    assert fitted.n_training_cases_ + fitted.threshold_selection_["cases"] <= logs[0].n_cases


def test_negative_outcome_is_the_target(logs, fitted):
    """Prefixes of cases that end without approval score higher on average (probability of the NEGATIVE outcome)."""
    held_out = logs[1]
    batch = PrefixBatch(held_out.events, open_ends(held_out.events), held_out.attributes)
    scores = fitted._score(batch)
    negative = 1 - held_out.labels[OUTCOME].reindex(batch.case_ids).to_numpy()
    assert scores[negative == 1].mean() > scores[negative == 0].mean() + 0.1


# -- metrics ---------------------------------------------------------------------------------------------------------
def test_metrics_on_held_out_cases(logs, metrics, fitted):
    held_out = logs[1]
    for key in ("roc_auc", "precision", "recall", "f1_score", "accuracy", "support", "threshold", "by_prefix_length"):
        assert key in metrics
    assert metrics["support"] == int((~held_out.events[OUTCOME_OBSERVED].to_numpy(dtype=bool)).sum())
    assert metrics["threshold"] == fitted.threshold_
    assert metrics["roc_auc"] > 0.75
    for name in ("roc_auc", "precision", "recall", "f1_score", "accuracy", "negative_share", "cost_per_case"):
        assert 0.0 <= metrics[name] <= 1.0 and round(metrics[name], 4) == metrics[name]
    rows = metrics["by_prefix_length"]
    assert sum(row["support"] for row in rows) == metrics["support"]
    assert all(row["roc_auc"] is None or 0.0 <= row["roc_auc"] <= 1.0 for row in rows)
    assert any(isinstance(row["roc_auc"], float) for row in rows)
    json.dumps(metrics)


def test_metrics_of_one_class_have_no_auc():
    figures = alarm_metrics(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]), 0.5)
    assert figures == {
        "roc_auc": None,
        "brier_score": 0.2467,
        "ece": 0.4,
        "precision": 1.0,
        "recall": 0.6667,
        "f1_score": 0.8,
        "accuracy": 0.6667,
    }


def test_combined_encoding_beats_counts_only(logs, metrics):
    baseline = RandomForestAlarm(encoding="FREQUENCY_BASED").fit(logs[0])
    activities = [*baseline.encoder_.activities_.values, "<unseen>"]
    assert baseline.encoder_.feature_names_ == [f"count={a}" for a in activities]  # counts only: no timing block
    assert metrics["roc_auc"] > baseline.evaluate(logs[1])["roc_auc"] + 0.05


def test_hist_gradient_boosting_option(logs):
    plugin = RandomForestAlarm(estimator="hist_gradient_boosting", n_estimators=30).fit(logs[0])
    assert plugin.evaluate(logs[1])["roc_auc"] > 0.7
    predictions = plugin.predict(logs[1].prefixes())
    assert all(0.0 <= p["output"] <= 1.0 for p in predictions)


# -- threshold -------------------------------------------------------------------------------------------------------
def test_choose_threshold_is_the_cheapest_and_rises_with_the_cost_ratio():
    rng = np.random.default_rng(0)
    negative = rng.integers(0, 2, 300)
    scores = np.round(np.clip(0.35 * negative + rng.random(300) * 0.65, 0, 1), 4)
    grid = np.linspace(0, 1, 2001)
    chosen = []
    for ratio in (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5):
        threshold, cost = choose_threshold(scores, negative, ratio)
        best = case_costs(scores, negative, ratio, grid).min()
        assert case_costs(scores, negative, ratio, np.array([threshold]))[0] <= best + 1e-9
        assert cost == round(best / len(scores), 4)
        chosen.append(threshold)
    assert chosen == sorted(chosen) and chosen[0] < chosen[-1]
    assert chosen[-1] == 1.0  # an alarm dearer than the loss: never alarm
    # alarming everything is cheapest: the highest threshold that still alarms every case with a positive score
    assert choose_threshold(np.array([0.3, 0.6, 0.9]), np.array([1, 1, 1]), 0.1) == (0.15, 0.1)


def test_threshold_follows_the_cost_ratio(logs):
    plugins = [RandomForestAlarm(cost_ratio=r, n_estimators=30).fit(logs[0]) for r in (0.05, 0.7, 1.2)]
    thresholds = [plugin.threshold_ for plugin in plugins]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    assert thresholds[-1] == 1.0  # an alarm dearer than the loss it prevents: never alarm
    # 72 % of the held-back demo cases end negatively: at 0.05 alarming every case is cheapest, the threshold is the
    # highest that still alarms them all; at 0.7 the alarm is selective
    assert 0.0 < thresholds[0] < 0.5 < thresholds[1] < 1.0
    alarms = [p["alarm"] for p in plugins[1].predict(logs[1].prefixes()) if "detail" not in p]
    assert any(alarms) and not all(alarms)


def test_given_threshold_is_used(logs):
    plugin = RandomForestAlarm(threshold=0.3, n_estimators=30, calibration="none").fit(logs[0])
    assert plugin.threshold_ == 0.3 and plugin.threshold_selection_ == {"method": "given"}
    assert plugin.n_training_cases_ == logs[0].n_cases - _cases_without_open_prefix(logs[0])
    calibrated = RandomForestAlarm(threshold=0.3, n_estimators=30).fit(logs[0])  # holds the latest cases back
    assert calibrated.threshold_ == 0.3 and calibrated.calibrator_.fitted_ == "isotonic"
    assert calibrated.n_training_cases_ < plugin.n_training_cases_
    predictions = plugin.predict(logs[1].prefixes())
    assert {p["threshold"] for p in predictions} == {0.3}


def test_too_few_cases_to_choose_a_threshold(logs):
    cases = logs[0].events[CASE_ID].drop_duplicates().iloc[:60]
    small = logs[0].subset(cases)
    assert small.labels[OUTCOME].nunique() == 2
    plugin = RandomForestAlarm(n_estimators=20).fit(small)  # 12 held-back cases < MIN_CALIBRATION_CASES
    assert plugin.threshold_ == 0.5 and plugin.threshold_selection_["method"] == "default"
    assert plugin.n_training_cases_ == 60 - _cases_without_open_prefix(small)


def _cases_without_open_prefix(log: LabelledLog) -> int:
    open_cases = set(log.events[CASE_ID].to_numpy()[open_ends(log.events)])
    return log.n_cases - len(open_cases)


# -- predictions -----------------------------------------------------------------------------------------------------
def test_output_shape_and_alarm_flag(logs, fitted):
    batch = logs[1].prefixes()
    predictions = fitted.predict(batch)
    assert len(predictions) == len(batch)
    observed = logs[1].events[OUTCOME_OBSERVED].to_numpy(dtype=bool)[batch.ends]
    for prediction, done in zip(predictions, observed, strict=True):
        assert prediction["threshold"] == fitted.threshold_
        assert isinstance(prediction["alarm"], bool) and isinstance(prediction["output"], float)
        assert round(prediction["output"], 4) == prediction["output"]
        if done:
            assert prediction == {
                "output": 0.0,
                "alarm": False,
                "threshold": fitted.threshold_,
                "detail": "The outcome is already observed: no alarm needed",
            }
        else:
            assert set(prediction) == {"output", "alarm", "threshold"}
            assert 0.0 <= prediction["output"] <= 1.0
            assert prediction["alarm"] == (prediction["output"] > fitted.threshold_)


def test_streamed_prefixes_without_flags_are_recognised_as_decided(logs, fitted):
    events = logs[1].events.drop(columns=[OUTCOME_OBSERVED, TREATMENT_OBSERVED])
    approved = events.loc[events[ACTIVITY] == APPROVE, CASE_ID].iloc[0]
    case = events[events[CASE_ID] == approved]
    whole, before = (PrefixBatch.from_prefixes([p], logs[1].attributes) for p in (case, case.iloc[:-1]))
    assert fitted.predict(whole)[0]["output"] == 0.0 and "detail" in fitted.predict(whole)[0]
    assert "detail" not in fitted.predict(before)[0]
    # the same prefix, streamed alone or within a batch of every prefix, gets the same answer
    batch = PrefixBatch(events, np.arange(len(events)), logs[1].attributes)
    row = int(np.flatnonzero(events[CASE_ID].to_numpy() == approved)[-2])
    assert fitted.predict(batch)[row] == fitted.predict(before)[0]


def test_flat_forest_matches_scikit_learn(logs, fitted):
    features = fitted._features(logs[1].prefixes())
    expected = fitted.model_.predict_proba(features)[:, 1]
    flat = fitted.scorer_
    assert isinstance(flat, _FlatForest)
    np.testing.assert_allclose(flat.predict(features), expected, atol=1e-12)
    one_by_one = np.array([flat.predict(features[i : i + 1])[0] for i in range(50)])
    np.testing.assert_array_equal(one_by_one, flat.predict(features)[:50])


def test_save_load_round_trip(tmp_path, logs, fitted):
    batch = logs[1].prefixes()
    path = fitted.save(tmp_path / "alarm.pkl")
    loaded = RandomForestAlarm.load(path)
    assert loaded.predict(batch) == fitted.predict(batch)
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.evaluate(logs[1]) == fitted.evaluate(logs[1])


def test_deterministic_with_a_seed(logs, fitted):
    batch = logs[1].prefixes()
    again = RandomForestAlarm().fit(logs[0])
    assert again.predict(batch) == fitted.predict(batch)
    other = RandomForestAlarm(seed=7, n_estimators=30).fit(logs[0])
    assert [p["output"] for p in other.predict(batch)] != [p["output"] for p in fitted.predict(batch)]


def test_unfitted_plugin_says_so(logs):
    batch = logs[1].prefixes()
    batch = PrefixBatch(batch.events, batch.ends[:3], batch.attributes)
    assert RandomForestAlarm().predict(batch) == [{"output": None, "detail": "The plugin is not trained"}] * 3


@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan")])
def test_a_cost_ratio_that_is_not_a_finite_number_is_refused_before_training(value):
    with pytest.raises(errors.InvalidParameterError, match="random-forest-alarm"):
        RandomForestAlarm.from_parameters({"cost_ratio": value})
