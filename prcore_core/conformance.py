"""``check_plugin``: one conformance suite that every plugin, built-in or third-party, must pass.

Like scikit-learn's ``check_estimator`` and river's ``yield_checks``: :func:`yield_checks` gives the contract's
checks for a plugin *instance* (with its parameters), each a function named for its rule, so a test can run them
over every registered plugin and parameter variant and report each failing check by name; :func:`check_plugin`
runs them all for a class built with its defaults. The checks fit the plugin on a small synthetic log (the demo
log) and check
the contract of :class:`prcore_core.plugin.Plugin` — declaration, parameter handling, ``fit`` returning ``self``
with learned state in trailing-underscore attributes, one prediction per prefix for prefixes of every length
(including length 1 and never-seen activities and values), JSON-serialisable outputs, deterministic predictions,
a faithful save/load round trip and progress reported as fractions in ``[0, 1]``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from prcore_core import errors
from prcore_core.context import PredictionContext
from prcore_core.dataset import ACTIVITY, CASE_ID, LabelledLog, PrefixBatch
from prcore_core.plugin import Plugin


class PluginContractError(AssertionError):
    """A plugin does not follow the contract; the message says which rule."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PluginContractError(message)


def demo_logs(n_cases: int = 400, seed: int = 7) -> tuple[LabelledLog, LabelledLog]:
    """Training and held-out parts of a small demo log with outcome and treatment labels."""
    from prcore_core.columns import validate_columns_definition
    from prcore_core.conditions import CaseDefinition
    from prcore_core.demo import generate_demo_log
    from prcore_core.preparation import ProjectDefinition, prepare

    demo = generate_demo_log(n_cases=n_cases, seed=seed)
    columns = validate_columns_definition(demo.events.columns, demo.columns_definition, demo.case_attributes)
    definition = ProjectDefinition(
        outcome=CaseDefinition.parse(demo.outcome, columns), treatment=CaseDefinition.parse(demo.treatment, columns)
    )
    prepared = prepare(demo.events.astype("string"), columns, definition)
    return prepared.part("training", definition), prepared.part("held_out", definition)


def _with_unseen_values(log: LabelledLog) -> PrefixBatch:
    """Prefixes of two held-out cases, one with a never-seen activity and never-seen attribute values."""
    cases = log.events[CASE_ID].drop_duplicates().iloc[:2]
    events = log.events[log.events[CASE_ID].isin(cases)].reset_index(drop=True)
    first = events[CASE_ID] == cases.iloc[0]
    events.loc[first[first].index[-1], ACTIVITY] = "A never seen activity"
    for attribute in log.attributes:
        if attribute.family in ("TEXT", "CATEGORICAL"):
            events.loc[first, attribute.name] = "a never seen value"
    return PrefixBatch(events, np.arange(len(events)), log.attributes)


class _Trial:
    """What the checks of one plugin instance share: the logs, the fitted plugin and its predictions."""

    def __init__(self, plugin: Plugin, logs: tuple[LabelledLog, LabelledLog] | None):
        self.plugin_class = type(plugin)
        parameters = {name: getattr(plugin, name) for name in self.plugin_class.parameter_defaults()}
        self.plugin = self.plugin_class.from_parameters(parameters)  # a fresh copy: the given instance is untouched
        self.logs = logs
        self.now = pd.Timestamp("2024-06-03T10:00:00Z").to_pydatetime()
        self.predictions: list[dict] | None = None
        self.batch: PrefixBatch | None = None

    @property
    def training(self) -> LabelledLog:
        return self._logs()[0]

    @property
    def held_out(self) -> LabelledLog:
        return self._logs()[1]

    def _logs(self) -> tuple[LabelledLog, LabelledLog]:
        if self.logs is None:  # made when the first check needs them (declaration checks do not)
            self.logs = demo_logs()
        return self.logs

    def fresh(self) -> PredictionContext:
        """A new context per call, so plugins with persistent state (allocations) are checked alike."""
        return PredictionContext(now=self.now)


def check_declaration(trial: _Trial) -> None:
    """The class says who it is: ``key``, ``title``, ``description`` and ``prescription_type`` are set."""
    for attribute in ("key", "title", "description", "prescription_type"):
        _require(
            bool(getattr(trial.plugin_class, attribute, "")), f"{trial.plugin_class.__name__}.{attribute} must be set"
        )


def check_parameters(trial: _Trial) -> None:
    """The declared defaults are JSON, and an unknown parameter is refused with ``InvalidParameterError``."""
    json.dumps(trial.plugin_class.parameter_defaults())
    try:
        trial.plugin_class.from_parameters({"no_such_parameter_xyz": 1})
    except errors.InvalidParameterError:
        pass
    else:
        raise PluginContractError("an unknown parameter must raise InvalidParameterError")


def check_applicable(trial: _Trial) -> None:
    """The plugin applies to the check log (which has an outcome and a treatment)."""
    reason = trial.plugin_class.applicability(trial.training)
    _require(reason is None, f"plugin must be applicable to the check log, said: {reason}")


def check_init_stores_only_parameters(trial: _Trial) -> None:
    """``__init__`` stores parameters only: no trailing-underscore (learned) attribute before ``fit``."""
    learned = [n for n in vars(trial.plugin) if n.endswith("_") and not n.startswith("_")]
    _require(not learned, f"__init__ must only store parameters, found learned state {learned}")


