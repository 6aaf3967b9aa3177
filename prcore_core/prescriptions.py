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


def prcore_prescriptions(event: dict[str, Any]) -> dict[str, Any]:
    """PrCore's original form of an event's prescriptions: an object keyed by plugin key (reference 4)."""
    return {**event, "prescriptions": {p["plugin"]["key"]: p for p in event["prescriptions"]}}
