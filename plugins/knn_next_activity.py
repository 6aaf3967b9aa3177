"""Next activity by k-nearest neighbours over encoded prefixes (PrCore's KNN plugin, reference 8.6, fixed).

One model serves every prefix length (no 300-trace minimum per length, no blind spot below length 3), unseen
activities are encoded explicitly instead of being dropped, and the BOOLEAN/FREQUENCY_BASED encodings work on
activity names (reference 13.1 #24, #25). The output is the most likely next activity with its probability and the
top three candidates.
"""

from __future__ import annotations

import numpy as np
import param
from sklearn.neighbors import KNeighborsClassifier

from prcore_core.context import PredictionContext
from prcore_core.dataset import LabelledLog, PrefixBatch
from prcore_core.encoding import ENCODINGS, PrefixEncoder, blocks_for
from prcore_core.metrics import by_prefix_length, classification_metrics
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output


class KNNNextActivity(Plugin):
    """Predicts the next activity of a running case from the most similar training prefixes."""

    key = "knn-next-activity"
    aliases = ("plugin-knn-next-activity",)
    title = "KNN next activity prediction"
    description = "This plugin predicts the next activity based on the KNN algorithm."
    prescription_type = PrescriptionType.NEXT_ACTIVITY

    n_neighbors = param.Integer(default=3, bounds=(1, 200), doc="Number of neighbours that vote.")
    encoding = param.Selector(default="SIMPLE_INDEX", objects=list(ENCODINGS), doc="How prefixes become features.")
    history = param.Integer(default=5, bounds=(1, 50), doc="Last activities encoded by SIMPLE_INDEX/COMBINED.")
    max_training_prefixes = param.Integer(
        default=60_000, bounds=(1_000, None), doc="Training prefixes kept (sampled by case) to bound memory and time."
    )
    seed = param.Integer(default=42, doc="Seed of the training-prefix sample.")

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> KNNNextActivity:
        progress(0.05, "Encoding training prefixes")
        batch = log.prefixes(with_next=True)
        if len(batch) > self.max_training_prefixes:
            rng = np.random.default_rng(self.seed)
            batch.ends = np.sort(rng.choice(batch.ends, self.max_training_prefixes, replace=False))
        self.encoder_ = PrefixEncoder(blocks_for(self.encoding), history=self.history).fit(log.events, log.attributes)
        features = self.encoder_.transform(batch)
        targets = log.next_activities(batch)
        progress(0.4, f"Fitting {self.n_neighbors}-nearest neighbours on {len(targets):,} prefixes")
        self.model_ = KNeighborsClassifier(n_neighbors=min(self.n_neighbors, len(targets)), n_jobs=1)
        self.model_.fit(features, targets)
        self.n_training_prefixes_ = len(targets)
        progress(1.0, "Fitted")
        return self

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict:
        batch = log.prefixes(with_next=True)
        if not len(batch):
            return {"detail": "No held-out prefix has a next activity"}
        progress(0.1, f"Predicting {len(batch):,} held-out prefixes")
        predicted = self._predict_labels(batch)
        truth = log.next_activities(batch)
        metrics = classification_metrics(truth, predicted)
        metrics["by_prefix_length"] = by_prefix_length(
            batch.lengths, classification_metrics, y_true=truth, y_pred=predicted
        )
        metrics["support"] = len(truth)
        return metrics

    def _predict_labels(self, batch: PrefixBatch, chunk: int = 4096) -> np.ndarray:
        out = []
        for start in range(0, len(batch), chunk):
            part = PrefixBatch(batch.events, batch.ends[start : start + chunk], batch.attributes)
            out.append(self.model_.predict(self.encoder_.transform(part)))
        return np.concatenate(out) if out else np.array([], dtype=object)

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict]:
        if not len(batch):
            return []
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        probabilities = self.model_.predict_proba(self.encoder_.transform(batch))
        classes = self.model_.classes_
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
        predictions = []
        for row, top in zip(probabilities, order, strict=True):
            candidates = [{"activity": str(classes[i]), "probability": round(float(row[i]), 4)} for i in top]
            predictions.append(
                {"output": candidates[0]["activity"], "probability": candidates[0]["probability"], "top": candidates}
            )
        return predictions
