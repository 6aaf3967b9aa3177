"""The resource allocation plugin: additional info, the CATE gate, allocation order, expiry and concurrency."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import numpy as np
import pandas as pd
import pytest

from plugins.causal_treatment_effect import CausalTreatmentEffect
from plugins.resource_allocation import NO_EFFECT, NO_RESOURCE, ResourceAllocation
from prcore_core import errors, registry
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.context import PersistentState, PredictionContext
from prcore_core.dataset import ACTIVITY, CASE_ID, TIMESTAMP, TREATMENT, PrefixBatch
from prcore_core.plugin import PrescriptionType

INFO = {"available_resources": ["Resource_A", "Resource_B", "Resource_C"], "treatment_duration": "1h"}
NOW = dt.datetime(2024, 6, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def logs():
    training, held_out = demo_logs()
    return dataclasses.replace(training, additional_info=INFO), dataclasses.replace(held_out, additional_info=INFO)


@pytest.fixture(scope="module")
def fitted(logs):
    return ResourceAllocation().fit(logs[0])


class FixedEffects(ResourceAllocation):
    """The allocation logic with chosen effects per case (no model): ``cates[case] = (cate, recommended)``."""

    key = "fixed-effects"

    def __init__(self, cates: dict[str, tuple[float, bool]], info=INFO, **params):
        super().__init__(**params)
        self.cates = cates
        self.resources_, self.treatment_seconds_ = self._resources_and_duration(info)
        self.estimator_ = object()

    def _effects(self, batch):
        effects = []
        for case in batch.case_ids:
            cate, recommended = self.cates[str(case).rsplit("\x1f", 1)[-1]]
            reason = "Treat: sure" if recommended else "Not recommended: unsure"
            effects.append({"output": {"cate": cate, "cate_low": cate - 0.1, "cate_high": cate + 0.1},
                            "recommend_treatment": recommended, "reason": reason})  # fmt: skip
        return effects


def one_prefix_per_case(*cases: str) -> PrefixBatch:
    """One-event prefixes of ``cases``, in the given order (repeats allowed)."""
    distinct = sorted(set(cases))
    events = pd.DataFrame({CASE_ID: distinct, ACTIVITY: "x", TIMESTAMP: pd.Timestamp("2024-06-03", tz="UTC")})
    return PrefixBatch(events, np.array([distinct.index(case) for case in cases]))


def allocate(plugin, state, now, *cases):
    return plugin.predict(one_prefix_per_case(*cases), PredictionContext(now=now, state=state))


def test_declaration_and_registration():
    assert issubclass(ResourceAllocation, CausalTreatmentEffect)
    assert ResourceAllocation.key == "resource-allocation"
    assert ResourceAllocation.prescription_type == PrescriptionType.RESOURCE_ALLOCATION
    assert ResourceAllocation.needs_outcome and ResourceAllocation.needs_treatment
    assert registry.available_plugins()["resource-allocation"] is ResourceAllocation
    assert registry.resolve_key("plugin-causallift-resource-allocation") == "resource-allocation"


def test_passes_check_plugin(logs):
    check_plugin(ResourceAllocation, logs)


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({}, "missing: available_resources, treatment_duration"),
        ({"available_resources": ["A"]}, "missing: treatment_duration"),
        ({"treatment_duration": "1h"}, "missing: available_resources"),
        ({"available_resources": [], "treatment_duration": "1h"}, "non-empty list of resource names"),
        ({"available_resources": "A", "treatment_duration": "1h"}, "non-empty list of resource names"),
        ({"available_resources": ["A", 3], "treatment_duration": "1h"}, "non-empty list of resource names"),
        ({"available_resources": ["A", " "], "treatment_duration": "1h"}, "non-empty list of resource names"),
        ({"available_resources": ["A", "B", "A"], "treatment_duration": "1h"}, "lists A more than once"),
        ({"available_resources": ["A"], "treatment_duration": "soon"}, "treatment_duration must be a duration"),
        ({"available_resources": ["A"], "treatment_duration": "1h 30min"}, "treatment_duration must be a duration"),
        ({"available_resources": ["A"], "treatment_duration": "0"}, "longer than 0 seconds"),
    ],
)
def test_invalid_additional_info_is_rejected_with_a_reason(info, message):
    with pytest.raises(errors.InvalidParameterError, match=message):
        ResourceAllocation.validate_additional_info(info)


def test_valid_additional_info():
    ResourceAllocation.validate_additional_info(INFO)
    ResourceAllocation.validate_additional_info({"available_resources": ["A"], "treatment_duration": "2 days"})
    assert ResourceAllocation._resources_and_duration({"available_resources": ["A"], "treatment_duration": "2 days"}) \
        == (["A"], 172800.0)  # fmt: skip


def test_not_applicable_without_additional_info_or_treatment(logs):
    training = logs[0]
    reason = ResourceAllocation.applicability(dataclasses.replace(training, additional_info={}))
    assert reason.startswith("Resource allocation needs additional_info.available_resources")
    assert "treatment_duration" in reason
    no_treatment = dataclasses.replace(training, labels=training.labels.drop(columns=[TREATMENT]))
    assert ResourceAllocation.applicability(no_treatment) == "Resource allocation needs a treatment definition"
    assert ResourceAllocation.applicability(training) is None


def test_project_creation_rejects_bad_additional_info(core, defined_log, demo):
    info = {"plugin-causallift-resource-allocation": {"available_resources": ["A"]}}
    with pytest.raises(errors.InvalidParameterError, match="missing: treatment_duration"):
        core.create_project(
            defined_log.id, positive_outcome=demo.outcome, treatment=demo.treatment, additional_info=info
        )


def test_first_free_resource_in_order_then_none():
    plugin = FixedEffects({c: (0.2, True) for c in "abcd"})
    state = PersistentState()
    results = allocate(plugin, state, NOW, "a", "b", "c", "d")
    until = (NOW + dt.timedelta(hours=1)).isoformat()
    interval = {"cate": 0.2, "cate_low": 0.1, "cate_high": 0.30000000000000004}
    assert [r["output"] for r in results[:3]] == [
        {**interval, "resource": "Resource_A", "allocated_until": until},
        {**interval, "resource": "Resource_B", "allocated_until": until},
        {**interval, "resource": "Resource_C", "allocated_until": until},
    ]
    assert results[3] == {"output": None, "detail": NO_RESOURCE, **interval, "recommend_treatment": True,
                          "reason": "Treat: sure"}  # fmt: skip
    assert until == "2024-06-03T11:00:00+00:00"
    assert state.snapshot()["allocations"]["Resource_B"] == {
        "case_id": "b", "case_start": "2024-06-03T00:00:00+00:00", "until": until
    }  # fmt: skip


def test_a_case_keeps_its_live_allocation():
    plugin = FixedEffects({c: (0.2, True) for c in "abc"})
    state = PersistentState()
    first = allocate(plugin, state, NOW, "a", "b")
    later = allocate(plugin, state, NOW + dt.timedelta(minutes=30), "b", "a", "c")
    assert later[0]["output"] == first[1]["output"]  # same resource, same end: no second booking
    assert later[1]["output"] == first[0]["output"]
    assert later[2]["output"]["resource"] == "Resource_C"
    # two prefixes of one case in one batch share one resource too
    other = allocate(FixedEffects({"x": (0.2, True)}), PersistentState(), NOW, "x", "x")
    assert other[0] == other[1] and other[0]["output"]["resource"] == "Resource_A"


def test_allocations_expire():
    plugin = FixedEffects({c: (0.2, True) for c in "abcde"})
    state = PersistentState()
    allocate(plugin, state, NOW, "a", "b")
    allocate(plugin, state, NOW + dt.timedelta(minutes=30), "c")
    assert allocate(plugin, state, NOW + dt.timedelta(minutes=59), "d")[0]["detail"] == NO_RESOURCE
    # a and b end exactly now (free again), c runs until 11:30
    later = allocate(plugin, state, NOW + dt.timedelta(hours=1), "e", "d")
    assert [r["output"]["resource"] for r in later] == ["Resource_A", "Resource_B"]
    assert later[0]["output"]["allocated_until"] == "2024-06-03T12:00:00+00:00"
    allocations = state.snapshot()["allocations"]
    assert {r: a["case_id"] for r, a in allocations.items()} == {
        "Resource_A": "e",
        "Resource_B": "d",
        "Resource_C": "c",
    }
    freed = allocate(plugin, state, NOW + dt.timedelta(hours=1, minutes=30), "a")
    assert freed[0]["output"]["resource"] == "Resource_C"


def test_no_allocation_unless_the_treatment_is_recommended():
    """The rule of the treatment effect plugin: a positive CATE whose interval reaches 0 books nothing."""
    plugin = FixedEffects({"negative": (-0.1, False), "unsure": (0.3, False), "ok": (0.1, True)})
    state = PersistentState()
    results = allocate(plugin, state, NOW, "negative", "unsure", "ok")
    assert results[0] == {"output": None, "detail": f"{NO_EFFECT}: Not recommended: unsure", "cate": -0.1,
                          "recommend_treatment": False, "reason": "Not recommended: unsure"}  # fmt: skip
    assert results[1]["output"] is None and results[1]["cate"] == 0.3 and not results[1]["recommend_treatment"]
    assert results[2]["output"]["resource"] == "Resource_A" and results[2]["recommend_treatment"]
    assert list(state.snapshot()["allocations"]) == ["Resource_A"]


def test_not_a_decision_point_or_not_identifiable_books_nothing(logs, fitted):
    batch = logs[1].prefixes()
    results = fitted.predict(batch, PredictionContext(now=NOW, state=PersistentState()))
    effects = CausalTreatmentEffect.predict(fitted, batch)
    for effect, result in zip(effects, results, strict=True):
        if effect["output"] is None:
            assert result["output"] is None and result["detail"] == f"{NO_EFFECT}: {effect['detail']}"


def test_streamed_prefixes_keep_their_case_identity_and_naive_now_is_utc():
    plugin = FixedEffects({"case-7": (0.4, True), "case-8": (0.4, True)})
    state = PersistentState()
    prefix = one_prefix_per_case("case-7").events

    def stream(events, now):
        return plugin.predict(PrefixBatch.from_prefixes([events]), PredictionContext(now=now, state=state))[0]

    first = stream(prefix, NOW.replace(tzinfo=None))
    again = stream(prefix.assign(**{CASE_ID: "case-7"}), NOW + dt.timedelta(minutes=5))
    assert first["output"] == again["output"]
    assert first["output"]["allocated_until"] == "2024-06-03T11:00:00+00:00"
    assert state.snapshot()["allocations"]["Resource_A"]["case_id"] == "case-7"


class SlowState(PersistentState):
    """A state whose reads and writes take time, like a database's, so that unserialised updates would collide."""

    def snapshot(self):
        state = super().snapshot()
        time.sleep(0.002)  # the answer arrives late: meanwhile another thread may change the state
        return state

    def _save(self, state):
        time.sleep(0.002)


