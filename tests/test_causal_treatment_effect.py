"""The causal treatment effect plugin: contract, training rows, outputs and agreement with the demo's true effect."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from plugins.causal_treatment_effect import (
    MIN_CASES_PER_GROUP,
    CausalTreatmentEffect,
    eligible_ends,
)
from prcore_core import errors, registry
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import CASE_ID, OUTCOME_OBSERVED, TREATMENT, TREATMENT_OBSERVED, PrefixBatch
from prcore_core.demo import generate_demo_log
from prcore_core.plugin import PrescriptionType


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def fitted(logs):
    return CausalTreatmentEffect().fit(logs[0])


def test_importing_the_plugin_does_not_import_causalml():
    code = "import sys, plugins.causal_treatment_effect; print('causalml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_declaration_and_registration():
    assert CausalTreatmentEffect.key == "causal-treatment-effect"
    assert CausalTreatmentEffect.title == "Causal treatment effect"
    assert CausalTreatmentEffect.prescription_type == PrescriptionType.TREATMENT_EFFECT
    assert CausalTreatmentEffect.needs_outcome and CausalTreatmentEffect.needs_treatment
    assert registry.available_plugins()["causal-treatment-effect"] is CausalTreatmentEffect
    assert registry.resolve_key("plugin-causallift-treatment-effect") == "causal-treatment-effect"
    assert CausalTreatmentEffect.parameter_defaults()["learner"] == "T"


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
    # all but three treated cases show the treatment from their first event on
    hidden = events[CASE_ID].isin(treated[3:])
    events.loc[hidden, TREATMENT_OBSERVED] = True
    reason = CausalTreatmentEffect.applicability(dataclasses.replace(training, events=events))
    assert reason is not None
    assert f"at least {MIN_CASES_PER_GROUP} treated" in reason and "have 3 treated" in reason
    with pytest.raises(errors.PrCoreError, match="at least"):
        CausalTreatmentEffect().fit(dataclasses.replace(training, events=events))


def test_training_rows_end_before_treatment_outcome_and_case_end():
    events = pd.DataFrame({
        CASE_ID: ["a", "a", "a", "a", "b", "b", "b"],
        TREATMENT_OBSERVED: [False, False, True, True, False, False, False],
        OUTCOME_OBSERVED: [False, False, False, True, False, True, True],
    })  # fmt: skip
    assert eligible_ends(events).tolist() == [0, 1, 4]
    assert eligible_ends(events.drop(columns=[TREATMENT_OBSERVED, OUTCOME_OBSERVED])).tolist() == [0, 1, 2, 4, 5]


def test_training_sample_is_capped_spread_over_cases_and_deterministic(logs):
    training = logs[0]
    plugin = CausalTreatmentEffect(max_training_prefixes=500)
    batch = plugin._training_batch(training)
    eligible = eligible_ends(training.events)
    assert len(eligible) > 500 and len(batch) == 500
    assert set(batch.ends) <= set(eligible)
    per_case = pd.Series(batch.case_ids).value_counts()
    assert per_case.max() - per_case.min() <= 1  # round-robin over cases, not whole cases
    assert per_case.size == min(500, pd.unique(training.events[CASE_ID].to_numpy()[eligible]).size)
    assert np.array_equal(batch.ends, CausalTreatmentEffect(max_training_prefixes=500)._training_batch(training).ends)
    assert not np.array_equal(batch.ends, CausalTreatmentEffect(max_training_prefixes=500, seed=1)
                              ._training_batch(training).ends)  # fmt: skip


def test_output_follows_the_reference_shape(logs, fitted):
    held_out = logs[1]
    batch = held_out.prefixes()
    predictions = fitted.predict(batch)
    assert len(predictions) == len(batch)
    for prediction in predictions:
        output = prediction["output"]
        assert set(output) == {"proba_if_treated", "proba_if_untreated", "cate", "treatment"}
        p1, p0, cate = output["proba_if_treated"], output["proba_if_untreated"], output["cate"]
        assert 0.0 <= p0 <= 1.0 and 0.0 <= p1 <= 1.0
        assert cate == round(p1 - p0, 4) and round(p1, 4) == p1 and round(p0, 4) == p0
        assert output["treatment"] == logs[0].treatment_definition
        assert prediction["recommend_treatment"] == (cate > 0 and prediction["overlap"])
        assert prediction["overlap"] == (prediction["propensity"] >= fitted.min_propensity)
    cates = [p["output"]["cate"] for p in predictions]
    assert min(cates) < max(cates)  # the effect depends on the prefix
    assert any(p["recommend_treatment"] for p in predictions)


def test_out_of_overlap_prefixes_are_flagged_and_never_recommended(logs):
    plugin = CausalTreatmentEffect(min_propensity=0.5).fit(logs[0])
    predictions = plugin.predict(logs[1].prefixes())
    outside = [p for p in predictions if not p["overlap"]]
    assert outside and len(outside) < len(predictions)
    assert all(not p["recommend_treatment"] and "extrapolated" in p["detail"] for p in outside)


def test_unfitted_plugin_answers_with_a_reason(logs):
    predictions = CausalTreatmentEffect().predict(logs[1].prefixes())
    assert predictions[0] == {"output": None, "detail": "The plugin is not trained"}


def test_evaluate_reports_uplift_metrics_per_case(logs, fitted):
    held_out = logs[1]
    metrics = fitted.evaluate(held_out)
    eligible = eligible_ends(held_out.events)
    cases = pd.unique(held_out.events[CASE_ID].to_numpy()[eligible])
    assert metrics["support"] == len(cases)
    assert metrics["prefixes"] == len(eligible)
    assert metrics["treated_cases"] == int(held_out.labels[TREATMENT].reindex(cases).sum())
    assert sum(row["support"] for row in metrics["by_prefix_length"]) == metrics["prefixes"]
    assert all(isinstance(metrics[k], float) for k in ("qini", "auuc", "mean_cate", "overlap_share"))
    assert all(row["qini"] is None or isinstance(row["qini"], float) for row in metrics["by_prefix_length"])
    # a bucket with too few treated cases has no Qini rather than a meaningless one
    assert any(row["qini"] is None for row in metrics["by_prefix_length"] if row["treated"] < 10)


@pytest.mark.parametrize("learner", ["S", "X", "R"])
def test_other_meta_learners(logs, learner):
    plugin = CausalTreatmentEffect(learner=learner, base_learner="logistic_regression").fit(logs[0])
    batch = logs[1].prefixes()
    outputs = [p["output"] for p in plugin.predict(batch)]
    assert all(0 <= o["proba_if_untreated"] <= 1 and 0 <= o["proba_if_treated"] <= 1 for o in outputs)
    assert all(o["cate"] == round(o["proba_if_treated"] - o["proba_if_untreated"], 4) for o in outputs)
    assert len({o["cate"] for o in outputs}) > 1
    assert plugin.evaluate(logs[1])["support"] > 0


def test_random_forest_base_learner(logs):
    plugin = CausalTreatmentEffect(base_learner="random_forest", n_estimators=20).fit(logs[0])
    assert len(plugin.predict(logs[1].prefixes())) == len(logs[1].prefixes())


def test_estimated_effect_agrees_with_the_true_effect_on_held_out_cases():
    """The demo log knows each case's true CATE; the per-case mean estimate must rank cases like it."""
    training, held_out = demo_logs(n_cases=1000, seed=7)
    truth = generate_demo_log(n_cases=1000, seed=7).true_effect
    truth.index = truth.index.astype(str)
    plugin = CausalTreatmentEffect().fit(training)
    batch = PrefixBatch(held_out.events, eligible_ends(held_out.events), held_out.attributes)
    estimates = pd.DataFrame({"case": batch.case_ids, "cate": [p["output"]["cate"] for p in plugin.predict(batch)]})
    per_case = estimates.groupby("case")["cate"].mean()
    assert set(per_case.index) <= set(training.labels.index) | set(held_out.labels.index)
    assert not set(per_case.index) & set(training.labels.index)  # held-out cases only
    correlation = np.corrcoef(per_case.to_numpy(), truth.reindex(per_case.index).to_numpy())[0, 1]
    assert correlation > 0.2, correlation
    assert plugin.evaluate(held_out)["qini"] > 0
