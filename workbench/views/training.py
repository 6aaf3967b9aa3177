"""Training progress and held-out metrics: per plugin status, progress bar and sentence, live without reload."""

from __future__ import annotations

import html
import json

import panel as pn
import param

from prcore_core.project import PluginState, Project
from prcore_core.status import PLUGIN_TRAINED, PRESCRIBABLE
from workbench.views.charts import flowing, metrics_by_prefix_length, plugin_beside_baselines, reliability_chart
from workbench.views.state import WorkbenchState
from workbench.views.widgets import Message, badge, fmt_int, heading, slug

#: Metrics shown first, when a plugin measured them.
HEADLINE = (
    "accuracy",
    "roc_auc",
    "brier_score",
    "ece",
    "mae_days",
    "coverage",
    "precision",
    "recall",
    "f1_score",
    "qini",
    "auuc",
    "support",
    "held_out_cases",
)
#: The figure that ranks a plugin against its baselines, with whether lower is better.
RANKING = (
    ("accuracy", False),
    ("roc_auc", False),
    ("mae_days", True),
    ("policy_value", False),
    ("qini", False),
)
COMPARED = ("accuracy", "roc_auc", "brier_score", "ece", "log_loss", "mae_days", "coverage", "policy_value")


def ranking_metric(metrics: dict) -> tuple[str, bool] | None:
    """The metric a plugin is ranked by (and whether lower is better): the first of ``RANKING`` that it and one of
    its baselines measured (an alarm has an accuracy, its baselines only probabilities), else the first it has."""
    baselines = [b for b in (metrics.get("baselines") or {}).values() if isinstance(b, dict)]
    measured = [(m, lower) for m, lower in RANKING if metrics.get(m) is not None]
    shared = [(m, lower) for m, lower in measured if any(b.get(m) is not None for b in baselines)]
    return (shared or measured or [None])[0]


def baselines_table(metrics: dict) -> str:
    """The plugin beside its baselines (same training cases, same held-out prefixes) as an HTML table."""
    baselines = {k: v for k, v in (metrics.get("baselines") or {}).items() if isinstance(v, dict)}
    if not baselines:
        return ""
    shown = [m for m in COMPARED if metrics.get(m) is not None]
    head = "".join(f'<th style="padding:2px 10px;text-align:right">{html.escape(m)}</th>' for m in shown)
    ranking = ranking_metric(metrics)

    def row(name: str, figures: dict, bold: bool = False) -> str:
        cells = "".join(
            f'<td style="padding:2px 10px;text-align:right">'
            f"{'' if figures.get(m) is None else f'{figures[m]:.4f}'}</td>"
            for m in shown
        )
        label = f"<b>{html.escape(name)}</b>" if bold else html.escape(name)
        return f'<tr><td style="padding:2px 10px 2px 0">{label}</td>{cells}</tr>'

    rows = [row("this plugin", metrics, bold=True)]
    rows += [row(f"baseline: {figures.get('title', key)}", figures) for key, figures in baselines.items()]
    sentence = ""
    if ranking is not None:
        metric, lower = ranking
        values = [f[metric] for f in baselines.values() if f.get(metric) is not None]
        if values:
            best = min(values) if lower else max(values)
            margin = (best - metrics[metric]) if lower else (metrics[metric] - best)
            word = "better" if margin > 0 else "worse"
            sentence = (
                f'<div class="wb-muted wb-baseline-verdict">{html.escape(metric)}: '
                f"{abs(margin):.4f} {word} than the strongest baseline, on the same held-out prefixes</div>"
            )
    return (
        f'<div class="wb-baselines"><b>Beside baselines</b> <span class="wb-muted">(fitted on the same training '
        f"cases in the same run)</span><table>{'<tr><th></th>' + head + '</tr>'}{''.join(rows)}</table>"
        f"{sentence}</div>"
    )


def metrics_table(metrics: dict) -> str:
    """The plugin's overall held-out figures as a small HTML table (headline metrics first)."""
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    ordered = [k for k in HEADLINE if k in scalars] + [k for k in scalars if k not in HEADLINE]
    cells = []
    for key in ordered:
        value = scalars[key]
        text = f"{value:,}" if isinstance(value, int) else f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
        cells.append(
            f'<td style="padding:2px 10px 2px 0"><span class="wb-muted">{html.escape(key)}</span><br>'
            f'<span class="wb-kpi" style="font-size:16px">{text}</span></td>'
        )
    rows = [cells[i : i + 6] for i in range(0, len(cells), 6)]
    return "<table>" + "".join("<tr>" + "".join(r) + "</tr>" for r in rows) + "</table>"


