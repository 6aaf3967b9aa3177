"""Resource allocation by treatment effect (PrCore's CausalLift resource allocation plugin, reference 8.9, redone).

The model and the recommendation rule are those of :class:`~plugins.causal_treatment_effect.CausalTreatmentEffect`
(same decision points, identification checks, intervals and held-out metrics; within one process the model is
fitted once and shared). A resource is booked only where the treatment effect plugin would recommend the treatment
(the lower bound of the CATE interval above ``threshold``, at an identifiable decision point): then the first
resource of ``available_resources`` that is free now, for ``treatment_duration``::

    {"output": {"cate": 0.31, "cate_low": 0.12, "cate_high": 0.5, "resource": "Resource_B",
                "allocated_until": "2024-06-03T11:00:00+00:00"}, "recommend_treatment": true, "reason": "Treat: ..."}

Otherwise ``output`` is ``None`` with the reason: the treatment effect plugin's (not identifiable, not possible at
this point, already applied, the interval not above the threshold), prefixed with "No resource is allocated", or
PrCore's "There is no available resource".

What changed from PrCore
------------------------
* ``available_resources`` and ``treatment_duration`` come from the plugin's additional info and are validated when
  the project is created (:meth:`ResourceAllocation.validate_additional_info`), not discovered at prediction time;
  a project without them leaves this plugin out with a reason.
* Allocations live in the prediction context's :class:`~prcore_core.context.PersistentState`, which the core
  keeps in the database: they survive restarts, and every read-modify-write happens in one transaction, so two
  concurrent prescriptions never book the same resource.
* A case that holds a live allocation keeps it: a later prefix of the same case is answered with the same resource
  and the same ``allocated_until`` instead of taking a second resource (PrCore booked one per event).
* A positive CATE is not enough (PrCore booked on ``cate > 0``): the treatment must be recommended.

Allocation rules: a resource is free at ``context.now`` if it was never allocated or its allocation ended at or
before ``now``. A case no longer recommended gets the "not recommended" answer, but its booking is not released
early (the resource may already be at work). Expired bookings are dropped from the state when it is next
written. The state is ``{"allocations": {resource: {"case_id": ..., "case_start": ISO datetime, "until": ISO
datetime}}}``; a booking belongs to the case with that id *and* that first-event time (see
:func:`_case_identities`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from plugins.causal_treatment_effect import CausalTreatmentEffect
from prcore_core import errors
from prcore_core.conditions import parse_duration
from prcore_core.context import PredictionContext
from prcore_core.dataset import LabelledLog, PrefixBatch, order_time_column, position_in_case
from prcore_core.plugin import PrescriptionType, Progress, no_progress, null_output

NO_EFFECT = "No resource is allocated"
NO_RESOURCE = "There is no available resource"
NOT_TRAINED = "The plugin is not trained"
#: How :meth:`PrefixBatch.from_prefixes` marks the case ids of separate prefix tables (``"<n>\x1f<case id>"``).
_PREFIX_MARK = "\x1f"


def _case_key(case_id) -> str:
    """The case id a booking is kept under (without the per-table mark of streamed prefix tables)."""
    return str(case_id).rsplit(_PREFIX_MARK, 1)[-1]


def _case_identities(batch: PrefixBatch) -> list[tuple[str, str]]:
    """``(case id, case start)`` per prefix: who holds a booking.

    The start time (of the prefix's first event) is part of the identity because a batch may name its prefixes by
    position instead of by case (the streaming prescriber numbers the prefixes of each burst 0, 1, ...): prefix 0
    of the next burst is then another case, which must not inherit this one's booking.
    """
    events = batch.events
    position = position_in_case(events)
    starts = batch.ends - position[batch.ends]
    try:
        times = events[order_time_column(events)].iloc[starts]
        started = [t.isoformat() if not pd.isna(t) else "" for t in times]
    except KeyError:
        started = [""] * len(batch)
    return [(_case_key(case), start) for case, start in zip(batch.case_ids, started, strict=True)]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class ResourceAllocation(CausalTreatmentEffect):
    """Books a free resource for a running case when the treatment is estimated to help it."""

    key = "resource-allocation"
    aliases = ("plugin-causallift-resource-allocation",)
    title = "Resource allocation"
    description = (
        "This plugin allocates a resource to perform the treatment on a running case when the causal treatment "
        "effect plugin recommends the treatment (the lower bound of the CATE interval above the threshold, where the "
        "effect is identifiable): the first of the available resources that is free now, for the treatment duration."
    )
    prescription_type = PrescriptionType.RESOURCE_ALLOCATION

    # -- additional info -----------------------------------------------------------------------------------------
    @classmethod
    def validate_additional_info(cls, additional_info: Mapping[str, Any]) -> None:
        """Require ``available_resources`` (non-empty list of distinct non-empty strings) and ``treatment_duration``
        (a positive duration such as ``"1h"`` or ``"2 days"``); raise ``InvalidParameterError`` otherwise."""
        cls._resources_and_duration(additional_info)

    @classmethod
    def _resources_and_duration(cls, additional_info: Mapping[str, Any] | None) -> tuple[list[str], float]:
        info = additional_info or {}
        if not isinstance(info, Mapping):
            raise errors.InvalidParameterError(f"The additional info of plugin '{cls.key}' must be an object")
        missing = [name for name in ("available_resources", "treatment_duration") if info.get(name) is None]
        if missing:
            raise errors.InvalidParameterError(
                f"{cls.title} needs additional_info.available_resources (a list of resource names) and "
                f'treatment_duration (e.g. "1h"); missing: {", ".join(missing)}'
            )
        resources = info["available_resources"]
        if (
            not isinstance(resources, list | tuple)
            or not resources
            or not all(isinstance(r, str) and r.strip() for r in resources)
        ):
            raise errors.InvalidParameterError(
                f"available_resources must be a non-empty list of resource names, got {resources!r}"
            )
        duplicates = sorted({r for r in resources if list(resources).count(r) > 1})
        if duplicates:
            raise errors.InvalidParameterError(f"available_resources lists {', '.join(duplicates)} more than once")
        try:
            seconds = parse_duration(info["treatment_duration"])
        except errors.PrCoreError as exc:
            raise errors.InvalidParameterError(
                f'treatment_duration must be a duration such as "1h" or "2 days": {exc.detail}'
            ) from None
        if seconds <= 0:
            raise errors.InvalidParameterError("treatment_duration must be longer than 0 seconds")
        return list(resources), seconds

    @classmethod
    def applicability(cls, log: LabelledLog) -> str | None:
        reason = super().applicability(log)
        if reason is not None:
            return reason
        try:
            cls._resources_and_duration(log.additional_info)
        except errors.InvalidParameterError as exc:
            return exc.detail
        return None

    # -- learning ------------------------------------------------------------------------------------------------
    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> ResourceAllocation:
        self.resources_, self.treatment_seconds_ = self._resources_and_duration(log.additional_info)
        super().fit(log, progress)
        return self

    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """The metrics of :meth:`CausalTreatmentEffect.evaluate`, plus ``allocation_share``: the share of held-out
        decision points that would get a resource if resources were unlimited (the share recommended)."""
        metrics = super().evaluate(log, progress)
        if "recommend_share" in metrics:
            metrics["allocation_share"] = metrics["recommend_share"]
        return metrics

    # -- allocating ----------------------------------------------------------------------------------------------
    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        if not len(batch):
            return []
        if not hasattr(self, "estimator_"):
            return [null_output(NOT_TRAINED) for _ in range(len(batch))]
        context = context or PredictionContext()
        effects = self._effects(batch)
        predictions: list[dict[str, Any] | None] = [None] * len(batch)
        wanted = []
        for i, effect in enumerate(effects):
            if effect.get("recommend_treatment"):
                wanted.append(i)
                continue
            prediction = {**null_output(f"{NO_EFFECT}: {effect.get('reason') or effect.get('detail')}"),
                          "recommend_treatment": False, "reason": effect.get("reason")}  # fmt: skip
            if effect.get("output"):
                prediction["cate"] = effect["output"]["cate"]
            predictions[i] = prediction
        if wanted:
            cases = _case_identities(batch)  # only when booking: it reads the time column (pandas, per call)
            now = _utc(context.now)
            with context.state.transaction() as state:
                allocations = self._live_allocations(state.get("allocations") or {}, now)
                for i in wanted:
                    effect = effects[i]["output"]
                    interval = {k: effect[k] for k in ("cate", "cate_low", "cate_high") if k in effect}
                    booking = self._book(allocations, cases[i], now)
                    if booking is None:
                        predictions[i] = {**null_output(NO_RESOURCE), **interval, "recommend_treatment": True,
                                          "reason": effects[i].get("reason")}  # fmt: skip
                    else:
                        resource, until = booking
                        predictions[i] = {"output": {**interval, "resource": resource, "allocated_until": until},
                                          "recommend_treatment": True, "reason": effects[i].get("reason")}  # fmt: skip
                state["allocations"] = allocations
        return predictions  # type: ignore[return-value]

    def _live_allocations(self, allocations: Mapping[str, Any], now: dt.datetime) -> dict[str, dict[str, str]]:
        """Bookings still running at ``now`` (expired or malformed entries are dropped)."""
        live = {}
        for resource, booking in allocations.items():
            try:
                until = _utc(dt.datetime.fromisoformat(booking["until"]))
            except (KeyError, TypeError, ValueError):
                continue
            if until > now:
                live[resource] = dict(booking)
        return live

    def _book(
        self, allocations: dict[str, dict[str, str]], case: tuple[str, str], now: dt.datetime
    ) -> tuple[str, str] | None:
        """The case's live booking, else a new one on the first free resource, else ``None``."""
        case_id, started = case
        for resource in self.resources_:
            booking = allocations.get(resource)
            if booking is not None and booking.get("case_id") == case_id and booking.get("case_start", "") == started:
                return resource, booking["until"]
        for resource in self.resources_:
            if resource not in allocations:
                until = (now + dt.timedelta(seconds=self.treatment_seconds_)).isoformat()
                allocations[resource] = {"case_id": case_id, "case_start": started, "until": until}
                return resource, until
        return None


__all__ = ["NO_EFFECT", "NO_RESOURCE", "ResourceAllocation"]
