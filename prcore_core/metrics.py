"""Held-out metrics shared by plugins and baselines, overall and broken down by prefix length.

Probabilities are judged as well as decisions: the Brier score (mean squared error of the probabilities; for
several classes summed over the classes, PrCore's definition of none) and the expected calibration error (ECE: the
mean gap between confidence and observed frequency over ``CALIBRATION_BINS`` equal-width bins, weighted by their
size), with the reliability curve behind it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

#: Equal-width bins of predicted probability for the ECE and the reliability curve.
CALIBRATION_BINS = 10

#: Prefix lengths above this are pooled into one bucket, so long tails do not produce noisy single points.
MAX_REPORTED_LENGTH = 30


def classification_metrics(y_true, y_pred) -> dict[str, float]:
    """Accuracy and weighted precision, recall and F1 (PrCore's four figures), rounded to 4 decimals."""
    if len(y_true) == 0:
        return {"accuracy": None, "precision": None, "recall": None, "f1_score": None}
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1_score": round(float(f1), 4),
    }


def by_prefix_length(lengths: np.ndarray, compute, **arrays) -> list[dict]:
    """``compute(**subset)`` for each prefix length (lengths above ``MAX_REPORTED_LENGTH`` pooled).

    Returns ``[{"prefix_length": n, "support": m, **metrics}]`` sorted by length; the pooled bucket has
    ``prefix_length`` ``"31+"``-style label ``f">{MAX_REPORTED_LENGTH}"``.
    """
    lengths = np.asarray(lengths)
    buckets = np.minimum(lengths, MAX_REPORTED_LENGTH + 1)
    rows = []
    for bucket in np.unique(buckets):
        mask = buckets == bucket
        label = int(bucket) if bucket <= MAX_REPORTED_LENGTH else f">{MAX_REPORTED_LENGTH}"
        subset = {name: np.asarray(values)[mask] for name, values in arrays.items()}
        rows.append({"prefix_length": label, "support": int(mask.sum()), **compute(**subset)})
    return rows


def _round(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def reliability_curve(probability, outcome, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per non-empty probability bin: mean predicted probability, observed frequency and count.

    >>> reliability_curve([0.1, 0.2, 0.9, 0.8], [0, 1, 1, 1], bins=2)
    [{'predicted': 0.15, 'observed': 0.5, 'count': 2}, {'predicted': 0.85, 'observed': 1.0, 'count': 2}]
    """
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    outcome = np.asarray(outcome, dtype=np.float64)
    index = np.minimum((probability * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=probability, minlength=bins)
    observed = np.bincount(index, weights=outcome, minlength=bins)
    return [
        {"predicted": _round(predicted[b] / counts[b]), "observed": _round(observed[b] / counts[b]),
         "count": int(counts[b])}
        for b in range(bins) if counts[b]
    ]  # fmt: skip


def expected_calibration_error(probability, outcome, bins: int = CALIBRATION_BINS) -> float | None:
    """Size-weighted mean of ``|mean predicted - observed frequency|`` over equal-width bins.

    >>> expected_calibration_error([0.1, 0.2, 0.9, 0.8], [0, 1, 1, 1], bins=2)
    0.25
    """
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    outcome = np.asarray(outcome, dtype=np.float64)
    if not len(probability):
        return None
    index = np.minimum((probability * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, weights=probability - outcome, minlength=bins))
    return _round(gap.sum() / counts.sum())


def binary_probability_metrics(y_true, probability) -> dict:
    """ROC AUC (``None`` with one class), Brier score and ECE of probabilities of class 1."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    if not len(y_true):
        return {"roc_auc": None, "brier_score": None, "ece": None}
    auc = roc_auc_score(y_true, probability) if len(np.unique(y_true)) == 2 else None
    return {
        "roc_auc": _round(auc),
        "brier_score": _round(np.mean((probability - y_true) ** 2)),
        "ece": expected_calibration_error(probability, y_true),
    }


def multiclass_probability_metrics(truth_codes, probabilities) -> dict:
    """Brier score (summed over classes), log loss and top-label ECE of class probabilities.

    ``truth_codes`` are column indices into ``probabilities`` (``-1`` for a class the model never saw: all its
    probability mass counts as wrong).
    """
    truth_codes = np.asarray(truth_codes, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not len(truth_codes):
        return {"brier_score": None, "log_loss": None, "ece": None}
    rows = np.arange(len(truth_codes))
    known = truth_codes >= 0
    p_true = np.where(known, probabilities[rows, np.maximum(truth_codes, 0)], 0.0)
    brier = (probabilities**2).sum(axis=1) - 2 * p_true + 1.0
    top = probabilities.argmax(axis=1)
    return {
        "brier_score": _round(brier.mean()),
        "log_loss": _round(-np.log(np.clip(p_true, 1e-15, 1.0)).mean()),
        "ece": expected_calibration_error(probabilities[rows, top], (top == truth_codes) & known),
    }


def next_activity_metrics(log, proba, classes: np.ndarray, progress=None) -> dict:
    """Held-out metrics of a next-activity predictor over every prefix of ``log`` that has a next activity.

    ``proba(batch)`` gives one row of class probabilities per prefix, columns in the order of ``classes``; the
    prediction is the most probable class. Returns :func:`classification_metrics` plus ``by_prefix_length`` and
    ``support``.
    """
    batch = log.prefixes(with_next=True)
    if not len(batch):
        return {"detail": "No held-out prefix has a next activity"}
    if progress is not None:
        progress(0.1, f"Predicting {len(batch):,} held-out prefixes")
    probabilities = np.asarray(proba(batch), dtype=np.float64)
    classes = np.asarray(classes).astype(str)
    predicted = classes[np.argmax(probabilities, axis=1)]
    truth = log.next_activities(batch).astype(str)
    index = {name: code for code, name in enumerate(classes.tolist())}
    codes = np.fromiter((index.get(t, -1) for t in truth.tolist()), np.int64, len(truth))

    def compute(y_true, y_pred, truth_codes, rows):
        return {**classification_metrics(y_true, y_pred),
                **multiclass_probability_metrics(truth_codes, probabilities[rows])}  # fmt: skip

    rows = np.arange(len(truth))
    metrics = compute(truth, predicted, codes, rows)
    metrics["reliability"] = reliability_curve(probabilities[rows, probabilities.argmax(axis=1)], predicted == truth)
    metrics["by_prefix_length"] = by_prefix_length(batch.lengths, compute, y_true=truth, y_pred=predicted,
                                                   truth_codes=codes, rows=rows)  # fmt: skip
    metrics["support"] = len(truth)
    return metrics


def alarm_metrics(y_true, probability, threshold: float | None = None) -> dict:
    """Figures of a negative-outcome probability: :func:`binary_probability_metrics`, and with a ``threshold``
    precision, recall, F1 and accuracy of the alarm ``probability > threshold`` for class 1 (negative outcome)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    metrics = binary_probability_metrics(y_true, probability)
    if threshold is None:
        return metrics
    if not len(y_true):
        return {**metrics, "precision": None, "recall": None, "f1_score": None, "accuracy": None}
    alarm = (np.asarray(probability) > threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, alarm, labels=[1], average="binary", pos_label=1, zero_division=0
    )
    return {
        **metrics,
        "precision": _round(precision),
        "recall": _round(recall),
        "f1_score": _round(f1),
        "accuracy": _round((alarm == y_true).mean()),
    }
