"""Held-out metrics shared by plugins, overall and broken down by prefix length."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

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
    predicted = np.asarray(classes)[np.argmax(proba(batch), axis=1)]
    truth = log.next_activities(batch).astype(str)
    metrics = classification_metrics(truth, predicted)
    metrics["by_prefix_length"] = by_prefix_length(batch.lengths, classification_metrics, y_true=truth,
                                                   y_pred=predicted)  # fmt: skip
    metrics["support"] = len(truth)
    return metrics
