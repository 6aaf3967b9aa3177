"""The causal treatment effect plugin: contract, decision points, identification checks, intervals, policy value."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from plugins.causal_treatment_effect import (
    ADVICE_NOT_IDENTIFIABLE,
    ADVICE_NOT_POSSIBLE,
    MIN_CASES_PER_GROUP,
    NOT_POSSIBLE,
    TREATMENT_APPLIED,
    CaseFeatures,
    CausalTreatmentEffect,
    _Forest,
    decision_rates,
    eligible_ends,
)
from prcore_core import errors, registry
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import ACTIVITY, CASE_ID, OUTCOME_OBSERVED, TREATMENT, TREATMENT_OBSERVED, PrefixBatch
from prcore_core.demo import generate_demo_log
from prcore_core.plugin import PrescriptionType

#: Demo seeds of the agreement tests (the figures in the report are measured on other seeds).
SEEDS = (21, 22)
#: Demo seed and size of the gain test (issue 11's target: >= 4,000 cases; the defaults were chosen on other seeds,
#: bench/causal.py reports others again).
TARGET_SEED, TARGET_CASES = 31, 4000


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def fitted(logs):
    return CausalTreatmentEffect().fit(logs[0])


def decision_point_batch(log) -> PrefixBatch:
    """Each case's last ``Send offer`` before any ``Call customer`` (the demo's decision point, issue 11)."""
    events = log.events
    activity = events[ACTIVITY].astype(str).to_numpy()
    case = events[CASE_ID].to_numpy()
    called = pd.Series(activity == "Call customer").groupby(case).cummax().to_numpy()
    offers = np.flatnonzero((activity == "Send offer") & ~called)
    last = pd.Series(offers).groupby(case[offers]).max().to_numpy()
    return PrefixBatch(events, np.sort(last), log.attributes)


@pytest.fixture(scope="module")
def agreement():
    """Per seed: the plugin fitted on a 1,500-case demo log, and its answers at the held-out decision points."""
    results = {}
    for seed in SEEDS:
        training, held_out = demo_logs(n_cases=1500, seed=seed)
        truth = generate_demo_log(n_cases=1500, seed=seed).true_effect
        truth.index = truth.index.astype(str)
        plugin = CausalTreatmentEffect().fit(training)
        batch = decision_point_batch(held_out)
        predictions = plugin.predict(batch)
        frame = pd.DataFrame({
            "true": truth.reindex(batch.case_ids).to_numpy(),
            "cate": [p["output"]["cate"] if p["output"] else np.nan for p in predictions],
            "low": [p["output"]["cate_low"] if p["output"] else np.nan for p in predictions],
            "high": [p["output"]["cate_high"] if p["output"] else np.nan for p in predictions],
            "recommended": [p["recommend_treatment"] for p in predictions],
        })  # fmt: skip
        results[seed] = (plugin, frame, plugin.evaluate(held_out))
    return results


def test_importing_the_plugin_does_not_import_causalml():
    code = "import sys, plugins.causal_treatment_effect; print('causalml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_declaration_and_registration():
    assert CausalTreatmentEffect.key == "causal-treatment-effect"
    assert CausalTreatmentEffect.prescription_type == PrescriptionType.TREATMENT_EFFECT
    assert CausalTreatmentEffect.needs_outcome and CausalTreatmentEffect.needs_treatment
    assert registry.available_plugins()["causal-treatment-effect"] is CausalTreatmentEffect
    assert registry.resolve_key("plugin-causallift-treatment-effect") == "causal-treatment-effect"
    defaults = CausalTreatmentEffect.parameter_defaults()
    assert defaults["learner"] == "auto" and defaults["threshold"] == 0.0


def test_passes_check_plugin(logs):
    check_plugin(CausalTreatmentEffect, logs)


def test_not_applicable_without_treatment(logs):
    training = logs[0]
    without = dataclasses.replace(training, labels=training.labels.drop(columns=[TREATMENT]))
    assert CausalTreatmentEffect.applicability(without) == "Causal treatment effect needs a treatment definition"
    one_class = dataclasses.replace(training, labels=training.labels.assign(**{TREATMENT: 0}))
    assert CausalTreatmentEffect.applicability(one_class) == "The TREATMENT column must have two classes at least"


def test_not_applicable_when_too_few_cases_are_seen_before_their_treatment(logs):
    training = logs[0]
    treated = training.labels.index[training.labels[TREATMENT] == 1]
    events = training.events.copy()
    events.loc[events[CASE_ID].isin(treated[3:]), TREATMENT_OBSERVED] = True
    reason = CausalTreatmentEffect.applicability(dataclasses.replace(training, events=events))
    assert f"at least {MIN_CASES_PER_GROUP} treated" in reason and "have 3 treated" in reason
    with pytest.raises(errors.PrCoreError, match="at least"):
        CausalTreatmentEffect().fit(dataclasses.replace(training, events=events))


def test_eligible_rows_end_before_treatment_outcome_and_case_end():
    events = pd.DataFrame({
        CASE_ID: ["a", "a", "a", "a", "b", "b", "b"],
        TREATMENT_OBSERVED: [False, False, True, True, False, False, False],
        OUTCOME_OBSERVED: [False, False, False, True, False, True, True],
    })  # fmt: skip
    assert eligible_ends(events).tolist() == [0, 1, 4]
    assert eligible_ends(events.drop(columns=[TREATMENT_OBSERVED, OUTCOME_OBSERVED])).tolist() == [0, 1, 2, 4, 5]


def test_decision_points_are_where_the_treatment_comes_next(logs, fitted):
    rates = decision_rates(logs[0].events)
    assert rates.index[0] == "Send offer" and rates["rate"].iloc[0] > 0.3
    assert fitted.decision_activities_ == {"Send offer"}
    assert fitted.identification_["decision_activities"] == ["Send offer"]
    # every other prefix is answered with a reason and no recommendation
    held_out = logs[1]
    batch = held_out.prefixes()
    predictions = fitted.predict(batch)
    last = held_out.events[ACTIVITY].astype(str).to_numpy()[batch.ends]
    observed = held_out.events[TREATMENT_OBSERVED].to_numpy()[batch.ends]
    known = held_out.events[OUTCOME_OBSERVED].to_numpy()[batch.ends]
    for prediction, activity, treated, decided in zip(predictions, last, observed, known, strict=True):
        if treated:
            assert prediction["detail"] == TREATMENT_APPLIED and prediction["advice"] == "already treated"
        elif decided:
            assert prediction["advice"] == "outcome known" and not prediction["recommend_treatment"]
        elif activity != "Send offer":
            assert prediction == {"output": None, "detail": NOT_POSSIBLE, "reason": NOT_POSSIBLE,
                                  "recommend_treatment": False, "advice": ADVICE_NOT_POSSIBLE}  # fmt: skip


def test_streamed_prefixes_without_flags_are_recognised(logs, fitted):
    """A streamed prefix carries no observed flags: the treatment's activity marks it as treated."""
    events = logs[1].events
    called = events[CASE_ID].isin(events.loc[events[ACTIVITY] == "Call customer", CASE_ID])
    case = events.loc[called, CASE_ID].iloc[0]
    prefix = events[events[CASE_ID] == case].drop(columns=[TREATMENT_OBSERVED, OUTCOME_OBSERVED])
    upto = prefix.iloc[: int(np.flatnonzero(prefix[ACTIVITY].to_numpy() == "Call customer")[0]) + 1]
    assert fitted.predict(PrefixBatch.from_prefixes([upto], logs[1].attributes))[0]["detail"] == TREATMENT_APPLIED
    offer = int(np.flatnonzero(prefix[ACTIVITY].to_numpy() == "Send offer")[-1])
    answer = fitted.predict(PrefixBatch.from_prefixes([prefix.iloc[: offer + 1]], logs[1].attributes))[0]
    assert answer["advice"] in ("treat", "uncertain", "do not treat", "not identifiable")


