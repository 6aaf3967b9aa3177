"""Negative outcome probability with a cost-based alarm (PrCore's random forest alarm, reference 8.7, redone).

For a running case the plugin estimates the probability that the case ends **without** the desired outcome
(``1 - OUTCOME``) and raises an alarm when that probability is above a threshold, in the spirit of alarm-based
prescriptive process monitoring (Fahrenkrog-Petersen et al., "Fire now, fire then", 2019/2022).

What changed from PrCore
------------------------
* One seeded random forest serves every prefix length (PrCore fitted one unseeded forest per length and could not
  answer lengths without a model, or below 3); features come from the shared
  :class:`~prcore_core.encoding.PrefixEncoder`, unseen activities and values included.
* It learns only from prefixes whose outcome is not yet visible (``OUTCOME_OBSERVED`` false at their last event): an
  alarm after the outcome happened is pointless, and such prefixes would teach the model to read the answer.
* The alarm threshold is chosen from costs on held-back training cases (``threshold=None``, the default) or given.
* Metrics are measured on held-out cases only: ROC AUC of the probability (the primary figure), and precision,
  recall, F1 and accuracy of the alarm, overall and by prefix length.

Features
--------
``encoding`` names the :class:`PrefixEncoder` blocks. ``FREQUENCY_BASED`` is "activity counts only", the baseline.
With ``COMBINED`` (the default) and ``activity_timing`` the plugin adds, per prefix, how long ago each activity first
happened (``log1p(hours) + 1``, 0 when it has not happened), the last event's duration and the summed durations of
the prefix's events (``END_TIMESTAMP - START_TIMESTAMP`` when both exist, else 0).

Training prefixes and the alarm threshold
-----------------------------------------
Training prefixes are those whose outcome is not yet visible, including a case's last prefix (a case that just
ended with a decline is still streamed, and learning it helps). Prefixes of one case are correlated, so the cap
``max_training_prefixes`` keeps **whole cases** (a seeded random case order, cases taken until the cap): a sample of
cases keeps the mix of short and long cases that prefixes are evaluated on (thinning every case instead measured
worse on BPIC 2012). Each tree then learns from its own bootstrap sample of ``max_samples`` prefixes: 100 trees on
5,000 prefixes each score as well as 200 trees on 40,000 and fit in a fraction of the time.

The latest ``calibration_share`` of the training cases (by start time, like the project's own split) are held back
and the forest is fitted on the earlier ones. On the held-back cases its scores are first calibrated (``calibration``:
isotonic regression by default, so that ``p`` is a frequency: a forest's votes are squeezed towards the middle), then,
with ``threshold=None``, the threshold is chosen on the calibrated probabilities, **per case**: a case is alarmed
when any of its eligible prefixes (outcome not yet visible, followed by another event: an alarm at the last event
comes too late) scores above the threshold, i.e. at its first such prefix. With the cost of a negative outcome as
the unit,

    cost = cost_ratio * (alarmed cases) + (negative cases never alarmed),

which assumes an alarm always prevents the negative outcome and costs ``cost_ratio`` whether or not it was needed.
The threshold is the midpoint between consecutive case scores that minimises the cost; among equal costs the highest
such threshold (fewest alarms) wins, so a higher ``cost_ratio`` never gives a lower threshold. When the held-back
part is too small (fewer than ``MIN_CALIBRATION_CASES`` cases or one class only) the forest is fitted on all cases,
uncalibrated, and the threshold is 0.5. A given ``threshold`` with ``calibration="none"`` fits the forest on all
training cases.

When most cases end negatively (BPIC 2012: 82 % of the training cases are not approved) the first prefix of almost
every case already scores above a moderate ``cost_ratio``: alarming every case is then the cheapest policy (cost
``cost_ratio`` per case against the negative share without alarms), and the tie rule picks the highest threshold
that still does so, which keeps the per-prefix alarm selective.

Output
------
``{"output": p, "alarm": p > threshold, "threshold": threshold}`` with ``p`` the probability of the negative outcome
rounded to 4 decimals (``alarm`` compares the rounded figures). A prefix whose outcome is already decided gets
``p = 0.0`` (the desired outcome was observed; ``1.0`` when the definition describes the negative outcome), no alarm
and a ``detail``. "Decided" is read from ``OUTCOME_OBSERVED`` when the prefix carries it; streamed prefixes do not,
so the plugin also learns which activities occur only once the outcome is observed (every one of their at least
``MIN_DECISIVE_OCCURRENCES`` training occurrences is flagged, e.g. ``A_APPROVED``) and treats a prefix containing one
as decided. Otherwise the forest scores every prefix.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import param

from prcore_core import errors
from prcore_core.calibration import CALIBRATIONS, BinaryCalibrator
from prcore_core.context import PredictionContext
from prcore_core.dataset import (
    ACTIVITY,
    CASE_ID,
    END_TIMESTAMP,
    OUTCOME,
    OUTCOME_OBSERVED,
    START_TIMESTAMP,
    LabelledLog,
    PrefixBatch,
    case_starts,
    order_time_column,
    outcome_observed,
    sample_cases,
)
from prcore_core.encoding import ENCODINGS, PrefixEncoder, blocks_for, seconds_since_epoch
from prcore_core.metrics import alarm_metrics, by_prefix_length, reliability_curve
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output, one_native_thread

ESTIMATORS = ("random_forest", "hist_gradient_boosting")
#: Fewest held-back training cases to choose a threshold from.
MIN_CALIBRATION_CASES = 20
#: Fewest training occurrences of an activity, all after the outcome became visible, to read it as "decided".
MIN_DECISIVE_OCCURRENCES = 5
#: Prefixes encoded at once (the encoder converts whole columns per call, so few large calls are faster).
_CHUNK = 65_536
#: Rows per tree traversal block of the flattened forest (bounds the ``rows x trees`` index arrays).
_TRAVERSAL_ROWS = 2_048
_HOURS = 3600.0


# -- prefixes ------------------------------------------------------------------------------------------------------


def _has_next(events: pd.DataFrame) -> np.ndarray:
    case = events[CASE_ID].to_numpy()
    return np.r_[case[1:] == case[:-1], False] if len(case) else np.array([], dtype=bool)


def open_ends(events: pd.DataFrame) -> np.ndarray:
    """Rows ending a prefix whose outcome is not yet visible: the prefixes the plugin learns from and is judged on."""
    return np.flatnonzero(~outcome_observed(events))


def _negative(log: LabelledLog, ends: np.ndarray) -> np.ndarray:
    """1 where the case of the prefix ends without the desired outcome."""
    return log.negative_outcomes(PrefixBatch(log.events, ends))


# -- threshold -----------------------------------------------------------------------------------------------------
def case_costs(case_scores: np.ndarray, negative: np.ndarray, cost_ratio: float, thresholds: np.ndarray) -> np.ndarray:
    """Total cost of each threshold: ``cost_ratio`` per alarmed case plus one per negative case never alarmed.

    ``case_scores`` is each case's highest score over its eligible prefixes (``-1`` if it has none): a case is
    alarmed, at its first prefix above the threshold, exactly when that maximum is above it.

    >>> case_costs(np.array([0.9, 0.2, 0.7]), np.array([1, 0, 0]), 0.5, np.array([0.1, 0.5, 0.8, 1.0]))
    array([1.5, 1. , 0.5, 1. ])
    """
    alarmed = case_scores[None, :] > np.asarray(thresholds, dtype=float)[:, None]
    missed = (~alarmed) & (np.asarray(negative)[None, :] == 1)
    return cost_ratio * alarmed.sum(axis=1) + missed.sum(axis=1)


def choose_threshold(case_scores: np.ndarray, negative: np.ndarray, cost_ratio: float) -> tuple[float, float]:
    """The threshold (4 decimals) of least total cost, and that cost per case.

    Candidates are the midpoints between consecutive distinct case scores, with 0 and 1 added as scores (so the
    lowest candidate alarms every case with a positive score), and 1 (never alarm). Ties go to the highest threshold,
    so the choice never falls as ``cost_ratio`` rises.

    >>> choose_threshold(np.array([0.9, 0.2, 0.7, 0.8]), np.array([1, 0, 1, 0]), 0.3)
    (0.45, 0.225)
    >>> choose_threshold(np.array([0.9, 0.2, 0.7, 0.8]), np.array([1, 0, 1, 0]), 2.0)
    (1.0, 0.5)
    """
    values = np.unique(np.r_[0.0, np.clip(np.round(case_scores, 4), 0.0, 1.0), 1.0])
    candidates = np.unique(np.round(np.r_[(values[1:] + values[:-1]) / 2, 1.0], 4))
    costs = case_costs(np.round(case_scores, 4), negative, cost_ratio, candidates)
    best = np.flatnonzero(np.isclose(costs, costs.min()))[-1]
    return float(candidates[best]), round(float(costs[best]) / max(len(case_scores), 1), 4)


def _case_maxima(case_ids: np.ndarray, scores: np.ndarray, eligible: np.ndarray) -> pd.Series:
    """Per case: the highest score among its eligible prefixes, ``-1`` for a case without one."""
    frame = pd.DataFrame({"case": case_ids, "score": np.where(eligible, scores, -1.0)})
    return frame.groupby("case", sort=False)["score"].max()


# -- models --------------------------------------------------------------------------------------------------------
class _FlatForest:
    """A fitted random forest as flat node arrays, for fast scoring of a few rows.

    scikit-learn's ``predict_proba`` costs tens of microseconds per tree whatever the number of rows (input checks,
    a thread pool, a lock), about 5 ms for one prefix and 200 trees. Here all trees are walked together, one numpy
    step per level, about 0.3 ms for one row. Larger blocks use each tree's compiled ``apply``. Both find the same
    leaves (the same ``float32 <= float64`` comparisons), and the leaf probabilities are averaged the same way, so a
    prefix scores the same alone or in a batch, and as scikit-learn scores it up to float rounding.
    """

    def __init__(self, forest, positive: int):
        trees = [estimator.tree_ for estimator in forest.estimators_]
        sizes = np.array([tree.node_count for tree in trees], dtype=np.int64)
        self.offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        feature, threshold, left, right, value = [], [], [], [], []
        for tree, offset in zip(trees, self.offsets, strict=True):
            nodes = np.arange(tree.node_count, dtype=np.int64) + offset
            leaf = tree.children_left < 0
            feature.append(np.where(leaf, 0, tree.feature).astype(np.int64))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            left.append(np.where(leaf, nodes, tree.children_left + offset))
            right.append(np.where(leaf, nodes, tree.children_right + offset))
            value.append(tree.value[:, 0, positive] / tree.value[:, 0, :].sum(axis=1))
        self.feature = np.concatenate(feature)
        self.threshold = np.concatenate(threshold)
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.value = np.concatenate(value)
        self.depth = int(max(tree.max_depth for tree in trees))
        self.trees = trees

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf index per row and tree, shape ``(rows, trees)``."""
        if len(X) <= 32:
            node = np.broadcast_to(self.offsets, (len(X), len(self.offsets))).copy()
            flat, width = X.ravel(), X.shape[1]
            base = (np.arange(len(X), dtype=np.int64) * width)[:, None]
            for _ in range(self.depth):
                go_left = flat[base + self.feature[node]] <= self.threshold[node]
                node = np.where(go_left, self.left[node], self.right[node])
            return node
        return np.column_stack([tree.apply(X) + offset for tree, offset in zip(self.trees, self.offsets, strict=True)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(len(X), dtype=np.float64)
        for start in range(0, len(X), _TRAVERSAL_ROWS):
            block = X[start : start + _TRAVERSAL_ROWS]
            out[start : start + len(block)] = self.value[self.leaves(block)].sum(axis=1) / len(self.offsets)
        return out


class _Constant:
    """The model of a training sample with one class only."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value)


# -- the plugin ----------------------------------------------------------------------------------------------------
class RandomForestAlarm(Plugin):
    """Probability that a running case ends without the desired outcome, with a cost-based alarm."""

    key = "random-forest-alarm"
    aliases = ("plugin-random-forest-alarm",)
    title = "Random forest negative outcome probability"
    description = "This plugin provides the probability of negative outcome."
    prescription_type = PrescriptionType.ALARM
    needs_outcome = True

    encoding = param.Selector(
        default="COMBINED", objects=list(ENCODINGS),
        doc="How prefixes become features; FREQUENCY_BASED (activity counts only) is the baseline.",
    )  # fmt: skip
    history = param.Integer(default=3, bounds=(1, 50), doc="Last activities encoded by SIMPLE_INDEX/COMBINED.")
    activity_timing = param.Boolean(
        default=True,
        doc="With COMBINED: add hours since each activity first happened and the events' durations.",
    )
    estimator = param.Selector(
        default="random_forest", objects=list(ESTIMATORS),
        doc="The classifier: a random forest, or histogram gradient boosting (n_estimators = boosting iterations; "
            "max_features is then ignored).",
    )  # fmt: skip
    n_estimators = param.Integer(default=100, bounds=(10, 2000), doc="Trees of the forest (boosting iterations).")
    max_samples = param.Integer(
        default=5_000, bounds=(100, None),
        doc="Training prefixes drawn (with replacement) for each tree: every tree sees another sample of all the "
            "training prefixes, which is faster than fewer prefixes for every tree and as good.",
    )  # fmt: skip
    min_samples_leaf = param.Integer(
        default=5, bounds=(1, None), doc="Fewest training prefixes per leaf: larger is smoother, smaller and faster."
    )
    max_features = param.Selector(
        default="sqrt", objects=["sqrt", "log2", 0.1, 0.2, 0.3, 0.5, 1.0],
        doc="Features tried per split: 'sqrt', 'log2' or a fraction of them.",
    )  # fmt: skip
    max_training_prefixes = param.Integer(
        default=100_000, bounds=(1_000, None),
        doc="Training prefixes encoded at most (whole cases, sampled with the seed): bounds memory and encoding time.",
    )  # fmt: skip
    seed = param.Integer(default=42, doc="Seed of the case sample and of the forest: same data, same model.")
    threshold = param.Number(
        default=None, allow_None=True, bounds=(0.0, 1.0),
        doc="Alarm when the negative outcome probability is above this; None chooses it by cost on held-back cases.",
    )  # fmt: skip
    cost_ratio = param.Number(
        default=0.5, bounds=(0.0, None), softbounds=(0.0, 2.0),
        doc="Cost of an intervention (an alarm) divided by the cost of a negative outcome, for choosing the threshold.",
    )  # fmt: skip
    calibration_share = param.Number(
        default=0.2, bounds=(0.05, 0.5),
        doc="Share of the training cases (the latest by start time) held back to calibrate and choose the threshold.",
    )  # fmt: skip
    calibration = param.Selector(
        default="isotonic", objects=list(CALIBRATIONS),
        doc="How the probabilities are calibrated on the held-back cases: isotonic, Platt scaling, or not at all.",
    )  # fmt: skip

    # -- learning ------------------------------------------------------------------------------------------------
    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> RandomForestAlarm:
        """Fit the encoder and the classifier, learn the decided-outcome rule and choose the threshold."""
        reason = self.applicability(log)
        if reason is not None:
            raise errors.PrCoreError(reason)
        progress(0.02, "Selecting prefixes whose outcome is not yet visible")
        events = log.events
        ends = open_ends(events)
        if not len(ends):
            raise errors.PrCoreError("No training prefix ends before the outcome is visible")
        self.encoder_ = PrefixEncoder(blocks_for(self.encoding), history=self.history).fit(events, log.attributes)
        self.activity_index_ = {value: code for code, value in enumerate(self.encoder_.activities_.values)}
        self._learn_decided(log)
        case_of_end = events[CASE_ID].to_numpy()[ends]
        negative = _negative(log, ends)

        fit_mask = np.ones(len(ends), dtype=bool)
        held_back = ~fit_mask
        needs_slice = self.threshold is None or self.calibration != "none"
        calibration_cases = self._calibration_cases(log) if needs_slice else None
        if calibration_cases is not None:
            held_back = pd.Series(case_of_end).isin(calibration_cases).to_numpy()
            if len(np.unique(negative[~held_back])) == 2 and len(np.unique(negative[held_back])) == 2:
                fit_mask = ~held_back
            else:
                calibration_cases = None

        fit_positions = np.flatnonzero(fit_mask)
        fit_positions = fit_positions[sample_cases(case_of_end[fit_positions], self.max_training_prefixes, self.seed)]
        batch = PrefixBatch(events, ends[fit_positions], log.attributes)
        progress(0.1, f"Encoding {len(batch):,} training prefixes")
        features = self._features(batch)
        target = negative[fit_positions]
        self.n_training_prefixes_ = len(batch)
        self.n_training_cases_ = int(pd.unique(batch.case_ids).size)
        progress(0.25, f"Fitting a {self.estimator.replace('_', ' ')} on {len(batch):,} prefixes "
                       f"of {self.n_training_cases_:,} cases")  # fmt: skip
        self._fit_model(features, target)
        self.calibrator_ = BinaryCalibrator("none")
        if calibration_cases is not None and self.calibration != "none":
            progress(0.8, "Calibrating the probabilities on the latest training cases")
            held = np.flatnonzero(held_back)
            raw = self._raw_score(PrefixBatch(events, ends[held], log.attributes))
            self.calibrator_ = BinaryCalibrator(self.calibration).fit(raw, negative[held])

        progress(0.85, "Choosing the alarm threshold")
        if self.threshold is not None:
            self.threshold_ = round(float(self.threshold), 4)
            self.threshold_selection_ = {"method": "given"}
        elif calibration_cases is None:
            self.threshold_ = 0.5
            self.threshold_selection_ = {"method": "default", "detail": "Too few training cases to choose a threshold"}
        else:
            held = np.flatnonzero(held_back)
            self._choose_threshold(log, ends[held], negative[held])
        progress(1.0, "Fitted")
        return self

    def _calibration_cases(self, log: LabelledLog) -> np.ndarray | None:
        """The latest ``calibration_share`` of the training cases by start time (``None`` if too few)."""
        time = log.events[order_time_column(log.events)]
        starts = time.groupby(log.events[CASE_ID].to_numpy(), sort=False).min()
        order = pd.DataFrame({"start": starts.to_numpy(), "case": starts.index}).sort_values(
            ["start", "case"], kind="stable"
        )
        n_held = round(len(order) * self.calibration_share)
        if n_held < MIN_CALIBRATION_CASES or len(order) - n_held < MIN_CALIBRATION_CASES:
            return None
        return order["case"].to_numpy()[len(order) - n_held :]

    def _fit_model(self, features: np.ndarray, target: np.ndarray) -> None:
        if len(np.unique(target)) < 2:
            self.model_ = _Constant(float(target[0]) if len(target) else 0.5)
            self.scorer_ = self.model_
            return
        if self.estimator == "hist_gradient_boosting":
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.model_ = HistGradientBoostingClassifier(
                max_iter=self.n_estimators, min_samples_leaf=self.min_samples_leaf, early_stopping=False,
                random_state=self.seed,
            )  # fmt: skip
            with one_native_thread():
                self.model_.fit(features, target)
            self.scorer_ = None
            return
        from sklearn.ensemble import RandomForestClassifier

        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf, max_features=self.max_features,
            max_samples=self.max_samples if self.max_samples < len(target) else None, n_jobs=1, random_state=self.seed,
        )  # fmt: skip
        self.model_.fit(features, target)
        self.scorer_ = _FlatForest(self.model_, int(np.flatnonzero(self.model_.classes_ == 1)[0]))

    def _choose_threshold(self, log: LabelledLog, ends: np.ndarray, negative: np.ndarray) -> None:
        """Choose ``threshold_`` on the held-back prefixes ``ends`` (only those followed by another event can alarm)."""
        eligible = _has_next(log.events)[ends]
        cases = log.events[CASE_ID].to_numpy()[ends]
        scores = np.full(len(ends), -1.0)
        scores[eligible] = np.round(self._score(PrefixBatch(log.events, ends[eligible], log.attributes)), 4)
        maxima = _case_maxima(cases, scores, eligible)
        case_negative = pd.Series(negative, index=cases).groupby(level=0, sort=False).first().reindex(maxima.index)
        threshold, cost = choose_threshold(maxima.to_numpy(), case_negative.to_numpy(), self.cost_ratio)
        self.threshold_ = threshold
        self.threshold_selection_ = {
            "method": "cost",
            "cost_ratio": float(self.cost_ratio),
            "cases": len(maxima),
            "cost_per_case": cost,
            "cost_per_case_without_alarms": round(float(case_negative.mean()), 4),
        }

    def _learn_decided(self, log: LabelledLog) -> None:
        """Which probability a decided prefix gets, and which activities show that the outcome is decided."""
        self.decided_probability_ = None
        self.decisive_activities_ = []
        if OUTCOME_OBSERVED not in log.events.columns:
            return
        observed = outcome_observed(log.events)
        cases = pd.unique(log.events[CASE_ID].to_numpy()[observed])
        if not len(cases):
            return
        share = float(log.labels[OUTCOME].reindex(cases).mean())
        if share >= 0.99:
            self.decided_probability_ = 0.0  # the definition describes the desired outcome
        elif share <= 0.01:
            self.decided_probability_ = 1.0  # it describes the negative outcome
        else:
            return
        flags = pd.DataFrame({"activity": log.events[ACTIVITY].astype("string"), "observed": observed})
        stats = flags.dropna().groupby("activity")["observed"].agg(["all", "size"])
        decisive = stats.index[stats["all"] & (stats["size"] >= MIN_DECISIVE_OCCURRENCES)]
        self.decisive_activities_ = sorted(str(a) for a in decisive)

    # -- features and scores -------------------------------------------------------------------------------------
    def _activity_codes(self, events: pd.DataFrame) -> np.ndarray:
        """Codes of the encoder's activity vocabulary: ``0..n-1`` known, ``n`` unseen, ``-1`` missing.

        The same codes as the encoder's, with a dictionary for small tables (a pandas string conversion and index
        lookup cost about a millisecond whatever the size, most of a one-prefix prediction).
        """
        values = events[ACTIVITY]
        known = self.encoder_.activities_
        if len(values) > 512:
            return known.codes(values)
        lookup = self.activity_index_
        unseen = len(known.values)
        raw = values.to_numpy(dtype=object, na_value=None)
        return np.fromiter((-1 if v is None else lookup.get(str(v), unseen) for v in raw), np.int64, len(raw))

    def _features(self, batch: PrefixBatch, codes: np.ndarray | None = None) -> np.ndarray:
        features = self.encoder_.transform(batch)
        if self.encoding == "COMBINED" and self.activity_timing:
            features = np.hstack([features, self._timing(batch, codes)])
        return np.ascontiguousarray(features, dtype=np.float32)

    def _timing(self, batch: PrefixBatch, codes: np.ndarray | None = None) -> np.ndarray:
        """Hours since each activity first happened in the prefix, last event's duration, summed durations."""
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        width = len(self.encoder_.activities_.values) + 1
        case = events[CASE_ID].to_numpy()
        starts = case_starts(case)
        time_column = order_time_column(events)
        hours = _hours(events[time_column])
        codes = self._activity_codes(events) if codes is None else codes
        # the first row of every (case, activity) pair, as a (case, activity) table
        case_number = np.cumsum(np.concatenate([[True], case[1:] != case[:-1]])) - 1
        rows = np.flatnonzero(codes >= 0)
        _, first_of_key = np.unique(case_number[rows] * width + codes[rows], return_index=True)
        first = rows[first_of_key]
        table = np.full((int(case_number[-1]) + 1, width), -1, dtype=np.int64)
        table[case_number[first], codes[first]] = first
        firsts = table[case_number[ends]]
        present = (firsts >= 0) & (firsts <= ends[:, None])
        since = np.fmax(hours[ends][:, None] - hours[np.maximum(firsts, 0)], 0.0)  # fmax: NaN (no time) -> 0
        since = np.where(present, np.log1p(since) + 1.0, 0.0)
        if START_TIMESTAMP in events.columns and END_TIMESTAMP in events.columns:
            begin = hours if time_column == START_TIMESTAMP else _hours(events[START_TIMESTAMP])
            duration = np.fmax(_hours(events[END_TIMESTAMP]) - begin, 0.0)
        else:
            duration = np.zeros(len(events))
        total = np.cumsum(duration)
        before = np.where(starts[ends] > 0, total[np.maximum(starts[ends] - 1, 0)], 0.0)
        extra = np.column_stack([np.log1p(duration[ends]), np.log1p(np.maximum(total[ends] - before, 0.0))])
        return np.hstack([since, extra]).astype(np.float32)

    def _score(self, batch: PrefixBatch, codes: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probability of the negative outcome per prefix (model only, unrounded)."""
        scores = self._raw_score(batch, codes)
        calibrator = getattr(self, "calibrator_", None)  # models saved before calibration existed have none
        return np.clip(calibrator.transform(scores), 0.0, 1.0) if calibrator is not None else scores

    def _raw_score(self, batch: PrefixBatch, codes: np.ndarray | None = None) -> np.ndarray:
        """The classifier's probability of the negative outcome per prefix, before calibration."""
        parts = []
        for start in range(0, len(batch), _CHUNK):
            chunk = PrefixBatch(batch.events, batch.ends[start : start + _CHUNK], batch.attributes)
            features = self._features(chunk, codes)
            if self.scorer_ is not None:
                parts.append(self.scorer_.predict(features))
            else:
                with one_native_thread(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parts.append(self.model_.predict_proba(features)[:, list(self.model_.classes_).index(1)])
        return np.clip(np.concatenate(parts), 0.0, 1.0) if parts else np.array([], dtype=np.float64)

    def _decided(self, batch: PrefixBatch, codes: np.ndarray | None = None) -> np.ndarray:
        """Per prefix: is the outcome already decided (observed flag, else a decisive activity in the prefix)?"""
        if self.decided_probability_ is None:
            return np.zeros(len(batch), dtype=bool)
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        if OUTCOME_OBSERVED in events.columns:
            return outcome_observed(events)[ends]
        decisive = [self.activity_index_[a] for a in self.decisive_activities_]
        if not decisive:
            return np.zeros(len(batch), dtype=bool)
        codes = self._activity_codes(events) if codes is None else codes
        total = np.cumsum(np.isin(codes, decisive))
        starts = case_starts(events[CASE_ID].to_numpy())[ends]
        before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
        return (total[ends] - before) > 0

    # -- metrics -------------------------------------------------------------------------------------------------
    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """Metrics on the held-out prefixes whose outcome is not yet visible.

        ``roc_auc`` of the probability (the primary figure); ``precision``, ``recall``, ``f1_score`` of the alarm
        for the negative outcome (binary, the alarm being the prediction) and ``accuracy``, at ``threshold``;
        ``support`` prefixes, ``negative_share`` among them; ``cost_per_case`` on the held-out cases with the
        threshold rule above, next to ``cost_per_case_without_alarms``; ``by_prefix_length`` rows with the same
        figures (``roc_auc`` ``None`` where one class only); ``threshold_selection`` says how the threshold was set.
        """
        if not log.has_label(OUTCOME):
            return {"detail": "The held-out cases have no outcome label"}
        ends = open_ends(log.events)
        if not len(ends):
            return {"detail": "No held-out prefix ends before the outcome is visible"}
        progress(0.1, f"Scoring {len(ends):,} held-out prefixes")
        batch = PrefixBatch(log.events, ends, log.attributes)
        scores = np.round(self._score(batch), 4)
        truth = _negative(log, ends)
        metrics = alarm_metrics(truth, scores, self.threshold_)
        metrics["reliability"] = reliability_curve(scores, truth)
        metrics["support"] = len(truth)
        metrics["negative_share"] = round(float(truth.mean()), 4)
        metrics["threshold"] = self.threshold_
        progress(0.8, "Measuring by prefix length and per case")
        maxima = _case_maxima(batch.case_ids, scores, _has_next(log.events)[ends])
        negative = pd.Series(truth, index=batch.case_ids).groupby(level=0, sort=False).first().reindex(maxima.index)
        cost = case_costs(maxima.to_numpy(), negative.to_numpy(), self.cost_ratio, np.array([self.threshold_]))[0]
        metrics["cost_ratio"] = float(self.cost_ratio)
        metrics["cost_per_case"] = round(float(cost) / len(maxima), 4)
        metrics["cost_per_case_without_alarms"] = round(float(negative.mean()), 4)
        metrics["threshold_selection"] = dict(self.threshold_selection_)
        threshold = self.threshold_
        metrics["by_prefix_length"] = by_prefix_length(
            batch.lengths, lambda y_true, score: alarm_metrics(y_true, score, threshold), y_true=truth, score=scores
        )
        return metrics

    # -- predicting ----------------------------------------------------------------------------------------------
    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        if not len(batch):
            return []
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        codes = self._activity_codes(batch.events)
        scores = np.round(self._score(batch, codes), 4)
        decided = self._decided(batch, codes)
        threshold = self.threshold_
        predictions = []
        for score, done in zip(scores.tolist(), decided.tolist(), strict=True):
            if done:
                predictions.append({
                    "output": self.decided_probability_, "alarm": False, "threshold": threshold,
                    "detail": "The outcome is already observed: no alarm needed",
                })  # fmt: skip
            else:
                predictions.append({"output": score, "alarm": bool(score > threshold), "threshold": threshold})
        return predictions


def _hours(time: pd.Series) -> np.ndarray:
    """Timestamps as float hours since the epoch (NaN where missing)."""
    return seconds_since_epoch(time) / _HOURS
