"""A synthetic loan-application event log: the project's built-in demo data.

The repository ships no third-party data; tests, notebooks and the dashboard's demo use this generator. The log
imitates the BPI Challenge 2012 loan process with its own English activity names, and it knows its ground truth:
the true conditional average treatment effect (CATE) of every case, so that prescriptions can be checked.

Process model
-------------
Every case is one loan application. Square brackets name the resource that performs a step.

1. ``Submit application`` [``system`` for online applications, a front-office clerk at a branch], then
   ``Check fraud`` [``system``] a few seconds to minutes later.
2. XOR: ``Auto-decline`` [``system``] ends the case, with a probability that is high for credit scores below about
   580 (plus a small fraud rate); otherwise the documents are checked.
3. ``Validate documents`` [back office] records ``documents_missing`` (0 to 3, more often for online applications).
   While documents are missing, the loop ``Request missing documents`` [back office], an optional reminder
   ``Request missing documents`` [``system``], ``Receive documents`` [customer: ``system`` or no resource] and
   ``Validate documents`` again repeats, at most three times. The customer may give up instead:
   ``Cancel application`` [``system`` after a 14-day timeout, or a front-office clerk] ends the case.
4. ``Assess credit`` [credit analyst], ``Senior review`` [senior analyst] for most large amounts, then XOR:
   ``Decline loan`` [the analyst], likely for low credit scores, large amounts and many document rounds.
5. ``Send offer`` [loan officer] records ``offered_amount`` (lower than requested for weaker credit scores); the
   customer asks for a revised offer (another ``Send offer``) up to twice.
6. The treatment ``Call customer`` [loan officer, mostly the one who sent the offer] happens with the propensity
   ``e(x) = 0.12 + 0.76 * sigmoid(-0.4 + 1.3 * log(amount / 15000) + 0.5 * [branch] - 0.4 * (score - 680) / 70)``,
   so it is confounded (large amounts, branch customers and weaker scores are called more often) and never
   deterministic: ``0.12 < e(x) < 0.88``.
7. The outcome: with probability ``p1`` (treated) or ``p0`` (untreated) the customer signs, and
   ``Receive signed offer`` [customer] and ``Approve loan`` [loan officer] follow. Otherwise the offer expires
   (``Cancel application`` [``system``] 30 days later), the customer withdraws (``Cancel application``
   [loan officer]) or a final check fails (``Receive signed offer`` then ``Decline loan`` [analyst]).

The approval probabilities are ``p0 = sigmoid(l0)`` and ``p1 = sigmoid(l0 + tau)`` with::

    l0  = -0.1 + 0.9 * (score - 680) / 70 - 0.6 * log(amount / 15000) + goal effect + 0.25 * [branch]
          - 0.3 * document rounds + 0.4 * revised offers - 2 * (1 - offered_amount / amount)
    tau = 2.2 * exp(-((score - 655) / 50) ** 2) * sigmoid(log(amount / 15000) / 0.3)
          - 0.35 * sigmoid((score - 760) / 15)

so the call helps a lot for mid credit scores and large amounts, hardly at all for small amounts or weak scores,
and slightly hurts for excellent scores. ``true_effect = p1 - p0`` exactly, for every case that received an offer;
cases that ended before the offer stage (auto-declined, cancelled, declined) can never be treated and have a true
effect of 0 by definition. The realised outcome is drawn from the probability under the actual treatment.

Time
----
Applications arrive as a Poisson process over about six months, whatever the number of cases. Staff work Monday
to Friday, 08:00-17:00: their steps wait (exponentially, in working hours) and then take minutes, scaled by a
personal speed. Automatic steps take seconds; customers act at any time of day, after hours to days; timeouts are
exact calendar delays. Timestamps are naive ISO 8601 strings with milliseconds (``2024-01-08T09:13:05.123``),
strictly increasing within a case. About 2% of staff events have no recorded resource, like real logs.

Every case is complete (it ends with ``Auto-decline``, ``Decline loan``, ``Cancel application`` or
``Approve loan``); take prefixes of cases to get running ones.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ACTIVITIES",
    "APPROVE",
    "TREATMENT",
    "DemoLog",
    "generate_demo_log",
]

SUBMIT = "Submit application"
CHECK_FRAUD = "Check fraud"
AUTO_DECLINE = "Auto-decline"
VALIDATE = "Validate documents"
REQUEST = "Request missing documents"
RECEIVE = "Receive documents"
ASSESS = "Assess credit"
SENIOR_REVIEW = "Senior review"
SEND_OFFER = "Send offer"
TREATMENT = "Call customer"
RECEIVE_SIGNED = "Receive signed offer"
APPROVE = "Approve loan"
DECLINE = "Decline loan"
CANCEL = "Cancel application"

#: Every activity of the demo process, in rough process order.
ACTIVITIES = (
    SUBMIT,
    CHECK_FRAUD,
    AUTO_DECLINE,
    VALIDATE,
    REQUEST,
    RECEIVE,
    ASSESS,
    SENIOR_REVIEW,
    SEND_OFFER,
    TREATMENT,
    RECEIVE_SIGNED,
    APPROVE,
    DECLINE,
    CANCEL,
)

SYSTEM = "system"
FRONT_OFFICE = ("Anna", "Ben", "Chloe", "David")
BACK_OFFICE = ("Emma", "Felix", "Grace")
ANALYSTS = ("Hugo", "Iris", "Jonas")
SENIORS = ("Olivia", "Paul")
LOAN_OFFICERS = ("Karim", "Lena", "Marco", "Nora")
#: Personal speed: a factor on waiting and processing times (below 1 is faster).
SPEED = {
    "Anna": 0.8,
    "Ben": 1.1,
    "Chloe": 1.0,
    "David": 1.3,
    "Emma": 0.9,
    "Felix": 1.2,
    "Grace": 1.0,
    "Hugo": 0.8,
    "Iris": 1.0,
    "Jonas": 1.4,
    "Olivia": 1.0,
    "Paul": 1.2,
    "Karim": 0.9,
    "Lena": 1.0,
    "Marco": 1.3,
    "Nora": 0.8,
}

GOALS = ("car", "home improvement", "debt consolidation", "business", "education", "other")
_GOAL_SHARE = np.array([0.28, 0.24, 0.20, 0.10, 0.08, 0.10])
_GOAL_MEDIAN_AMOUNT = np.array([15000.0, 25000.0, 12000.0, 30000.0, 9000.0, 6000.0])
_GOAL_LOGIT = np.array([0.2, 0.3, -0.3, -0.2, 0.1, 0.0])
#: Probability of 0, 1, 2, 3 missing documents at the first validation, by channel.
_MISSING_ONLINE = np.array([0.40, 0.30, 0.20, 0.10])
_MISSING_BRANCH = np.array([0.60, 0.25, 0.10, 0.05])

CASE_ATTRIBUTES = ("amount", "loan_goal", "credit_score", "channel")
COLUMNS_DEFINITION = {
    "case_id": "CASE_ID",
    "activity": "ACTIVITY",
    "timestamp": "TIMESTAMP",
    "resource": "RESOURCE",
    "amount": "NUMBER",
    "loan_goal": "TEXT",
    "credit_score": "NUMBER",
    "channel": "TEXT",
    "documents_missing": "NUMBER",
    "offered_amount": "NUMBER",
}

_HOUR = 3600.0
_DAY = 86400.0
_WORK_START = 8 * _HOUR
_WORKDAY = 9 * _HOUR  # 08:00-17:00
_ARRIVAL_SPAN_DAYS = 182.0
_MISSING_RESOURCE = 0.02
_MAX_EXP = 8.0  # cap on standard exponential draws, keeps every case within the calendar


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _effect_logit(score, log_amount_ratio):
    """The treatment's effect on the approval log-odds (``tau`` of the module docstring)."""
    mid_score = np.exp(-(((score - 655.0) / 50.0) ** 2))
    large_amount = _sigmoid(log_amount_ratio / 0.3)
    return 2.2 * mid_score * large_amount - 0.35 * _sigmoid((score - 760.0) / 15.0)


