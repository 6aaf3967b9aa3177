"""Treatment effect by meta-learner uplift modelling (PrCore's CausalLift plugin, reference 8.8, redone).

For a running case the plugin estimates the probability of the desired outcome if the treatment is applied later
(``proba_if_treated``) and if it is not (``proba_if_untreated``), and their difference, the conditional average
treatment effect (``cate``), with a causalml meta-learner over prefix features of the shared
:class:`~prcore_core.encoding.PrefixEncoder`.

What changed from PrCore
------------------------
* The model is fitted **once**, at training. PrCore refitted CausalLift (with grid searches) on every prediction,
  seconds per event; here a prediction is a feature row and two cheap model calls.
* One model serves every prefix length, and unseen activities and values are encoded explicitly.
* The meta-learner is a parameter (``learner``: T, S, X or R) and so is its base model (``base_learner``); every
  random part is seeded.
* Held-out metrics exist: Qini and AUUC on cases the model never saw (PrCore reported none).

Training rows and their causal reading
--------------------------------------
A training row is a prefix that ends **before** the treatment is visible (``TREATMENT_OBSERVED`` false at its last
event), before the desired outcome is visible (``OUTCOME_OBSERVED`` false) and before the case's last event (a
complete case is no longer running). Its treatment ``W`` is the case's ``TREATMENT`` label ("will this case be
treated later") and its outcome ``Y`` the case's ``OUTCOME`` label. Caveats, which the numbers should be read with:

* "Treated later" is a valid intervention label only for prefixes before the treatment; prefixes at or after it
  would let the model read the treatment from the features. When the treatment comes from a case-level column
  (no treatment definition, hence no ``TREATMENT_OBSERVED`` flag), every prefix is used and this guard is lost.
* The estimate is causal only under no unmeasured confounding given the prefix features and under overlap. A
  process often makes the treatment impossible after some events (a declined application is never sent back):
  such prefixes are never treated in training, so the treated-outcome model extrapolates there. The plugin
  therefore also fits a propensity model ``e(x) = P(W = 1 | prefix)`` and flags prefixes with
  ``e(x) < min_propensity`` (``overlap: false``); they are never recommended for treatment.
* ``W`` is decided *after* the prefix, so early prefixes mix "will reach the treatment point" with "will be
  treated there" (cases that end early are never treated); the learners adjust for what the prefix shows, not for
  what happens between the prefix and the treatment.
* The prefixes of one case are correlated rows, not independent observations. The training sample
  (``max_training_prefixes``) is spread over as many cases as possible, a few random prefixes each, rather than
  all prefixes of fewer cases (on BPIC 2012 this alone raised the held-out Qini from about 0.02 to 0.13), and the
  held-out metrics count every case once (see :meth:`evaluate`).
* When the desired outcome can only happen after the treatment (BPIC 2012: no application is approved without
  ``O_SENT_BACK``), ``proba_if_untreated`` is 0 and the CATE is simply the probability of the outcome if treated:
  the "treatment" is then a necessary step rather than an optional intervention.

Output (reference 8.8, 4 decimals)
----------------------------------
``{"output": {"proba_if_treated": p1, "proba_if_untreated": p0, "cate": p1 - p0, "treatment": <definition>},
"recommend_treatment": bool, "propensity": e, "overlap": bool}``. ``cate`` is always the difference of the two
rounded probabilities; for the X and R learners, whose effect model is not a difference of outcome models, the two
probabilities are placed around the estimated outcome probability ``m(x)`` as ``p1 = m + (1 - e) * cate`` and
``p0 = m - e * cate``. ``recommend_treatment`` is ``cate > 0`` within overlap. Prefixes whose treatment is already
visible are still answered (streamed prefixes need not carry the observed flags), with the caveat above.

causalml is imported lazily (``import causalml.inference.meta`` takes seconds): in :meth:`load_dependencies`, which
the core calls before plugins train in parallel, else in :meth:`fit` or when a saved model is unpickled. Importing
this module stays fast.
"""

from __future__ import annotations