def causal_diagnostics(metrics: dict) -> str:
    """A treatment-effect plugin's identification checks and policy value in plain words (empty for other plugins).

    The checks decide whether the plugin's advice can be trusted at all, so they come before the figures: a reader
    must see "not identifiable" and why before any number.
    """
    identification = metrics.get("identification")
    if not isinstance(identification, dict):
        return ""
    esc = html.escape
    lines = []
    where = ", ".join(identification.get("decision_activities") or []) or "nowhere"
    lines.append(
        f"Decision points: after <b>{esc(where)}</b> "
        f"({fmt_int(identification.get('decision_prefixes', 0))} training prefixes of "
        f"{fmt_int(identification.get('decision_cases', 0))} cases); elsewhere the plugin says the treatment "
        "is not possible."
    )
    if metrics.get("identifiable"):
        lines.append(
            '<b style="color:#1a7f37">The effect is identifiable</b> from the training cases: the checks below passed.'
        )
    else:
        reasons = "; ".join(identification.get("reasons") or []) or "the checks did not pass"
        lines.append(
            f'<b style="color:#b42318">The effect is not identifiable</b>: {esc(reasons)}. Nothing is recommended.'
        )
    overlap = identification.get("overlap_share")
    if overlap is not None:
        lines.append(
            f"Overlap: {overlap:.0%} of the decision points have comparable treated and untreated cases "
            "(propensity between 0.05 and 0.95)."
        )
    balance = identification.get("balance") or {}
    if balance.get("features"):
        worst = balance["features"][0]
        lines.append(
            f"Balance: the largest standardised difference between treated and untreated cases is "
            f"{balance['max_before']:.2f} before weighting and {balance['max_after']:.2f} after "
            f"(worst feature: {esc(str(worst['feature']))}, {worst['before']:+.2f} → {worst['after']:+.2f}; "
            "below 0.1 is well balanced)."
        )
    placebo = identification.get("placebo")
    if isinstance(placebo, dict):
        verdict = "indistinguishable from 0, as it should be" if placebo.get("passed") else "NOT 0: the check failed"
        lines.append(
            f"Placebo: with the treatment shuffled at random the estimated effect is {placebo['effect']:+.3f} "
            f"(standard error {placebo['standard_error']:.3f}), {verdict}."
        )
    if metrics.get("policy_value") is not None:
        baselines = metrics.get("baselines") or {}
        parts = []
        for key, label in (("treat-all", "treating everyone"), ("treat-none", "treating no one")):
            figures = baselines.get(key) or {}
            gain = metrics.get(f"policy_gain_vs_{key.replace('-', '_')}") or {}
            if figures.get("policy_value") is not None and gain.get("value") is not None:
                sure = "better" if gain["low"] > 0 else "worse" if gain["high"] < 0 else "not clearly different"
                parts.append(
                    f"{label} {figures['policy_value']:.1%} (difference {gain['value']:+.1%}, 95 % interval "
                    f"{gain['low']:+.1%} to {gain['high']:+.1%}: {sure})"
                )
        lines.append(
            f"Policy value on held-out cases: following the advice, {metrics['policy_value']:.1%} of cases "
            f"reach the desired outcome (95 % interval {metrics['policy_value_low']:.1%} to "
            f"{metrics['policy_value_high']:.1%}); {'; '.join(parts)}. The advice recommends the treatment "
            f"to {metrics.get('recommend_share', 0):.0%} of the held-out decision points."
        )
    items = "".join(f"<li>{line}</li>" for line in lines)
    return f'<div class="wb-causal-diagnostics"><ul style="margin:4px 0 8px 0">{items}</ul></div>'


