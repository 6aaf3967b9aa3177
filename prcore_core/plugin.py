"""The plugin contract: what a prescription plugin is and how the core drives it.

A plugin follows scikit-learn's estimator contract: ``__init__`` only stores its declared parameters (``param``
parameters, so the dashboard can build forms from them), ``fit`` learns from a labelled log and returns ``self``,
learned state lives in trailing-underscore attributes. The core asks a plugin class whether it is applicable to a
project, fits a fresh instance in an executor, evaluates it on held-out cases, saves it to a file, loads it again
after a restart and asks it for prescriptions on many prefixes at once.

Plugins are found through the entry-point group ``prcore.plugins`` (see :mod:`prcore_core.registry`); the built-ins
are registered the same way. :func:`prcore_core.conformance.check_plugin` checks a plugin against this contract.
"""

from __future__ import annotations

import math
import pickle
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import param

from prcore_core import errors
from prcore_core.context import PredictionContext
from prcore_core.dataset import LabelledLog, PrefixBatch

#: ``progress(fraction, sentence)``: reports how far a long step is, for people watching.
Progress = Callable[[float, str], None]


def no_progress(fraction: float, sentence: str) -> None:
    """A progress callback that ignores reports."""


class PrescriptionType(StrEnum):
    """What a plugin prescribes (seed "Check Project Status")."""

    NEXT_ACTIVITY = "NEXT_ACTIVITY"
    ALARM = "ALARM"
    TREATMENT_EFFECT = "TREATMENT_EFFECT"
    RESOURCE_ALLOCATION = "RESOURCE_ALLOCATION"
    REMAINING_TIME = "REMAINING_TIME"