def test_output_keeps_the_reference_keys_and_adds_the_interval(logs, fitted):
    predictions = fitted.predict(decision_point_batch(logs[1]))
    answered = [p for p in predictions if p["output"] is not None]
    assert answered
    for prediction in answered:
        output = prediction["output"]
        assert set(output) == {"proba_if_treated", "proba_if_untreated", "cate", "cate_low", "cate_high",
                               "recommend_treatment", "reason", "treatment"}  # fmt: skip
        p1, p0, cate = output["proba_if_treated"], output["proba_if_untreated"], output["cate"]
        assert 0.0 <= p0 <= 1.0 and 0.0 <= p1 <= 1.0 and cate == round(p1 - p0, 4)
        assert output["cate_low"] <= cate <= output["cate_high"]
        assert output["treatment"] == logs[0].treatment_definition
        assert prediction["recommend_treatment"] == output["recommend_treatment"] == (
            output["cate_low"] > fitted.threshold)  # fmt: skip
        assert prediction["reason"] == output["reason"]


def test_a_higher_threshold_recommends_less(logs, fitted):
    strict = CausalTreatmentEffect(threshold=0.2).fit(logs[0])
    assert strict.estimator_ is fitted.estimator_  # the threshold only changes how the estimates are read
    batch = decision_point_batch(logs[1])
    assert sum(p["recommend_treatment"] for p in strict.predict(batch)) <= sum(
        p["recommend_treatment"] for p in fitted.predict(batch))  # fmt: skip


