"""Next activity by n-gram counts with back-off: the baseline the KNN plugin is measured against.

The prediction for a prefix is the activity that most often followed its last ``n`` activities in the training
cases; a context never seen (or seen fewer than ``min_support`` times) backs off to the last ``n - 1`` activities,
and so on down to the overall most frequent next activity. Probabilities are the observed frequencies after the
context used. Prefixes shorter than ``n`` use their whole history, marked as starting a case, so the first
activities of a case are not confused with the same activities later on.

Not registered as an entry point (projects do not train it): use it in benchmarks and notebooks::

    from plugins.ngram_next_activity import NGramNextActivity
    baseline = NGramNextActivity(n=5).fit(training)
    baseline.evaluate(held_out)["accuracy"]

``n = 5`` was chosen on a validation split of the BPIC 2012 training cases (by case start time: 0.749 for n = 5,
0.746 for n = 3, 0.746 for n = 8); on the held-out cases it scores 0.744.
"""

from __future__ import annotations

import numpy as np
import param

from plugins.knn_next_activity import top_predictions
from prcore_core.context import PredictionContext
from prcore_core.dataset import LabelledLog, PrefixBatch
from prcore_core.encoding import PrefixEncoder, context_keys
from prcore_core.metrics import next_activity_metrics
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output


class NGramNextActivity(Plugin):
    """Predicts the next activity seen most often after the same last activities."""

    key = "ngram-next-activity"
    title = "N-gram next activity baseline"
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
