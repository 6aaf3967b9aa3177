"""Calibrated probabilities: calibrators on scores with known probabilities, and the alarm on a drifting log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plugins.random_forest_alarm import RandomForestAlarm
from prcore_core.calibration import BinaryCalibrator, MulticlassCalibrator
from prcore_core.columns import Family
from prcore_core.dataset import OUTCOME, OUTCOME_OBSERVED, Attribute, LabelledLog
from prcore_core.metrics import expected_calibration_error, multiclass_probability_metrics


def brier(probability, truth) -> float:
    return float(np.mean((np.asarray(probability) - np.asarray(truth)) ** 2))


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_binary_calibration_improves_brier_of_distorted_scores(method):
    rng = np.random.default_rng(1)
    true_probability = rng.random(6000)
    truth = (rng.random(6000) < true_probability).astype(int)
    scores = np.sqrt(true_probability)  # ranks right, but says 0.7 where the frequency is 0.5
    calibrator = BinaryCalibrator(method).fit(scores[:3000], truth[:3000])
    calibrated = calibrator.transform(scores[3000:])
    assert brier(calibrated, truth[3000:]) < brier(scores[3000:], truth[3000:]) - 0.01
    assert expected_calibration_error(calibrated, truth[3000:]) < 0.03
    assert np.abs(calibrated - true_probability[3000:]).mean() < 0.05  # close to the probabilities that made them


def test_too_few_rows_leave_scores_as_they_are():
    calibrator = BinaryCalibrator("isotonic").fit([0.2, 0.8], [0, 1])
    assert calibrator.fitted_ == "none"
    assert calibrator.transform(np.array([0.3])).tolist() == [0.3]


def test_temperature_scaling_tempers_over_confident_class_probabilities():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 4000)
    guess = np.where(rng.random(4000) < 0.6, truth, rng.integers(0, 3, 4000))  # right about 73 % of the time
    probabilities = np.full((4000, 3), 0.02)
    probabilities[np.arange(4000), guess] = 0.96
    calibrator = MulticlassCalibrator().fit(probabilities[:2000], truth[:2000])
    before = multiclass_probability_metrics(truth[2000:], probabilities[2000:])
    after = multiclass_probability_metrics(truth[2000:], calibrator.transform(probabilities[2000:]))
    assert calibrator.temperature_ > 1  # over-confident: the temperature softens
    assert after["brier_score"] < before["brier_score"] and after["log_loss"] < before["log_loss"]
    assert after["ece"] < 0.03 < before["ece"]
    assert (calibrator.transform(probabilities).argmax(axis=1) == guess).all()  # the ranking is kept


def drifting_log(n_cases: int, seed: int, first: int = 0, total: int = 2100) -> LabelledLog:
    """Cases whose success probability is known: ``sigmoid(6 (x - 0.5) + drift)``, the drift rising with time."""
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for number in range(first, first + n_cases):
        x = rng.random()
        probability = 1 / (1 + np.exp(-(6 * (x - 0.5) + 2.5 * number / total - 1.0)))
        approved = int(rng.random() < probability)
        case = f"c{number:05d}"
        labels[case] = approved
        steps = ["Start", *rng.choice(["Work", "Check"], int(rng.integers(1, 5))), "Approve" if approved else "Close"]
        for position, activity in enumerate(steps):
            rows.append(
                {
                    "CASE_ID": case,
                    "ACTIVITY": activity,
                    "TIMESTAMP": start + pd.Timedelta(hours=number, minutes=10 * position),
                    "CASE_ATTRIBUTE_NUMBER_x": x,
                    OUTCOME_OBSERVED: activity == "Approve",
                }
            )
    outcome = pd.DataFrame({OUTCOME: pd.Series(labels)}).rename_axis("CASE_ID")
    return LabelledLog(pd.DataFrame(rows), (Attribute("CASE_ATTRIBUTE_NUMBER_x", "x", "case", Family.NUMBER),), outcome)


def test_alarm_calibrated_on_the_latest_training_cases_has_a_lower_brier_score():
    training, held_out = drifting_log(1500, 1), drifting_log(600, 2, first=1500)
    plain = RandomForestAlarm(calibration="none").fit(training).evaluate(held_out)
    calibrated = RandomForestAlarm().fit(training).evaluate(held_out)  # isotonic, the default
    assert calibrated["brier_score"] < plain["brier_score"] - 0.01
    assert calibrated["ece"] < plain["ece"]
    assert calibrated["roc_auc"] > 0.8
    assert {"predicted", "observed", "count"} <= set(calibrated["reliability"][0])