def test_unfitted_plugin_answers_with_a_reason(logs):
    predictions = CausalTreatmentEffect().predict(logs[1].prefixes())
    assert predictions[0] == {"output": None, "detail": "The plugin is not trained"}


def test_identification_diagnostics_are_in_the_metrics(logs, fitted):
    metrics = fitted.evaluate(logs[1])
    identification = metrics["identification"]
    assert metrics["identifiable"] is True and identification["reasons"] == []
    assert 0.9 <= identification["overlap_share"] <= 1.0  # the demo's propensity lies within (0.12, 0.88)
    balance = identification["balance"]
    assert balance["features"] and balance["max_after"] < balance["max_before"]
    assert identification["placebo"]["passed"]


def test_policy_value_beside_treat_all_and_treat_none(logs, fitted):
    metrics = fitted.evaluate(logs[1])
    assert metrics["support"] > 0 and metrics["learner"] in ("T", "S", "X", "R", "DR")
    assert metrics["policy_value_low"] <= metrics["policy_value"] <= metrics["policy_value_high"]
    assert set(metrics["baselines"]) == {"treat-all", "treat-none"}
    for name, baseline in metrics["baselines"].items():
        assert baseline["policy_value_low"] <= baseline["policy_value"] <= baseline["policy_value_high"]
        gain = metrics[f"policy_gain_vs_{name.replace('-', '_')}"]
        assert gain["low"] <= gain["value"] <= gain["high"]
    assert len(metrics["qini_curve"]) == 21 and metrics["qini_curve"][0]["share"] == 0.0
    assert sum(row["support"] for row in metrics["by_prefix_length"]) == metrics["policy_support"]


@pytest.mark.parametrize("learner", ["T", "S", "X", "R", "DR"])
def test_every_meta_learner(logs, learner):
    plugin = CausalTreatmentEffect(learner=learner, n_bootstrap=3, n_estimators=20).fit(logs[0])
    assert plugin.learner_ == learner
    outputs = [p["output"] for p in plugin.predict(decision_point_batch(logs[1])) if p["output"]]
    assert outputs and len({o["cate"] for o in outputs}) > 1
    assert all(o["cate"] == round(o["proba_if_treated"] - o["proba_if_untreated"], 4) for o in outputs)