class Plugin(param.Parameterized):
    """Base class of every prescription plugin.

    Subclasses set the class attributes below, declare their parameters as ``param`` parameters, and implement
    :meth:`fit` and :meth:`predict` (and usually :meth:`evaluate` and :meth:`applicability`).

    Attributes
    ----------
    key
        Stable identifier, used in ``parameters``/``additional_info`` and in prescriptions (e.g.
        ``"knn-next-activity"``).
    aliases
        Other keys accepted for the same plugin (PrCore's, e.g. ``"plugin-knn-next-activity"``).
    title, description
        What people read (``title`` is PrCore's plugin ``name``; ``name`` itself belongs to ``param``).
    prescription_type
        One of :class:`PrescriptionType` (any string is allowed for third-party types).
    needs_outcome, needs_treatment
        Whether the plugin needs the ``OUTCOME``/``TREATMENT`` labels with both classes present.
    """

    key: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    prescription_type: ClassVar[str] = ""
    needs_outcome: ClassVar[bool] = False
    needs_treatment: ClassVar[bool] = False

    # -- declaration ---------------------------------------------------------------------------------------------
    @classmethod
    def parameter_defaults(cls) -> dict[str, Any]:
        """The declared parameters with their defaults."""
        return {n: p.default for n, p in cls.param.objects("existing").items() if n != "name"}

    @classmethod
    def parameter_declarations(cls) -> dict[str, dict[str, Any]]:
        """Each declared parameter's type, default, bounds or choices and documentation (for API clients)."""
        declared = {}
        for name, parameter in cls.param.objects("existing").items():
            if name == "name":
                continue
            entry = {"type": type(parameter).__name__, "default": parameter.default, "doc": parameter.doc}
            if getattr(parameter, "bounds", None) is not None:
                entry["bounds"] = list(parameter.bounds)
            if getattr(parameter, "objects", None):
                entry["objects"] = list(parameter.objects)
            declared[name] = entry
        return declared

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any] | None = None) -> Plugin:
        """A fresh, unfitted instance; unknown or invalid parameters raise ``InvalidParameterError``."""
        parameters = dict(parameters or {})
        known = cls.parameter_defaults()
        unknown = sorted(set(parameters) - set(known))
        if unknown:
            raise errors.InvalidParameterError(
                f"Unknown parameter(s) {', '.join(unknown)} for plugin '{cls.key}'; "
                f"known: {', '.join(sorted(known)) or 'none'}"
            )
        for name, value in parameters.items():  # 10**400 or inf would fail (or mislead) only later, in training
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    finite = math.isfinite(float(value))
                except OverflowError:
                    finite = False
                if not finite:
                    raise errors.InvalidParameterError(
                        f"Invalid parameter for plugin '{cls.key}': {name} must be a finite number, "
                        f"got {errors.quoted(value)}"
                    )
        try:
            return cls(**parameters)
        except (ValueError, TypeError) as exc:
            raise errors.InvalidParameterError(f"Invalid parameter for plugin '{cls.key}': {exc}") from None

    @classmethod
    def load_dependencies(cls) -> None:
        """Import slow, lazily imported libraries (e.g. causalml) now.

        The core calls this once per plugin class, one class at a time, before plugins train in parallel: a first
        import running in one thread while another thread inspects ``sys.modules`` (as scikit-learn and narwhals do
        for polars) fails with "partially initialized module".
        """

    @classmethod
    def validate_additional_info(cls, additional_info: Mapping[str, Any]) -> None:
        """Reject unusable additional info at project creation (raise ``InvalidParameterError``)."""

    @classmethod
    def applicability(cls, log: LabelledLog) -> str | None:
        """Why this plugin cannot serve a project, or ``None`` if it can.

        The default checks the labels the plugin declares it needs; override to add more.
        """
        for needed, label, what in (
            (cls.needs_outcome, "OUTCOME", "an outcome"),
            (cls.needs_treatment, "TREATMENT", "a treatment"),
        ):
            if not needed:
                continue
            if not log.has_label(label):
                return f"{cls.title} needs {what} definition"
            if log.labels[label].nunique() < 2:
                return f"The {label} column must have two classes at least"
        return None

    # -- learning and predicting ---------------------------------------------------------------------------------
    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> Plugin:
        """Learn from the training cases; return ``self``."""
        raise NotImplementedError

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """Metrics measured on held-out cases (never training cases).

        Returns a dict of overall figures (e.g. ``accuracy``) plus ``by_prefix_length``: a list of
        ``{"prefix_length": n, "support": m, <metric>: value}``.
        """
        return {}

    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        """One prediction per prefix of ``batch``, in order.

        Each prediction is a dict with ``output`` (``None`` when the plugin cannot prescribe, then with a
        ``detail`` saying why) and any further keys the plugin documents. ``context`` gives the current time and
        the plugin's persistent state (a fresh in-memory one when ``None``).
        """
        raise NotImplementedError

    # -- persistence ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted plugin to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("wb") as file:
            pickle.dump(self, file, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Plugin:
        """Read a plugin written by :meth:`save`."""
        with Path(path).open("rb") as file:
            plugin = pickle.load(file)
        if not isinstance(plugin, cls):
            raise TypeError(f"{path} holds a {type(plugin).__name__}, not a {cls.__name__}")
        return plugin

    @classmethod
    def info(cls) -> dict[str, Any]:
        """What PrCore's ``GET /plugin/available`` lists for this plugin."""
        return {
            "key": cls.key,
            "name": cls.title,
            "prescription_type": str(cls.prescription_type),
            "description": cls.description,
            "parameters": cls.parameter_defaults(),
            "needs_outcome": cls.needs_outcome,
            "needs_treatment": cls.needs_treatment,
        }


def null_output(detail: str) -> dict[str, Any]:
    """The prediction of a plugin that cannot prescribe for a prefix, saying why."""
    return {"output": None, "detail": detail}


def top_predictions(probabilities: np.ndarray, classes: np.ndarray, top: int = 3) -> list[dict]:
    """``{"output", "probability", "top"}`` per row: the most likely class and the ``top`` most likely ones.

    Ties are broken by class order (alphabetical), so predictions are deterministic.
    """
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    predictions = []
    for row, best in zip(probabilities, order, strict=True):
        candidates = [{"activity": str(classes[i]), "probability": round(float(row[i]), 4)} for i in best if row[i] > 0]
        candidates = candidates or [{"activity": str(classes[best[0]]), "probability": round(float(row[best[0]]), 4)}]
        predictions.append(
            {"output": candidates[0]["activity"], "probability": candidates[0]["probability"], "top": candidates}
        )
    return predictions


_THREADPOOLS: list = []  # one threadpoolctl controller: making one scans the loaded libraries (~10 ms)
_THREADPOOLS_GUARD = threading.Lock()


def one_native_thread(user_api: str | None = "openmp"):
    """A context that limits native thread pools to one thread while a plugin fits or predicts.

    The core trains two plugins at a time on two cores and prescribes beside a serving event loop; OpenMP teams
    (histogram gradient boosting, scikit-learn's neighbour search) of two fits competing for the same cores make
    each many times slower, and a one-row prediction can stall. OpenMP's thread count is per calling thread, so
    the default limits only the caller; ``user_api=None`` also limits BLAS, which is process-wide.
    """
    with _THREADPOOLS_GUARD:
        if not _THREADPOOLS:
            from threadpoolctl import ThreadpoolController

            _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api=user_api)