import contextlib
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
    CASE_ID,
    OUTCOME,
    OUTCOME_OBSERVED,
    TREATMENT,
    TREATMENT_OBSERVED,
    LabelledLog,
    PrefixBatch,
)
from prcore_core.encoding import ENCODINGS, PrefixEncoder, blocks_for
from prcore_core.metrics import by_prefix_length
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output, one_native_thread

with contextlib.suppress(ImportError):  # polars is an optional dependency of causalml; see the note below
    import polars  # noqa: F401

# Note: causalml imports polars. scikit-learn tells data frames apart by looking polars up in ``sys.modules``
# (``sklearn.utils._dataframe``) without importing it, so a first import of polars in one thread makes a
# scikit-learn call in another thread fail ("partially initialized module 'polars' has no attribute 'DataFrame'").
# :meth:`CausalTreatmentEffect.load_dependencies` imports causalml before parallel training, but a saved model can
# also be unpickled (importing causalml) while other plugins predict; importing polars here, when the registry
# loads this module (0.2 s), closes that window too. causalml itself stays lazy.

LEARNERS = ("T", "S", "X", "R")
BASE_LEARNERS = ("hist_gradient_boosting", "random_forest", "logistic_regression")
#: Fewest treated (and untreated) cases with a prefix before the treatment that make the plugin applicable.
MIN_CASES_PER_GROUP = 10
#: Fewest treated and untreated cases for a Qini figure of one prefix length.
MIN_CASES_FOR_QINI = 10
_PROPENSITY_CLIP = 0.01
#: Prefixes encoded at once (the shared encoder converts the whole time column per call, so fewer calls are faster).
_PREDICT_CHUNK = 65_536


# -- training rows -------------------------------------------------------------------------------------------------
def eligible_ends(events: pd.DataFrame) -> np.ndarray:
    """Rows ending a prefix before the treatment and the outcome are visible, and before the case's last event."""
    case = events[CASE_ID].to_numpy()
    if not len(case):
        return np.array([], dtype=int)
    keep = np.r_[case[1:] == case[:-1], False]
    for flag in (TREATMENT_OBSERVED, OUTCOME_OBSERVED):
        if flag in events.columns:
            keep &= ~events[flag].fillna(False).to_numpy(dtype=bool)
    return np.flatnonzero(keep)


def _group_counts(log: LabelledLog, ends: np.ndarray) -> tuple[int, int]:
    """Treated and untreated cases among the cases owning ``ends``."""
    cases = pd.unique(log.events[CASE_ID].to_numpy()[ends])
    treated = log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy()
    return int((treated == 1).sum()), int((treated == 0).sum())


