"""How a prescription reads in a table cell, and the figures the live charts take from it.

Prescriptions are the core's objects (``{"type", "output", "plugin": {...}, ...}``); this module only words them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


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
