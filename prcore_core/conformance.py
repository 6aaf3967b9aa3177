"""``check_plugin``: one conformance suite that every plugin, built-in or third-party, must pass.

Like scikit-learn's ``check_estimator``: it fits the plugin on a small synthetic log (the demo log) and checks
the contract of :class:`prcore_core.plugin.Plugin` — declaration, parameter handling, ``fit`` returning ``self``
with learned state in trailing-underscore attributes, one prediction per prefix for prefixes of every length
(including length 1 and never-seen activities and values), JSON-serialisable outputs, deterministic predictions,
a faithful save/load round trip and progress reported as fractions in ``[0, 1]``.
"""

from __future__ import annotations

import json
import tempfile
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


def check_plugin(plugin_class: type[Plugin], logs: tuple[LabelledLog, LabelledLog] | None = None) -> None:
    """Check ``plugin_class`` against the plugin contract; raise ``PluginContractError`` on the first breach.

    Parameters
    ----------
    plugin_class
        The plugin class to check.
    logs
        ``(training, held_out)`` labelled logs to use; default a small demo log with outcome and treatment.
    """
    _require(isinstance(plugin_class, type) and issubclass(plugin_class, Plugin), "must subclass Plugin")
    for attribute in ("key", "title", "description", "prescription_type"):
        _require(bool(getattr(plugin_class, attribute, "")), f"{plugin_class.__name__}.{attribute} must be set")
    defaults = plugin_class.parameter_defaults()
    json.dumps(defaults)
    try:
        plugin_class.from_parameters({"no_such_parameter_xyz": 1})
    except errors.InvalidParameterError:
        pass
    else:
        raise PluginContractError("an unknown parameter must raise InvalidParameterError")

    training, held_out = logs or demo_logs()
    reason = plugin_class.applicability(training)
    _require(reason is None, f"plugin must be applicable to the check log, said: {reason}")

    now = pd.Timestamp("2024-06-03T10:00:00Z").to_pydatetime()

    def fresh() -> PredictionContext:
        """A new context per call, so plugins with persistent state (allocations) are checked alike."""
        return PredictionContext(now=now)

    plugin = plugin_class.from_parameters({})
    learned = [n for n in vars(plugin) if n.endswith("_") and not n.startswith("_")]
    _require(not learned, f"__init__ must only store parameters, found learned state {learned}")
    reports: list[float] = []
    fitted = plugin.fit(training, lambda fraction, sentence: reports.append(float(fraction)))
    _require(fitted is plugin, "fit must return self")
    learned = [n for n in vars(plugin) if n.endswith("_") and not n.startswith("_")]
    _require(bool(learned), "fit must store learned state in trailing-underscore attributes")
    _require(all(0.0 <= f <= 1.0 for f in reports), f"progress fractions must be within [0, 1], got {reports}")

    metrics = plugin.evaluate(held_out, lambda fraction, sentence: None)
    _require(isinstance(metrics, dict), "evaluate must return a dict")
    json.dumps(metrics, default=float)

    _require(
        plugin.predict(PrefixBatch(held_out.events, np.array([], dtype=int), held_out.attributes)) == [],
        "an empty batch must give an empty list",
    )
    batch = held_out.prefixes()
    batch = PrefixBatch(batch.events, batch.ends[:300], batch.attributes)
    _require(1 in set(batch.lengths.tolist()), "the check batch must contain prefixes of length 1")
    predictions = plugin.predict(batch, fresh())
    _require(len(predictions) == len(batch), "predict must return one prediction per prefix")
    for prediction in predictions:
        _require(isinstance(prediction, dict) and "output" in prediction, "each prediction needs an 'output' key")
        if prediction["output"] is None:
            _require(bool(prediction.get("detail")), "a null output must say why in 'detail'")
    json.dumps(predictions)
    _require(plugin.predict(batch, fresh()) == predictions, "predictions must be deterministic")

    unseen = plugin.predict(_with_unseen_values(held_out), fresh())
    _require(len(unseen) == len(_with_unseen_values(held_out)), "unseen values must still get one prediction each")

    single = PrefixBatch.from_prefixes(
        [held_out.events[held_out.events[CASE_ID] == held_out.events[CASE_ID].iloc[0]].iloc[:2]], held_out.attributes
    )
    _require(len(plugin.predict(single, fresh())) == 1, "a single streamed prefix must get one prediction")

    with tempfile.TemporaryDirectory() as directory:
        path = plugin.save(Path(directory) / "model.pkl")
        loaded = plugin_class.load(path)
    _require(loaded.predict(batch, fresh()) == predictions, "a saved and loaded plugin must predict the same")
    _require(isinstance(pd.DataFrame(predictions), pd.DataFrame), "predictions must form a table")
