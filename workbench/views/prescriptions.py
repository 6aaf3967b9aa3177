"""How a prescription reads in a table cell, and the figures the live charts take from it.

Prescriptions are the core's objects (``{"type", "output", "plugin": {...}, ...}``); this module only words them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from workbench.views.widgets import SORT, WHY

#: Column titles by prescription type (the plugin's name when a type occurs twice).
SHORT_TITLES = {
    "NEXT_ACTIVITY": "Next activity",
    "ALARM": "Alarm",
    "TREATMENT_EFFECT": "Treatment effect",
    "RESOURCE_ALLOCATION": "Resource",
    "REMAINING_TIME": "Remaining time",
}


def column_titles(plugins: list[tuple[str, str, str]]) -> dict[str, str]:
    """Short titles of the plugins' columns (``(key, name, type)`` each): the type's words, or the name if the
    type occurs twice (two next-activity plugins), so that the columns fit.

    >>> column_titles([("a", "KNN", "NEXT_ACTIVITY"), ("b", "Boosted", "NEXT_ACTIVITY"), ("c", "Forest", "ALARM")])
    {'a': 'KNN', 'b': 'Boosted', 'c': 'Alarm'}
    """
    kinds = [kind for _, _, kind in plugins]
    return {key: SHORT_TITLES.get(kind, name) if kinds.count(kind) == 1 else name for key, name, kind in plugins}


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _clock(text) -> str:
    try:
        return dt.datetime.fromisoformat(str(text)).strftime("%b %d %H:%M")
    except ValueError:
        return str(text)


def duration(seconds: float) -> str:
    """A duration in the unit a person reads it in.

    >>> duration(90), duration(5400), duration(3.2 * 86400)
    ('2 min', '1.5 h', '3.2 d')
    """
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def summary(prescription: Mapping[str, Any], full: bool = False) -> str:
    """One short line: what the plugin says for this prefix (``full``: with the reason when it says nothing)."""
    kind, output = prescription.get("type"), prescription.get("output")
    if output is None and kind in ("TREATMENT_EFFECT", "RESOURCE_ALLOCATION"):
        return _no_treatment(prescription, full)
    if output is None:
        return f"— {prescription.get('detail') or 'no prescription'}" if full else "—"
    if kind == "NEXT_ACTIVITY":
        probability = _number(prescription.get("probability"))
        return f"{output} ({probability:.0%})" if probability is not None else str(output)
    if kind == "ALARM":
        probability = alarm_probability(prescription)
        if probability is None:
            return str(output)
        return f"ALARM {probability:.0%}" if prescription.get("alarm") else f"ok {probability:.0%}"
    if kind == "TREATMENT_EFFECT" and isinstance(output, Mapping):
        cate = _number(output.get("cate"))
        verdict = "treat" if prescription.get("recommend_treatment") else "don't treat"
        if cate is None:
            return verdict
        text = f"{verdict} {cate:+.2f}{_interval(output)}"
        return f"{text} · {prescription['reason']}" if full and prescription.get("reason") else text
    if kind == "REMAINING_TIME" and _number(output) is not None:
        low, high = _number(prescription.get("lower")), _number(prescription.get("upper"))
        interval = f" ({duration(low)}–{duration(high)})" if low is not None and high is not None else ""
        text = f"≈ {duration(float(output))}{interval}"
        return (
            f"{text} · ends about {_clock(prescription['expected_end'])}"
            if full and prescription.get("expected_end")
            else text
        )
    if kind == "RESOURCE_ALLOCATION" and isinstance(output, Mapping):
        until = output.get("allocated_until")
        return f"{output.get('resource')} until {_clock(until)}" if until else str(output.get("resource"))
    text = str(output)
    return text if full or len(text) <= 60 else text[:57] + "…"


#: Short words for a treatment-effect prescription without an effect, by its ``advice``.
_NO_EFFECT_WORDS = {
    "not identifiable": "not identifiable",
    "not possible here": "not possible here",
    "already treated": "already treated",
    "outcome known": "outcome known",
}


def _interval(output: Mapping[str, Any]) -> str:
    low, high = _number(output.get("cate_low")), _number(output.get("cate_high"))
    return f" [{low:+.2f}, {high:+.2f}]" if low is not None and high is not None else ""


def _no_treatment(prescription: Mapping[str, Any], full: bool) -> str:
    """A treatment-effect or allocation prescription that prescribes nothing: why, in a word or in full."""
    words = _NO_EFFECT_WORDS.get(str(prescription.get("advice")))
    if words is None:
        cate = _number(prescription.get("cate"))
        words = f"no resource (CATE {cate:+.2f})" if cate is not None else "—"
        detail = prescription.get("detail")
        if detail and "not identifiable" in detail:
            words = "not identifiable"
        elif detail and "not possible at this point" in detail:
            words = "not possible here"
    detail = prescription.get("detail") or prescription.get("reason")
    return f"{words} — {detail}" if full and detail else words


def explanation(prescription: Mapping[str, Any]) -> str:
    """Why the plugin says what it says: its reason and detail, the threshold, the alternatives or the interval.

    The summary of a cell ("ok 0%", "don't treat +0.72") leaves out why; this is the text shown beside it (the
    tooltip of a table cell), the same words the CSV's ``detail`` column carries, and more.

    >>> explanation({"type": "ALARM", "output": 0.2, "alarm": False, "threshold": 0.53})
    'Alarm from 53.0% (the threshold chosen from the cost ratio); this case is at 20.0%.'
    """
    kind, output = prescription.get("type"), prescription.get("output")
    parts: list[str] = []
    if kind == "ALARM":
        probability, threshold = alarm_probability(prescription), _number(prescription.get("threshold"))
        if probability is not None and threshold is not None:
            parts.append(
                f"Alarm from {threshold:.1%} (the threshold chosen from the cost ratio); this case is at "
                f"{probability:.1%}."
            )
    elif kind == "NEXT_ACTIVITY":
        top = [t for t in prescription.get("top") or [] if isinstance(t, Mapping)]
        if len(top) > 1:
            parts.append(
                "Most likely next: "
                + ", ".join(f"{t.get('activity')} {_number(t.get('probability')) or 0:.0%}" for t in top)
            )
    elif kind == "TREATMENT_EFFECT" and isinstance(output, Mapping):
        treated, untreated = _number(output.get("proba_if_treated")), _number(output.get("proba_if_untreated"))
        if treated is not None and untreated is not None:
            parts.append(f"Desired outcome {treated:.0%} if treated, {untreated:.0%} if not.")
    elif kind == "REMAINING_TIME" and _number(output) is not None:
        low, high = _number(prescription.get("lower")), _number(prescription.get("upper"))
        share = _number(prescription.get("interval"))
        if low is not None and high is not None:
            parts.append(f"{share or 0.8:.0%} interval {duration(low)} to {duration(high)}.")
        if prescription.get("expected_end"):
            parts.append(f"Ends about {_clock(prescription['expected_end'])}.")
    propensity = _number(prescription.get("propensity"))
    for text in (prescription.get("reason"), prescription.get("detail")):
        text = str(text).strip() if text else ""
        if text and not any(text in part for part in parts):
            parts = [part for part in parts if part not in text]
            parts.append(text)
    if propensity is not None and kind in ("TREATMENT_EFFECT", "RESOURCE_ALLOCATION"):
        parts.append(f"Propensity (how often cases like this were treated) {propensity:.2g}.")
    return " ".join(parts)


def cells(column: str, prescription: Mapping[str, Any] | None, full: bool = False) -> dict[str, Any]:
    """A table's cells for one prescription: its summary in ``column``, why in the hidden ``__why`` column and the
    number it sorts by in ``__sort`` (see :func:`workbench.views.widgets.table`)."""
    if prescription is None:
        return {column: "", column + WHY: "", column + SORT: None}
    return {
        column: summary(prescription, full=full),
        column + WHY: explanation(prescription),
        column + SORT: sort_value(prescription),
    }


def sort_value(prescription: Mapping[str, Any]) -> float | None:
    """The number a column of this prescription sorts by: probability, effect or remaining seconds."""
    kind, output = prescription.get("type"), prescription.get("output")
    if kind == "ALARM":
        return alarm_probability(prescription)
    if kind == "NEXT_ACTIVITY":
        return _number(prescription.get("probability"))
    if kind in ("TREATMENT_EFFECT", "RESOURCE_ALLOCATION"):
        return treatment_effect(prescription)
    if kind == "REMAINING_TIME":
        return _number(output)
    return _number(output)


def alarm_probability(prescription: Mapping[str, Any]) -> float | None:
    """The alarm probability of an ALARM prescription (a number, or ``{"probability": p}``)."""
    if prescription.get("type") != "ALARM":
        return None
    output = prescription.get("output")
    if isinstance(output, Mapping):
        output = output.get("probability", output.get("alarm"))
    return _number(output)


def treatment_effect(prescription: Mapping[str, Any]) -> float | None:
    """The estimated treatment effect (CATE) of a treatment-effect or resource prescription, if any."""
    output = prescription.get("output")
    if isinstance(output, Mapping) and _number(output.get("cate")) is not None:
        return float(output["cate"])
    return _number(prescription.get("cate"))


def recommends_treatment(prescription: Mapping[str, Any]) -> bool | None:
    """Whether the prescription recommends acting (treat / allocate a resource); ``None`` for other kinds."""
    kind = prescription.get("type")
    if kind == "TREATMENT_EFFECT":
        if "recommend_treatment" in prescription:
            return bool(prescription["recommend_treatment"])
        effect = treatment_effect(prescription)
        return effect is not None and effect > 0
    if kind == "RESOURCE_ALLOCATION":
        return prescription.get("output") is not None
    return None


def plugin_key(prescription: Mapping[str, Any]) -> str:
    plugin = prescription.get("plugin") or {}
    return str(plugin.get("key") or plugin.get("name") or prescription.get("type"))
