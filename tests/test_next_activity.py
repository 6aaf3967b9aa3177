"""Next-activity plugins: the KNN plugin with each estimator and encoding, and the n-gram baseline."""

import numpy as np
import pandas as pd
import param
import pytest

from plugins.knn_next_activity import ESTIMATORS, KNNNextActivity, _ContextNeighbours
from prcore_core import errors, registry
from prcore_core.baselines import NGramNextActivity
from prcore_core.conformance import check_plugin, demo_logs
from prcore_core.dataset import LabelledLog, PrefixBatch
from prcore_core.encoding import ENCODINGS


@pytest.fixture(scope="module")
def logs():
    return demo_logs()


@pytest.fixture(scope="module")
def fitted(logs):
    training, _ = logs
    return {"knn": KNNNextActivity().fit(training), "ngram": NGramNextActivity().fit(training)}


# check_plugin builds plugins from their defaults: one subclass per option (module level, so pickle finds them)
class RandomForestNextActivity(KNNNextActivity):
    estimator = param.Selector(default="random_forest", objects=list(ESTIMATORS))


class BoostedNextActivity(KNNNextActivity):
    estimator = param.Selector(default="hist_gradient_boosting", objects=list(ESTIMATORS))


class SimpleIndexKNN(KNNNextActivity):
    encoding = param.Selector(default="SIMPLE_INDEX", objects=list(ENCODINGS))


class BooleanKNN(KNNNextActivity):
    encoding = param.Selector(default="BOOLEAN", objects=list(ENCODINGS))


class FrequencyKNN(KNNNextActivity):
    encoding = param.Selector(default="FREQUENCY_BASED", objects=list(ENCODINGS))


class PlainKNN(KNNNextActivity):
    """PrCore's plain KNN: no context, SIMPLE_INDEX, three neighbours."""

    context = param.Integer(default=0)
    n_neighbors = param.Integer(default=3)
    encoding = param.Selector(default="SIMPLE_INDEX", objects=list(ENCODINGS))


@pytest.mark.parametrize("plugin_class", [KNNNextActivity, RandomForestNextActivity, BoostedNextActivity])
def test_knn_plugin_passes_check_plugin_with_every_estimator(logs, plugin_class):
    assert {
        plugin_class.parameter_defaults()["estimator"]
        for plugin_class in (KNNNextActivity, RandomForestNextActivity, BoostedNextActivity)
    } == set(ESTIMATORS)
    check_plugin(plugin_class, logs)


@pytest.mark.parametrize("plugin_class", [SimpleIndexKNN, BooleanKNN, FrequencyKNN, PlainKNN])
def test_knn_plugin_passes_check_plugin_with_prcore_encodings(logs, plugin_class):
    check_plugin(plugin_class, logs)


def test_ngram_baseline_passes_check_plugin_and_is_not_registered(logs):
    check_plugin(NGramNextActivity, logs)
    assert "ngram-next-activity" not in registry.available_plugins()


def test_knn_is_the_default_estimator_and_unknown_estimators_are_rejected():
    assert KNNNextActivity.parameter_defaults()["estimator"] == "knn"
    with pytest.raises(errors.InvalidParameterError):
        KNNNextActivity.from_parameters({"estimator": "magic"})


def test_knn_beats_the_ngram_baseline_on_held_out_cases(logs, fitted):
    _, held_out = logs
    knn, ngram = fitted["knn"].evaluate(held_out), fitted["ngram"].evaluate(held_out)
    assert knn["support"] == ngram["support"] == len(held_out.prefixes(with_next=True))
    assert knn["accuracy"] > ngram["accuracy"]  # 0.81 against 0.76 on the demo log


@pytest.mark.parametrize("name", ["knn", "ngram"])
def test_evaluate_reports_prcore_metrics_by_prefix_length(logs, fitted, name):
    _, held_out = logs
    metrics = fitted[name].evaluate(held_out)
    assert {"accuracy", "precision", "recall", "f1_score", "support", "by_prefix_length"} <= set(metrics)
    assert sum(row["support"] for row in metrics["by_prefix_length"]) == metrics["support"]
    assert metrics["by_prefix_length"][0]["prefix_length"] == 1
    truth = held_out.next_activities(held_out.prefixes(with_next=True))
    predicted = [p["output"] for p in fitted[name].predict(held_out.prefixes(with_next=True))]
    assert metrics["accuracy"] == pytest.approx(np.mean(np.asarray(predicted) == truth), abs=1e-4)


