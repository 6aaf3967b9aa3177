"""Next activity by gradient boosting on last-state, timing and aggregate features: the next-activity plugin to trust.

The KNN plugin (PrCore's, kept under its name) votes among similar training prefixes; this one learns how the next
activity depends on the prefix with LightGBM over :class:`~prcore_core.encoding.TreeEncoder` features: the last five
activities and two resources as categories, the last events' durations and gaps (with start and end times, how long
a work item took says what happened during it), hour and weekday, activity counts, time since each activity, case
attributes. Scored in arrival order on BPIC 2012 it beats the n-gram and the gradient-boosted aggregate baseline
that every next-activity plugin is measured beside (figures in the README).

How it is fitted
----------------
Training prefixes are every prefix with a next event, of whole cases sampled up to ``max_training_prefixes``. The
latest ``validation_share`` of the training cases by start time are held back: boosting on the earlier cases stops
when the held-back loss stops improving (the number of rounds is thus chosen on later cases, as the cases it will
serve are), and the temperature that calibrates the probabilities is fitted on the held-back predictions
(``calibration``). The booster is not refitted on all cases: its prefixes are a sample of the earlier cases already
(more prefixes of the same cases add little), and a refit would double the training time.

Output: the most likely next activity with its (calibrated) probability and the top three, as the KNN plugin.
lightgbm is imported when the plugin fits or predicts, not with this module.
"""

from __future__ import annotations

import numpy as np
import param

from prcore_core.boosting import best_rounds, boost, predict, softmax
from prcore_core.calibration import MulticlassCalibrator
from prcore_core.context import PredictionContext
from prcore_core.dataset import LabelledLog, PrefixBatch, sample_cases
from prcore_core.encoding import TreeEncoder
from prcore_core.metrics import next_activity_metrics
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output, top_predictions

#: Prefixes predicted at once (bounds the feature matrix).
_CHUNK = 32_768
#: Fewest cases in each part of the time-later split; below, the plugin boosts ``max_rounds`` rounds, uncalibrated.
MIN_SPLIT_CASES = 20


class BoostedNextActivity(Plugin):
    """Predicts the next activity of a running case with gradient-boosted trees."""

    key = "boosted-next-activity"
    title = "Gradient-boosted next activity prediction"
    description = (
        "This plugin predicts the next activity with gradient-boosted trees over the last activities and resources, "
        "the events' durations and gaps, activity counts and case attributes."
    )
    prescription_type = PrescriptionType.NEXT_ACTIVITY

    history = param.Integer(default=5, bounds=(1, 20), doc="Last activities encoded (as categories).")
    resource_history = param.Integer(default=2, bounds=(0, 10), doc="Last resources encoded (as categories).")
    learning_rate = param.Number(default=0.15, bounds=(0.01, 1.0), doc="Boosting learning rate.")
    num_leaves = param.Integer(default=7, bounds=(2, 255), doc="Leaves per tree (small trees: fast, little overfit).")
    min_data_in_leaf = param.Integer(default=40, bounds=(1, None), doc="Fewest training prefixes per leaf.")
    max_rounds = param.Integer(default=80, bounds=(1, 2000), doc="Most boosting rounds (early stopping picks fewer).")
    max_training_prefixes = param.Integer(
        default=30_000, bounds=(1_000, None), doc="Training prefixes (of whole sampled cases) boosted on at most."
    )
    validation_share = param.Number(
        default=0.15, bounds=(0.05, 0.5), doc="Latest training cases held back to choose the rounds and calibrate."
    )
    calibration = param.Selector(
        default="temperature", objects=["temperature", "none"], doc="How the probabilities are calibrated."
    )
    seed = param.Integer(default=42, doc="Seed of the prefix sample and of the boosting.")

    def _settings(self) -> dict:
        return {
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf, "max_bin": 31, "bagging_fraction": 0.5, "bagging_freq": 1,
            "feature_fraction": 0.6, "max_cat_to_onehot": 8,
        }  # fmt: skip

    def _rows(self, log: LabelledLog, cap: int) -> tuple[np.ndarray, np.ndarray]:
        """Features and class codes of the prefixes with a next event of ``log`` (whole cases, at most ``cap``)."""
        batch = log.prefixes(with_next=True)
        batch.ends = batch.ends[sample_cases(batch.case_ids, max(cap, 1), self.seed)]
        codes = np.searchsorted(self.classes_, log.next_activities(batch).astype(str))
        return self.encoder_.transform(batch), codes

    def _boost(self, features, codes, validation=None, rounds=None):
        return boost(features, codes, validation, objective="multiclass", n_classes=len(self.classes_),
                     max_rounds=rounds or self.max_rounds, categorical=self.encoder_.categorical_, seed=self.seed,
                     **self._settings())  # fmt: skip

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> BoostedNextActivity:
        progress(0.05, "Encoding training prefixes")
        self.encoder_ = TreeEncoder(self.history, self.resource_history).fit(log.events, log.attributes)
        self.classes_ = np.unique(log.next_activities(log.prefixes(with_next=True)).astype(str))
        self.calibrator_ = MulticlassCalibrator("none")
        self.model_ = None
        if len(self.classes_) < 2:
            return self
        split = log.split_by_start(self.validation_share, MIN_SPLIT_CASES)
        if split is None:
            features, codes = self._rows(log, self.max_training_prefixes)
            progress(0.2, f"Boosting {self.max_rounds} rounds on {len(codes):,} prefixes")
            self.model_ = self._boost(features, codes)
        else:
            earlier, later = split
            features, codes = self._rows(earlier, self.max_training_prefixes)
            checked = self._rows(later, max(int(self.max_training_prefixes * self.validation_share), 1))
            progress(0.2, f"Boosting on {len(codes):,} prefixes, rounds chosen on {len(checked[1]):,} later ones")
            self.model_ = self._boost(features, codes, checked)
            raw = predict(self.model_, checked[0], raw_score=True)
            self.calibrator_ = MulticlassCalibrator(self.calibration).fit(softmax(raw), checked[1])
        self.rounds_, self.n_training_prefixes_ = best_rounds(self.model_), len(codes)
        progress(1.0, "Fitted")
        return self

    def _proba(self, batch: PrefixBatch) -> np.ndarray:
        if self.model_ is None:
            return np.ones((len(batch), len(self.classes_)))
        raw = (predict(self.model_, self.encoder_.transform(part), raw_score=True) for part in batch.chunks(_CHUNK))
        parts = [self.calibrator_.transform(softmax(scores)) for scores in raw]
        return np.vstack(parts) if parts else np.zeros((0, len(self.classes_)))

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict:
        metrics = next_activity_metrics(log, self._proba, self.classes_, progress)
        if self.model_ is not None:
            metrics["rounds"] = self.rounds_
            metrics["temperature"] = round(self.calibrator_.temperature_, 4)
        return metrics

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict]:
        if not len(batch):
            return []
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        if not len(self.classes_):
            return [null_output("No training prefix has a next activity") for _ in range(len(batch))]
        return top_predictions(self._proba(batch), self.classes_)
