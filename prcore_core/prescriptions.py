"""The prescription object: a plugin's prediction for one prefix in the seed's shape.

Seed "Get Prescriptions": ``{"id", "datetime", "type", "output", "plugin": {"name", "description", "accuracy",
"precision", "recall", ...}}``. A plugin that cannot prescribe has ``output: null`` and says why in ``detail``
(PrCore put the reason under a ``model`` key instead of ``plugin``, reference 13.1 #23; we keep ``plugin``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prcore_core.project import PluginState

#: Headline metrics copied into every prescription's ``plugin`` object, when the plugin measured them.
HEADLINE_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "roc_auc",
    "brier_score",
    "qini",
    "auuc",
    "mae_days",
    "coverage",
    "policy_value",
)


def plugin_summary(plugin: PluginState) -> dict[str, Any]:
    """The ``plugin`` object of a prescription: who prescribed and how good it was on held-out cases."""
    summary = {"name": plugin.name, "description": plugin.description, "key": plugin.key}
    for metric in HEADLINE_METRICS:
        if plugin.metrics and plugin.metrics.get(metric) is not None:
            summary[metric] = plugin.metrics[metric]
    return summary


def make_prescription(
    plugin: PluginState, prediction: dict[str, Any], prescription_id: int | None = None, when: dt.datetime | None = None
) -> dict[str, Any]:
    """Wrap one plugin prediction (``{"output": ..., ...}``) as a prescription."""
    when = when or dt.datetime.now(dt.UTC)
    extra = {k: v for k, v in prediction.items() if k != "output"}
    return {
        "id": prescription_id,
        "datetime": when.isoformat(),
        "type": plugin.prescription_type,
        "output": prediction.get("output"),
        **extra,
        "plugin": plugin_summary(plugin),
    }


#: Wire formats of prescriptions: the seed's list (the default), or PrCore's object keyed by its plugin ids.
FORMATS = ("list", "prcore")
#: PrCore's own metrics, the only ones its prescription's ``plugin`` object carries (reference 8.4).
PRCORE_METRICS = ("accuracy", "precision", "recall", "f1_score")


def check_format(name: str) -> str:
    """``name`` if it is a prescription format, else ``InvalidParameterError`` naming the choices."""
    from prcore_core import errors

    if name not in FORMATS:
        raise errors.InvalidParameterError(f"Unknown format {name!r}; use one of: {', '.join(FORMATS)}")
    return name


def prcore_plugin_id(key: str) -> str:
    """PrCore's id of a plugin (``plugin-knn-next-activity``): its ``plugin-`` alias, else ``plugin-<key>``."""
    from prcore_core import registry

    plugin_class = registry.available_plugins().get(key)
    aliases = plugin_class.aliases if plugin_class is not None else ()
    return next((a for a in aliases if a.startswith("plugin-")), f"plugin-{key}")


def _local_naive(stamp: str | None) -> str | None:
    """PrCore stamps prescriptions with the server's naive local time."""
    if not stamp:
        return stamp
    try:
        return dt.datetime.fromisoformat(stamp).astimezone().replace(tzinfo=None).isoformat()
    except ValueError:
        return stamp


def prcore_prescription(prescription: dict[str, Any]) -> dict[str, Any]:
    """One prescription exactly as PrCore sent it (reference 8.4).

    ``{"date", "type", "output", "plugin": {"name", "model", <metrics>}}``; without an output the reason is under
    ``model``: ``{"date", "type", "output": null, "model": {"name", "detail"}}``.
    """
    plugin = prescription.get("plugin") or {}
    head = {
        "date": _local_naive(prescription.get("datetime")),
        "type": prescription.get("type"),
        "output": prescription.get("output"),
    }
    if prescription.get("output") is None:
        return {**head, "model": {"name": plugin.get("name"), "detail": prescription.get("detail")}}
    summary = {"name": plugin.get("name"), "model": plugin.get("key")}
    summary.update({m: plugin[m] for m in PRCORE_METRICS if plugin.get(m) is not None})
    return {**head, "plugin": summary}


def prcore_prescriptions(event: dict[str, Any]) -> dict[str, Any]:
    """An event with PrCore's ``prescriptions`` object, keyed by PrCore's plugin ids (reference 4)."""
    return {
        **event,
        "prescriptions": {prcore_plugin_id(p["plugin"]["key"]): prcore_prescription(p) for p in event["prescriptions"]},
    }