class PluginPanel(pn.viewable.Viewer):
    """One plugin of the project: status, progress, sentence, error, metrics and their plot by prefix length."""

    def __init__(self, plugin: PluginState):
        super().__init__()
        key = slug(plugin.key)
        self.title = pn.pane.HTML(sizing_mode="stretch_width", margin=(4, 10))
        self.progress = pn.indicators.Progress(
            value=0, max=100, height=14, sizing_mode="stretch_width", css_classes=["wb-plugin-progress"], margin=(4, 10)
        )
        self.sentence = pn.pane.HTML(css_classes=["wb-plugin-sentence"], sizing_mode="stretch_width", margin=(0, 10))
        self.settings = pn.pane.HTML(css_classes=["wb-plugin-settings"], sizing_mode="stretch_width", margin=(0, 10))
        self.error = Message("wb-plugin-error")
        self.metrics = pn.pane.HTML(css_classes=["wb-plugin-metrics"], sizing_mode="stretch_width", visible=False)
        self.plot = pn.Column(sizing_mode="stretch_width", css_classes=["wb-plugin-plot"])
        self.layout = pn.Column(
            self.title,
            self.progress,
            self.sentence,
            self.settings,
            self.error,
            self.metrics,
            self.plot,
            css_classes=["wb-card", "wb-plugin", f"wb-plugin-{key}"],
            sizing_mode="stretch_width",
        )
        self.snapshot: PluginState | None = None
        self._metrics = None
        self.pending_plot: tuple[list[dict], str] | None = None  # (rows, title) of a plot still to draw
        self.update(plugin)

    def update(self, plugin: PluginState) -> None:
        if plugin == self.snapshot:
            return
        self.snapshot = plugin
        status = str(plugin.status)
        self.title.object = (
            f'<span style="font-size:16px;font-weight:600">{html.escape(plugin.name)}</span> '
            f'<span class="wb-muted">{html.escape(plugin.prescription_type)} · {plugin.key}</span> '
            f'<span class="wb-plugin-status">{badge(status)}</span>'
        )
        done = status in PLUGIN_TRAINED
        self.progress.value = round(100 * (1.0 if done else plugin.progress))
        self.progress.bar_color = (
            "success" if status in ("TRAINED", "STREAMING") else ("danger" if status == "ERROR" else "primary")
        )
        self.sentence.object = f'<span class="wb-muted">{html.escape(plugin.progress_message or "")}</span>'
        settings = ", ".join(f"{k}={v}" for k, v in plugin.parameters.items())
        if plugin.additional_info:
            settings += f" · additional info: {json.dumps(plugin.additional_info)}"
        self.settings.object = f'<div class="wb-muted" style="font-size:12px">Parameters: {html.escape(settings)}</div>'
        if status == "ERROR":
            self.error.error(plugin.error or "Training failed")
        else:
            self.error.clear()
        if plugin.metrics and plugin.metrics != self._metrics:
            self._metrics = plugin.metrics
            self.metrics.object = (
                "<b>Held-out metrics</b>"
                + causal_diagnostics(plugin.metrics)
                + metrics_table(plugin.metrics)
                + baselines_table(plugin.metrics)
            )
            self.metrics.visible = True
            rows = plugin.metrics.get("by_prefix_length") or []
            self.pending_plot = (plugin.metrics, plugin.name) if rows else None
            if not rows:
                self.plot.objects = []
        elif not plugin.metrics:
            self._metrics = self.pending_plot = None
            self.metrics.visible = False
            self.plot.objects = []

    def draw_plot(self) -> None:
        """Draw the metrics by prefix length of the last update (the view calls it, see ``TrainingView._plots``)."""
        if self.pending_plot is None:
            return
        metrics, name = self.pending_plot
        self.pending_plot = None
        rows = metrics.get("by_prefix_length") or []
        baselines = {
            figures.get("title", key): figures.get("by_prefix_length") or []
            for key, figures in (metrics.get("baselines") or {}).items()
            if isinstance(figures, dict)
        }
        ranking = ranking_metric(metrics)
        if baselines and ranking is not None and any(row.get(ranking[0]) is not None for row in rows):
            plots = [
                plugin_beside_baselines(
                    rows, baselines, ranking[0], f"{name}: held-out {ranking[0]} by prefix length, beside baselines"
                )
            ]
        else:
            plots = [metrics_by_prefix_length(rows, f"{name}: held-out metrics by prefix length")]
        curves = {"this plugin": metrics["reliability"]} if metrics.get("reliability") else {}
        curves.update(
            {
                figures.get("title", key): figures["reliability"]
                for key, figures in (metrics.get("baselines") or {}).items()
                if isinstance(figures, dict) and figures.get("reliability")
            }
        )
        if curves:
            plots.append(reliability_chart(curves, f"{name}: reliability of the probabilities (held out)"))
        self.plot.objects = [
            pn.FlexBox(
                *[pn.pane.Bokeh(flowing(p, basis=480), sizing_mode="stretch_width") for p in plots],
                sizing_mode="stretch_width",
            )
        ]

    def __panel__(self):
        return self.layout


