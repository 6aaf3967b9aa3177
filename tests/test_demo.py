"""Tests of the synthetic demo event log (``prcore_core.demo``)."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from prcore_core.columns import ColumnDefinition, infer_definition, validate_columns_definition
from prcore_core.demo import ACTIVITIES, APPROVE, TREATMENT, DemoLog, generate_demo_log

SEND_OFFER = "Send offer"
ENDINGS = {"Auto-decline", "Decline loan", "Cancel application", APPROVE}


@pytest.fixture(scope="module")
def log() -> DemoLog:
    return generate_demo_log(2000, seed=0)


@pytest.fixture(scope="module")
def big_log() -> DemoLog:
    return generate_demo_log(5000, seed=0)


def _cases(log: DemoLog) -> pd.Index:
    return pd.Index(log.events["case_id"].unique(), name="case_id")


# Determinism ---------------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_log():
    first, second = generate_demo_log(300, seed=7), generate_demo_log(300, seed=7)
    pd.testing.assert_frame_equal(first.events, second.events)
    for name in ("true_effect", "treated", "approved", "propensity"):
        pd.testing.assert_series_equal(getattr(first, name), getattr(second, name))
    assert first.to_csv() == second.to_csv()


def test_different_seeds_give_different_logs():
    first, second = generate_demo_log(300, seed=1), generate_demo_log(300, seed=2)
    assert first.to_csv() != second.to_csv()
    assert not first.true_effect.equals(second.true_effect)


def test_start_moves_the_timeline():
    log = generate_demo_log(50, seed=3, start="2023-03-01")
    stamps = pd.to_datetime(log.events["timestamp"], format="ISO8601")
    assert stamps.min() >= pd.Timestamp("2023-03-01")
    assert stamps.min() < pd.Timestamp("2023-04-01")


@pytest.mark.parametrize("n_cases", [0, -1, 2.5, True])
def test_bad_case_count_is_rejected(n_cases):
    with pytest.raises(ValueError, match="n_cases"):
        generate_demo_log(n_cases)


# Columns and definition ----------------------------------------------------------------------------------------


def test_columns_definition_matches_the_events(log):
    events = log.events
    definition = log.columns_definition
    assert set(definition) == set(events.columns)
    parsed = validate_columns_definition(events.columns, definition, log.case_attributes)
    assert parsed.case_id == "case_id" and parsed.activity == "activity" and parsed.resource == "resource"
    assert parsed.column_of(ColumnDefinition.TIMESTAMP) == "timestamp"
    # The special columns are also what PrCore would infer from their names.
    for column in ("case_id", "activity", "timestamp", "resource"):
        assert infer_definition(column) == ColumnDefinition(definition[column])
    for column, kind in definition.items():
        if kind == "NUMBER":
            assert pd.api.types.is_numeric_dtype(events[column]), column


def test_case_attributes_are_constant_within_a_case(log):
    events = log.events
    assert set(log.case_attributes) == {"amount", "loan_goal", "credit_score", "channel"}
    assert events[log.case_attributes].notna().all().all()
    assert (events.groupby("case_id")[log.case_attributes].nunique() == 1).all().all()
    assert set(events["channel"]) == {"online", "branch"}
    assert events["loan_goal"].nunique() >= 4
    assert events["amount"].min() >= 1000 and events["amount"].max() > 5 * events["amount"].median()
    assert events["credit_score"].between(300, 850).all()


def test_event_attributes_vary_within_cases(log):
    events = log.events
    offers = events["activity"] == SEND_OFFER
    assert events.loc[offers, "offered_amount"].notna().all()
    assert events.loc[~offers, "offered_amount"].isna().all()
    assert (events.loc[offers, "offered_amount"] <= events.loc[offers, "amount"] + 100).all()
    documents = events["documents_missing"]
    assert documents.notna().any() and documents.isna().any()
    assert set(documents.dropna().astype(int)) == {0, 1, 2, 3}
    # Not a case attribute: several values within one case.
    assert (events.groupby("case_id")["documents_missing"].nunique() > 1).any()


def test_outcome_and_treatment_definitions(log):
    assert log.outcome == [[{"column": "activity", "operator": "EQUAL", "value": APPROVE}]]
    assert log.treatment == [[{"column": "activity", "operator": "EQUAL", "value": TREATMENT}]]
    assert set(log.events["activity"]) <= set(ACTIVITIES)
    assert {APPROVE, TREATMENT} <= set(log.events["activity"])


def test_resources_are_named_staff_system_or_missing(log):
    resources = log.events["resource"]
    assert "system" in set(resources)
    assert resources.dropna().nunique() >= 10
    assert 0.005 < resources.isna().mean() < 0.2
    automatic = log.events["activity"].isin({"Check fraud", "Auto-decline"})
    assert (resources[automatic] == "system").all()


# Time ----------------------------------------------------------------------------------------------------------


def test_timestamps_are_iso_with_milliseconds_and_strictly_increasing(log):
    text = log.events["timestamp"]
    assert text.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}").all()
    stamps = pd.to_datetime(text, format="ISO8601")
    assert stamps.notna().all()
    steps = stamps.groupby(log.events["case_id"]).diff().dropna()
    assert (steps > pd.Timedelta(0)).all()
    # Cases arrive over several months; durations range from seconds to weeks.
    first = stamps.groupby(log.events["case_id"]).min()
    assert first.max() - first.min() > pd.Timedelta(days=120)
    duration = stamps.groupby(log.events["case_id"]).max() - first
    assert duration.min() < pd.Timedelta(hours=1) and duration.max() > pd.Timedelta(days=20)


def test_events_are_sorted_by_case_then_time(log):
    events = log.events
    stamps = pd.to_datetime(events["timestamp"], format="ISO8601")
    order = pd.DataFrame({"case_id": events["case_id"], "t": stamps}).sort_values(["case_id", "t"], kind="stable")
    assert order.index.tolist() == list(range(len(events)))
    assert events["case_id"].is_monotonic_increasing


def test_staff_work_in_office_hours(log):
    events = log.events
    staff = events["resource"].notna() & (events["resource"] != "system")
    stamps = pd.to_datetime(events.loc[staff, "timestamp"], format="ISO8601")
    assert (stamps.dt.day_of_week < 5).all()
    assert stamps.dt.hour.between(8, 16).all()


# Control flow --------------------------------------------------------------------------------------------------


def test_trace_structure(log):
    events = log.events
    lengths = events.groupby("case_id").size()
    assert lengths.min() == 3 and lengths.max() <= 25 and lengths.nunique() >= 10
    assert (events.groupby("case_id")["activity"].first() == "Submit application").all()
    assert set(events.groupby("case_id")["activity"].last()) == ENDINGS
    requests = events[events["activity"] == "Request missing documents"].groupby("case_id").size()
    assert requests.max() >= 3  # the document loop repeats
    # Low credit scores are auto-declined more often (XOR depending on attributes).
    auto = events.groupby("case_id")["activity"].apply(lambda a: "Auto-decline" in set(a))
    score = events.groupby("case_id")["credit_score"].first()
    assert auto[score < 600].mean() > 3 * auto[score >= 650].mean()


def test_next_activity_is_learnable_but_not_trivial(log):
    events = log.events
    following = events.groupby("case_id")["activity"].shift(-1)
    after_offer = following[events["activity"] == SEND_OFFER].value_counts()
    assert len(after_offer) >= 3 and after_offer.iloc[0] / after_offer.sum() < 0.8
    # After a validation, the number of missing documents decides the next step.
    validate = events["activity"] == "Validate documents"
    missing = events["documents_missing"] > 0
    assert (following[validate & missing] == "Request missing documents").all()
    assert set(following[validate & ~missing].dropna()) == {"Assess credit"}


# Outcome, treatment and effect ---------------------------------------------------------------------------------


def test_series_are_consistent_with_the_events(log):
    events = log.events
    cases = _cases(log)
    activities = events.groupby("case_id")["activity"].agg(set).reindex(cases)
    for name in ("true_effect", "treated", "approved", "propensity"):
        assert getattr(log, name).index.equals(cases), name
    assert log.treated.dtype == bool and log.approved.dtype == bool
    assert (log.approved == activities.map(lambda a: APPROVE in a)).all()
    assert (log.treated == activities.map(lambda a: TREATMENT in a)).all()
    # The call always follows an offer; cases without an offer have no effect and no propensity.
    offered = activities.map(lambda a: SEND_OFFER in a)
    assert not log.treated[~offered].any() and not log.approved[~offered].any()
    assert (log.true_effect[~offered] == 0).all() and log.propensity[~offered].isna().all()
    assert log.propensity[offered].notna().all()
    stamps = pd.to_datetime(events["timestamp"], format="ISO8601")
    last_offer = stamps[events["activity"] == SEND_OFFER].groupby(events["case_id"]).max()
    call = stamps[events["activity"] == TREATMENT].groupby(events["case_id"]).max()
    assert (call > last_offer.reindex(call.index)).all()


def test_treatment_is_confounded_but_not_degenerate(log):
    offered = log.propensity.notna()
    assert log.propensity[offered].between(0.1, 0.9, inclusive="neither").all()
    share = log.treated[offered].mean()
    assert 0.1 < share < 0.9
    amount = log.events.groupby("case_id")["amount"].first()[offered]
    treated = log.treated[offered]
    large = amount > amount.median()
    assert treated[large].mean() > treated[~large].mean() + 0.1


def test_effect_is_heterogeneous(log):
    effect = log.true_effect[log.propensity.notna()]
    assert effect.between(-1, 1).all()
    assert (effect > 0.3).mean() > 0.05
    assert (effect.abs() < 0.02).mean() > 0.1
    assert (effect < -0.02).any()
    # Strongly positive for mid credit scores and large amounts, not for excellent scores.
    score = log.events.groupby("case_id")["credit_score"].first()[effect.index]
    amount = log.events.groupby("case_id")["amount"].first()[effect.index]
    mid_large = score.between(620, 690) & (amount > 25000)
    assert effect[mid_large].mean() > 0.25
    assert effect[score > 780].abs().max() < 0.1


def _ipw_effect(log: DemoLog, cases: pd.Series) -> float:
    """Inverse-propensity-weighted estimate of the average effect over the selected cases."""
    propensity = log.propensity[cases]
    outcome = log.approved[cases].astype(float)
    treated = log.treated[cases].astype(float)
    return float((outcome * treated / propensity).mean() - (outcome * (1 - treated) / (1 - propensity)).mean())


def test_treatment_raises_approval_where_the_effect_is_large(big_log):
    log = big_log
    offered = log.propensity.notna()
    strong = offered & (log.true_effect > 0.1)
    assert strong.sum() > 500
    truth = log.true_effect[strong].mean()
    naive = log.approved[strong & log.treated].mean() - log.approved[strong & ~log.treated].mean()
    assert naive > 0.1
    # The standard error of the estimate is about 0.03; the tolerance is about 3 of them.
    assert _ipw_effect(log, strong) == pytest.approx(truth, abs=0.1)
    weak = offered & (log.true_effect.abs() < 0.03)
    assert abs(_ipw_effect(log, weak)) < 0.1


def test_approval_depends_on_credit_score(big_log):
    offered = big_log.propensity.notna()
    score = big_log.events.groupby("case_id")["credit_score"].first()[offered]
    approved = big_log.approved[offered]
    assert approved[score > 720].mean() > approved[score < 640].mean() + 0.15


# CSV -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [",", ";"])
def test_csv_round_trip(log, separator):
    data = log.to_csv(separator)
    assert isinstance(data, bytes)
    assert data.decode("utf-8").splitlines()[0] == separator.join(log.events.columns)
    back = pd.read_csv(io.BytesIO(data), sep=separator)
    expected = log.events.astype({"documents_missing": "float64", "offered_amount": "float64"})
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back["resource"].isna().sum() == log.events["resource"].isna().sum()


# Speed ---------------------------------------------------------------------------------------------------------


def test_generation_is_fast():
    began = time.perf_counter()
    log = generate_demo_log(10_000, seed=1)
    elapsed = time.perf_counter() - began
    assert log.events["case_id"].nunique() == 10_000
    assert elapsed < 5.0
    assert np.isfinite(log.true_effect).all()