@pytest.mark.parametrize("name", ["knn", "ngram"])
def test_top_three_is_consistent_with_the_probabilities(logs, fitted, name):
    _, held_out = logs
    predictions = fitted[name].predict(held_out.prefixes())
    for prediction in predictions:
        top = prediction["top"]
        assert 1 <= len(top) <= 3
        assert prediction["output"] == top[0]["activity"] and prediction["probability"] == top[0]["probability"]
        probabilities = [candidate["probability"] for candidate in top]
        assert probabilities == sorted(probabilities, reverse=True) and all(0 < p <= 1 for p in probabilities)
        assert sum(probabilities) <= 1.0 + 1e-3
        assert len({candidate["activity"] for candidate in top}) == len(top)
    if name == "knn":  # uniform votes of 25 neighbours
        assert all(round(c["probability"] * 25, 2).is_integer() for p in predictions for c in p["top"])


def test_context_neighbours_vote_inside_the_context_and_back_off():
    features = np.array([[0.0], [0.1], [5.0], [0.0], [0.2], [9.0]], dtype=np.float32)
    targets = np.array([0, 0, 1, 2, 2, 2])
    contexts = np.array([[0], [0], [0], [1], [1], [1]])
    model = _ContextNeighbours(features, targets, contexts, n_codes=3, k=2, weights="uniform")
    queries = np.array([[0.0], [4.9], [0.0], [0.0]], dtype=np.float32)
    proba = model.proba(queries, np.array([[0], [0], [1], [2]]), n_classes=3)
    assert proba[0].tolist() == [1.0, 0.0, 0.0]  # nearest two of context 0
    assert proba[1].tolist() == [0.5, 0.5, 0.0]  # 5.0 and 0.1 are its two nearest in context 0
    assert proba[2].tolist() == [0.0, 0.0, 1.0]  # context 1 only has target 2
    assert proba[3].tolist() == [0.5, 0.0, 0.5]  # unseen context: nearest two of all rows (0.0 twice)
    # many queries take scikit-learn's path and give the same votes
    many = model.proba(np.repeat(queries, 10, axis=0), np.repeat([[0], [0], [1], [2]], 10, axis=0), n_classes=3)
    np.testing.assert_array_equal(many, np.repeat(proba, 10, axis=0))


def _log(sequences: list[str]) -> LabelledLog:
    rows = [
        (f"c{n}", activity, pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=i))
        for n, sequence in enumerate(sequences)
        for i, activity in enumerate(sequence)
    ]
    events = pd.DataFrame(rows, columns=["CASE_ID", "ACTIVITY", "TIMESTAMP"]).astype({"ACTIVITY": "string"})
    return LabelledLog(events)


def test_ngram_counts_back_off_and_breaks_ties_alphabetically():
    plugin = NGramNextActivity(n=2).fit(_log(["abc", "abc", "abd", "xbd", "ae"]))
    held_out = _log(["abq", "xb", "zb", "q", "a"])
    predictions = plugin.predict(held_out.prefixes())
    outputs = [p["output"] for p in predictions]
    # "ab" -> c (2 of 3); "xb" -> d; unseen "zb" backs off to "b" -> c and d tie 2:2 -> c; "z", "bq" and "q" were
    # never seen: back off to all 9 training prefixes, where b (4 of 9) leads; "a" -> b (3 of 4)
    assert outputs == ["b", "c", "b", "b", "d", "b", "c", "b", "b"]
    assert predictions[1]["top"] == [{"activity": "c", "probability": 0.6667}, {"activity": "d", "probability": 0.3333}]
    assert predictions[5]["top"] == [
        {"activity": "b", "probability": 0.4444},
        {"activity": "c", "probability": 0.2222},
        {"activity": "d", "probability": 0.2222},
    ]
    assert predictions[8]["top"] == [{"activity": "b", "probability": 0.75}, {"activity": "e", "probability": 0.25}]


def test_single_streamed_prefix_matches_the_batch(logs, fitted):
    _, held_out = logs
    events = held_out.events
    case = events[events["CASE_ID"] == events["CASE_ID"].iloc[0]]
    batch = PrefixBatch(events, np.array([len(case) - 2]), held_out.attributes)
    streamed = PrefixBatch.from_prefixes([case.iloc[: len(case) - 1]], held_out.attributes)
    for plugin in fitted.values():
        assert plugin.predict(streamed) == plugin.predict(batch)


def test_long_contexts_beyond_one_integer_key_still_work(logs):
    training, held_out = logs
    plugin = KNNNextActivity(context=20).fit(training)
    assert isinstance(next(iter(plugin.model_.levels[-1][1])), bytes)  # 20 codes do not fit in an int64
    assert plugin.evaluate(held_out)["accuracy"] > 0.7
