"""Strong baselines every plugin is measured beside, fitted on the same training cases in the same run.

A plugin's held-out figure means little alone: what a researcher would write in twenty lines sets the bar. For each
prescription type the trainer fits these on the plugin's training cases, scores them on the same held-out prefixes
with the same metrics and stores the figures under the plugin's ``metrics["baselines"]`` (overall and by prefix
length), so ``GET /project/{id}``, the dashboard and ``bench/quality.py`` show the plugin beside them.

* Next activity: :class:`NGramNextActivity` (the activity that most often followed the last ``n`` activities, with
  back-off) and :class:`AggregateBoostingNextActivity` (gradient boosting on aggregate and last-state features).
* Alarm (negative outcome): :class:`AggregateBoostingAlarm`, the same features.

Aggregate and last-state features (:data:`AGGREGATE_BLOCKS`): activity counts, the last three activities, prefix
length, elapsed time since the case started, time since the previous event, weekday and hour, and the case and
latest event attributes. Gradient boosting is :func:`prcore_core.boosting.boost` (LightGBM); its number of rounds is
chosen by early stopping on the latest share of the training cases by start time (a fair, time-later tuning slice).

Baselines are plugins by contract (``fit``/``evaluate``/``predict``) but not registered: projects do not serve them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import param

from prcore_core.boosting import boost, predict
from prcore_core.context import PredictionContext
from prcore_core.dataset import OUTCOME, LabelledLog, PrefixBatch, sample_cases
from prcore_core.encoding import PrefixEncoder, context_keys
from prcore_core.metrics import alarm_metrics, by_prefix_length, next_activity_metrics
from prcore_core.plugin import (
    Plugin,
    PrescriptionType,
    Progress,
    no_progress,
    null_output,
    top_predictions,
)

#: The feature blocks of the gradient-boosted baselines (see the module docstring).
AGGREGATE_BLOCKS = ("last", "counts", "time", "attributes")
#: Training prefixes the gradient-boosted baselines learn from at most (whole cases, seeded sample): the budget of
#: the boosted plugins, so that features, not data, make the difference.
MAX_BASELINE_PREFIXES = 30_000
#: The latest share of the training cases (by start time) on which boosting rounds are chosen.
VALIDATION_SHARE = 0.15
_CHUNK = 65_536


def _time_later_split(log: LabelledLog):
    """(fitting part, validation part) of ``log`` by case start time, or ``(log, None)`` when too small."""
    split = log.split_by_start(VALIDATION_SHARE, min_cases=20)
    return split if split is not None else (log, None)


class NGramNextActivity(Plugin):
    """Predicts the next activity seen most often after the same last activities."""

    key = "ngram-next-activity"
    title = "N-gram with back-off"
    description = (
        "Predicts the activity that most often followed the last n activities in the training cases, backing off "
        "to shorter contexts when a context was never seen."
    )
    prescription_type = PrescriptionType.NEXT_ACTIVITY

    n = param.Integer(default=5, bounds=(0, 50), doc="Length of the longest context (last activities).")
    min_support = param.Integer(default=1, bounds=(1, None), doc="Training prefixes a context needs to be used.")

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> NGramNextActivity:
        progress(0.1, "Counting next activities after every context")
        self.encoder_ = PrefixEncoder((), history=self.n).fit(log.events, log.attributes)
        self.n_codes_ = len(self.encoder_.activities_.values) + 1
        batch = log.prefixes(with_next=True)
        self.classes_, targets = np.unique(log.next_activities(batch).astype(str), return_inverse=True)
        targets = targets.ravel()
        contexts = self.encoder_.last_activities(batch, self.n)
        #: per context length m: (sorted keys of the contexts seen, next-activity counts per key and class)
        self.tables_: list[tuple[np.ndarray, np.ndarray]] = []
        for m in range(self.n + 1):
            keys, inverse = np.unique(context_keys(contexts[:, :m], self.n_codes_), return_inverse=True)
            counts = np.zeros((len(keys), len(self.classes_)), dtype=np.int64)
            np.add.at(counts, (inverse.ravel(), targets), 1)
            self.tables_.append((keys, counts))
        self.n_training_prefixes_ = len(targets)
        progress(1.0, "Fitted")
        return self

    def _proba(self, batch: PrefixBatch) -> np.ndarray:
        contexts = self.encoder_.last_activities(batch, self.n)
        out = np.zeros((len(batch), len(self.classes_)), dtype=np.float64)
        todo = np.ones(len(batch), dtype=bool)
        for m in range(self.n, -1, -1):
            keys, counts = self.tables_[m]
            if not len(keys) or not todo.any():
                continue
            wanted = context_keys(contexts[todo, :m], self.n_codes_)
            position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            found = keys[position] == wanted
            totals = counts[position].sum(axis=1)
            use = found & (totals >= (self.min_support if m else 1))
            rows = np.flatnonzero(todo)[use]
            out[rows] = counts[position[use]] / totals[use, None]
            todo[rows] = False
        return out

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict:
        return next_activity_metrics(log, self._proba, self.classes_, progress)

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict]:
        if not len(batch):
            return []
        if not hasattr(self, "tables_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        if not len(self.classes_):
            return [null_output("No training prefix has a next activity") for _ in range(len(batch))]
        return top_predictions(self._proba(batch), self.classes_)


class AggregateBoostingNextActivity(Plugin):
    """Next activity by gradient boosting on aggregate and last-state features."""

    key = "aggregate-boosting-next-activity"
    title = "Gradient boosting on aggregate and last-state features"
    description = "LightGBM over activity counts, the last three activities, times and case attributes."
    prescription_type = PrescriptionType.NEXT_ACTIVITY

    max_training_prefixes = param.Integer(default=MAX_BASELINE_PREFIXES, bounds=(1_000, None))
    seed = param.Integer(default=42)

    def _encode(self, log: LabelledLog, cap: int | None = None):
        batch = log.prefixes(with_next=True)
        if cap is not None:
            batch.ends = batch.ends[sample_cases(batch.case_ids, cap, self.seed)]
        targets = log.next_activities(batch).astype(str)
        codes = pd.Index(self.classes_).get_indexer(targets)
        keep = codes >= 0
        return self.encoder_.transform(PrefixBatch(batch.events, batch.ends[keep], batch.attributes)), codes[keep]

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> AggregateBoostingNextActivity:
        progress(0.05, "Encoding training prefixes")
        self.encoder_ = PrefixEncoder(AGGREGATE_BLOCKS, history=3).fit(log.events, log.attributes)
        self.classes_ = np.unique(log.next_activities(log.prefixes(with_next=True)).astype(str))
        fitting, validation = _time_later_split(log)
        share = 1.0 - (VALIDATION_SHARE if validation is not None else 0.0)
        features, target = self._encode(fitting, int(self.max_training_prefixes * share))
        checked = self._encode(validation, int(self.max_training_prefixes * (1 - share))) if validation else None
        progress(0.3, f"Boosting on {len(target):,} prefixes")
        if len(self.classes_) < 2:
            self.model_ = None
        else:
            self.model_ = boost(
                features, target, checked, objective="multiclass", n_classes=len(self.classes_), seed=self.seed
            )
        progress(1.0, "Fitted")
        return self

    def _proba(self, batch: PrefixBatch) -> np.ndarray:
        if self.model_ is None:
            return np.ones((len(batch), len(self.classes_)))
        parts = [predict(self.model_, self.encoder_.transform(part)) for part in batch.chunks(_CHUNK)]
        return np.vstack(parts) if parts else np.zeros((0, len(self.classes_)))

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict:
        return next_activity_metrics(log, self._proba, self.classes_, progress)

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict]:
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        return top_predictions(self._proba(batch), self.classes_) if len(batch) else []


class AggregateBoostingAlarm(Plugin):
    """Probability of the negative outcome by gradient boosting on aggregate and last-state features."""

    key = "aggregate-boosting-alarm"
    title = "Gradient boosting on aggregate and last-state features"
    description = "LightGBM over activity counts, the last three activities, times and case attributes."
    prescription_type = PrescriptionType.ALARM
    needs_outcome = True

    max_training_prefixes = param.Integer(default=MAX_BASELINE_PREFIXES, bounds=(1_000, None))
    seed = param.Integer(default=42)

    def _encode(self, log: LabelledLog, cap: int | None = None):
        batch = log.undecided_prefixes()
        if cap is not None:
            batch.ends = batch.ends[sample_cases(batch.case_ids, cap, self.seed)]
        return self.encoder_.transform(batch), log.negative_outcomes(batch)

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> AggregateBoostingAlarm:
        progress(0.05, "Encoding training prefixes")
        self.encoder_ = PrefixEncoder(AGGREGATE_BLOCKS, history=3).fit(log.events, log.attributes)
        fitting, validation = _time_later_split(log)
        share = 1.0 - (VALIDATION_SHARE if validation is not None else 0.0)
        features, target = self._encode(fitting, int(self.max_training_prefixes * share))
        checked = self._encode(validation, int(self.max_training_prefixes * (1 - share))) if validation else None
        if checked is not None and len(np.unique(checked[1])) < 2:
            checked = None
        progress(0.3, f"Boosting on {len(target):,} prefixes")
        self.constant_ = float(target.mean()) if len(np.unique(target)) < 2 and len(target) else None
        self.model_ = None if self.constant_ is not None else boost(features, target, checked, seed=self.seed)
        progress(1.0, "Fitted")
        return self

    def _score(self, batch: PrefixBatch) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(batch), self.constant_ if self.constant_ is not None else 0.5)
        return np.asarray(predict(self.model_, self.encoder_.transform(batch)), dtype=np.float64)

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict:
        if not log.has_label(OUTCOME):
            return {"detail": "The held-out cases have no outcome label"}
        batch = log.undecided_prefixes()
        if not len(batch):
            return {"detail": "No held-out prefix ends before the outcome is visible"}
        scores, truth = self._score(batch), log.negative_outcomes(batch)
        metrics = alarm_metrics(truth, scores)
        metrics["support"] = len(truth)
        metrics["by_prefix_length"] = by_prefix_length(batch.lengths, alarm_metrics, y_true=truth, probability=scores)
        return metrics

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict]:
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        return [{"output": round(float(p), 4)} for p in self._score(batch)]


#: The baselines of each prescription type, strongest last.
BASELINES: dict[str, tuple[type[Plugin], ...]] = {
    PrescriptionType.NEXT_ACTIVITY: (NGramNextActivity, AggregateBoostingNextActivity),
    PrescriptionType.ALARM: (AggregateBoostingAlarm,),
}


def measure_baselines(prescription_type: str, training: LabelledLog, held_out: LabelledLog,
                      progress: Progress = no_progress) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Fit the baselines of ``prescription_type`` on ``training``, score them on ``held_out``: metrics by key.

    Each entry has the baseline's ``title`` and the same figures as the plugin's ``evaluate`` (a baseline that
    cannot be fitted says why in ``detail``).
    """
    results: dict[str, dict[str, Any]] = {}
    classes = BASELINES.get(str(prescription_type), ())
    for number, baseline_class in enumerate(classes):
        progress(number / len(classes), f"Fitting the baseline {baseline_class.title.lower()}")
        if baseline_class.applicability(training) is not None:
            results[baseline_class.key] = {"title": baseline_class.title,
                                           "detail": baseline_class.applicability(training)}  # fmt: skip
            continue
        baseline = baseline_class().fit(training)
        results[baseline_class.key] = {"title": baseline_class.title, **baseline.evaluate(held_out)}
    return results