@dataclass(frozen=True, eq=False)
class DemoLog:
    """A generated event log with its ground truth.

    All per-case series are indexed by case id (index name ``case_id``) in the order of the cases in ``events``.

    Attributes
    ----------
    events : pandas.DataFrame
        One row per event, sorted by case then time. Columns: ``case_id``, ``activity``, ``timestamp`` (naive ISO
        8601 text with milliseconds), ``resource`` (missing for some events), the case attributes ``amount``,
        ``loan_goal``, ``credit_score``, ``channel`` (repeated on every row) and the event attributes
        ``documents_missing`` (on ``Validate documents`` and ``Request missing documents`` rows) and
        ``offered_amount`` (on ``Send offer`` rows), missing elsewhere.
    true_effect : pandas.Series
        ``P(approve | treated) - P(approve | untreated)`` of each case, exactly as the generator used it; 0 for cases
        that ended before the offer stage (they cannot be treated).
    treated : pandas.Series
        Whether ``Call customer`` happened (bool).
    approved : pandas.Series
        Whether ``Approve loan`` happened (bool).
    propensity : pandas.Series
        The probability of treatment the generator used for each case; ``NaN`` for cases without an offer.
    """

    events: pd.DataFrame
    true_effect: pd.Series
    treated: pd.Series
    approved: pd.Series
    propensity: pd.Series | None = None

    def to_csv(self, separator: str = ",") -> bytes:
        """The events as a UTF-8 CSV file a user could upload (header row, no index, missing cells empty).

        Parameters
        ----------
        separator : str
            The field separator.

        Returns
        -------
        bytes
            The file's content.
        """
        return self.events.to_csv(index=False, sep=separator, lineterminator="\n").encode("utf-8")

    @property
    def columns_definition(self) -> dict:
        """The PrCore columns definition of ``events``: column name -> definition (``"CASE_ID"``, ...)."""
        return dict(COLUMNS_DEFINITION)

    @property
    def case_attributes(self) -> list:
        """The columns that are constant within a case."""
        return list(CASE_ATTRIBUTES)

    @property
    def outcome(self) -> list:
        """The PrCore outcome definition: the loan is approved."""
        return [[{"column": "activity", "operator": "EQUAL", "value": APPROVE}]]

    @property
    def treatment(self) -> list:
        """The PrCore treatment definition: the customer is called after the offer."""
        return [[{"column": "activity", "operator": "EQUAL", "value": TREATMENT}]]