def test_compiled_forest_equals_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=400) > 0).astype(int)
    classifier = HistGradientBoostingClassifier(max_iter=15, max_depth=4, random_state=0).fit(X, y)
    regressor = HistGradientBoostingRegressor(max_iter=15, max_depth=4, random_state=0).fit(X, y + rng.normal(size=400))
    raw = _Forest([classifier, regressor, 0.5]).raw(X)
    assert np.allclose(raw[:, 0], classifier.decision_function(X))
    assert np.allclose(raw[:, 1], regressor.predict(X))
    assert np.allclose(raw[:, 2], 0.5)


def test_features_of_one_prefix_equal_those_in_a_batch(logs):
    held_out = logs[1]
    features = CaseFeatures(history=2).fit(logs[0].events, logs[0].attributes)
    batch = held_out.prefixes()
    together = features.transform(held_out.events, batch.ends)
    case = held_out.events[CASE_ID].to_numpy()
    for row in (0, 5, 17, len(batch) - 1):
        end = batch.ends[row]
        start = int(np.flatnonzero(case == case[end])[0])
        single = PrefixBatch.from_prefixes([held_out.events.iloc[start : end + 1]], held_out.attributes)
        alone = features.transform(single.events, single.ends)
        assert np.allclose(alone[0], together[row], equal_nan=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_estimates_agree_with_the_true_effect_at_decision_points(agreement, seed):
    _, frame, _ = agreement[seed]
    answered = frame.dropna(subset=["cate"])
    assert len(answered) > 0.9 * len(frame) > 150
    assert answered["cate"].corr(answered["true"], method="spearman") > 0.5
    # the recommended cases gain more from the treatment than the others
    assert frame.loc[frame.recommended, "true"].mean() > frame.loc[~frame.recommended, "true"].mean()
    oracle = (frame["true"] > 0).mean()
    assert frame["recommended"].mean() <= oracle + 0.10


@pytest.fixture(scope="module")
def at_target_size():
    """The plugin (defaults) fitted on the training cases of a 4,000-case demo log, asked at the held-out decision
    points, beside the true effects."""
    training, held_out = demo_logs(n_cases=TARGET_CASES, seed=TARGET_SEED)
    truth = generate_demo_log(n_cases=TARGET_CASES, seed=TARGET_SEED).true_effect
    truth.index = truth.index.astype(str)
    plugin = CausalTreatmentEffect().fit(training)
    batch = decision_point_batch(held_out)
    predictions = plugin.predict(batch)
    return pd.DataFrame({
        "true": truth.reindex([str(c) for c in batch.case_ids]).to_numpy(),
        "cate": [p["output"]["cate"] if p["output"] else np.nan for p in predictions],
        "low": [p["output"]["cate_low"] if p["output"] else np.nan for p in predictions],
        "high": [p["output"]["cate_high"] if p["output"] else np.nan for p in predictions],
        "recommended": [p["recommend_treatment"] for p in predictions],
    })  # fmt: skip


def test_following_the_advice_captures_most_of_the_oracles_gain(at_target_size):
    """Issue 11's target on a seed the defaults were not chosen on: rho >= 0.65, >= 85 % of the oracle's gain (the
    oracle treats exactly the cases whose true effect is positive), recommending at most the oracle's share + 10
    points."""
    frame = at_target_size
    answered = frame.dropna(subset=["cate"])
    assert len(answered) > 0.95 * len(frame) > 500
    assert answered["cate"].corr(answered["true"], method="spearman") >= 0.65
    oracle = frame["true"] > 0
    gain_share = (frame["true"] * frame["recommended"]).sum() / (frame["true"] * oracle).sum()
    assert gain_share >= 0.85, gain_share
    assert frame["recommended"].mean() <= oracle.mean() + 0.10


def test_intervals_cover_the_true_effect_near_their_nominal_rate(agreement):
    frames = [frame.dropna(subset=["cate"]) for _, frame, _ in agreement.values()]
    frame = pd.concat(frames)
    covered = ((frame["true"] >= frame["low"]) & (frame["true"] <= frame["high"])).mean()
    level = next(iter(agreement.values()))[0].interval_level
    assert level - 0.15 <= covered <= min(1.0, level + 0.15), covered


@pytest.mark.parametrize("seed", SEEDS)
def test_placebo_effect_is_indistinguishable_from_zero(agreement, seed):
    placebo = agreement[seed][0].identification_["placebo"]
    assert placebo["passed"] and abs(placebo["effect"]) <= 2.58 * placebo["standard_error"]


def deterministic_treatment_logs(n_cases: int = 1200, seed: int = 5):
    """A demo log whose 'treatment' follows the path so far: called after the offer if and only if documents were
    requested (2 % exceptions), with no effect on the outcome (approval is drawn as generated, call or not)."""
    from prcore_core.columns import validate_columns_definition
    from prcore_core.conditions import CaseDefinition
    from prcore_core.preparation import ProjectDefinition, prepare

    demo = generate_demo_log(n_cases=n_cases, seed=seed)
    events = demo.events[demo.events["activity"] != "Call customer"]
    rng = np.random.default_rng(seed)
    rows = []
    for _, case in events.groupby("case_id", sort=False):
        offers = np.flatnonzero(case["activity"].to_numpy() == "Send offer")
        requested = (case["activity"] == "Request missing documents").any()
        rows.append(case)
        if len(offers) and (requested != (rng.random() < 0.02)):
            call = case.iloc[[offers[-1]]].assign(activity="Call customer")
            stamp = pd.Timestamp(call["timestamp"].iloc[0]) + pd.Timedelta(minutes=1)
            rows.append(call.assign(timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]))
    frame = pd.concat(rows).sort_values(["case_id", "timestamp"], kind="stable")
    columns = validate_columns_definition(frame.columns, demo.columns_definition, demo.case_attributes)
    definition = ProjectDefinition(
        outcome=CaseDefinition.parse(demo.outcome, columns), treatment=CaseDefinition.parse(demo.treatment, columns)
    )
    prepared = prepare(frame.astype("string"), columns, definition)
    return prepared.part("training", definition), prepared.part("held_out", definition)