def check_fit(trial: _Trial) -> None:
    """``fit`` returns ``self``, stores learned state in trailing-underscore attributes, reports fractions in [0, 1]."""
    plugin, reports = trial.plugin, []
    fitted = plugin.fit(trial.training, lambda fraction, sentence: reports.append(float(fraction)))
    _require(fitted is plugin, "fit must return self")
    learned = [n for n in vars(plugin) if n.endswith("_") and not n.startswith("_")]
    _require(bool(learned), "fit must store learned state in trailing-underscore attributes")
    _require(all(0.0 <= f <= 1.0 for f in reports), f"progress fractions must be within [0, 1], got {reports}")


def check_evaluate(trial: _Trial) -> None:
    """``evaluate`` returns a dict of JSON-serialisable metrics."""
    metrics = trial.plugin.evaluate(trial.held_out, lambda fraction, sentence: None)
    _require(isinstance(metrics, dict), "evaluate must return a dict")
    json.dumps(metrics, default=float)


def check_empty_batch(trial: _Trial) -> None:
    """An empty batch gives an empty list."""
    held_out = trial.held_out
    _require(
        trial.plugin.predict(PrefixBatch(held_out.events, np.array([], dtype=int), held_out.attributes)) == [],
        "an empty batch must give an empty list",
    )


def check_one_prediction_per_prefix(trial: _Trial) -> None:
    """One JSON prediction with an ``output`` per prefix, of every length; a null output says why."""
    batch = trial.held_out.prefixes()
    batch = PrefixBatch(batch.events, batch.ends[:300], batch.attributes)
    _require(1 in set(batch.lengths.tolist()), "the check batch must contain prefixes of length 1")
    predictions = trial.plugin.predict(batch, trial.fresh())
    _require(len(predictions) == len(batch), "predict must return one prediction per prefix")
    for prediction in predictions:
        _require(isinstance(prediction, dict) and "output" in prediction, "each prediction needs an 'output' key")
        if prediction["output"] is None:
            _require(bool(prediction.get("detail")), "a null output must say why in 'detail'")
    json.dumps(predictions)
    trial.batch, trial.predictions = batch, predictions


def check_deterministic(trial: _Trial) -> None:
    """The same prefixes give the same predictions."""
    _require(trial.plugin.predict(trial.batch, trial.fresh()) == trial.predictions, "predictions must be deterministic")


def check_unseen_values(trial: _Trial) -> None:
    """Never-seen activities and attribute values still get one prediction each."""
    unseen = trial.plugin.predict(_with_unseen_values(trial.held_out), trial.fresh())
    _require(
        len(unseen) == len(_with_unseen_values(trial.held_out)), "unseen values must still get one prediction each"
    )


def check_single_prefix(trial: _Trial) -> None:
    """A single streamed prefix gets one prediction."""
    events = trial.held_out.events
    single = PrefixBatch.from_prefixes(
        [events[events[CASE_ID] == events[CASE_ID].iloc[0]].iloc[:2]], trial.held_out.attributes
    )
    _require(len(trial.plugin.predict(single, trial.fresh())) == 1, "a single streamed prefix must get one prediction")


def check_save_load(trial: _Trial) -> None:
    """A saved and loaded plugin predicts the same."""
    with tempfile.TemporaryDirectory() as directory:
        path = trial.plugin.save(Path(directory) / "model.pkl")
        loaded = trial.plugin_class.load(path)
    _require(
        loaded.predict(trial.batch, trial.fresh()) == trial.predictions,
        "a saved and loaded plugin must predict the same",
    )
    _require(isinstance(pd.DataFrame(trial.predictions), pd.DataFrame), "predictions must form a table")


#: The contract's checks, in the order they run (later ones use what earlier ones established).
CHECKS = (
    check_declaration,
    check_parameters,
    check_applicable,
    check_init_stores_only_parameters,
    check_fit,
    check_evaluate,
    check_empty_batch,
    check_one_prediction_per_prefix,
    check_deterministic,
    check_unseen_values,
    check_single_prefix,
    check_save_load,
)


def yield_checks(plugin: Plugin, logs: tuple[LabelledLog, LabelledLog] | None = None) -> Iterator[Callable[[], None]]:
    """The contract's checks for a plugin instance, in order; each is a function named for its rule.

    Run them in the order given: later checks use the fitted plugin and the predictions of earlier ones. A copy of
    ``plugin`` with the same parameters is fitted; ``plugin`` itself is left as it was.

    Parameters
    ----------
    plugin
        An unfitted plugin with the parameters to check (e.g. ``MyPlugin(n_neighbors=3)``).
    logs
        ``(training, held_out)`` labelled logs to use; default a small demo log with outcome and treatment.

    Yields
    ------
    callable
        ``check()`` raises :class:`PluginContractError` naming the breach; ``check.__name__`` names the rule.
    """
    trial = _Trial(plugin, logs)
    for check in CHECKS:

        def run(check=check) -> None:
            check(trial)

        run.__name__ = run.__qualname__ = check.__name__
        run.__doc__ = check.__doc__
        yield run


def check_plugin(plugin_class: type[Plugin], logs: tuple[LabelledLog, LabelledLog] | None = None) -> None:
    """Check ``plugin_class`` against the plugin contract; raise ``PluginContractError`` on the first breach.

    Parameters
    ----------
    plugin_class
        The plugin class to check (built with its default parameters).
    logs
        ``(training, held_out)`` labelled logs to use; default a small demo log with outcome and treatment.
    """
    _require(isinstance(plugin_class, type) and issubclass(plugin_class, Plugin), "must subclass Plugin")
    for check in yield_checks(plugin_class.from_parameters({}), logs):
        check()