# -- models --------------------------------------------------------------------------------------------------------
class _Classifier(ClassifierMixin, BaseEstimator):
    """A binary classifier that tolerates one-class training data (then it predicts that class's rate).

    Meta-learners fit one model per treatment group; in real logs one group can have one outcome only (in BPIC 2012
    no untreated case is approved), which some scikit-learn classifiers refuse.
    """

    def __init__(self, model):
        self.model = model

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        self.constant_ = float(y.mean()) if len(np.unique(y)) < 2 and len(y) else None
        if self.constant_ is None:
            kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            self.model.fit(X, y, **kwargs)
        return self

    def predict_proba(self, X):
        constant = self.constant_
        positive = np.full(len(X), constant) if constant is not None else self.model.predict_proba(X)[:, 1]
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class _Regressor(RegressorMixin, BaseEstimator):
    """A regressor whose ``fit`` accepts ``sample_weight`` even as a pipeline (the R-learner weights its rows)."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y, sample_weight=None):
        kwargs = {}
        if sample_weight is not None:
            steps = getattr(self.model, "steps", None)
            kwargs = {f"{steps[-1][0]}__sample_weight" if steps else "sample_weight": sample_weight}
        self.model.fit(X, y, **kwargs)
        return self

    def predict(self, X):
        return self.model.predict(X)


def _base_model(kind: str, classifier: bool, n_estimators: int, seed: int):
    """A fresh scikit-learn base model (classifier for outcomes, regressor for effects)."""
    if kind == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        model = cls(max_iter=n_estimators, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
                    early_stopping=False, random_state=seed)  # fmt: skip
    elif kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if classifier else RandomForestRegressor
        model = cls(n_estimators=n_estimators, min_samples_leaf=20, max_features="sqrt", n_jobs=1, random_state=seed)
    elif kind == "logistic_regression":
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = LogisticRegression(C=0.1, max_iter=300) if classifier else Ridge(alpha=1.0)
        model = make_pipeline(StandardScaler(), estimator)
    else:  # guarded by the param Selector
        raise errors.InvalidParameterError(f"Unknown base learner {kind!r}")
    return _Classifier(model) if classifier else _Regressor(model)


def _meta_learner(learner: str, base: str, n_estimators: int, seed: int):
    """The causalml meta-learner (imported here, lazily: the import takes seconds)."""
    from causalml.inference.meta import BaseRClassifier, BaseSClassifier, BaseTClassifier, BaseXClassifier

    def classifier():
        return _base_model(base, True, n_estimators, seed)

    def regressor():
        return _base_model(base, False, n_estimators, seed)

    if learner == "T":
        return BaseTClassifier(learner=classifier())
    if learner == "S":
        return BaseSClassifier(learner=classifier())
    if learner == "X":
        return BaseXClassifier(outcome_learner=classifier(), effect_learner=regressor())
    return BaseRClassifier(outcome_learner=classifier(), effect_learner=regressor(), n_fold=3, random_state=seed)


class _Propensity:
    """``e(x) = P(W = 1 | prefix)``: an L2-regularised logistic model on standardised features.

    It is fitted by stochastic gradient descent (scikit-learn's ``SGDClassifier``, seeded), which needs no BLAS:
    BLAS threads of two training jobs competing for two cores made an exact logistic regression take seconds
    instead of a tenth of one. It is evaluated with plain numpy (a single-row scikit-learn call costs about a
    millisecond of input validation).
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, treatment) -> _Propensity:
        from sklearn.linear_model import SGDClassifier

        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        model = SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=20, tol=1e-4, random_state=self.seed)
        model.fit((X - self.mean_) / self.scale_, treatment)
        self.coef_ = model.coef_[0].astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict(self, X) -> np.ndarray:
        standardised = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        z = (standardised * self.coef_).sum(axis=1) + self.intercept_  # no BLAS call, see above
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))




def _qini_auuc(y, w, score, with_auuc: bool = True) -> tuple[float | None, float | None]:
    """causalml's normalised Qini coefficient and AUUC of ``score``; ``None`` when they are undefined.

    Both curves are divided by the absolute total gain (the incremental outcomes of the whole group), so a group
    with both treated and untreated cases and a non-zero overall outcome difference is needed.
    """
    y, w, score = (np.asarray(a, dtype=float) for a in (y, w, score))
    treated = int(w.sum())
    if treated < MIN_CASES_FOR_QINI or len(w) - treated < MIN_CASES_FOR_QINI:
        return None, None
    gain = y[w == 1].mean() - y[w == 0].mean()
    if not np.isfinite(gain) or abs(gain) < 1e-12:
        return None, None
    from causalml.metrics import auuc_score, qini_score

    # the score column must not be called "tau": causalml reads a column of that name as the true effect
    frame = pd.DataFrame({"y": y, "w": w, "model": score})
    qini = float(qini_score(frame, outcome_col="y", treatment_col="w")["model"])
    auuc = float(auuc_score(frame, outcome_col="y", treatment_col="w")["model"]) if with_auuc else np.nan
    return (round(qini, 4) if np.isfinite(qini) else None), (round(auuc, 4) if np.isfinite(auuc) else None)


# -- sharing one fit between plugins -------------------------------------------------------------------------------
#: Learned attributes that depend only on the training log and the fit parameters.
_LEARNED = ("encoder_", "propensity_", "model_", "treatment_definition_", "n_training_prefixes_", "n_training_cases_")
#: Parameters that change the fit (``min_propensity`` only changes how estimates are read).
_FIT_PARAMETERS = ("learner", "base_learner", "n_estimators", "encoding", "history", "max_training_prefixes", "seed")
_SHARED_SIZE = 4
_shared_fits: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_shared_estimates: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
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
            if not any(forgotten in other for other in (_shared_fits, _shared_estimates)):
                _shared_locks.pop(forgotten, None)


def _recall(cache: OrderedDict, key: tuple | None):
    if key is None:
        return None
    with _shared_guard:
        return cache.get(key)