class _Draws:
    """Buffered random draws: scalar calls on a numpy generator are slow, so draw in blocks and hand out floats."""

    def __init__(self, rng: np.random.Generator, size: int):
        self._rng = rng
        self._size = size
        self._u: list[float] = []
        self._e: list[float] = []
        self._iu = 0
        self._ie = 0

    def uniform(self) -> float:
        if self._iu >= len(self._u):
            self._u = self._rng.random(self._size).tolist()
            self._iu = 0
        self._iu += 1
        return self._u[self._iu - 1]

    def exponential(self) -> float:
        """A standard exponential draw, capped at ``_MAX_EXP``."""
        if self._ie >= len(self._e):
            self._e = np.minimum(self._rng.standard_exponential(self._size), _MAX_EXP).tolist()
            self._ie = 0
        self._ie += 1
        return self._e[self._ie - 1]

    def pick(self, names: tuple[str, ...]) -> str:
        return names[int(self.uniform() * len(names))]


class _Calendar:
    """Working time (Monday to Friday, 08:00-17:00) against calendar seconds since the first day's midnight."""

    def __init__(self, first_weekday: int, days: int):
        self._starts = [d * _DAY + _WORK_START for d in range(days) if (first_weekday + d) % 7 < 5]

    def to_work(self, t: float) -> float:
        """Working seconds elapsed between the calendar origin and ``t``."""
        i = bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        return i * _WORKDAY + min(t - self._starts[i], _WORKDAY)

    def to_calendar(self, w: float) -> float:
        """The calendar time at which ``w`` working seconds have elapsed."""
        i = int(w // _WORKDAY)
        return self._starts[i] + (w - i * _WORKDAY)

    def staff(self, t: float, wait_hours: float, wait: float, minutes: float, person: str | None) -> float:
        """When a staff member finishes a step that becomes ready at ``t``.

        ``wait`` is a standard exponential draw scaled to a mean of ``wait_hours`` working hours; ``minutes`` the
        processing time; both scale with the person's speed.
        """
        seconds = (wait * wait_hours * _HOUR + minutes * 60.0) * SPEED.get(person, 1.0)
        return self.to_calendar(self.to_work(t) + seconds)


def _validate_arguments(n_cases: int, seed: int) -> None:
    if isinstance(n_cases, bool) or not isinstance(n_cases, int | np.integer) or n_cases < 1:
        raise ValueError(f"n_cases must be a positive integer, got {n_cases!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def generate_demo_log(n_cases: int = 2000, seed: int = 0, start: str = "2024-01-08") -> DemoLog:
    """Generate the demo loan-application event log (see the module docstring for the process model).

    Parameters
    ----------
    n_cases : int
        Number of cases (applications); they arrive over about six months whatever their number.
    seed : int
        Seed of the random generator; the same seed gives the same log.
    start : str
        Day (or time) from which applications arrive, as a naive ISO 8601 date or datetime.

    Returns
    -------
    DemoLog
        The events with the true treatment effect, treatment and outcome of every case.

    Examples
    --------
    >>> log = generate_demo_log(50, seed=1)
    >>> log.events.columns.tolist()[:4]
    ['case_id', 'activity', 'timestamp', 'resource']
    >>> int(log.events.groupby("case_id").size().min()), len(log.true_effect)
    (3, 50)
    """
    _validate_arguments(n_cases, seed)
    origin = pd.Timestamp(start)
    if origin.tzinfo is not None:
        origin = origin.tz_convert("UTC").tz_localize(None)
    midnight = origin.normalize()
    offset = (origin - midnight).total_seconds()
    rng = np.random.default_rng(seed)
    n = int(n_cases)

    # Case attributes and everything that only depends on them, vectorised.
    goal = rng.choice(len(GOALS), size=n, p=_GOAL_SHARE)
    amount = np.clip(np.round(_GOAL_MEDIAN_AMOUNT[goal] * rng.lognormal(0.0, 0.6, n) / 500.0) * 500.0, 1000, 250000)
    score = np.clip(np.round(rng.normal(680.0, 70.0, n)), 300, 850)
    branch = rng.random(n) < 0.35
    arrival = offset + np.cumsum(rng.exponential(_ARRIVAL_SPAN_DAYS * _DAY / n, n))
    missing_cdf = np.where(branch[:, None], np.cumsum(_MISSING_BRANCH), np.cumsum(_MISSING_ONLINE))
    documents = np.minimum((rng.random(n)[:, None] > missing_cdf).sum(axis=1), 3)
    log_ratio = np.log(amount / 15000.0)
    p_auto_decline = 0.015 + 0.95 * _sigmoid(-(score - 580.0) / 18.0)
    decline_logit = -2.2 - (score - 660.0) / 30.0 + 0.8 * log_ratio
    p_senior = 0.05 + 0.85 * _sigmoid((np.log(amount / 40000.0)) / 0.3)
    propensity = 0.12 + 0.76 * _sigmoid(-0.4 + 1.3 * log_ratio + 0.5 * branch - 0.4 * (score - 680.0) / 70.0)
    tau = _effect_logit(score, log_ratio)
    base_logit = -0.1 + 0.9 * (score - 680.0) / 70.0 - 0.6 * log_ratio + _GOAL_LOGIT[goal] + 0.25 * branch

    days = int(offset // _DAY + _ARRIVAL_SPAN_DAYS * 3 + 400)
    calendar = _Calendar(midnight.weekday(), days)
    draws = _Draws(rng, 8192)
    width = max(5, len(str(n)))
    case_names = [f"L{i + 1:0{width}d}" for i in range(n)]

    rows: dict[str, list] = {name: [] for name in ("case_id", "activity", "time", "resource", "documents", "offered")}
    effect = np.zeros(n)
    used_propensity = np.full(n, np.nan)
    treated = np.zeros(n, dtype=bool)
    approved = np.zeros(n, dtype=bool)
    nan = math.nan

    for i in range(n):
        case = case_names[i]

        def add(activity, t, resource, documents_missing=nan, offered=nan, case=case):
            if resource is not None and resource != SYSTEM and draws.uniform() < _MISSING_RESOURCE:
                resource = None
            rows["case_id"].append(case)
            rows["activity"].append(activity)
            rows["time"].append(t)
            rows["resource"].append(resource)
            rows["documents"].append(documents_missing)
            rows["offered"].append(offered)

        def staff(t, wait_hours, low, high, person):
            minutes = low + (high - low) * draws.uniform()
            return calendar.staff(t, wait_hours, draws.exponential(), minutes, person)

        def customer(t, mean_days):
            return t + 600.0 + draws.exponential() * mean_days * _DAY

        amount_i, score_i = float(amount[i]), float(score[i])
        t = float(arrival[i])
        if branch[i]:
            clerk = draws.pick(FRONT_OFFICE)
            t = staff(t, 0.0, 10.0, 40.0, clerk)
            add(SUBMIT, t, clerk)
        else:
            add(SUBMIT, t, SYSTEM)
        t += 5.0 + 115.0 * draws.uniform()
        add(CHECK_FRAUD, t, SYSTEM)
        if draws.uniform() < p_auto_decline[i]:
            add(AUTO_DECLINE, t + 1.0 + 59.0 * draws.uniform(), SYSTEM)
            continue

        # Documents: validate, then request / (remind) / receive / validate while some are missing.
        missing = int(documents[i])
        clerk = draws.pick(BACK_OFFICE)
        t = staff(t, 6.0, 10.0, 30.0, clerk)
        add(VALIDATE, t, clerk, float(missing))
        rounds = 0
        cancelled = False
        while missing > 0:
            if draws.uniform() < 0.2:
                clerk = draws.pick(BACK_OFFICE)
            t = staff(t, 1.0, 5.0, 20.0, clerk)
            add(REQUEST, t, clerk, float(missing))
            if draws.uniform() < 0.25:
                t += (3.0 + 3.0 * draws.uniform()) * _DAY
                add(REQUEST, t, SYSTEM, float(missing))
            if draws.uniform() < 0.05 + 0.04 * rounds:
                if draws.uniform() < 0.6:
                    add(CANCEL, t + 14 * _DAY + _HOUR * draws.uniform(), SYSTEM)
                else:
                    clerk = draws.pick(FRONT_OFFICE)
                    add(CANCEL, staff(customer(t, 3.0), 2.0, 5.0, 15.0, clerk), clerk)
                cancelled = True
                break
            t = customer(t, 2.0)
            add(RECEIVE, t, SYSTEM if draws.uniform() < 0.5 else None)
            missing = 0 if draws.uniform() < 0.3 else missing - 1
            rounds += 1
            t = staff(t, 4.0, 10.0, 30.0, clerk)
            add(VALIDATE, t, clerk, float(missing))
        if cancelled:
            continue

        # Assessment.
        analyst = draws.pick(ANALYSTS)
        t = staff(t, 8.0, 20.0, 60.0, analyst)
        add(ASSESS, t, analyst)
        senior = None
        if draws.uniform() < p_senior[i]:
            senior = draws.pick(SENIORS)
            t = staff(t, 16.0, 30.0, 90.0, senior)
            add(SENIOR_REVIEW, t, senior)
        if draws.uniform() < _sigmoid(decline_logit[i] + 0.2 * rounds):
            add(DECLINE, staff(t, 1.0, 5.0, 30.0, senior or analyst), senior or analyst)
            continue

        # Offer and revised offers.
        officer = draws.pick(LOAN_OFFICERS)
        ratio = min(1.0, max(0.6, 1.0 - 0.003 * max(0.0, 700.0 - score_i) - 0.05 * draws.uniform()))
        t = staff(t, 4.0, 15.0, 45.0, officer)
        add(SEND_OFFER, t, officer, offered=round(amount_i * ratio / 100.0) * 100.0)
        revisions = 0
        while revisions < 2 and draws.uniform() < 0.15:
            ratio = min(1.0, ratio + 0.05 + 0.05 * draws.uniform())
            t = staff(customer(t, 2.0), 4.0, 15.0, 45.0, officer)
            add(SEND_OFFER, t, officer, offered=round(amount_i * ratio / 100.0) * 100.0)
            revisions += 1

        # Treatment and outcome.
        logit0 = base_logit[i] - 0.3 * rounds + 0.4 * revisions - 2.0 * (1.0 - ratio)
        p0, p1 = _sigmoid(logit0), _sigmoid(logit0 + tau[i])
        effect[i] = p1 - p0
        used_propensity[i] = propensity[i]
        if draws.uniform() < propensity[i]:
            treated[i] = True
            caller = officer if draws.uniform() < 0.8 else draws.pick(LOAN_OFFICERS)
            t = staff(t, 12.0, 5.0, 20.0, caller)
            add(TREATMENT, t, caller)
        if draws.uniform() < (p1 if treated[i] else p0):
            approved[i] = True
            t = customer(t, 4.0)
            add(RECEIVE_SIGNED, t, SYSTEM if draws.uniform() < 0.5 else None)
            approver = senior if senior is not None else officer
            add(APPROVE, staff(t, 6.0, 10.0, 30.0, approver), approver)
            continue
        ending = draws.uniform()
        if ending < 0.55:
            add(CANCEL, t + 30 * _DAY + 2 * _HOUR * draws.uniform(), SYSTEM)
        elif ending < 0.75:
            add(CANCEL, staff(customer(t, 5.0), 2.0, 5.0, 15.0, officer), officer)
        else:
            t = customer(t, 4.0)
            add(RECEIVE_SIGNED, t, SYSTEM if draws.uniform() < 0.5 else None)
            add(DECLINE, staff(t, 6.0, 10.0, 40.0, analyst), analyst)

    events = _assemble(midnight, case_names, rows, amount, goal, score, branch)
    index = pd.Index(case_names, name="case_id")
    return DemoLog(
        events=events,
        true_effect=pd.Series(effect, index=index, name="true_effect"),
        treated=pd.Series(treated, index=index, name="treated"),
        approved=pd.Series(approved, index=index, name="approved"),
        propensity=pd.Series(used_propensity, index=index, name="propensity"),
    )


def _assemble(
    midnight: pd.Timestamp,
    case_names: list[str],
    rows: dict[str, list],
    amount: np.ndarray,
    goal: np.ndarray,
    score: np.ndarray,
    branch: np.ndarray,
) -> pd.DataFrame:
    """Build the events frame: case attributes repeated per row, timestamps as ISO text with milliseconds."""
    case_index = pd.Index(case_names).get_indexer(rows["case_id"])
    millis = np.round(np.asarray(rows["time"]) * 1000.0).astype("int64")
    stamps = np.datetime64(midnight.to_datetime64(), "ms") + millis.astype("timedelta64[ms]")
    return pd.DataFrame(
        {
            "case_id": rows["case_id"],
            "activity": rows["activity"],
            "timestamp": np.datetime_as_string(stamps, unit="ms"),
            "resource": pd.array(rows["resource"], dtype="str"),
            "amount": amount[case_index].astype("int64"),
            "loan_goal": np.asarray(GOALS, dtype=object)[goal[case_index]],
            "credit_score": score[case_index].astype("int64"),
            "channel": np.where(branch[case_index], "branch", "online"),
            "documents_missing": pd.array(rows["documents"], dtype="float64").astype("Int64"),
            "offered_amount": pd.array(rows["offered"], dtype="float64").astype("Int64"),
        }
    )


#: Name of the demo project (``serve --demo`` opens on it, found by this name).
DEMO_PROJECT = "Demo: loan applications"
#: Resources the demo's resource-allocation plugin may book for the treatment (the demo's loan officers).
DEMO_RESOURCES = list(LOAN_OFFICERS)


def create_demo_project(core, n_cases: int = 2000, seed: int = 0, report=None):
    """Upload the synthetic demo log, define its columns and create its project (training starts in the background).

    Parameters
    ----------
    core : PrCore
        The facade the project is created through (with its validation, like any user's).
    n_cases, seed : int
        Of :func:`generate_demo_log`.
    report : callable, optional
        Told what happens, one sentence at a time (e.g. ``print``).

    Returns
    -------
    Project
        The new project, ``PREPROCESSING``.
    """
    report = report or (lambda text: None)
    demo = generate_demo_log(n_cases=n_cases, seed=seed)
    event_log = core.upload_event_log(demo.to_csv(), filename="demo-loan-applications.csv")
    report(f"Uploaded {event_log.file_name}: {event_log.n_rows:,} events, columns {event_log.columns_header}")
    analysis = core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    report(f"Activities: {len(analysis['activities_count'])}, resources: {len(analysis['resources_count'])}")
    additional_info = {"resource-allocation": {"available_resources": DEMO_RESOURCES, "treatment_duration": "1h"}}
    plugins = core.available_plugins()
    project = core.create_project(
        event_log.id,
        positive_outcome=demo.outcome,
        treatment=demo.treatment,
        name=DEMO_PROJECT,
        description="Synthetic loan applications; the treatment 'Call customer' has a known effect",
        additional_info={k: v for k, v in additional_info.items() if k in plugins} or None,
    )
    report(f"Project {project.id} created: {project.status}")
    return project


def find_demo_project(core) -> int | None:
    """The id of the demo project (by its name), or ``None`` when there is none yet."""
    for project in core.list_projects():
        if project.name == DEMO_PROJECT:
            return project.id
    return None
