"""Treatment effect at decision points, with identification checks, intervals and policy value (reference 8.8).

For a running case at a point where the treatment is still possible, the plugin estimates the probability of the
desired outcome if the treatment is applied (``proba_if_treated``) and if it is not (``proba_if_untreated``), their
difference, the conditional average treatment effect (``cate``), and an interval around it (``cate_low``,
``cate_high``). It recommends the treatment only when the lower bound exceeds ``threshold``, and only when the
training data can tell the effect at all: otherwise it says why and recommends nothing.

Decision points
---------------
An effect is only meaningful where the treatment is still an option. A prefix is a **decision point** when it ends
before the treatment and the outcome are visible, before the case's last event, and its last activity is one after
which, in the training cases, the treatment came next at least ``min_decision_rate`` of the time (demo log: ``Send
offer``, after which the customer may be called; BPIC 2012 with ``O_SENT_BACK``: ``W_Nabellen offertes``). The
treatment "happening later" is not enough: early in a case it mostly says "the case will reach the stage where the
treatment happens", which is progress, not an action. Training uses the decision points only (treated = the
treatment happened after the prefix). Elsewhere the output is null with the reason ("The treatment has already been
applied", "The treatment is not possible at this point of the case", "The outcome is already known"). Streamed
prefixes need not carry the observed flags: the activities that show the treatment or the outcome are learnt.

Identification checks (at training, in ``metrics["identification"]``)
----------------------------------------------------------------------
* **Necessary step**: if the desired outcome (almost) never happens without the treatment, "treated" marks the cases
  that progressed and the comparison cannot separate the treatment from progress.
* **Overlap**: the share of decision points whose cross-fitted propensity ``e(x)`` lies in ``(0.05, 0.95)``
  (at least ``min_overlap_share``). Single prefixes outside it get no effect either.
* **Balance**: standardised mean differences (SMD) of the most imbalanced features, before and after inverse
  propensity weighting (reported, not a gate).
* **Placebo**: the learner refitted with the treatment permuted across cases must estimate a mean effect
  indistinguishable from 0 (within 2.58 standard errors). The permutation is the most balanced of
  ``PLACEBO_DRAWS`` (smallest raw difference in outcome rates), so that the check measures the learner, not the luck
  of one draw.

A failed necessary-step, overlap or placebo check makes the effect **not identifiable**: every output is null with
the reason and nothing is recommended.

Estimation and uncertainty
--------------------------
causalml meta-learners (``learner``: T, S, X, R or DR, or ``auto``, the default: the one whose advice, as it would
be given (bagged over ``SELECTION_BOOTSTRAP`` bootstrap refits, recommended where its interval's lower bound exceeds
the threshold), has the best doubly robust policy value on the latest ``VALIDATION_SHARE`` of the training cases by
start time, never on held-out cases; X unless another is better by ``SWITCH_MARGIN`` standard errors) over histogram
gradient boosting (the effect models smaller and slower than the outcome models, ``EFFECT_MODEL``), on the plugin's
own prefix features (:class:`CaseFeatures`: activity counts, last activities, times, case attributes and the latest
event attributes). The interval is a cluster bootstrap: ``n_bootstrap`` (20) refits on training cases drawn with
replacement; the point estimate is their mean, the interval ``cate ± t * sd`` with Student's ``t`` for that many
replicates at ``interval_level`` (80 %). All tree models (the propensity, the point learner and every
replicate) are compiled into flat arrays and evaluated together with numpy (:class:`_Forest`): with 20 replicates,
about half a millisecond for one prefix.

Output (4 decimals)
-------------------
At an identifiable decision point::

    {"output": {"proba_if_treated": p1, "proba_if_untreated": p0, "cate": p1 - p0, "cate_low": l, "cate_high": h,
                "recommend_treatment": bool, "reason": "...", "treatment": <definition>},
     "recommend_treatment": bool, "reason": "...", "advice": "treat" | "uncertain" | "do not treat",
     "propensity": e}

``output`` keeps PrCore's four keys (reference 8.8) and adds the new ones; ``recommend_treatment`` and ``reason`` are
also top-level, where PrCore-era readers look. Elsewhere: ``{"output": None, "detail": reason, "reason": reason,
"recommend_treatment": False, "advice": "not identifiable" | "not possible here" | "already treated" | "outcome
known"}``.

Held-out metrics (:meth:`CausalTreatmentEffect.evaluate`) are taken at each held-out case's last decision point:
Qini and AUUC, the Qini curve, and the **policy value** (the outcome rate if the advice is followed), doubly robust,
with a 95 % interval, against treat-all and treat-none, which are this plugin type's baselines
(``metrics["baselines"]``).

causalml is imported lazily (in :meth:`load_dependencies`, else in :meth:`fit`); importing this module stays fast.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import param
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from prcore_core import errors
from prcore_core.context import PredictionContext
from prcore_core.dataset import (
    ACTIVITY,
    CASE_ID,
    OUTCOME,
    OUTCOME_OBSERVED,
    TREATMENT,
    TREATMENT_OBSERVED,
    LabelledLog,
    PrefixBatch,
    case_starts,
    column_values,
    order_time_column,
)
from prcore_core.metrics import by_prefix_length
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output, one_native_thread

with contextlib.suppress(ImportError):  # polars is an optional dependency of causalml; see the note below
    import polars  # noqa: F401

# Note: causalml imports polars. scikit-learn tells data frames apart by looking polars up in ``sys.modules``
# without importing it, so a first import of polars in one thread makes a scikit-learn call in another thread fail
# ("partially initialized module 'polars' has no attribute 'DataFrame'"). Importing polars here, when the registry
# loads this module (0.2 s), closes that window; causalml itself stays lazy.

LEARNERS = ("auto", "T", "S", "X", "R", "DR")
#: Learners ``auto`` chooses from, in order of preference (X first: it regresses imputed effects, so its CATE is
#: smoother than a difference of two outcome models, and it suits unequal group sizes; Kunzel et al. 2019).
CANDIDATES = ("X", "T", "DR", "S", "R")
#: Fewest treated (and untreated) cases at decision points that make the plugin applicable.
MIN_CASES_PER_GROUP = 10
#: Fewest treated and untreated cases for a Qini figure.
MIN_CASES_FOR_QINI = 10
#: Propensities outside ``(OVERLAP, 1 - OVERLAP)`` are outside overlap (issue 11).
OVERLAP = 0.05
#: Latest share of the training cases (by start time) on which ``auto`` chooses the learner.
VALIDATION_SHARE = 0.2
#: Standard errors of the paired difference in validation policy value by which a candidate must beat the preferred
#: learner to replace it (see ``_choose_learner``).
SWITCH_MARGIN = 2.0
#: Fewest training transitions into the treatment from an activity for it to be a decision point.
MIN_DECISION_SUPPORT = 5
#: A desired outcome rate below this among untreated decision cases makes the treatment a necessary step.
NECESSARY_STEP_RATE = 0.005
#: Standard errors a placebo effect may be from 0.
PLACEBO_Z = 2.58
#: Permutations drawn for the placebo check (the most balanced one is used, see ``_placebo``).
PLACEBO_DRAWS = 50
#: Bootstrap refits of each candidate learner when ``auto`` compares their advice on the latest training cases.
SELECTION_BOOTSTRAP = 3
#: Features shown in the balance check.
BALANCE_FEATURES = 8
#: Most frequent values of a text attribute that get a column (the others share one).
TOP_VALUES = 12
_PROPENSITY_CLIP = 0.02
_CHUNK_ROWS = 4096

ADVICE_TREAT = "treat"
ADVICE_UNCERTAIN = "uncertain"
ADVICE_NO = "do not treat"
ADVICE_NOT_IDENTIFIABLE = "not identifiable"
ADVICE_NOT_POSSIBLE = "not possible here"
ADVICE_TREATED = "already treated"
ADVICE_OUTCOME = "outcome known"

TREATMENT_APPLIED = "The treatment has already been applied in this case"
OUTCOME_KNOWN = "The outcome of this case is already known"
NOT_POSSIBLE = (
    "The treatment is not possible at this point of the case (in the training cases it hardly ever followed "
    "this activity)"
)
NOT_TRAINED = "The plugin is not trained"


# -- features ------------------------------------------------------------------------------------------------------
def _seconds(values) -> np.ndarray:
    """Seconds since the epoch (``NaN`` for missing) of datetime column values, whatever their unit."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.to_datetime(pd.Series(values), utc=True, errors="coerce", format="ISO8601").array
    dtype = values.dtype
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    ticks = values.asi8 if hasattr(values, "asi8") else np.asarray(values).view(np.int64)
    seconds = ticks / {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
    seconds[ticks == np.iinfo(np.int64).min] = np.nan
    return seconds


def _numbers(values) -> np.ndarray:
    """Column values as floats (``NaN`` for missing or unparsable), without parsing when they are numeric already."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False)
    if getattr(values, "dtype", None) is not None and getattr(values.dtype, "kind", "O") in "fiu":
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _lookup(values, index: dict[str, int], unseen: int) -> np.ndarray:
    """Codes of text values: known ones by ``index``, others ``unseen``, missing ``-1``."""
    if len(values) > 256:
        text = pd.Series(values).astype("string")
        codes = pd.Index(list(index), dtype="string").get_indexer(text).astype(np.int64)
        codes[(codes < 0) & text.notna().to_numpy()] = unseen
        return codes
    return np.array([-1 if v is None or v is pd.NA or v != v else index.get(str(v), unseen)
                     for v in values.tolist()], dtype=np.int64)  # fmt: skip


class CaseFeatures:
    """Feature rows of prefixes, computed with numpy on the prefix's events (a single prefix in tens of µs).

    The shared encoder converts whole columns through pandas per call (milliseconds for one prefix); the causal
    plugin must answer one streamed prefix in well under a millisecond, so it keeps its own, smaller encoding:
    activity counts, the last ``history`` activities (one-hot), prefix length, log hours since the case started and
    since the previous event, numeric case attributes, the latest value of numeric event attributes, and the
    ``TOP_VALUES`` most frequent values of text attributes (one-hot, the rest in one column). Missing numbers stay
    ``NaN`` (the gradient boosting models route them).
    """

    def __init__(self, history: int = 2):
        self.history = history

    def fit(self, events: pd.DataFrame, attributes) -> CaseFeatures:
        activities = events[ACTIVITY].astype("string").value_counts()
        self.activities_ = {a: i for i, a in enumerate(activities.index.tolist())}
        self.time_ = order_time_column(events) if any(
            c in events.columns for c in ("TIMESTAMP", "START_TIMESTAMP", "END_TIMESTAMP")) else None  # fmt: skip
        self.numbers_, self.texts_ = [], []
        for attribute in attributes:
            family = str(attribute.family)
            if attribute.name not in events.columns:
                continue
            if family in ("NUMBER", "INTEGER", "FLOAT"):
                self.numbers_.append((attribute.name, attribute.scope))
            elif family in ("TEXT", "CATEGORICAL", "BOOLEAN"):
                top = events[attribute.name].astype("string").value_counts().index[:TOP_VALUES].tolist()
                self.texts_.append((attribute.name, attribute.scope, {v: i for i, v in enumerate(top)}))
        n_act = len(self.activities_)
        names = [f"count {a}" for a in self.activities_] + ["count <unseen>"]
        for j in range(self.history):
            names += [f"last-{j} {a}" for a in self.activities_] + [f"last-{j} <unseen>", f"last-{j} <none>"]
        names += ["prefix length", "log hours since start", "log hours since previous event"]
        names += [f"{name}" for name, _ in self.numbers_]
        for name, _, values in self.texts_:
            names += [f"{name}={v}" for v in values] + [f"{name}=<other>"]
        self.names_ = names
        self.n_activities_ = n_act
        return self

    def transform(self, events: pd.DataFrame, ends: np.ndarray, case_start: np.ndarray | None = None,
                  activities: pd.Series | None = None) -> np.ndarray:  # fmt: skip
        """One feature row per prefix ending at row ``ends[i]`` of ``events`` (sorted by case then time).

        ``case_start`` (:func:`case_starts` of the case column) and ``activities`` can be passed when the caller
        has them: on a single prefix, each pandas column read is a sizeable part of the time.
        """
        ends = np.asarray(ends, dtype=np.int64)
        n_act = self.n_activities_
        case_start = case_starts(np.asarray(column_values(events, CASE_ID))) if case_start is None else case_start
        starts = case_start[ends]
        codes = _lookup(column_values(events, ACTIVITY) if activities is None else activities, self.activities_, n_act)
        codes[codes < 0] = n_act
        parts = []
        # activity counts: cumulative one-hot, differenced at the case start
        onehot = np.zeros((len(codes) + 1, n_act + 1), dtype=np.float64)
        onehot[np.arange(1, len(codes) + 1), codes] = 1.0
        cumulative = np.cumsum(onehot, axis=0)
        parts.append(cumulative[ends + 1] - cumulative[starts])
        for j in range(self.history):
            rows = ends - j
            valid = rows >= starts
            last = np.where(valid, codes[np.maximum(rows, 0)], n_act + 1)
            block = np.zeros((len(ends), n_act + 2))
            block[np.arange(len(ends)), last] = 1.0
            parts.append(block)
        length = (ends - starts + 1).astype(np.float64)
        if self.time_ is not None and self.time_ in events.columns:
            seconds = _seconds(column_values(events, self.time_))
            elapsed = seconds[ends] - seconds[starts]
            gap = np.where(ends > starts, seconds[ends] - seconds[np.maximum(ends - 1, 0)], 0.0)
        else:
            elapsed = gap = np.full(len(ends), np.nan)
        hours = [np.log1p(np.maximum(x, 0.0) / 3600.0) for x in (elapsed, gap)]
        parts.append(np.column_stack([length, *hours]))
        latest = None
        for name, scope in self.numbers_:
            values = _numbers(column_values(events, name)) if name in events.columns else np.full(len(events), np.nan)
            if scope == "case":
                parts.append(values[ends][:, None])
                continue
            latest = self._latest(~np.isnan(values), ends, starts)
            parts.append(np.where(latest >= 0, values[np.maximum(latest, 0)], np.nan)[:, None])
        for name, scope, index in self.texts_:
            column = column_values(events, name) if name in events.columns else [None] * len(events)
            value_codes = _lookup(column, index, len(index))
            block = np.zeros((len(ends), len(index) + 1))
            row = ends if scope == "case" else self._latest(value_codes >= 0, ends, starts)
            chosen = np.where(row >= 0, value_codes[np.maximum(row, 0)], -1)
            known = chosen >= 0
            block[np.flatnonzero(known), chosen[known]] = 1.0
            parts.append(block)
        return np.hstack(parts)

    @staticmethod
    def _latest(present: np.ndarray, ends: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per prefix: the last row up to its end (within its case) where ``present``; ``-1`` if none."""
        marked = np.maximum.accumulate(np.where(present, np.arange(len(present)), -1))
        latest = marked[ends]
        return np.where(latest >= starts, latest, -1)


# -- compiled tree ensembles ---------------------------------------------------------------------------------------
class _Forest:
    """Several fitted models (histogram gradient boosting or constants) as flat arrays, evaluated together.

    A scikit-learn call costs tens of microseconds of input checks, and an interval needs the point model and every
    bootstrap replicate: compiled, one prefix takes a handful of numpy operations over all their trees at once.
    :meth:`raw` gives each model's raw score (log-odds for classifiers, the value for regressors), exactly as
    scikit-learn computes it.
    """

    def __init__(self, models: list):
        feature, threshold, missing_left, left, right, leaf, value = [], [], [], [], [], [], []
        roots, owner, baseline = [], [], []
        offset, depth = 0, 1
        for number, model in enumerate(models):
            if isinstance(model, float):  # a constant raw score
                baseline.append(model)
                continue
            baseline.append(float(np.ravel(model._baseline_prediction)[0]))
            for predictors in model._predictors:
                nodes = predictors[0].nodes
                if nodes["is_categorical"].any():
                    raise ValueError("categorical splits are not compiled")
                feature.append(nodes["feature_idx"].astype(np.int64))
                threshold.append(nodes["num_threshold"].astype(np.float64))
                missing_left.append(nodes["missing_go_to_left"].astype(bool))
                left.append(nodes["left"].astype(np.int64) + offset)
                right.append(nodes["right"].astype(np.int64) + offset)
                leaf.append(nodes["is_leaf"].astype(bool))
                value.append(nodes["value"].astype(np.float64))
                roots.append(offset)
                owner.append(number)
                depth = max(depth, int(nodes["depth"].max()))  # steps from the root to the deepest leaf
                offset += len(nodes)
        join = lambda arrays, dtype: np.concatenate(arrays) if arrays else np.zeros(0, dtype)  # noqa: E731
        self.feature = join(feature, np.int64)
        self.threshold = join(threshold, np.float64)
        self.missing_left = join(missing_left, bool)
        self.left, self.right = join(left, np.int64), join(right, np.int64)
        self.leaf = join(leaf, bool)
        self.value = join(value, np.float64)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.depth = depth
        self.baseline = np.asarray(baseline, dtype=np.float64)
        membership = np.zeros((len(roots), len(models)))
        membership[np.arange(len(roots)), np.asarray(owner, dtype=np.int64)] = 1.0
        self.membership = membership

    def raw(self, X: np.ndarray) -> np.ndarray:
        """``(rows, models)`` raw scores."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty((len(X), len(self.baseline)))
        for start in range(0, len(X), _CHUNK_ROWS):
            part = X[start : start + _CHUNK_ROWS]
            if not len(self.roots):
                out[start : start + len(part)] = self.baseline
                continue
            node = np.broadcast_to(self.roots, (len(part), len(self.roots))).copy()
            rows = np.arange(len(part))[:, None]
            for _ in range(self.depth):
                x = part[rows, self.feature[node]]
                go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
                node = np.where(self.leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
            out[start : start + len(part)] = (self.value[node] * 1.0) @ self.membership + self.baseline
        return out


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


# -- models --------------------------------------------------------------------------------------------------------
#: Histogram gradient boosting settings of the outcome and propensity models (classifiers) and of the effect models
#: (the X-, R- and DR-learners' regressions of imputed effects). An imputed effect is a binary outcome minus a
#: probability, so nearly all of its variance is noise: the effect models are smaller and learn more slowly (four
#: leaves, 80 cases per leaf, fewer on small logs (see ``_hgb``), learning rate 0.05). On demo logs of 4,000 cases
#: this cuts the spread of the bootstrap refits from about 0.08 to 0.05, at the price of some shrinkage of the
#: largest effects (bench/causal.py).
OUTCOME_MODEL = {"learning_rate": 0.1, "max_leaf_nodes": 8, "min_samples_leaf": 30}
EFFECT_MODEL = {"learning_rate": 0.05, "max_leaf_nodes": 4, "min_samples_leaf": 80}


def _hgb(classifier: bool, n_estimators: int, seed: int, n_rows: int | None = None):
    """A fresh histogram gradient boosting model (small: the meta-learners fit several, bootstrap many).

    An effect model fitted on fewer than ``10 * EFFECT_MODEL["min_samples_leaf"]`` rows (``n_rows``) takes a tenth of
    them per leaf (at least 20), so that small logs still get effects that vary between cases.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
    size = OUTCOME_MODEL if classifier else EFFECT_MODEL
    if not classifier and n_rows is not None:
        size = {**size, "min_samples_leaf": int(np.clip(n_rows // 10, 20, size["min_samples_leaf"]))}
    return cls(max_iter=n_estimators, max_depth=4, max_bins=63, l2_regularization=1.0, early_stopping=False,
               random_state=seed, **size)  # fmt: skip


class _Classifier(ClassifierMixin, BaseEstimator):
    """A binary classifier that tolerates one-class data (then its raw score is that class's constant log-odds).

    Meta-learners fit one model per treatment group; in real logs one group can have one outcome only.
    """

    def __init__(self, n_estimators: int = 40, seed: int = 0):
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        rate = float(np.clip(y.mean(), 1e-4, 1 - 1e-4)) if len(y) else 0.5
        self.constant_ = float(np.log(rate / (1 - rate))) if len(np.unique(y)) < 2 else None
        if self.constant_ is None:
            self.model_ = _hgb(True, self.n_estimators, self.seed).fit(X, y, sample_weight=sample_weight)
        return self

    def compiled(self):
        return self.constant_ if self.constant_ is not None else self.model_

    def predict_proba(self, X):
        if self.constant_ is not None:
            positive = np.full(len(X), _sigmoid(self.constant_))
        else:
            positive = self.model_.predict_proba(X)[:, 1]
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class _Regressor(RegressorMixin, BaseEstimator):
    """A regressor with ``sample_weight`` (the R-learner weights its rows), compiled like :class:`_Classifier`."""

    def __init__(self, n_estimators: int = 40, seed: int = 0):
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, X, y, sample_weight=None):
        self.model_ = _hgb(False, self.n_estimators, self.seed, len(X)).fit(X, y, sample_weight=sample_weight)
        return self

    def compiled(self):
        return self.model_

    def predict(self, X):
        return self.model_.predict(X)


def _fit_learner(kind: str, X, w, y, e, n_estimators: int, seed: int):
    """Fit a causalml meta-learner; return ``(units, combine)``: compiled models and how to read them.

    ``combine(raw, e)`` turns the units' raw scores (``(rows, units)``; S-learners get ``(raw_untreated,
    raw_treated)``) into ``(p1, p0, tau)``.
    """
    from causalml.inference.meta import (
        BaseDRClassifier,
        BaseRClassifier,
        BaseSClassifier,
        BaseTClassifier,
        BaseXClassifier,
    )
    from joblib import parallel_config

    def clf():
        return _Classifier(n_estimators, seed)

    def reg():
        return _Regressor(n_estimators, seed)

    with warnings.catch_warnings(), parallel_config(backend="sequential"):
        warnings.simplefilter("ignore")
        if kind == "T":
            model = BaseTClassifier(learner=clf()).fit(X, w, y)
            return [model.models_c[1].compiled(), model.models_t[1].compiled()], "T"
        if kind == "S":
            model = BaseSClassifier(learner=clf()).fit(X, w, y)
            return [model.models[1].compiled()], "S"
        if kind == "X":
            model = BaseXClassifier(outcome_learner=clf(), effect_learner=reg()).fit(X, w, y, p=e)
            return [model.models_mu_c[1].compiled(), model.models_tau_c[1].compiled(),
                    model.models_tau_t[1].compiled()], "X"  # fmt: skip
        if kind == "R":
            model = BaseRClassifier(outcome_learner=clf(), effect_learner=reg(), n_fold=3, random_state=seed)
            model.fit(X, w, y, p=e, verbose=False)
            return [model.model_mu.compiled(), model.models_tau[1].compiled()], "R"
        model = BaseDRClassifier(control_outcome_learner=clf(), treatment_outcome_learner=clf(),
                                 treatment_effect_learner=reg())  # fmt: skip
        model.fit(X, w, y, p=e, seed=seed)
        return [*(m.compiled() for m in model.models_mu_c), *(m.compiled() for m in model.models_tau[1])], "DR"


def _combine(kind: str, raw, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p1, p0, tau)`` of one learner from its units' raw scores along the last axis (see :func:`_fit_learner`)."""
    if kind == "S":
        untreated, treated = raw
        p0, p1 = _sigmoid(untreated[..., 0]), _sigmoid(treated[..., 0])
        return p1, p0, p1 - p0
    if kind == "T":
        p0, p1 = _sigmoid(raw[..., 0]), _sigmoid(raw[..., 1])
        return p1, p0, p1 - p0
    if kind == "X":
        p0 = _sigmoid(raw[..., 0])
        tau = np.clip(e * raw[..., 1] + (1 - e) * raw[..., 2], -1.0, 1.0)
    elif kind == "R":
        mean = _sigmoid(raw[..., 0])
        tau = np.clip(raw[..., 1], -1.0, 1.0)
        p0 = mean - e * tau
    else:  # DR: three cross-fitted control models, then three effect models
        p0 = _sigmoid(raw[..., :3]).mean(axis=-1)
        tau = np.clip(raw[..., 3:].mean(axis=-1), -1.0, 1.0)
    p0 = np.clip(p0, 0.0, 1.0)
    p1 = np.clip(p0 + tau, 0.0, 1.0)
    return p1, p0, p1 - p0


class _Estimator:
    """The propensity, the point learner and its bootstrap replicates, compiled (:class:`_Forest`)."""

    def __init__(self, propensity, point: tuple[list, str], replicates: list[tuple[list, str]]):
        self.kind = point[1]
        units = list(point[0])
        self.spans = [(0, len(units))]
        for replicate_units, _ in replicates:
            self.spans.append((len(units), len(units) + len(replicate_units)))
            units += replicate_units
        # the S-learner's models read [w, x], the propensity x: apart; otherwise all in one pass, propensity last
        self.propensity = _Forest([propensity]) if self.kind == "S" or not units else None
        self.forest = _Forest(units if self.propensity is not None else [*units, propensity])

    def estimate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(p1, p0, e, taus)``: point probabilities, propensity and every replicate's effect (``(rows, B)``)."""
        width, copies = self.spans[0][1], len(self.spans)
        if self.propensity is None:
            raw = self.forest.raw(X)
            e = _sigmoid(raw[:, -1])
            raw = raw[:, :-1].reshape(len(X), copies, width)  # every fit has the same units: (rows, fits, units)
        else:
            e = _sigmoid(self.propensity.raw(X)[:, 0])
            if not width:
                return np.full(len(X), np.nan), np.full(len(X), np.nan), e, np.zeros((len(X), 0))
            raw = tuple(self.forest.raw(np.column_stack([np.full(len(X), w), X])).reshape(len(X), copies, width)
                        for w in (0.0, 1.0))  # fmt: skip
        clipped = np.clip(e, _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
        p1, p0, tau = _combine(self.kind, raw, clipped[:, None])
        if copies == 1:
            return p1[:, 0], p0[:, 0], e, tau[:, :0]
        # bagged: the point estimate is the mean over the bootstrap refits (less variance than any one of them)
        return p1[:, 1:].mean(axis=1), p0[:, 1:].mean(axis=1), e, tau[:, 1:]


# -- sharing one fit between plugins -------------------------------------------------------------------------------
#: Learned attributes that depend only on the training log and the fit parameters.
_LEARNED = ("features_", "estimator_", "decision_activities_", "treatment_activities_", "outcome_activities_",
            "identification_", "learner_", "learner_selection_", "treatment_definition_", "n_training_prefixes_",
            "n_training_cases_", "decision_rates_")  # fmt: skip
#: Parameters that change the fit (``threshold`` and ``interval_level`` only change how estimates are read).
_FIT_PARAMETERS = ("learner", "n_estimators", "history", "max_training_prefixes", "n_bootstrap", "min_decision_rate",
                   "min_overlap_share", "seed")  # fmt: skip
_SHARED_SIZE = 4
_shared_fits: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_shared_metrics: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_shared_guard = threading.Lock()
_shared_locks: dict[tuple, threading.Lock] = {}


def _fingerprint(log: LabelledLog) -> str | None:
    """A digest of a labelled log's events, labels and treatment definition (``None`` if it cannot be hashed)."""
    try:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(pd.util.hash_pandas_object(log.events, index=False).to_numpy().tobytes())
        labels = log.labels[[c for c in (OUTCOME, TREATMENT) if c in log.labels.columns]]
        digest.update(pd.util.hash_pandas_object(labels, index=True).to_numpy().tobytes())
        digest.update(repr(log.treatment_definition).encode())
        digest.update(repr([(a.name, str(a.family)) for a in log.attributes]).encode())
    except (TypeError, ValueError):
        return None
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(key: tuple | None):
    """Serialise work on one cache key, so a second plugin waits for the first one's result instead of redoing it."""
    if key is None:
        yield
        return
    with _shared_guard:
        lock = _shared_locks.setdefault(key, threading.Lock())
    with lock:
        yield


def _remember(cache: OrderedDict, key: tuple | None, value) -> None:
    if key is None:
        return
    with _shared_guard:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _SHARED_SIZE:
            forgotten, _ = cache.popitem(last=False)
            if not any(forgotten in other for other in (_shared_fits, _shared_metrics)):
                _shared_locks.pop(forgotten, None)


def _recall(cache: OrderedDict, key: tuple | None):
    if key is None:
        return None
    with _shared_guard:
        return cache.get(key)


# -- where the treatment is possible -------------------------------------------------------------------------------
def _flag(events: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in events.columns:
        return None
    column = column_values(events, name)
    if isinstance(column, np.ndarray) and column.dtype == bool:
        return column
    return pd.Series(column).fillna(False).to_numpy(dtype=bool)


def _seen_by_activity(activity: list, starts: np.ndarray, activities: set[str]) -> np.ndarray:
    """Per event: has one of ``activities`` occurred in the case up to this event (``starts``: case starts)?"""
    if not activities or not len(activity):
        return np.zeros(len(activity), dtype=bool)
    total = np.cumsum(np.fromiter((a in activities for a in activity), dtype=bool, count=len(activity)))
    before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
    return (total - before) > 0


def _marking_activities(events: pd.DataFrame, flag: np.ndarray) -> set[str]:
    """Activities at which ``flag`` turns true in a case and that never occur while it is false."""
    if flag is None or not flag.any():
        return set()
    case = events[CASE_ID].to_numpy()
    first = np.r_[True, case[1:] != case[:-1]]
    turns = flag & (first | ~np.r_[False, flag[:-1]])
    activity = events[ACTIVITY].astype("string").to_numpy(dtype=object)
    candidates = set(pd.unique(activity[turns]).tolist())
    never_before = set(pd.unique(activity[~flag]).tolist())
    return {a for a in candidates if a not in never_before}


def eligible_ends(events: pd.DataFrame) -> np.ndarray:
    """Rows ending a prefix before the treatment and the outcome are visible, and before the case's last event."""
    case = events[CASE_ID].to_numpy()
    if not len(case):
        return np.array([], dtype=int)
    keep = np.r_[case[1:] == case[:-1], False]
    for name in (TREATMENT_OBSERVED, OUTCOME_OBSERVED):
        flag = _flag(events, name)
        if flag is not None:
            keep &= ~flag
    return np.flatnonzero(keep)


def decision_rates(events: pd.DataFrame) -> pd.DataFrame:
    """Per last activity of the eligible prefixes: how often the treatment came next (``rate``), and in how many."""
    ends = eligible_ends(events)
    flag = _flag(events, TREATMENT_OBSERVED)
    activity = events[ACTIVITY].astype("string").to_numpy(dtype=object)[ends]
    if flag is None:  # a case-level treatment: no point in a case is known to be the treatment
        return pd.DataFrame({"prefixes": pd.Series(activity).value_counts(), "treated_next": 0, "rate": 1.0})
    nxt = flag[ends + 1]
    frame = pd.DataFrame({"activity": activity, "next": nxt.astype(int)})
    rates = frame.groupby("activity").agg(prefixes=("next", "size"), treated_next=("next", "sum"))
    rates["rate"] = rates["treated_next"] / rates["prefixes"]
    return rates.sort_values("rate", ascending=False)


def _group_counts(log: LabelledLog, ends: np.ndarray) -> tuple[int, int]:
    """Treated and untreated cases among the cases owning ``ends``."""
    cases = pd.unique(log.events[CASE_ID].to_numpy()[ends])
    treated = log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy()
    return int((treated == 1).sum()), int((treated == 0).sum())


def _decision_ends(events: pd.DataFrame, activities: set[str]) -> np.ndarray:
    ends = eligible_ends(events)
    last = events[ACTIVITY].astype("string").to_numpy(dtype=object)[ends]
    return ends[np.isin(last, list(activities))] if len(ends) else ends


def _chosen_activities(rates: pd.DataFrame, min_rate: float) -> set[str]:
    chosen = rates[(rates["rate"] >= min_rate) & ((rates["treated_next"] >= MIN_DECISION_SUPPORT) |
                                                  (rates["rate"] == 1.0))]  # fmt: skip
    return set(chosen.index.tolist())


# -- policy value --------------------------------------------------------------------------------------------------
def _dr_scores(y, w, p1, p0, e) -> tuple[np.ndarray, np.ndarray]:
    """Doubly robust scores of treating (``g1``) and not treating (``g0``) every unit."""
    e = np.clip(e, _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
    return p1 + w * (y - p1) / e, p0 + (1 - w) * (y - p0) / (1 - e)


def _mean_interval(values: np.ndarray, z: float = 1.96) -> dict[str, float | None]:
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return {"value": None, "low": None, "high": None}
    mean = float(values.mean())
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"value": round(mean, 4), "low": round(mean - z * se, 4), "high": round(mean + z * se, 4)}


def _qini_auuc(y, w, score) -> tuple[float | None, float | None, list[dict]]:
    """causalml's normalised Qini coefficient and AUUC of ``score`` and a 21-point Qini curve; ``None`` if undefined."""
    y, w, score = (np.asarray(a, dtype=float) for a in (y, w, score))
    treated = int(w.sum())
    if treated < MIN_CASES_FOR_QINI or len(w) - treated < MIN_CASES_FOR_QINI:
        return None, None, []
    gain = y[w == 1].mean() - y[w == 0].mean()
    if not np.isfinite(gain) or abs(gain) < 1e-12:
        return None, None, []
    from causalml.metrics import auuc_score, get_qini, qini_score

    frame = pd.DataFrame({"y": y, "w": w, "model": score})  # not "tau": causalml reads that as the true effect
    qini = float(qini_score(frame, outcome_col="y", treatment_col="w")["model"])
    auuc = float(auuc_score(frame, outcome_col="y", treatment_col="w")["model"])
    curve = get_qini(frame, outcome_col="y", treatment_col="w")["model"].to_numpy()
    points = np.linspace(0, len(curve) - 1, 21).round().astype(int)
    last = max(len(curve) - 1, 1)
    rows = [{"share": round(float(i / last), 4), "model": round(float(curve[i]), 4),
             "random": round(float(curve[-1] * i / last), 4)} for i in points]  # fmt: skip
    rounded = [round(v, 4) if np.isfinite(v) else None for v in (qini, auuc)]
    return rounded[0], rounded[1], rows


class CausalTreatmentEffect(Plugin):
    """Estimates, at decision points, the effect of the treatment on the desired outcome, and whether to treat."""

    key = "causal-treatment-effect"
    aliases = ("plugin-causallift-treatment-effect",)
    title = "Causal treatment effect"
    description = (
        "This plugin estimates, where the treatment is still possible, the probability of the desired outcome if the "
        "treatment is applied and if it is not, their difference (the CATE) with an interval, and recommends the "
        "treatment only when the interval is above a threshold. It checks at training whether the data can tell the "
        "effect at all (overlap, balance, a placebo) and says so when they cannot."
    )
    prescription_type = PrescriptionType.TREATMENT_EFFECT
    needs_outcome = True
    needs_treatment = True

    learner = param.Selector(
        default="auto", objects=list(LEARNERS),
        doc="causalml meta-learner: T, S, X, R or DR; auto: the one whose advice has the best policy value on the "
            "latest training cases.",
    )  # fmt: skip
    n_estimators = param.Integer(default=40, bounds=(10, 500), doc="Boosting iterations of each base model.")
    history = param.Integer(default=2, bounds=(1, 10), doc="Last activities encoded.")
    max_training_prefixes = param.Integer(
        default=10_000, bounds=(500, None), doc="Decision prefixes learnt from (spread over as many cases as possible)."
    )
    n_bootstrap = param.Integer(default=20, bounds=(2, 100), doc="Bootstrap refits behind each interval.")
    interval_level = param.Number(default=0.8, bounds=(0.5, 0.99), doc="Coverage of the CATE interval.")
    threshold = param.Number(
        default=0.0, bounds=(-1.0, 1.0), doc="The treatment is recommended when the interval's lower bound exceeds it."
    )
    min_decision_rate = param.Number(
        default=0.05, bounds=(0.0, 1.0),
        doc="An activity is a decision point when the treatment came next after it at least this often.",
    )  # fmt: skip
    min_overlap_share = param.Number(
        default=0.5, bounds=(0.0, 1.0),
        doc="Fewest decision prefixes with 0.05 < propensity < 0.95 for the effect to be identifiable.",
    )  # fmt: skip
    seed = param.Integer(default=42, doc="Seed of the samples, the bootstrap and the base models.")

    @classmethod
    def load_dependencies(cls) -> None:
        """Import causalml (seconds) now, not inside a training thread; its tqdm notebook warning is silenced."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="IProgress not found")
            import causalml.inference.meta
            import causalml.metrics  # noqa: F401
            import sklearn.ensemble  # noqa: F401
            import threadpoolctl  # noqa: F401

    # -- applicability -------------------------------------------------------------------------------------------
    @classmethod
    def applicability(cls, log: LabelledLog) -> str | None:
        reason = super().applicability(log)
        if reason is not None:
            return reason
        treated, untreated = _group_counts(log, eligible_ends(log.events))
        if min(treated, untreated) < MIN_CASES_PER_GROUP:
            return (
                f"{cls.title} needs at least {MIN_CASES_PER_GROUP} treated and {MIN_CASES_PER_GROUP} untreated cases "
                f"with events before the treatment and the outcome; the training cases have {treated} treated and "
                f"{untreated} untreated"
            )
        return None

    # -- learning ------------------------------------------------------------------------------------------------
    def _thin(self, events: pd.DataFrame, ends: np.ndarray, cap: int) -> np.ndarray:
        """At most ``cap`` of ``ends``, spread over as many cases as possible (round-robin over cases, seeded)."""
        if len(ends) <= cap:
            return ends
        codes = pd.factorize(events[CASE_ID].to_numpy()[ends])[0]
        key = np.random.default_rng(self.seed).random(len(ends))
        by_case = np.lexsort((key, codes))
        starts = np.r_[0, np.cumsum(np.bincount(codes))[:-1]]
        rank = np.empty(len(ends), dtype=np.int64)
        rank[by_case] = np.arange(len(ends)) - starts[codes[by_case]]
        return np.sort(ends[np.lexsort((key, rank))[:cap]])

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> CausalTreatmentEffect:
        """Find the decision points, check identification, choose and fit the learner with its bootstrap.

        Within one process a fit is shared: a plugin fitted on an identical log with the same fit parameters (the
        resource allocation plugin) takes the learned models of the first one, waiting for it if it is running.
        """
        reason = self.applicability(log)
        if reason is not None:
            raise errors.PrCoreError(reason)
        fingerprint = _fingerprint(log)
        key = None if fingerprint is None else (fingerprint, *(getattr(self, n) for n in _FIT_PARAMETERS))
        self.fit_key_ = key
        with _exclusive(key):
            shared = _recall(_shared_fits, key)
            if shared is None:
                with warnings.catch_warnings(), one_native_thread():
                    warnings.simplefilter("ignore")
                    self._fit_models(log, progress)
                _remember(_shared_fits, key, {name: getattr(self, name) for name in _LEARNED})
            else:
                for name, value in shared.items():
                    setattr(self, name, value)
        progress(1.0, "Fitted" if shared is None else "Fitted (the same model was fitted for another plugin)")
        return self

    def _rows(self, log: LabelledLog, cap: int | None = None):
        """Decision prefixes of ``log`` (thinned to ``cap``): ``(ends, X, w, y, cases)``."""
        ends = _decision_ends(log.events, self.decision_activities_)
        if cap is not None:
            ends = self._thin(log.events, ends, cap)
        cases = log.events[CASE_ID].to_numpy()[ends]
        w = log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy(dtype=int)
        y = log.labels[OUTCOME].reindex(cases).fillna(0).to_numpy(dtype=int)
        return ends, self.features_.transform(log.events, ends), w, y, cases

    def _fit_models(self, log: LabelledLog, progress: Progress) -> None:
        from sklearn.model_selection import GroupKFold

        progress(0.05, "Finding the decision points")
        events = log.events
        self.treatment_definition_ = log.treatment_definition
        rates = decision_rates(events)
        self.decision_activities_ = _chosen_activities(rates, self.min_decision_rate)
        self.decision_rates_ = [{"activity": str(a), "prefixes": int(r.prefixes), "rate": round(float(r.rate), 4)}
                                for a, r in rates.head(8).iterrows()]  # fmt: skip
        self.treatment_activities_ = _marking_activities(events, _flag(events, TREATMENT_OBSERVED))
        self.outcome_activities_ = _marking_activities(events, _flag(events, OUTCOME_OBSERVED))
        self.features_ = CaseFeatures(self.history).fit(events, log.attributes)
        self.estimator_ = None
        self.learner_, self.learner_selection_ = None, {}
        ends, X, w, y, cases = self._rows(log, self.max_training_prefixes)
        self.n_training_prefixes_ = len(ends)
        self.n_training_cases_ = int(pd.unique(cases).size)
        identification: dict[str, Any] = {
            "decision_activities": sorted(self.decision_activities_),
            "decision_prefixes": len(ends),
            "decision_cases": self.n_training_cases_,
            "treated_cases": int(pd.Series(w).groupby(cases).first().sum()) if len(ends) else 0,
        }
        self.identification_ = identification
        reasons = []
        by_case = pd.DataFrame({"case": cases, "w": w, "y": y}).groupby("case").first()
        treated, untreated = int(by_case.w.sum()), int((1 - by_case.w).sum())
        if min(treated, untreated) < MIN_CASES_PER_GROUP:
            identification.update(identifiable=False, reasons=[
                f"too few cases at the decision points: {treated} treated and {untreated} untreated "
                f"(at least {MIN_CASES_PER_GROUP} of each are needed)"])  # fmt: skip
            return
        # 1. necessary step: the outcome (almost) never without the treatment
        untreated_rate = float(by_case.y[by_case.w == 0].mean())
        treated_rate = float(by_case.y[by_case.w == 1].mean())
        identification["outcome_rate_treated"] = round(treated_rate, 4)
        identification["outcome_rate_untreated"] = round(untreated_rate, 4)
        if untreated_rate < NECESSARY_STEP_RATE and treated_rate > 10 * NECESSARY_STEP_RATE:
            reasons.append(
                f"the desired outcome (almost) never happens without the treatment ({untreated_rate:.1%} of "
                f"{untreated:,} untreated cases at the decision points, {treated_rate:.1%} of {treated:,} treated): "
                "the treatment is a step on the way to the outcome, so treated cases are the ones that progressed and "
                "its effect cannot be told apart from progress"
            )
        # 2. overlap, from a cross-fitted propensity
        progress(0.15, f"Checking overlap on {len(ends):,} decision prefixes of {self.n_training_cases_:,} cases")
        e_oof = np.zeros(len(ends))
        groups = pd.factorize(cases)[0]
        for fitting, scoring in GroupKFold(n_splits=3).split(X, w, groups):
            e_oof[scoring] = _Classifier(self.n_estimators, self.seed).fit(X[fitting], w[fitting]) \
                .predict_proba(X[scoring])[:, 1]  # fmt: skip
        inside = (e_oof > OVERLAP) & (e_oof < 1 - OVERLAP)
        identification["overlap_share"] = round(float(inside.mean()), 4)
        if inside.mean() < self.min_overlap_share:
            reasons.append(
                f"poor overlap: only {inside.mean():.0%} of the decision points have a propensity between "
                f"{OVERLAP:g} and {1 - OVERLAP:g} (at least {self.min_overlap_share:.0%} needed); whether a case is "
                "treated is (almost) determined by what the prefix shows, so there are no comparable untreated (or "
                "treated) cases"
            )
        identification["balance"] = self._balance(X, w, e_oof)
        propensity = _Classifier(self.n_estimators, self.seed).fit(X, w)
        e_fit = np.clip(e_oof, _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
        if reasons:
            identification.update(identifiable=False, reasons=reasons, placebo=None)
            self.estimator_ = _Estimator(propensity.compiled(), ([], "T"), [])
            return
        # 3. learner choice on the latest training cases
        learner = self.learner
        if learner == "auto":
            progress(0.3, "Choosing the learner on the latest training cases")
            learner = self._choose_learner(log) or "T"
        self.learner_ = learner
        # 4. placebo: the treatment permuted across cases
        progress(0.5, "Placebo check: the treatment permuted across cases")
        identification["placebo"] = placebo = self._placebo(X, w, y, cases, e_fit, learner)
        if not placebo["passed"]:
            reasons.append(
                f"the placebo check failed: with the treatment permuted at random the {learner}-learner still "
                f"estimates a mean effect of {placebo['effect']:+.3f} (standard error {placebo['standard_error']:.3f})"
            )
            identification.update(identifiable=False, reasons=reasons)
            self.estimator_ = _Estimator(propensity.compiled(), ([], "T"), [])
            return
        identification.update(identifiable=True, reasons=[])
        # 5. the cluster bootstrap: its mean is the (bagged) point estimate, its spread the interval
        progress(0.6, f"Fitting the {learner}-learner {self.n_bootstrap} times on bootstrap samples of the cases")
        rng = np.random.default_rng(self.seed)
        unique = np.unique(groups)
        rows_of = pd.Series(np.arange(len(groups))).groupby(groups).apply(np.asarray)
        replicates = []
        for b in range(self.n_bootstrap):
            drawn = rng.choice(unique, size=len(unique), replace=True)
            rows = np.concatenate([rows_of[g] for g in drawn])
            if len(np.unique(w[rows])) < 2:
                continue
            replicates.append(_fit_learner(learner, X[rows], w[rows], y[rows], e_fit[rows], self.n_estimators,
                                           self.seed + 1 + b))  # fmt: skip
            progress(0.6 + 0.35 * (b + 1) / self.n_bootstrap, f"Bootstrap refit {b + 1} of {self.n_bootstrap}")
        self.estimator_ = _Estimator(propensity.compiled(), replicates[0], replicates)

    def _balance(self, X: np.ndarray, w: np.ndarray, e: np.ndarray) -> dict[str, Any]:
        """SMD of the most imbalanced features, before and after inverse propensity weighting."""
        e = np.clip(e, OVERLAP, 1 - OVERLAP)
        weights = np.where(w == 1, 1 / e, 1 / (1 - e))
        values = np.nan_to_num(X, nan=0.0)

        def smd(weight):
            m1 = np.average(values[w == 1], axis=0, weights=weight[w == 1])
            m0 = np.average(values[w == 0], axis=0, weights=weight[w == 0])
            pooled = np.sqrt((values[w == 1].var(axis=0) + values[w == 0].var(axis=0)) / 2)
            return np.where(pooled > 1e-9, (m1 - m0) / np.where(pooled > 1e-9, pooled, 1.0), 0.0)

        before, after = smd(np.ones(len(w))), smd(weights)
        top = np.argsort(-np.abs(before))[:BALANCE_FEATURES]
        rows = [{"feature": self.features_.names_[i], "before": round(float(before[i]), 3),
                 "after": round(float(after[i]), 3)} for i in top if abs(before[i]) > 0]  # fmt: skip
        return {"features": rows, "max_before": round(float(np.abs(before).max()), 3) if len(before) else 0.0,
                "max_after": round(float(np.abs(after).max()), 3) if len(after) else 0.0}  # fmt: skip

    def _placebo(self, X, w, y, cases, e, learner: str) -> dict[str, Any]:
        """The learner refitted with the treatment permuted across cases: its mean effect must be about 0.

        Of ``PLACEBO_DRAWS`` permutations, the one whose raw difference in outcome rates between the placebo groups
        is smallest is used: one random permutation leaves a chance difference of up to two or three standard errors
        in the data (then a faithful learner reports it, and the check fails for no fault of the learner, about once
        in fifty logs), while the check is meant to show what the learner makes of a treatment that is pure noise.
        """
        codes = pd.factorize(cases)[0]
        per_case = pd.Series(w).groupby(codes).first().to_numpy()
        y_case = pd.Series(y).groupby(codes).first().to_numpy()
        rng = np.random.default_rng(self.seed + 1000)
        draws = [rng.permutation(per_case) for _ in range(PLACEBO_DRAWS)]
        gaps = [abs(y_case[d == 1].mean() - y_case[d == 0].mean()) if 0 < d.sum() < len(d) else np.inf for d in draws]
        chosen = draws[int(np.argmin(gaps))]
        raw_difference = float(y_case[chosen == 1].mean() - y_case[chosen == 0].mean()) if np.isfinite(min(gaps)) \
            else 0.0  # fmt: skip
        permuted = chosen[codes]
        units, kind = _fit_learner(learner, X, permuted, y, np.full(len(w), permuted.mean()), self.n_estimators,
                                   self.seed)  # fmt: skip
        p1, p0, _, _ = _Estimator(0.0, (units, kind), []).estimate(X)
        effect = float((p1 - p0).mean())
        n1 = max(int(per_case.sum()), 1)
        n0 = max(int(len(per_case) - per_case.sum()), 1)
        rate = float(y_case.mean())
        se = float(np.sqrt(max(rate * (1 - rate), 1e-6) * (1 / n1 + 1 / n0)))
        passed = bool(abs(effect) <= PLACEBO_Z * se)
        return {"effect": round(effect, 4), "standard_error": round(se, 4), "passed": passed,
                "raw_difference": round(raw_difference, 4)}  # fmt: skip

    def _choose_learner(self, log: LabelledLog) -> str | None:
        """The candidate whose advice has the best doubly robust policy value on the latest training cases."""
        split = log.split_by_start(VALIDATION_SHARE, min_cases=50)
        if split is None:
            return None
        earlier, later = split
        _, X, w, y, cases = self._rows(earlier, self.max_training_prefixes)
        later_ends = self._last_decision_points(later)
        if len(np.unique(w)) < 2 or len(later_ends) < 2 * MIN_CASES_FOR_QINI:
            return None
        Xv = self.features_.transform(later.events, later_ends)
        cases_v = later.events[CASE_ID].to_numpy()[later_ends]
        wv = later.labels[TREATMENT].reindex(cases_v).fillna(0).to_numpy(dtype=float)
        yv = later.labels[OUTCOME].reindex(cases_v).fillna(0).to_numpy(dtype=float)
        if len(np.unique(wv)) < 2:
            return None
        propensity = _Classifier(self.n_estimators, self.seed).fit(X, w)
        e = np.clip(propensity.predict_proba(X)[:, 1], _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
        ev = np.clip(propensity.predict_proba(Xv)[:, 1], _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
        # common nuisance for scoring every candidate: the T-learner's outcome models
        nuisance = _Estimator(propensity.compiled(), _fit_learner("T", X, w, y, e, self.n_estimators, self.seed), [])
        p1n, p0n, _, _ = nuisance.estimate(Xv)
        g1, g0 = _dr_scores(yv, wv, p1n, p0n, ev)
        # every candidate's advice as it would be given: bagged over a few bootstrap refits, recommended where the
        # lower bound of its interval exceeds the threshold (a learner with wide intervals recommends little)
        from scipy import stats

        rng = np.random.default_rng(self.seed + 2000)
        codes = pd.factorize(cases)[0]
        rows_of = pd.Series(np.arange(len(codes))).groupby(codes).apply(np.asarray)
        samples = []
        for _ in range(10 * SELECTION_BOOTSTRAP):
            rows = np.concatenate([rows_of[g] for g in rng.choice(len(rows_of), size=len(rows_of), replace=True)])
            if len(np.unique(w[rows])) == 2:
                samples.append(rows)
            if len(samples) == SELECTION_BOOTSTRAP:
                break
        else:
            return None
        z = float(stats.t.ppf(0.5 + self.interval_level / 2, SELECTION_BOOTSTRAP - 1))
        scores = {}
        for kind in CANDIDATES:
            fits = [_fit_learner(kind, X[r], w[r], y[r], e[r], self.n_estimators, self.seed + 1 + b)
                    for b, r in enumerate(samples)]  # fmt: skip
            p1, p0, _, taus = _Estimator(propensity.compiled(), fits[0], fits).estimate(Xv)
            low = (p1 - p0) - z * taus.std(axis=1, ddof=1)
            scores[kind] = np.where(low > self.threshold, g1, g0)
        self.learner_selection_ = {k: round(float(v.mean()), 4) for k, v in scores.items()}
        # a later candidate replaces the preferred one only if its advice is better by more than SWITCH_MARGIN
        # standard errors of the paired difference: a validation slice is small, and with four challengers a margin
        # of one standard error would switch, by chance alone, in nearly half of the logs
        chosen = CANDIDATES[0]
        for kind in CANDIDATES[1:]:
            difference = scores[kind] - scores[chosen]
            if difference.mean() > SWITCH_MARGIN * difference.std(ddof=1) / np.sqrt(len(difference)):
                chosen = kind
        return chosen

    # -- estimating ----------------------------------------------------------------------------------------------
    def _z(self) -> float:
        """Student's t quantile for the interval (cached: scipy takes half a millisecond per call)."""
        replicates = len(self.estimator_.spans) - 1 if self.estimator_ is not None else 0
        key = (self.interval_level, replicates)
        cached = self.__dict__.get("_z_cache")
        if cached is None or cached[0] != key:
            from scipy import stats

            cached = (key, float(stats.t.ppf(0.5 + self.interval_level / 2, max(replicates - 1, 1))))
            self.__dict__["_z_cache"] = cached
        return cached[1]

    def _states(self, batch: PrefixBatch, starts: np.ndarray | None = None,
                activities: pd.Series | None = None) -> np.ndarray:  # fmt: skip
        """Per prefix: 0 decision point, 1 treatment applied, 2 outcome known, 3 not possible here."""
        events, ends = batch.events, np.asarray(batch.ends, dtype=np.int64)
        starts = case_starts(np.asarray(column_values(events, CASE_ID))) if starts is None else starts
        activity = (column_values(events, ACTIVITY) if activities is None else activities).tolist()
        treated = _flag(events, TREATMENT_OBSERVED)
        if treated is None:
            treated = _seen_by_activity(activity, starts, self.treatment_activities_)
        known = _flag(events, OUTCOME_OBSERVED)
        if known is None:
            known = _seen_by_activity(activity, starts, self.outcome_activities_)
        possible = np.fromiter((str(activity[i]) in self.decision_activities_ for i in ends.tolist()), dtype=bool,
                               count=len(ends))  # fmt: skip
        return np.select([treated[ends], known[ends], ~possible], [1, 2, 3], 0)

    def _estimate_batch(self, batch: PrefixBatch) -> dict[str, np.ndarray]:
        """States and estimates of every prefix, once per batch and fit (resource allocation shares them)."""
        fit_key = getattr(self, "fit_key_", None)
        memo_key = None if fit_key is None else ("causal-estimates", fit_key)
        if memo_key in batch.memo:
            return batch.memo[memo_key]
        starts = case_starts(np.asarray(column_values(batch.events, CASE_ID)))
        activities = column_values(batch.events, ACTIVITY)
        states = self._states(batch, starts, activities)
        n = len(batch)
        result = {"state": states, "p1": np.full(n, np.nan), "p0": np.full(n, np.nan), "e": np.full(n, np.nan),
                  "sd": np.full(n, np.nan)}  # fmt: skip
        rows = np.flatnonzero(states == 0)
        if len(rows) and self.estimator_ is not None:
            X = self.features_.transform(batch.events, np.asarray(batch.ends)[rows], starts, activities)
            if self.identification_.get("identifiable"):
                p1, p0, e, taus = self.estimator_.estimate(X)
                result["p1"][rows], result["p0"][rows], result["e"][rows] = p1, p0, e
                result["sd"][rows] = taus.std(axis=1, ddof=1) if taus.shape[1] > 1 else 0.0
        if memo_key is not None:
            batch.memo[memo_key] = result
        return result

    def _effects(self, batch: PrefixBatch) -> list[dict[str, Any]]:
        """Per prefix: the effect with its interval and advice, or a null output with the reason."""
        estimates = self._estimate_batch(batch)
        identifiable = bool(self.identification_.get("identifiable"))
        why_not = "; ".join(self.identification_.get("reasons") or [])
        z = self._z()
        results = []
        for i, state in enumerate(estimates["state"].tolist()):
            if state == 1:
                results.append(self._null(TREATMENT_APPLIED, ADVICE_TREATED))
            elif state == 2:
                results.append(self._null(OUTCOME_KNOWN, ADVICE_OUTCOME))
            elif state == 3:
                results.append(self._null(NOT_POSSIBLE, ADVICE_NOT_POSSIBLE))
            elif not identifiable:
                results.append(self._null(f"The effect of the treatment is not identifiable from the training "
                                          f"cases: {why_not}", ADVICE_NOT_IDENTIFIABLE))  # fmt: skip
            else:
                results.append(self._effect(estimates["p1"][i], estimates["p0"][i], estimates["e"][i],
                                            estimates["sd"][i], z))  # fmt: skip
        return results

    @staticmethod
    def _null(reason: str, advice: str) -> dict[str, Any]:
        return {**null_output(reason), "reason": reason, "recommend_treatment": False, "advice": advice}

    def _effect(self, p1: float, p0: float, e: float, sd: float, z: float) -> dict[str, Any]:
        if not OVERLAP < e < 1 - OVERLAP:
            how = "always" if e >= 1 - OVERLAP else "never"
            return self._null(
                f"The effect is not identifiable for this case: comparable training cases were almost {how} treated "
                f"(propensity {e:.3f})", ADVICE_NOT_IDENTIFIABLE)  # fmt: skip
        treated, untreated = round(float(p1), 4), round(float(p0), 4)
        cate = round(treated - untreated, 4)
        low, high = round(cate - z * float(sd), 4), round(cate + z * float(sd), 4)
        level = f"{self.interval_level:.0%} interval {low:+.2f} to {high:+.2f}"
        if low > self.threshold:
            advice, reason = ADVICE_TREAT, f"Treat: the effect is above {self.threshold:+.2f} ({level})"
        elif high <= self.threshold:
            advice, reason = ADVICE_NO, f"Do not treat: the effect is not above {self.threshold:+.2f} ({level})"
        else:
            advice, reason = ADVICE_UNCERTAIN, (f"Not recommended: the effect may not be above {self.threshold:+.2f} "
                                                f"({level})")  # fmt: skip
        recommend = advice == ADVICE_TREAT
        output = {"proba_if_treated": treated, "proba_if_untreated": untreated, "cate": cate, "cate_low": low,
                  "cate_high": high, "recommend_treatment": recommend, "reason": reason,
                  "treatment": self.treatment_definition_}  # fmt: skip
        return {"output": output, "recommend_treatment": recommend, "reason": reason, "advice": advice,
                "propensity": round(float(e), 4)}  # fmt: skip

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        if not len(batch):
            return []
        if not hasattr(self, "estimator_"):
            return [null_output(NOT_TRAINED) for _ in range(len(batch))]
        return self._effects(batch)

    # -- evaluating ----------------------------------------------------------------------------------------------
    def _last_decision_points(self, log: LabelledLog) -> np.ndarray:
        """Each case's last decision prefix (the one closest to the decision)."""
        ends = _decision_ends(log.events, self.decision_activities_)
        if not len(ends):
            return ends
        cases = log.events[CASE_ID].to_numpy()[ends]
        return ends[np.r_[cases[1:] != cases[:-1], True]]

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """Held-out metrics at each case's last decision point (one per case), with the training diagnostics.

        ``policy_value`` is the doubly robust outcome rate if the advice is followed, with a 95 % interval, beside
        treat-all and treat-none (``baselines``) and the paired differences (``policy_gain_vs_*``); ``qini``/``auuc``
        and ``qini_curve`` rank the cases by the estimated CATE. The estimates are shared with the resource
        allocation plugin when both evaluate the same fit on the same cases.
        """
        fit_key, fingerprint = getattr(self, "fit_key_", None), _fingerprint(log)
        key = None if fit_key is None or fingerprint is None else (*fit_key, self.threshold, self.interval_level,
                                                                   fingerprint)  # fmt: skip
        with _exclusive(key):
            metrics = _recall(_shared_metrics, key)
            if metrics is None:
                metrics = self._evaluate(log, progress)
                _remember(_shared_metrics, key, metrics)
        return copy.deepcopy(metrics)

    def _evaluate(self, log: LabelledLog, progress: Progress) -> dict[str, Any]:
        identification = dict(self.identification_)
        metrics: dict[str, Any] = {
            "identifiable": bool(identification.get("identifiable")),
            "learner": self.learner_,
            "learner_selection": self.learner_selection_,
            "identification": identification,
            "decision_rates": self.decision_rates_,
        }
        ends = self._last_decision_points(log)
        metrics["support"] = len(ends)
        if not len(ends):
            return {**metrics, "detail": "No held-out case reaches a decision point", "by_prefix_length": []}
        progress(0.2, f"Estimating effects at {len(ends):,} held-out decision points")
        batch = PrefixBatch(log.events, ends, log.attributes)
        predictions = self._effects(batch)
        cases = batch.case_ids
        y = log.labels[OUTCOME].reindex(cases).fillna(0).to_numpy(dtype=float)
        w = log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy(dtype=float)
        metrics["treated_cases"] = int(w.sum())
        metrics["observed_outcome_rate_treated"] = round(float(y[w == 1].mean()), 4) if w.any() else None
        metrics["observed_outcome_rate_untreated"] = round(float(y[w == 0].mean()), 4) if (1 - w).any() else None
        recommend = np.array([bool(p.get("recommend_treatment")) for p in predictions])
        metrics["recommend_share"] = round(float(recommend.mean()), 4)
        if not metrics["identifiable"]:
            reasons = "; ".join(identification.get("reasons") or [])
            metrics["detail"] = f"The effect is not identifiable: {reasons}. Nothing is recommended."
            metrics["baselines"] = {
                name: {"title": title, "detail": "not estimated: the effect is not identifiable"}
                for name, title in (("treat-all", "Treat all"), ("treat-none", "Treat none"))
            }
            metrics["by_prefix_length"] = []
            return metrics
        estimates = self._estimate_batch(batch)
        answered = np.array([p["output"] is not None for p in predictions])
        p1 = np.where(answered, estimates["p1"], np.nan)
        p0 = np.where(answered, estimates["p0"], np.nan)
        cate = np.array([p["output"]["cate"] if p["output"] else np.nan for p in predictions])
        metrics["answered_share"] = round(float(answered.mean()), 4)
        metrics["mean_cate"] = round(float(np.nanmean(cate)), 4) if answered.any() else None
        inside = answered
        progress(0.5, "Policy value, doubly robust, against treat-all and treat-none")
        g1, g0 = _dr_scores(y[inside], w[inside], p1[inside], p0[inside], estimates["e"][inside])
        follow = np.where(recommend[inside], g1, g0)
        metrics["policy_support"] = int(inside.sum())
        policy = _mean_interval(follow)
        metrics["policy_value"], metrics["policy_value_low"], metrics["policy_value_high"] = (
            policy["value"], policy["low"], policy["high"])  # fmt: skip
        for name, title, other in (("treat-all", "Treat all", g1), ("treat-none", "Treat none", g0)):
            value = _mean_interval(other)
            gain = _mean_interval(follow - other)
            metrics.setdefault("baselines", {})[name] = {
                "title": title, "policy_value": value["value"], "policy_value_low": value["low"],
                "policy_value_high": value["high"]}  # fmt: skip
            metrics[f"policy_gain_vs_{name.replace('-', '_')}"] = gain
        progress(0.8, "Qini and AUUC")
        qini, auuc, curve = _qini_auuc(y[inside], w[inside], cate[inside])
        metrics.update(qini=qini, auuc=auuc, qini_curve=curve)

        def bucket(y, w, cate):
            return {"qini": _qini_auuc(y, w, cate)[0], "treated": int(w.sum()),
                    "mean_cate": round(float(cate.mean()), 4) if len(cate) else None}  # fmt: skip

        metrics["by_prefix_length"] = by_prefix_length(batch.lengths[inside], bucket, y=y[inside], w=w[inside],
                                                       cate=cate[inside])  # fmt: skip
        return metrics


__all__ = [
    "ADVICE_NOT_IDENTIFIABLE",
    "ADVICE_NOT_POSSIBLE",
    "CaseFeatures",
    "CausalTreatmentEffect",
    "decision_rates",
    "eligible_ends",
]