class CausalTreatmentEffect(Plugin):
    """Estimates the probability of the desired outcome with and without the treatment, and their difference."""

    key = "causal-treatment-effect"
    aliases = ("plugin-causallift-treatment-effect",)
    title = "Causal treatment effect"
    description = (
        "This plugin estimates, for a running case, the probability of the desired outcome if the treatment is "
        "applied and if it is not, and their difference: the conditional average treatment effect (CATE). It fits a "
        "causalml meta-learner once, on prefixes that end before the treatment."
    )
    prescription_type = PrescriptionType.TREATMENT_EFFECT
    needs_outcome = True
    needs_treatment = True

    learner = param.Selector(
        default="T", objects=list(LEARNERS),
        doc="causalml meta-learner: T (two outcome models), S (one model with the treatment as a feature), X or R "
            "(both also use the propensity).",
    )  # fmt: skip
    base_learner = param.Selector(
        default="hist_gradient_boosting", objects=list(BASE_LEARNERS), doc="scikit-learn model inside the meta-learner."
    )
    n_estimators = param.Integer(default=60, bounds=(10, 500), doc="Boosting iterations or trees of the base learner.")
    encoding = param.Selector(default="COMBINED", objects=list(ENCODINGS), doc="How prefixes become features.")
    history = param.Integer(default=3, bounds=(1, 50), doc="Last activities encoded by SIMPLE_INDEX/COMBINED.")
    max_training_prefixes = param.Integer(
        default=20_000, bounds=(500, None), doc="Training prefixes kept (spread over as many cases as possible)."
    )
    min_propensity = param.Number(
        default=0.01, bounds=(0.0, 0.5),
        doc="Prefixes treated less often than this in comparable training prefixes are outside overlap: their effect "
            "is extrapolated and never recommended.",
    )  # fmt: skip
    seed = param.Integer(default=42, doc="Seed of the prefix sample and the base learners.")

    @classmethod
    def load_dependencies(cls) -> None:
        """Import causalml (seconds) and the scikit-learn models now, not inside a training thread.

        causalml pulls in tqdm, whose notebook check warns "IProgress not found" into whatever cell or log is
        current; that warning says nothing about this plugin and is silenced.
        """
        import warnings

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
    def _training_batch(self, log: LabelledLog) -> PrefixBatch:
        """Eligible prefixes, at most ``max_training_prefixes``, spread over as many cases as possible (seeded).

        Prefixes of one case are strongly correlated, so the cap thins every case out instead of dropping whole
        cases: each case's prefixes are put in a random order, and prefixes are taken round-robin (every case's
        first drawn prefix, in a random case order, then every case's second, ...) until the cap is reached.
        """
        ends = eligible_ends(log.events)
        if len(ends) <= self.max_training_prefixes:
            return PrefixBatch(log.events, ends, log.attributes)
        codes = pd.factorize(log.events[CASE_ID].to_numpy()[ends])[0]
        key = np.random.default_rng(self.seed).random(len(ends))
        by_case = np.lexsort((key, codes))
        starts = np.r_[0, np.cumsum(np.bincount(codes))[:-1]]
        rank = np.empty(len(ends), dtype=np.int64)
        rank[by_case] = np.arange(len(ends)) - starts[codes[by_case]]
        taken = np.lexsort((key, rank))[: self.max_training_prefixes]
        return PrefixBatch(log.events, np.sort(ends[taken]), log.attributes)

    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> CausalTreatmentEffect:
        """Fit the propensity model and the meta-learner on the eligible training prefixes.

        The resource allocation plugin fits exactly the same model on the same training cases. Within one process a
        fit is therefore shared: a plugin fitted on an identical log (same events, labels and treatment definition)
        with the same fit parameters takes the learned models of the first one, waiting for it if it is still
        running, instead of fitting them again (the last few fits are kept; models are read-only once fitted).
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
                self._fit_models(log, progress)
                _remember(_shared_fits, key, {name: getattr(self, name) for name in _LEARNED})
            else:
                for name, value in shared.items():
                    setattr(self, name, value)
        progress(1.0, "Fitted" if shared is None else "Fitted (the same model was fitted for another plugin)")
        return self

    def _fit_models(self, log: LabelledLog, progress: Progress) -> None:
        progress(0.05, "Selecting prefixes before the treatment")
        batch = self._training_batch(log)
        self.encoder_ = PrefixEncoder(blocks_for(self.encoding), history=self.history).fit(log.events, log.attributes)
        features = self.encoder_.transform(batch)
        cases = batch.case_ids
        treatment = log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy(dtype=int)
        outcome = log.labels[OUTCOME].reindex(cases).fillna(0).to_numpy(dtype=int)
        if len(np.unique(treatment)) < 2:
            raise errors.PrCoreError("The sampled training prefixes contain only one treatment group")
        self.treatment_definition_ = log.treatment_definition
        self.n_training_prefixes_ = len(batch)
        self.n_training_cases_ = int(pd.unique(cases).size)
        progress(0.2, f"Fitting the propensity model on {len(batch):,} prefixes of {self.n_training_cases_:,} cases")
        with warnings.catch_warnings(), one_native_thread():
            warnings.simplefilter("ignore")  # convergence and causalml's logging of metrics are noise here
            self.propensity_ = _Propensity(self.seed).fit(features, treatment)
            propensity = np.clip(self.propensity_.predict(features), _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
            progress(0.35, f"Fitting the {self.learner}-learner ({self.base_learner})")
            from joblib import parallel_config

            self.model_ = _meta_learner(self.learner, self.base_learner, self.n_estimators, self.seed)
            with parallel_config(backend="sequential"):  # the R-learner's cross-fitting asks for every core
                if self.learner in ("X", "R"):
                    self.model_.fit(features, treatment, outcome, p=propensity)
                else:
                    self.model_.fit(features, treatment, outcome)

    # -- estimating ----------------------------------------------------------------------------------------------
    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p1, p0, e)``: outcome probability if treated, if untreated, and the propensity, per row."""
        with warnings.catch_warnings(), one_native_thread():
            warnings.simplefilter("ignore")
            raw_e = self.propensity_.predict(features)
            e = np.clip(raw_e, _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)
            model = self.model_
            if self.learner in ("T", "S"):
                _, control, treated = model.predict(features, return_components=True, verbose=False)
                p0, p1 = next(iter(control.values())), next(iter(treated.values()))
            else:
                if self.learner == "X":
                    group = model.t_groups[0]
                    tau = model.predict(features, p=e, verbose=False)[:, 0]
                    mu0 = model.models_mu_c[group].predict_proba(features)[:, 1]
                    mu1 = model.models_mu_t[group].predict_proba(features)[:, 1]
                    mean = e * mu1 + (1 - e) * mu0
                else:
                    tau_matrix, mean, _ = model.predict(features, p=e, return_components=True)
                    tau = tau_matrix[:, 0]
                tau = np.clip(tau, -1.0, 1.0)
                p1, p0 = mean + (1 - e) * tau, mean - e * tau
        return np.clip(p1, 0.0, 1.0), np.clip(p0, 0.0, 1.0), raw_e

    def _estimate_batch(self, batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimates for every prefix, computed once per batch and fit (resource allocation shares the fit)."""
        fit_key = getattr(self, "fit_key_", None)
        memo_key = None if fit_key is None else ("causal-estimates", fit_key)
        if memo_key in batch.memo:
            return batch.memo[memo_key]
        parts = []
        for start in range(0, len(batch), _PREDICT_CHUNK):
            chunk = PrefixBatch(batch.events, batch.ends[start : start + _PREDICT_CHUNK], batch.attributes)
            parts.append(self._estimate(self.encoder_.transform(chunk)))
        estimates = tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        if memo_key is not None:
            batch.memo[memo_key] = estimates
        return estimates  # type: ignore[return-value]

    def _effects(self, batch: PrefixBatch) -> list[dict[str, Any]]:
        """Per prefix: the reference output plus recommendation, propensity and overlap."""
        p1, p0, e = self._estimate_batch(batch)
        results = []
        for treated, untreated, propensity in zip(p1.tolist(), p0.tolist(), e.tolist(), strict=True):
            treated, untreated = round(treated, 4), round(untreated, 4)
            cate = round(treated - untreated, 4)
            overlap = propensity >= self.min_propensity
            output = {"proba_if_treated": treated, "proba_if_untreated": untreated, "cate": cate}
            result = {
                "output": {**output, "treatment": self.treatment_definition_},
                "recommend_treatment": bool(cate > 0 and overlap),
                "propensity": round(propensity, 4),
                "overlap": bool(overlap),
            }
            if not overlap:
                result["detail"] = (
                    f"The treatment was (almost) never applied to comparable cases (propensity "
                    f"{propensity:.4f}), so this effect is extrapolated"
                )
            results.append(result)
        return results

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        if not len(batch):
            return []
        if not hasattr(self, "model_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        return self._effects(batch)

    # -- evaluating ----------------------------------------------------------------------------------------------
    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """Uplift metrics on held-out prefixes before the treatment and the outcome.

        ``qini`` (normalised Qini coefficient: area between the model's Qini curve and random targeting, in units of
        the group's total incremental outcome; 0 is random, higher is better) and ``auuc`` (normalised area under the
        cumulative gain curve; random is about 0.5) are computed **per case**: each held-out case is scored once by
        the mean CATE over its eligible prefixes, so long cases do not weigh more and correlated prefixes of one case
        are not counted as independent evidence. The mean is used rather than the last prefix before the treatment
        because the latter would place treated and untreated cases at systematically different process points.
        ``by_prefix_length`` gives the Qini of the prefixes of each length (one per case) where both groups have at
        least ``MIN_CASES_FOR_QINI`` cases. ``support`` is the number of held-out cases scored.
        """
        ends = eligible_ends(log.events)
        if not len(ends):
            return {"detail": "No held-out prefix ends before the treatment and the outcome", "support": 0}
        batch = PrefixBatch(log.events, ends, log.attributes)
        progress(0.1, f"Estimating effects for {len(batch):,} held-out prefixes")
        fit_key, fingerprint = getattr(self, "fit_key_", None), _fingerprint(log)
        key = None if fit_key is None or fingerprint is None else (*fit_key, fingerprint)
        with _exclusive(key):
            estimates = _recall(_shared_estimates, key)
            if estimates is None:
                estimates = self._estimate_batch(batch)
                _remember(_shared_estimates, key, estimates)
        p1, p0, e = estimates
        cate = p1 - p0
        cases = batch.case_ids
        rows = pd.DataFrame({
            "case": cases,
            "y": log.labels[OUTCOME].reindex(cases).fillna(0).to_numpy(dtype=float),
            "w": log.labels[TREATMENT].reindex(cases).fillna(0).to_numpy(dtype=float),
            "cate": cate,
        })  # fmt: skip
        per_case = rows.groupby("case", sort=False).agg(y=("y", "first"), w=("w", "first"), cate=("cate", "mean"))
        progress(0.6, f"Qini and AUUC over {len(per_case):,} cases")
        qini, auuc = _qini_auuc(per_case.y, per_case.w, per_case.cate)
        last = rows.groupby("case", sort=False).tail(1)
        qini_last, _ = _qini_auuc(last.y, last.w, last.cate, with_auuc=False)
        treated = per_case.w == 1
        observed = per_case.y[treated].mean() - per_case.y[~treated].mean() if treated.any() and (~treated).any() \
            else None  # fmt: skip

        def bucket(y, w, cate):
            qini = _qini_auuc(y, w, cate, with_auuc=False)[0]
            return {"qini": qini, "treated": int(w.sum()), "mean_cate": round(float(cate.mean()), 4)}

        progress(0.8, "Qini by prefix length")
        return {
            "qini": qini,
            "auuc": auuc,
            "qini_last_prefix": qini_last,
            "support": len(per_case),
            "prefixes": len(batch),
            "treated_cases": int(treated.sum()),
            "mean_cate": round(float(cate.mean()), 4),
            "observed_uplift": round(float(observed), 4) if observed is not None else None,
            "overlap_share": round(float((e >= self.min_propensity).mean()), 4),
            "recommend_share": round(float(((cate > 0) & (e >= self.min_propensity)).mean()), 4),
            "by_prefix_length": by_prefix_length(batch.lengths, bucket, y=rows.y, w=rows.w, cate=cate),
        }
