"""Remaining time of a running case, with a conformal prediction interval.

For a running case the plugin estimates how long it will take until the case completes, and an interval that
contains the true remaining time for ``interval`` (80 % by default) of prefixes. It needs timestamps only, no
outcome or treatment definition.

What is predicted
-----------------
An event's time is its ``END_TIMESTAMP`` when it has one, else the log's order time column (``TIMESTAMP`` or
``START_TIMESTAMP``): with start and end times, a work item is done when it ends. A case completes at the latest
time of its events; the remaining time of a prefix is that completion time minus the time of the prefix's last
event. The plugin learns from and is judged on prefixes followed by another event (lengths ``1..n-1``, those of
:meth:`LabelledLog.prefixes` with ``with_next``): a running case is by definition not complete, and teaching the
model that look-alike states end at once (remaining time 0) would pull every prediction for them down.

Model
-----
LightGBM (one thread, seeded, deterministic) on the shared :class:`~prcore_core.encoding.PrefixEncoder` features
(the ``COMBINED`` blocks plus the last event's ``duration``), on the target ``log1p(hours)``. Three boosters are
fitted with the quantile loss: the median (the point prediction: the median minimises the absolute error, and a
monotone transform of the target keeps the median, so fitting it on the log scale is fitting it on seconds) and the
``(1 - interval) / 2`` and ``(1 + interval) / 2`` quantiles, the raw interval. On BPIC 2012, the median on the log
scale scored better on the tuning slice than least squares on the log scale (its mean falls between the modes of a
bimodal remaining time) and as well as the absolute loss on hours.

The interval is split-conformal: conformalized quantile regression (Romano, Patterson and Candès, 2019). The
boosters learn from the earlier training cases; the latest ``calibration_share`` of them by case start time (as the
project's own split, so the calibration cases start after the cases the boosters learnt from, as the cases the
plugin serves do) measure by how much, on the log scale, the raw interval misses each calibration prefix, and the
interval is widened (or narrowed) by the conformal ``interval`` quantile of those misses. Coverage is then honest
for cases exchangeable with the calibration cases; prefixes of one case are correlated, so it holds on average
over prefixes, not per case. With fewer than ``MIN_CALIBRATION_CASES`` calibration cases the boosters learn from
every training case and the raw interval is used uncorrected (``interval_calibration_`` says so). Absolute
residuals of the median model on the log scale gave an interval three times as wide at the same coverage.

The defaults (200 rounds at learning rate 0.08, 31 leaves) were chosen on a time-later slice of the BPIC 2012
training cases, never on held-out cases: more rounds or leaves improved the tuning slice's error by less than 0.5 %
for twice the fitting time; more history, and hours since each activity, did not help. The two interval boosters
take a third of the rounds at three times the learning rate: the conformal correction absorbs their coarser fit
(the calibrated interval on the tuning slice was as narrow, 22.7 days, in a third of the time). The three boosters
share one binned dataset. Fitting takes about 7 s on BPIC 2012.

Baselines and metrics
---------------------
:meth:`fit` also fits two baselines on every training case: the mean remaining time by prefix length, and by the
last activity (the overall mean for a length or activity never seen). :meth:`evaluate` reports on held-out cases
the mean and median absolute error (seconds and days), the coverage and mean width of the interval, the baselines'
errors beside the plugin's, overall and by prefix length, and ``mae_ratio_to_best_baseline``. A held-out case cut
off by the end of the log counts as complete at its last event, for the plugin and the baselines alike.

A case cut off by the end of the log ends with an activity that is not one of the ways the process's cases end
(:func:`final_activities`: those that end at least 1 % of the training cases): its true remaining time is unknown,
only a lower bound. Such cases are neither learnt from (a model taught that they completed at their last event
would predict too short) nor scored: :meth:`evaluate` scores the prefixes of completed held-out cases, and reports
the figures over every prefix under ``all_prefixes``. The held-out cases are the latest ones, and the end of the log
cuts off many of them: on BPIC 2012, 27 % of the held-out prefixes belong to a case that ends with a work item.

On BPIC 2012 (20,208 held-out prefixes of completed cases among the latest 20 %) the MAE is 5.18 days against 7.17
for the mean by last activity and 7.97 for the mean by prefix length (ratio 0.75), and the 80 % interval covers
0.84 of the prefixes. Over every held-out prefix, cut-off cases counted as complete at their last event, the MAE is
5.8 days (ratio 0.83) and the coverage 0.86: their true remaining times are longer than they look, so the interval
is exceeded above by 3 % of the prefixes instead of 10 %.

Output
------
``{"output": s, "lower": s, "upper": s, "unit": "seconds", "interval": 0.8, "expected_end": <ISO 8601 UTC>}``:
the predicted remaining time and the interval in whole seconds, and the expected completion (the last event's time
plus the prediction). The interval always contains the prediction. A prefix whose last event has no time gets a
null output.

lightgbm is imported when a plugin fits or a saved one is loaded, not with this module.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import param

from prcore_core import errors
from prcore_core.context import PredictionContext
from prcore_core.dataset import (
    ACTIVITY,
    CASE_ID,
    END_TIMESTAMP,
    LabelledLog,
    PrefixBatch,
    case_starts,
    order_time_column,
    sample_cases,
)
from prcore_core.encoding import PrefixEncoder, blocks_for, seconds_since_epoch
from prcore_core.metrics import by_prefix_length
from prcore_core.plugin import Plugin, PrescriptionType, Progress, no_progress, null_output, one_native_thread

#: Fewest calibration cases (and fewest cases to learn from) for a conformal correction of the interval.
MIN_CALIBRATION_CASES = 20
#: Share of the training cases an activity must end to count as a way the process's cases end.
MIN_FINAL_SHARE = 0.01
#: Prefixes encoded and scored at once (bounds memory; the encoder is fastest on few large calls).
_CHUNK = 65_536
_HOUR = 3600.0
_DAY = 86400.0
#: The baselines' keys in the metrics, with their titles.
BASELINES = {
    "mean_by_prefix_length": "Mean remaining time by prefix length",
    "mean_by_last_activity": "Mean remaining time by last activity",
}


# -- times and targets ---------------------------------------------------------------------------------------------
def event_times(events: pd.DataFrame) -> np.ndarray:
    """Seconds since the epoch of every event: its end time when known, else the order time (``NaN`` if neither).

    >>> events = pd.DataFrame({"START_TIMESTAMP": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00"], utc=True),
    ...                        "END_TIMESTAMP": pd.to_datetime(["2024-01-01 10:30", None], utc=True)})
    >>> (event_times(events) - event_times(events)[0]).tolist()
    [0.0, 1800.0]
    """
    times = seconds_since_epoch(events[order_time_column(events)])
    if END_TIMESTAMP in events.columns:
        ends = seconds_since_epoch(events[END_TIMESTAMP])
        times = np.where(np.isnan(ends), times, ends)
    return times


def remaining_times(events: pd.DataFrame) -> np.ndarray:
    """Per event: seconds from its time until its case completes (the latest time of the case's events).

    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b"],
    ...                        "TIMESTAMP": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"], utc=True)})
    >>> (remaining_times(events) / 86400).tolist()
    [2.0, 0.0, 0.0]
    """
    times = event_times(events)
    if not len(times):
        return times
    starts = case_starts(events[CASE_ID].to_numpy())
    first_rows = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    with np.errstate(invalid="ignore"):
        completion = np.fmax.reduceat(times, first_rows)  # fmax: events without a time are ignored
    number = np.cumsum(np.r_[True, starts[1:] != starts[:-1]]) - 1
    return np.maximum(completion[number] - times, 0.0)


def _to_log_hours(seconds: np.ndarray) -> np.ndarray:
    return np.log1p(np.asarray(seconds, dtype=np.float64) / _HOUR)


def _to_seconds(log_hours: np.ndarray) -> np.ndarray:
    return np.maximum(np.expm1(log_hours) * _HOUR, 0.0)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score: the split-conformal correction for coverage ``level``.

    ``inf`` when there are too few scores for the level.

    >>> conformal_quantile(np.arange(10.0), 0.8)
    8.0
    >>> conformal_quantile(np.arange(3.0), 0.8)
    inf
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = int(np.ceil((len(scores) + 1) * level))
    return float(scores[rank - 1]) if 1 <= rank <= len(scores) else float("inf")


def _error_figures(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Mean and median absolute error in seconds (1 decimal) and days (4 decimals)."""
    if not len(truth):
        return {"mae_seconds": None, "mae_days": None, "median_absolute_error_seconds": None,
                "median_absolute_error_days": None}  # fmt: skip
    error = np.abs(np.asarray(predicted) - np.asarray(truth))
    mae, median = float(error.mean()), float(np.median(error))
    return {
        "mae_seconds": round(mae, 1),
        "mae_days": round(mae / _DAY, 4),
        "median_absolute_error_seconds": round(median, 1),
        "median_absolute_error_days": round(median / _DAY, 4),
    }


def _days_figures(truth: np.ndarray, output: np.ndarray) -> dict[str, float | None]:
    """Mean and median absolute error in days (the figures of a row by prefix length)."""
    figures = _error_figures(truth, output)
    return {"mae_days": figures["mae_days"], "median_absolute_error_days": figures["median_absolute_error_days"]}


def _interval_figures(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict[str, float | None]:
    """Share of truths inside ``[lower, upper]`` and the mean width (seconds and days)."""
    if not len(truth):
        return {"coverage": None, "mean_interval_width_seconds": None, "mean_interval_width_days": None}
    width = float(np.mean(upper - lower))
    return {
        "coverage": round(float(np.mean((truth >= lower) & (truth <= upper))), 4),
        "mean_interval_width_seconds": round(width, 1),
        "mean_interval_width_days": round(width / _DAY, 4),
    }


# -- the plugin ----------------------------------------------------------------------------------------------------
class RemainingTime(Plugin):
    """Time until a running case completes, with a conformal prediction interval."""

    key = "remaining-time"
    title = "Remaining time prediction"
    description = (
        "This plugin predicts how long a running case will take until it completes, with a prediction interval "
        "that holds the true remaining time for the chosen share of cases."
    )
    prescription_type = PrescriptionType.REMAINING_TIME

    n_estimators = param.Integer(default=200, bounds=(10, 5000), doc="Boosting rounds of each of the three models.")
    learning_rate = param.Number(default=0.08, bounds=(0.001, 1.0), doc="Shrinkage of each boosting round.")
    num_leaves = param.Integer(default=31, bounds=(2, 1024), doc="Leaves per tree: larger fits finer, and slower.")
    interval = param.Number(
        default=0.8, bounds=(0.5, 0.99),
        doc="Share of cases whose true remaining time the prediction interval should contain.",
    )  # fmt: skip
    calibration_share = param.Number(
        default=0.2, bounds=(0.05, 0.5),
        doc="Share of the training cases (the latest by start time) held back to calibrate the interval.",
    )  # fmt: skip
    max_training_prefixes = param.Integer(
        default=150_000, bounds=(1_000, None),
        doc="Training prefixes the models learn from at most (whole cases, sampled with the seed): bounds memory "
            "and fitting time.",
    )  # fmt: skip
    seed = param.Integer(default=42, doc="Seed of the case sample and of the boosters: same data, same model.")

    @classmethod
    def load_dependencies(cls) -> None:
        import lightgbm  # noqa: F401

    @classmethod
    def applicability(cls, log: LabelledLog) -> str | None:
        """Applicable when some training case has two events with times (a remaining time to learn from)."""
        try:
            order_time_column(log.events)
        except KeyError:
            return f"{cls.title} needs timestamps"
        if not len(_learning_prefixes(log)):
            return f"{cls.title} needs cases of two events or more with timestamps"
        return None

    # -- learning ------------------------------------------------------------------------------------------------
    def fit(self, log: LabelledLog, progress: Progress = no_progress) -> RemainingTime:
        """Fit the encoder, the baselines and the three boosters; calibrate the interval on later cases."""
        reason = self.applicability(log)
        if reason is not None:
            raise errors.PrCoreError(reason)
        progress(0.02, "Measuring remaining times")
        self.final_activities_ = final_activities(log.events)
        if not len(_learning_prefixes(log, self.final_activities_)):
            self.final_activities_ = None  # no common way to end: every case counts as complete
        self.encoder_ = PrefixEncoder((*blocks_for("COMBINED"), "duration")).fit(log.events, log.attributes)
        self._fit_baselines(log)
        split = log.split_by_start(self.calibration_share, min_cases=MIN_CALIBRATION_CASES)
        fitting, calibration = split if split is not None else (log, None)
        final = self.final_activities_
        if calibration is not None and not (
            len(_learning_prefixes(fitting, final)) and len(_learning_prefixes(calibration, final))
        ):
            fitting, calibration = log, None  # one part has no completed case of two timed events
        batch = _learning_prefixes(fitting, final)
        share = 0.0 if calibration is None else self.calibration_share
        cap = round(self.max_training_prefixes * (1.0 - share))
        batch.ends = batch.ends[sample_cases(batch.case_ids, cap, self.seed)]
        progress(0.1, f"Encoding {len(batch):,} training prefixes")
        features = self._features(batch)
        target = _to_log_hours(remaining_times(fitting.events)[batch.ends])
        self.n_training_prefixes_ = len(batch)
        self.n_training_cases_ = int(pd.unique(batch.case_ids).size)
        self.quantiles_ = (0.5, (1.0 - self.interval) / 2, (1.0 + self.interval) / 2)
        self.models_ = self._boost(features, target, progress)
        progress(0.9, "Calibrating the prediction interval on later cases")
        self._calibrate(calibration)
        progress(1.0, "Fitted")
        return self

    def _fit_baselines(self, log: LabelledLog) -> None:
        """Mean remaining time by prefix length and by last activity, over every training prefix learnt from."""
        batch = _learning_prefixes(log, self.final_activities_)
        remaining = pd.Series(remaining_times(log.events)[batch.ends])
        self.baseline_mean_ = float(remaining.mean())
        self.mean_by_length_ = {int(k): float(v) for k, v in remaining.groupby(batch.lengths).mean().items()}
        activities = log.events[ACTIVITY].astype("string").to_numpy()[batch.ends]
        self.mean_by_activity_ = {str(k): float(v) for k, v in remaining.groupby(activities).mean().items()}

    def _boost(self, features: np.ndarray, target: np.ndarray, progress: Progress) -> list:
        """The median booster, then the two interval boosters (fewer, larger steps), on one binned dataset."""
        import lightgbm

        common = {"num_threads": 1, "deterministic": True, "force_row_wise": True, "seed": self.seed, "verbosity": -1}
        models = []
        with one_native_thread(None):
            dataset = lightgbm.Dataset(features, target, params=common, free_raw_data=False).construct()
            for number, alpha in enumerate(self.quantiles_):
                rounds, rate = self.n_estimators, self.learning_rate
                if number:  # the conformal correction absorbs a coarser fit of the interval's quantiles
                    rounds, rate = max(self.n_estimators // 3, 10), min(self.learning_rate * 3, 1.0)
                progress(0.2 + 0.35 * bool(number) + 0.15 * number, f"Boosting the {alpha:.0%} quantile on "
                         f"{len(target):,} prefixes of {self.n_training_cases_:,} cases")  # fmt: skip
                settings = {**common, "objective": "quantile", "alpha": alpha, "learning_rate": rate,
                            "num_leaves": self.num_leaves, "min_data_in_leaf": 20}  # fmt: skip
                models.append(lightgbm.train(settings, dataset, num_boost_round=rounds))
        return models

    def _calibrate(self, calibration: LabelledLog | None) -> None:
        """The conformal correction of the raw interval on the log scale (0 without calibration cases)."""
        if calibration is None:
            self.correction_ = 0.0
            self.interval_calibration_ = {
                "method": "uncorrected quantile regression",
                "detail": f"Fewer than {MIN_CALIBRATION_CASES} training cases to calibrate the interval on",
            }
            return
        batch = _learning_prefixes(calibration, self.final_activities_)
        cap = round(self.max_training_prefixes * self.calibration_share)
        batch.ends = batch.ends[sample_cases(batch.case_ids, cap, self.seed)]
        _, low, high = self._raw(batch)
        truth = _to_log_hours(remaining_times(calibration.events)[batch.ends])
        misses = np.maximum(low - truth, truth - high)
        self.correction_ = conformal_quantile(misses, self.interval)
        method = "conformalized quantile regression"
        if not np.isfinite(self.correction_):  # too few prefixes for the level: the largest miss, not a guarantee
            self.correction_, method = float(misses.max()), "largest calibration miss (too few prefixes)"
        self.interval_calibration_ = {
            "method": method,
            "cases": calibration.n_cases,
            "prefixes": len(batch),
            "correction_log_hours": round(self.correction_, 6),
            "raw_coverage": round(float(np.mean(misses <= 0)), 4),
        }

    # -- features and predictions --------------------------------------------------------------------------------
    def _features(self, batch: PrefixBatch) -> np.ndarray:
        return np.ascontiguousarray(self.encoder_.transform(batch), dtype=np.float32)

    def _raw(self, batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median, lower and upper quantile per prefix, on the log-hours scale, before the conformal correction."""
        parts = []
        for start in range(0, len(batch), _CHUNK):
            chunk = PrefixBatch(batch.events, batch.ends[start : start + _CHUNK], batch.attributes)
            features = self._features(chunk)  # boosters on one thread need no thread-pool guard (~0.4 ms a call)
            parts.append(np.column_stack([m.predict(features, num_threads=1) for m in self.models_]))
        raw = np.vstack(parts) if parts else np.zeros((0, 3))
        return raw[:, 0], raw[:, 1], raw[:, 2]

    def _seconds(self, batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction, lower and upper bound per prefix, in whole seconds; the interval contains the prediction."""
        median, low, high = self._raw(batch)
        output = np.round(_to_seconds(median))
        with np.errstate(over="ignore"):
            lower = np.minimum(np.round(_to_seconds(low - self.correction_)), output)
            upper = np.maximum(np.round(_to_seconds(high + self.correction_)), output)
        return output, lower, upper

    def _baseline_predictions(self, batch: PrefixBatch, events: pd.DataFrame) -> dict[str, np.ndarray]:
        by_length = pd.Series(batch.lengths).map(self.mean_by_length_)
        activities = pd.Series(events[ACTIVITY].astype("string").to_numpy()[batch.ends])
        by_activity = activities.map(self.mean_by_activity_)
        return {
            "mean_by_prefix_length": by_length.fillna(self.baseline_mean_).to_numpy(dtype=np.float64),
            "mean_by_last_activity": by_activity.fillna(self.baseline_mean_).to_numpy(dtype=np.float64),
        }

    # -- metrics -------------------------------------------------------------------------------------------------
    def evaluate(self, log: LabelledLog, progress: Progress = no_progress) -> dict[str, Any]:
        """Errors and interval figures on the held-out prefixes followed by another event, beside the baselines.

        Scored are the prefixes of held-out cases that completed, ending with one of the activities that end the
        training cases (``final_activities``): the true remaining time of a case cut off by the end of the log is
        unknown. ``all_prefixes`` has the figures over every held-out prefix, cut-off cases counted as complete at
        their last event.

        Overall: ``mae_seconds``/``mae_days``, ``median_absolute_error_seconds``/``_days``, ``coverage``,
        ``mean_interval_width_seconds``/``_days``, ``interval`` (nominal), ``support``; ``baselines`` with each
        baseline's errors; ``best_baseline`` and ``mae_ratio_to_best_baseline`` (below 1: better than it);
        ``interval_calibration`` says how the interval was calibrated. ``by_prefix_length`` rows have the plugin's
        figures in days and each baseline's ``<baseline>_mae_days``; each baseline also has its own ``title`` and
        ``by_prefix_length`` rows (the shape the dashboard draws beside the plugin's).
        """
        every = _learning_prefixes(log)
        final = getattr(self, "final_activities_", None)
        scored = completed(log.events, final)[every.ends]
        if not scored.any():
            return {"detail": "No held-out prefix of a completed case has a later event with a time"}
        batch = PrefixBatch(log.events, every.ends[scored], log.attributes)
        progress(0.1, f"Predicting {len(every):,} held-out prefixes")
        all_output, all_lower, all_upper = self._seconds(every)
        all_truth = remaining_times(log.events)[every.ends]
        truth, output, lower, upper = all_truth[scored], all_output[scored], all_lower[scored], all_upper[scored]
        baselines = self._baseline_predictions(batch, log.events)
        progress(0.8, "Measuring by prefix length")
        metrics: dict[str, Any] = {**_error_figures(truth, output), **_interval_figures(truth, lower, upper)}
        metrics["interval"] = float(self.interval)
        metrics["support"] = len(truth)
        metrics["final_activities"] = sorted(final) if final is not None else None
        metrics["all_prefixes"] = {  # cut-off cases included, scored as if their last event completed them
            **_error_figures(all_truth, all_output), **_interval_figures(all_truth, all_lower, all_upper),
            "support": len(all_truth),
        }  # fmt: skip
        metrics["baselines"] = {
            name: {"title": BASELINES[name], **_error_figures(truth, predicted), "support": len(truth),
                   "by_prefix_length": by_prefix_length(batch.lengths, _days_figures, truth=truth, output=predicted)}
            for name, predicted in baselines.items()
        }  # fmt: skip
        best = min(BASELINES, key=lambda name: metrics["baselines"][name]["mae_seconds"])
        best_mae = metrics["baselines"][best]["mae_seconds"]
        metrics["best_baseline"] = best
        metrics["mae_ratio_to_best_baseline"] = round(metrics["mae_seconds"] / best_mae, 4) if best_mae else None
        metrics["interval_calibration"] = dict(self.interval_calibration_)

        def compute(truth, output, lower, upper, **predicted):
            row = _days_figures(truth, output)
            interval = _interval_figures(truth, lower, upper)
            row.update(coverage=interval["coverage"], mean_interval_width_days=interval["mean_interval_width_days"])
            for name, values in predicted.items():
                row[f"{name}_mae_days"] = _error_figures(truth, values)["mae_days"]
            return row

        metrics["by_prefix_length"] = by_prefix_length(
            batch.lengths, compute, truth=truth, output=output, lower=lower, upper=upper, **baselines
        )
        return metrics

    # -- predicting ----------------------------------------------------------------------------------------------
    def predict(self, batch: PrefixBatch, context: PredictionContext | None = None) -> list[dict[str, Any]]:
        if not len(batch):
            return []
        if not hasattr(self, "models_"):
            return [null_output("The plugin is not trained") for _ in range(len(batch))]
        last = event_times(batch.events)[batch.ends]
        timed = np.flatnonzero(~np.isnan(last))
        predictions = [null_output("The prefix's last event has no time") for _ in range(len(batch))]
        if not len(timed):
            return predictions
        output, lower, upper = self._seconds(PrefixBatch(batch.events, batch.ends[timed], batch.attributes))
        interval = float(self.interval)
        for row, seconds, low, high, at in zip(
            timed.tolist(), output.tolist(), lower.tolist(), upper.tolist(), last[timed].tolist(), strict=True
        ):
            end = dt.datetime.fromtimestamp(round(at + seconds), dt.UTC)
            predictions[row] = {
                "output": seconds, "lower": low, "upper": high, "unit": "seconds", "interval": interval,
                "expected_end": end.isoformat(),
            }  # fmt: skip
        return predictions


def final_activities(events: pd.DataFrame, min_share: float = MIN_FINAL_SHARE) -> frozenset[str]:
    """The activities that end at least ``min_share`` of the cases of ``events``: how this process's cases end.

    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b", "b", "c"], "ACTIVITY": ["x", "end", "x", "end", "x"]})
    >>> sorted(final_activities(events, 0.5))
    ['end']
    """
    if not len(events):
        return frozenset()
    case = events[CASE_ID].to_numpy()
    last_rows = np.r_[case[1:] != case[:-1], True]
    shares = events[ACTIVITY].astype("string")[last_rows].value_counts(normalize=True)
    return frozenset(str(activity) for activity, share in shares.items() if share >= min_share)


def completed(events: pd.DataFrame, final: frozenset[str] | None) -> np.ndarray:
    """Per event row: did its case end with one of the ``final`` activities (all true when ``final`` is None)?

    A case that ends elsewhere was cut off by the end of the log: its remaining time is not known, only a lower
    bound of it, so it is neither learnt from nor scored as if its last event were its completion.

    >>> events = pd.DataFrame({"CASE_ID": ["a", "a", "b"], "ACTIVITY": ["x", "end", "x"]})
    >>> completed(events, frozenset({"end"})).tolist()
    [True, True, False]
    """
    if final is None:
        return np.ones(len(events), dtype=bool)
    if not len(events):
        return np.zeros(0, dtype=bool)
    case = events[CASE_ID].to_numpy()
    starts = case_starts(case)
    last_rows = np.r_[starts[1:] != starts[:-1], True]
    ended = pd.Series(events[ACTIVITY].astype("string").to_numpy()[last_rows]).isin(final).to_numpy(dtype=bool)
    number = np.cumsum(np.r_[True, starts[1:] != starts[:-1]]) - 1
    return ended[number]


def _learning_prefixes(log: LabelledLog, final: frozenset[str] | None = None) -> PrefixBatch:
    """Prefixes followed by another event whose last event and case completion have times (of completed cases)."""
    batch = log.prefixes(with_next=True)
    remaining = remaining_times(log.events)[batch.ends]
    keep = ~np.isnan(remaining) & completed(log.events, final)[batch.ends]
    batch.ends = batch.ends[keep]
    return batch