class TrainingView(pn.viewable.Viewer):
    """The open project's training: updated from the store's periodic refresh (no reload)."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.panels: dict[str, PluginPanel] = {}
        self.header = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-training-header"])
        self.progress = pn.indicators.Progress(
            value=0, max=100, height=16, sizing_mode="stretch_width", css_classes=["wb-project-progress"]
        )
        self.error = Message("wb-project-error")
        self.split = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-split"])
        self.excluded = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-excluded"])
        self.plugins = pn.Column(sizing_mode="stretch_width")
        live = pn.widgets.Button(
            name="Live prescriptions →", button_type="primary", width=190, css_classes=["wb-go-live"]
        )
        live.on_click(lambda _: state.go("live"))
        redefine = pn.widgets.Button(name="Edit definition", width=140, css_classes=["wb-edit-definition"])
        redefine.on_click(lambda _: state.edit_event_log(state.project.event_log.id, "definition"))
        self.buttons = pn.Row(live, redefine)
        self.placeholder = pn.pane.HTML('<div class="wb-muted">Open a project on the Projects page.</div>')
        self.body = pn.Column(
            self.header,
            self.progress,
            self.error,
            self.split,
            self.buttons,
            self.excluded,
            self.plugins,
            sizing_mode="stretch_width",
        )
        self.layout = pn.Column(
            heading("Training and metrics"),
            self.placeholder,
            self.body,
            sizing_mode="stretch_width",
            css_classes=["wb-view-training"],
        )
        self._shown_id = None
        self._shown_panels: list = []
        self._update()

    @param.depends("state.project", watch=True)
    def _update(self):
        project: Project | None = self.state.project
        self.placeholder.visible = project is None
        self.body.visible = project is not None
        if project is None:
            return
        if project.id != self._shown_id:
            self._shown_id = project.id
            self.panels = {}
        status = str(project.status)
        self.header.object = (
            f'<div style="font-size:20px;font-weight:600">{html.escape(project.name)} '
            f'<span class="wb-project-status-badge" data-status="{status}">{badge(status)}</span></div>'
            f'<div class="wb-muted wb-project-sentence">{html.escape(project.progress_message or "")}</div>'
        )
        done = status in PRESCRIBABLE
        self.progress.value = 100 if done else round(100 * (project.progress or 0))
        self.progress.bar_color = "success" if done else ("danger" if status == "ERROR" else "primary")
        if status == "ERROR":
            self.error.error(project.error or "The project failed")
        else:
            self.error.clear()
        split = project.split or {}
        self.split.object = (
            f'<div class="wb-muted">{fmt_int(split["events"])} events · '
            f"{fmt_int(split['training_cases'])} training cases · "
            f"{fmt_int(split['held_out_cases'])} held-out cases (the latest by start time)</div>"
            if split.get("events") is not None
            else ""
        )
        self.excluded.object = "".join(
            f'<div class="wb-muted">Not used: <b>{html.escape(key)}</b>: {html.escape(reason)}</div>'
            for key, reason in project.excluded_plugins.items()
        )
        for plugin in project.plugins:
            if plugin.key in self.panels:
                self.panels[plugin.key].update(plugin)
            else:
                self.panels[plugin.key] = PluginPanel(plugin)
        keys = [p.key for p in project.plugins]
        for gone in set(self.panels) - set(keys):
            del self.panels[gone]
        shown = [(k, id(self.panels[k])) for k in keys]
        if shown != self._shown_panels:
            self._shown_panels = shown
            self.plugins.objects = [self.panels[k] for k in keys]
        if any(panel.pending_plot is not None for panel in self.panels.values()):
            pn.state.execute(self._plots)

    async def _plots(self) -> None:
        """Draw the plugins' new plots, just after the page (or update) that shows their metrics went out.

        Building the Bokeh figures takes a while on the server (about 0.1 s for four plugins): scheduled like this, a
        first visit's page is sent without waiting for them, so the browser loads its scripts while they are built;
        drawn together, they reach the browser in one message.
        """
        with pn.io.hold():
            for panel in self.panels.values():
                panel.draw_plot()

    def __panel__(self):
        return self.layout