def test_a_treatment_determined_by_the_path_is_not_identifiable():
    training, held_out = deterministic_treatment_logs()
    plugin = CausalTreatmentEffect().fit(training)
    identification = plugin.identification_
    assert identification["identifiable"] is False
    assert identification["overlap_share"] < 0.5
    assert any("overlap" in reason for reason in identification["reasons"])
    predictions = plugin.predict(held_out.prefixes())
    assert not any(p["recommend_treatment"] for p in predictions)
    at_decision = [p for p in predictions if p["advice"] == ADVICE_NOT_IDENTIFIABLE]
    assert at_decision and all(p["output"] is None and "not identifiable" in p["detail"] for p in at_decision)
    metrics = plugin.evaluate(held_out)
    assert metrics["identifiable"] is False and metrics["recommend_share"] == 0.0
    assert "not identifiable" in metrics["detail"]


def test_an_outcome_that_needs_the_treatment_is_not_identifiable(logs):
    """When the desired outcome never happens without the treatment, the treatment marks progress (BPIC 2012)."""
    training = logs[0]
    labels = training.labels.copy()
    labels.loc[labels[TREATMENT] == 0, "OUTCOME"] = 0
    plugin = CausalTreatmentEffect().fit(dataclasses.replace(training, labels=labels))
    assert plugin.identification_["identifiable"] is False
    assert "never happens without the treatment" in plugin.identification_["reasons"][0]
    assert not any(p["recommend_treatment"] for p in plugin.predict(logs[1].prefixes()))
