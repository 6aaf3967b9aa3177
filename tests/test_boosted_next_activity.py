"""The gradient-boosted next-activity plugin: contract, quality beside the baselines, calibration, streaming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plugins.boosted_next_activity import BoostedNextActivity
from prcore_core import registry
from prcore_core.baselines import AggregateBoostingNextActivity, NGramNextActivity
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import CASE_ID, PrefixBatch
from prcore_core.encoding import TreeEncoder


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def fitted(logs):
    return BoostedNextActivity().fit(logs[0])


def test_passes_check_plugin_and_is_registered(logs):
    check_plugin(BoostedNextActivity, logs)
    assert registry.get_plugin_class("boosted-next-activity") is BoostedNextActivity


def test_beats_both_baselines_on_held_out_cases(logs, fitted):
    training, held_out = logs
    ours = fitted.evaluate(held_out)
    for baseline in (NGramNextActivity(), AggregateBoostingNextActivity()):
        theirs = baseline.fit(training).evaluate(held_out)
        assert ours["support"] == theirs["support"]
        assert ours["accuracy"] >= theirs["accuracy"], baseline.key
        assert ours["brier_score"] <= theirs["brier_score"], baseline.key
    assert 0 < ours["rounds"] <= fitted.max_rounds and ours["temperature"] > 0


def test_a_prefix_alone_gets_what_it_gets_in_a_batch(logs, fitted):
    _, held_out = logs
    batch = held_out.prefixes()
    chosen = batch.ends[:: max(len(batch) // 40, 1)]
    together = fitted.predict(PrefixBatch(held_out.events, chosen, held_out.attributes))
    case = held_out.events[CASE_ID].to_numpy()
    for end, expected in zip(chosen, together, strict=True):
        start = int(np.flatnonzero(case == case[end])[0])
        alone = fitted.predict(PrefixBatch.from_prefixes([held_out.events.iloc[start : end + 1]], held_out.attributes))
        assert alone[0]["output"] == expected["output"]
        assert alone[0]["probability"] == pytest.approx(expected["probability"], abs=1e-4)


def test_probabilities_sum_to_one_and_top_three_are_ordered(logs, fitted):
    _, held_out = logs
    predictions = fitted.predict(PrefixBatch(held_out.events, held_out.prefixes().ends[:50], held_out.attributes))
    for prediction in predictions:
        probabilities = [c["probability"] for c in prediction["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
        assert prediction["output"] == prediction["top"][0]["activity"]


def test_tree_features_of_a_prefix_use_only_its_own_events():
    events = pd.DataFrame(
        {
            "CASE_ID": ["a", "a", "a", "b"],
            "ACTIVITY": ["x", "y", "z", "x"],
            "RESOURCE": ["r1", "r2", "r2", "r1"],
            "START_TIMESTAMP": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-01 11:00", "2024-01-01 09:00"], utc=True
            ),
            "END_TIMESTAMP": pd.to_datetime(
                ["2024-01-01 10:30", "2024-01-01 12:00", "2024-01-01 11:00", "2024-01-01 09:00"], utc=True
            ),
        }
    )
    encoder = TreeEncoder(history=2, resource_history=1).fit(events)
    full = encoder.transform(PrefixBatch(events, np.array([1, 2])))
    cut = encoder.transform(PrefixBatch(events.iloc[:2], np.array([1])))
    np.testing.assert_array_equal(full[0], cut[0])  # a later event of the case changes nothing
    named = dict(zip(encoder.feature_names_, full[1], strict=True))
    assert named["prefix_length"] == 3 and named["tied_before"] == 1  # z started when y did
    assert named["log_running_past_start"] == pytest.approx(np.log1p(3600))  # y still ran for an hour
    assert named["count=x"] == 1 and named["distinct_resources"] == 2
    assert np.isnan(
        encoder.transform(PrefixBatch(events, np.array([0])))[0][
            encoder.feature_names_.index("log_since_previous_start")
        ]
    )
