"""Calibrated probabilities: learned on a time-later slice of the training cases, applied at prediction.

A model's scores rank cases but need not be frequencies: a boosted model is often over-confident, a nearest
neighbour vote is coarse. A calibrator maps scores to probabilities that match observed frequencies, and is fitted on
cases the model did not learn from and that started later than those it learned from (as the cases it will serve
do), never on held-out cases. Both calibrators are a few numbers or arrays, cheap to apply to a single row.

* :class:`BinaryCalibrator`: isotonic regression (monotone, non-parametric; the default) or Platt scaling (a
  logistic curve on the score's logit, for small calibration sets).
* :class:`MulticlassCalibrator`: temperature scaling of the log probabilities (one parameter: keeps the ranking of
  the classes, corrects over- or under-confidence).
"""

from __future__ import annotations

import numpy as np

CALIBRATIONS = ("isotonic", "platt", "none")
#: Fewest calibration rows (and of each class, for binary) needed to learn a calibrator; fewer leave scores as they are.
MIN_CALIBRATION_ROWS = 50
_EPSILON = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class BinaryCalibrator:
    """Maps scores of class 1 to calibrated probabilities.

    Parameters
    ----------
    method
        ``"isotonic"``, ``"platt"`` or ``"none"`` (identity).

    Examples
    --------
    >>> scores = np.linspace(0, 1, 200)
    >>> truth = (np.random.default_rng(0).random(200) < scores**2).astype(int)  # true probability: score squared
    >>> calibrator = BinaryCalibrator("isotonic").fit(scores, truth)
    >>> bool(calibrator.transform(np.array([0.5]))[0] < 0.5)
    True
    """

    def __init__(self, method: str = "isotonic"):
        if method not in CALIBRATIONS:
            raise ValueError(f"Unknown calibration {method!r}; known: {', '.join(CALIBRATIONS)}")
        self.method = method
        self.fitted_ = "none"

    def fit(self, scores, truth) -> BinaryCalibrator:
        scores = np.asarray(scores, dtype=np.float64)
        truth = np.asarray(truth, dtype=np.float64)
        self.fitted_ = "none"
        if self.method == "none" or len(scores) < MIN_CALIBRATION_ROWS or min(truth.sum(), (1 - truth).sum()) < 5:
            return self
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, truth)
            self.x_, self.y_ = np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_)
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=1e4).fit(_logit(scores)[:, None], truth.astype(int))
            self.slope_, self.intercept_ = float(model.coef_[0, 0]), float(model.intercept_[0])
        self.fitted_ = self.method
        return self

    def transform(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.fitted_ == "isotonic":
            return np.interp(scores, self.x_, self.y_)
        if self.fitted_ == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(scores) + self.intercept_)))
        return scores


class MulticlassCalibrator:
    """Temperature scaling of class probabilities: ``p_k ∝ (p_k + ε)^(1/T)``, ``T`` chosen by log loss.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.integers(0, 2, 500)
    >>> over_confident = np.where(rng.random(500) < 0.7, truth, 1 - truth)  # right 70 % of the time, sure of it
    >>> probabilities = np.eye(2)[over_confident] * 0.98 + 0.01
    >>> calibrator = MulticlassCalibrator().fit(probabilities, truth)
    >>> round(float(calibrator.transform(probabilities).max(axis=1).mean()), 1)
    0.7
    """

    def __init__(self, method: str = "temperature"):
        if method not in ("temperature", "none"):
            raise ValueError(f"Unknown calibration {method!r}; known: temperature, none")
        self.method = method
        self.temperature_ = 1.0

    def fit(self, probabilities, truth_codes) -> MulticlassCalibrator:
        """``truth_codes``: the column of the true class per row (``-1``: a class the model does not know)."""
        from scipy.optimize import minimize_scalar

        probabilities = np.asarray(probabilities, dtype=np.float64)
        truth_codes = np.asarray(truth_codes, dtype=np.int64)
        known = truth_codes >= 0
        self.temperature_ = 1.0
        if self.method == "none" or known.sum() < MIN_CALIBRATION_ROWS:
            return self
        logs = np.log(probabilities[known] + _EPSILON)
        rows = np.arange(int(known.sum()))

        def loss(log_temperature: float) -> float:
            scaled = logs / np.exp(log_temperature)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float((log_norm - scaled[rows, truth_codes[known]]).mean())

        result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        self.temperature_ = float(np.exp(result.x))
        return self

    def transform(self, probabilities) -> np.ndarray:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.temperature_ == 1.0 or not probabilities.size:
            return probabilities
        scaled = np.log(probabilities + _EPSILON) / self.temperature_
        scaled -= scaled.max(axis=1, keepdims=True)
        out = np.exp(scaled)
        return out / out.sum(axis=1, keepdims=True)
