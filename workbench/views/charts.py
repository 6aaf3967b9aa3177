"""Bokeh charts of the workbench: bar charts of counts, metrics by prefix length, live histograms and rates.

Plain Bokeh figures keep the dashboard light (no HoloViews pipeline per update) and let the live view change a
``ColumnDataSource`` once per drain, inside Panel's periodic callback (which holds the document lock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LinearAxis, NumeralTickFormatter, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

BLUE = "#3b73b9"
GREY = "#c9d1da"


def _base(title: str, height: int, **kwargs):
    """A figure without tools (hover tools are added where wanted).

    With the toolbar hidden the default tools only let a drag pan the chart with no way to reset it, and each one
    is a Bokeh model more to build on the server, send and render in the browser on every page load.
    """
    plot = figure(title=title, height=height, sizing_mode="stretch_width", tools="", toolbar_location=None, **kwargs)
    plot.title.text_font_size = "13px"
    plot.outline_line_color = None
    plot.grid.grid_line_alpha = 0.4
    return plot


def flowing(plot, basis: int = 340):
    """Let a chart of a :class:`panel.FlexBox` lie beside the others while each gets ``basis`` pixels, and below them
    on a narrower window (a figure that stretches would otherwise take a whole line, or squeeze its neighbours)."""
    plot.styles = {"flex": f"1 1 {basis}px", "min-width": "0"}
    return plot


def _bar_labels(values: Sequence[float], end: float) -> dict[str, list]:
    """Where each bar's label goes: inside the end of a long bar (in white), after a short one.

    A label after the longest bar would run past the axis whatever its range (its width is in pixels, the axis in
    data units); inside the bar it never does.
    """
    inside = [v > end * 0.5 for v in values]
    return {
        "label_align": ["right" if i else "left" for i in inside],
        "label_offset": [-4 if i else 4 for i in inside],
        "label_colour": ["white" if i else "#444" for i in inside],
    }


def bar_chart(counts: Mapping[str, int], title: str, limit: int = 30, colour: str = BLUE):
    """Horizontal bars of ``counts`` (most frequent on top), at most ``limit`` of them, each labelled with its count."""
    items = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    hidden = len(items) - limit
    items = items[:limit]
    labels = [str(k) for k, _ in items][::-1]
    values = [int(v) for _, v in items][::-1]
    if hidden > 0:
        title = f"{title} (top {limit} of {limit + hidden})"
    height = max(160, 22 * len(labels) + 60)
    end = max(values, default=0) or 1
    plot = _base(title, height, y_range=labels or [""], x_range=Range1d(0, end * 1.02), x_axis_label="events")
    source = ColumnDataSource(
        {"label": labels, "value": values, "text": [f"{v:,}" for v in values], **_bar_labels(values, end)}
    )
    plot.hbar(y="label", right="value", height=0.7, source=source, color=colour)
    plot.text(
        x="value",
        y="label",
        text="text",
        source=source,
        x_offset="label_offset",
        text_align="label_align",
        text_color="label_colour",
        text_baseline="middle",
        text_font_size="11px",
        name="bar-labels",
    )
    plot.ygrid.grid_line_color = None
    plot.add_tools(HoverTool(tooltips=[("", "@label"), ("events", "@value{0,0}")]))
    return plot


def metrics_by_prefix_length(rows: Sequence[Mapping], title: str):
    """Lines of every share-like metric (values within [-1, 1]) by prefix length, support as grey bars behind."""
    lengths = [row.get("prefix_length") for row in rows]
    keys = [k for k in rows[0] if k not in ("prefix_length", "support")] if rows else []

    def share_like(key):
        values = [r.get(key) for r in rows if r.get(key) is not None]
        return all(isinstance(v, int | float) and not isinstance(v, bool) and -1.0001 <= v <= 1.0001 for v in values)

    metrics = [k for k in keys if share_like(k)]
    plot = _base(title, 290, x_axis_label="prefix length", y_range=Range1d(min(0, *_lows(rows, metrics)), 1.05))
    if rows and any("support" in r for r in rows):
        support = [r.get("support", 0) or 0 for r in rows]
        plot.extra_y_ranges = {"support": Range1d(0, max(support) * 1.1 or 1)}
        plot.add_layout(LinearAxis(y_range_name="support", axis_label="support (prefixes)"), "right")
        plot.vbar(
            x=lengths, top=support, width=0.8, y_range_name="support", color=GREY, alpha=0.6, legend_label="support"
        )
    shown = metrics[:6]
    if shown:  # one renderer for every metric line: quick to build and to draw
        lines = ColumnDataSource(
            {
                "x": [lengths] * len(shown),
                "y": [[r.get(m) if r.get(m) is not None else float("nan") for r in rows] for m in shown],
                "metric": shown,
                "colour": [Category10_10[i % 10] for i in range(len(shown))],
            }
        )
        plot.multi_line(xs="x", ys="y", line_color="colour", line_width=2, legend_field="metric", source=lines)
    _legend_below(plot)
    return plot


def plugin_beside_baselines(
    rows: Sequence[Mapping], baselines: Mapping[str, Sequence[Mapping]], metric: str, title: str
):
    """One metric by prefix length: the plugin's line, each baseline's dashed line, the support as grey bars."""
    lengths = [str(row.get("prefix_length")) for row in rows]
    plot = _base(title, 290, x_range=lengths or [""], x_axis_label="prefix length", y_axis_label=metric)
    support = [row.get("support", 0) or 0 for row in rows]
    values = [v for series in [rows, *baselines.values()] for r in series if (v := r.get(metric)) is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.1 or 0.05
    plot.y_range = Range1d(low - pad, high + pad)
    plot.extra_y_ranges = {"support": Range1d(0, max(support, default=0) * 1.1 or 1)}
    plot.add_layout(LinearAxis(y_range_name="support", axis_label="support (prefixes)"), "right")
    plot.vbar(x=lengths, top=support, width=0.8, y_range_name="support", color=GREY, alpha=0.6, legend_label="support")
    series = {"plugin": (rows, "solid", BLUE)}
    for number, (name, baseline_rows) in enumerate(baselines.items()):
        series[name] = (baseline_rows, "dashed", Category10_10[(number + 1) % 10])
    for name, (series_rows, dash, colour) in series.items():
        by_length = {str(r.get("prefix_length")): r.get(metric) for r in series_rows}
        ys = [by_length.get(n) if by_length.get(n) is not None else float("nan") for n in lengths]
        plot.line(x=lengths, y=ys, line_width=2, line_dash=dash, color=colour, legend_label=name)
    plot.xaxis.major_label_orientation = 0.0 if len(lengths) < 20 else 0.8
    _legend_below(plot)
    plot.add_tools(HoverTool(tooltips=[("prefix length", "@x"), (metric, "@y{0.000}")]))
    return plot


def reliability_chart(curves: Mapping[str, Sequence[Mapping]], title: str):
    """Observed frequency against predicted probability per bin (the diagonal is perfect calibration)."""
    plot = _base(
        title,
        290,
        x_range=Range1d(0, 1),
        y_range=Range1d(0, 1),
        x_axis_label="predicted probability",
        y_axis_label="observed frequency",
    )
    plot.line([0, 1], [0, 1], color=GREY, line_dash="dotted", legend_label="perfect")
    for number, (name, bins) in enumerate(curves.items()):
        colour = BLUE if number == 0 else Category10_10[number % 10]
        source = ColumnDataSource(
            {"x": [b["predicted"] for b in bins], "y": [b["observed"] for b in bins], "n": [b["count"] for b in bins]}
        )
        plot.line("x", "y", source=source, color=colour, line_width=2, legend_label=name)
        plot.scatter("x", "y", source=source, color=colour, size=6)
    plot.add_tools(HoverTool(tooltips=[("predicted", "@x{0.00}"), ("observed", "@y{0.00}"), ("prefixes", "@n")]))
    _legend_below(plot)
    return plot


def _legend_below(plot) -> None:
    if plot.legend:
        legend = plot.legend[0]
        legend.orientation = "horizontal"
        legend.label_text_font_size = "11px"
        legend.click_policy = "hide"
        plot.add_layout(legend, "below")


def _lows(rows, metrics) -> list[float]:
    return [min((r.get(m) for r in rows if r.get(m) is not None), default=0) for m in metrics] or [0]


class RateChart:
    """Events per second over the last minutes (one point per second)."""

    def __init__(self, window: int = 120):
        self.window = window
        self.source = ColumnDataSource({"t": [], "rate": []})
        self.plot = _base("Events per second", 220, x_axis_label="seconds ago")
        self.plot.line("t", "rate", source=self.source, line_width=2, color=BLUE)
        self.plot.varea(x="t", y1=0, y2="rate", source=self.source, color=BLUE, alpha=0.15)
        self.plot.x_range.start, self.plot.x_range.end = -window, 0
        self.plot.y_range.start = 0

    def update(self, counts: Mapping[int, int], now: int) -> None:
        seconds = np.arange(now - self.window, now)
        rates = [counts.get(int(s), 0) for s in seconds]
        self.source.data = {"t": (seconds - now).tolist(), "rate": rates}


class Histogram:
    """A histogram of values in [low, high] (e.g. alarm probabilities or treatment effects)."""

    def __init__(self, title: str, low: float = 0.0, high: float = 1.0, bins: int = 20, colour: str = BLUE):
        self.edges = np.linspace(low, high, bins + 1)
        self.source = ColumnDataSource({"left": self.edges[:-1], "right": self.edges[1:], "count": np.zeros(bins)})
        self.plot = _base(title, 220, x_axis_label="value", y_axis_label="prescriptions")
        self.plot.quad(
            left="left", right="right", bottom=0, top="count", source=self.source, color=colour, line_color="white"
        )
        self.plot.y_range.start = 0
        self.plot.add_tools(HoverTool(tooltips=[("from", "@left{0.00}"), ("to", "@right{0.00}"), ("", "@count")]))

    def set_title(self, title: str) -> None:
        self.plot.title.text = title

    def update(self, values: Sequence[float]) -> None:
        counts, _ = np.histogram(
            np.clip(np.asarray(values, dtype=float), self.edges[0], self.edges[-1]), bins=self.edges
        )
        self.source.data = {"left": self.edges[:-1], "right": self.edges[1:], "count": counts}


class ShareChart:
    """Horizontal bars: the share of prescriptions that recommend the treatment, per plugin (0 to 100 %)."""

    def __init__(self, labels: Sequence[str]):
        self.names = list(labels)
        labels = self.names or ["(no treatment plugin)"]
        self.labels = labels
        self.source = ColumnDataSource({"label": labels, "share": [0.0] * len(labels), "text": [""] * len(labels)})
        self.source.data.update(_bar_labels([0.0] * len(labels), 1.0))
        self.plot = _base("Treatments recommended", 90 + 40 * len(labels), y_range=labels, x_range=Range1d(0, 1))
        self.plot.hbar(y="label", right="share", height=0.6, source=self.source, color="#2a9d8f")
        self.plot.text(
            x="share",
            y="label",
            text="text",
            source=self.source,
            x_offset="label_offset",
            text_align="label_align",
            text_color="label_colour",
            text_baseline="middle",
            text_font_size="11px",
            name="bar-labels",
        )
        self.plot.xaxis.axis_label = "share of prescriptions"
        self.plot.xaxis.formatter = NumeralTickFormatter(format="0%")
        self.plot.ygrid.grid_line_color = None

    def update(self, shares: Mapping[str, tuple[int, int]]) -> None:
        values, texts = [], []
        for label in self.labels:
            yes, total = shares.get(label, (0, 0))
            values.append(yes / total if total else 0.0)
            texts.append(f"{yes / total:.0%} of {total:,}" if total else "no prescription yet")
        self.source.data = {"label": self.labels, "share": values, "text": texts, **_bar_labels(values, 1.0)}