def test_prefixes_named_by_position_do_not_inherit_bookings():
    """The streaming prescriber names the prefixes of each burst 0, 1, ...: prefix 0 of the next burst is another
    case (another start), so it must not be given the booking of the previous burst's prefix 0."""
    plugin = FixedEffects({"0": (0.2, True)})
    state = PersistentState()

    def burst(start: str, now: dt.datetime):
        events = pd.DataFrame({CASE_ID: ["0", "0"], ACTIVITY: ["x", "y"],
                               TIMESTAMP: pd.to_datetime([start, "2024-06-03T09:00"], utc=True)})  # fmt: skip
        return plugin.predict(PrefixBatch(events, np.array([1])), PredictionContext(now=now, state=state))[0]

    first = burst("2024-06-01T08:00", NOW)
    same_case_later = burst("2024-06-01T08:00", NOW + dt.timedelta(minutes=10))
    other_case = burst("2024-06-02T08:00", NOW + dt.timedelta(minutes=10))
    assert first["output"]["resource"] == same_case_later["output"]["resource"] == "Resource_A"
    assert other_case["output"]["resource"] == "Resource_B"


def test_concurrent_prescriptions_never_share_a_resource():
    cases = [f"case-{i}" for i in range(40)]
    plugin = FixedEffects({c: (0.3, True) for c in cases})
    state = SlowState()
    barrier = threading.Barrier(8)
    results: dict[int, list] = {}

    def worker(number: int) -> None:
        barrier.wait()
        mine = cases[number * 5 : number * 5 + 5]
        results[number] = [r for case in mine for r in allocate(plugin, state, NOW, case)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [r["output"] for rs in results.values() for r in rs if r["output"] is not None]
    assert len(granted) == 3
    assert sorted(g["resource"] for g in granted) == ["Resource_A", "Resource_B", "Resource_C"]
    allocations = state.snapshot()["allocations"]
    assert len(allocations) == 3 and len({a["case_id"] for a in allocations.values()}) == 3


def test_the_real_model_gates_on_the_recommendation(logs, fitted):
    batch = logs[1].prefixes()
    effects = CausalTreatmentEffect.predict(fitted, batch)
    state = PersistentState()
    results = fitted.predict(batch, PredictionContext(now=NOW, state=state))
    assert len(results) == len(batch)
    recommended = [e["recommend_treatment"] for e in effects]
    assert any(recommended) and not all(recommended)
    for effect, result in zip(effects, results, strict=True):
        assert result["recommend_treatment"] == effect["recommend_treatment"]
        if not effect["recommend_treatment"]:
            assert result["output"] is None and result["detail"].startswith(NO_EFFECT)
        elif result["output"] is not None:
            assert result["output"]["cate"] == effect["output"]["cate"]
            assert result["output"]["cate_low"] > fitted.threshold
    booked = {r["output"]["resource"] for r in results if r["output"] is not None}
    assert booked == set(INFO["available_resources"])
    assert len(state.snapshot()["allocations"]) == 3


def test_settings_survive_save_and_load(tmp_path, fitted):
    loaded = ResourceAllocation.load(fitted.save(tmp_path / "model.pkl"))
    assert loaded.resources_ == INFO["available_resources"] and loaded.treatment_seconds_ == 3600.0


def test_evaluate_adds_the_allocation_share(logs, fitted):
    metrics = fitted.evaluate(logs[1])
    assert 0.0 < metrics["allocation_share"] == metrics["recommend_share"] <= 1.0
    assert {"qini", "auuc", "support", "by_prefix_length", "policy_value", "identification"} <= set(metrics)


def test_shares_the_fit_of_the_treatment_effect_plugin(logs, fitted):
    """Both plugins fit the same model on the same training cases: within a process it is fitted once."""
    effect = CausalTreatmentEffect().fit(dataclasses.replace(logs[0], additional_info={}))
    assert effect.estimator_ is fitted.estimator_ and effect.features_ is fitted.features_
    assert effect.evaluate(logs[1])["policy_value"] == fitted.evaluate(logs[1])["policy_value"]
    reseeded = ResourceAllocation(seed=1).fit(logs[0])
    assert reseeded.estimator_ is not fitted.estimator_
    changed = logs[0].labels.copy()
    changed.iloc[0, changed.columns.get_loc(TREATMENT)] = 1 - changed.iloc[0, changed.columns.get_loc(TREATMENT)]
    assert ResourceAllocation().fit(dataclasses.replace(logs[0], labels=changed)).estimator_ is not fitted.estimator_
