"""The page "Columns": one row per column (inferred type preselected), case attributes, transition mode,
validation messages inline, and the resulting analysis as bar charts."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param

from prcore_core.columns import ColumnDefinition, Transition, validate_columns_definition
from prcore_core.errors import PrCoreError
from prcore_core.project import EventLog
from workbench.views.charts import bar_chart
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, fmt_int, heading, slug

NOT_USED = "— (not used)"
TYPES = {NOT_USED: "", **{d.value: d.value for d in ColumnDefinition}}
TRANSITIONS = [t.value for t in Transition]
MODES = {"Fast: one row per finished activity": True, "Detailed: start and end of each activity": False}


class ColumnRow(pn.viewable.Viewer):
    """The editor of one column: its name and sample values, its type, whether it is a case attribute."""

    def __init__(self, column: str, samples: list[str], definition: str | None, case_attribute: bool):
        super().__init__()
        self.column = column
        key = slug(column)
        shown = ", ".join(html.escape(s if len(s) <= 28 else s[:27] + "…") for s in samples) or "—"
        self.label = pn.pane.HTML(
            f'<b>{html.escape(column)}</b><div class="wb-muted" style="font-size:12px">e.g. {shown}</div>',
            width=340,
            margin=(2, 10),
        )
        self.type = pn.widgets.Select(
            options=TYPES,
            value=definition or "",
            width=210,
            css_classes=["wb-col-type", f"wb-col-type-{key}"],
            margin=(6, 10),
        )
        self.case_attribute = pn.widgets.Checkbox(
            name="case attribute",
            value=case_attribute,
            width=140,
            css_classes=["wb-col-case", f"wb-col-case-{key}"],
            margin=(12, 10),
        )
        self.layout = pn.Row(
            self.label, self.type, self.case_attribute, css_classes=["wb-col-row", f"wb-col-{key}"], margin=(0, 0)
        )

    @property
    def definition(self) -> str | None:
        return self.type.value or None

    def __panel__(self):
        return self.layout


class ColumnsView(pn.viewable.Viewer):
    """Say what each column of the open event log means; the core validates and analyses the definition."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.event_log: EventLog | None = None
        self.rows: list[ColumnRow] = []
        self.header = pn.pane.HTML(sizing_mode="stretch_width")
        self.rows_box = pn.Column(sizing_mode="stretch_width", css_classes=["wb-col-rows"])
        self.mode = pn.widgets.RadioButtonGroup(
            options=MODES, value=True, css_classes=["wb-transition-mode"], button_type="primary", button_style="outline"
        )
        self.start_transition = pn.widgets.Select(
            name="Start transition", options=TRANSITIONS, value="START", width=160
        )
        self.complete_transition = pn.widgets.Select(
            name="Complete transition", options=TRANSITIONS, value="COMPLETE", width=160
        )
        self.abort_transition = pn.widgets.Select(
            name="Abort transition", options=TRANSITIONS, value="ATE_ABORT", width=160
        )
        self.transitions = pn.Column(
            pn.pane.HTML("<b>Lifecycle transitions</b>: how rows of one activity instance are read"),
            self.mode,
            pn.Row(self.start_transition, self.complete_transition, self.abort_transition),
            visible=False,
            css_classes=["wb-card", "wb-transitions"],
            sizing_mode="stretch_width",
        )
        self.validation = Message("wb-col-validation")
        self.apply_button = pn.widgets.Button(
            name="Apply definition", button_type="primary", width=170, css_classes=["wb-col-apply"]
        )
        self.message = Message("wb-col-error")
        self.progress = pn.indicators.Progress(active=True, value=-1, visible=False, width=200, height=12)
        self.charts = pn.Row(sizing_mode="stretch_width", css_classes=["wb-analysis"])
        self.analysis_text = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-analysis-summary"])
        self.next_button = pn.widgets.Button(
            name="Next: outcome and treatment →",
            button_type="primary",
            visible=False,
            width=260,
            css_classes=["wb-col-next"],
        )
        self.apply_button.on_click(self._apply)
        self.next_button.on_click(lambda _: self.state.go("definition"))
        for widget in (self.mode, self.start_transition, self.complete_transition, self.abort_transition):
            widget.param.watch(self._validate, "value")
        self.placeholder = pn.pane.HTML(
            '<div class="wb-muted">Upload an event log first (1 · Upload), or open a project.</div>'
        )
        self.editor = pn.Column(
            self.header,
            pn.Row(
                pn.pane.HTML("<b>Column</b>", width=340, margin=(0, 10)),
                pn.pane.HTML("<b>Type</b>", width=210, margin=(0, 10)),
                pn.pane.HTML("<b>Case attribute</b>", width=140, margin=(0, 10)),
            ),
            self.rows_box,
            self.transitions,
            self.validation,
            pn.Row(self.apply_button, self.progress, self.next_button),
            self.message,
            self.analysis_text,
            self.charts,
            sizing_mode="stretch_width",
            visible=False,
        )
        self.loading = pn.indicators.Progress(active=True, value=-1, visible=False, width=240, height=12)
        self.layout = pn.Column(
            heading("2 · Columns definition"),
            self.placeholder,
            self.loading,
            self.editor,
            sizing_mode="stretch_width",
            css_classes=["wb-view-columns"],
        )
        self._loaded_id = None
        pn.state.execute(self._load)

    @param.depends("state.event_log_id", watch=True)
    def _event_log_changed(self):
        pn.state.execute(self._load)

    async def _load(self):
        event_log_id = self.state.event_log_id
        if event_log_id is None:
            self.placeholder.visible, self.editor.visible = True, False
            self._loaded_id = None
            return
        if event_log_id == self._loaded_id:
            return
        self._loaded_id = event_log_id
        core = self.state.core
        self.placeholder.visible, self.loading.visible = False, True
        try:
            event_log = await self.state.run(core.get_event_log, event_log_id)
        except Exception as exc:
            self.loading.visible = False
            self.placeholder.object = html.escape(error_text(exc))
            self.placeholder.visible = True
            return
        analysis = (
            self.state.analysis
            if self.state.analysis and self.state.analysis.get("event_log_id") == event_log_id
            else None
        )
        error = None
        if analysis is None and event_log.definition and event_log.definition.get("columns_definition"):
            try:
                analysis = await self.state.run(core.log_analysis, event_log_id)
            except Exception as exc:
                error = error_text(exc)
        if self.state.event_log_id != event_log_id:  # another log was opened meanwhile; its own load shows it
            return
        # the editor and its charts in one message: the browser lays the page out once, not once per part
        with pn.io.hold():
            self.loading.visible = False
            self.event_log = event_log
            self._build(event_log)
            self.placeholder.visible, self.editor.visible = False, True
            self._show_analysis(analysis)
            if error is not None:
                self.message.error(error)

    def _build(self, event_log: EventLog) -> None:
        definition = event_log.definition or {}
        stored = definition.get("columns_definition") or {}
        attributes = set(definition.get("case_attributes") or [])
        frame = pd.DataFrame(event_log.preview, columns=event_log.columns_header)
        self.rows = []
        for column, inferred in zip(event_log.columns_header, event_log.inferred_definition, strict=True):
            samples = [str(v) for v in frame[column].dropna().unique()[:3]] if column in frame else []
            chosen = stored.get(column) if stored else inferred
            row = ColumnRow(column, samples, chosen, column in attributes)
            row.type.param.watch(self._validate, "value")
            row.case_attribute.param.watch(self._validate, "value")
            self.rows.append(row)
        self.rows_box.objects = self.rows
        if definition:
            self.mode.value = bool(definition.get("fast_mode", True))
            self.start_transition.value = definition.get("start_transition") or "START"
            self.complete_transition.value = definition.get("complete_transition") or "COMPLETE"
            self.abort_transition.value = definition.get("abort_transition") or "ATE_ABORT"
        has_project = any(p.event_log.id == event_log.id for p in self.state.projects)
        warning = (
            (
                " <b>This log has a project:</b> applying a new definition resets its outcome and treatment "
                "and it waits for a new one."
            )
            if has_project
            else ""
        )
        self.header.object = (
            f'<div class="wb-muted"><b>{html.escape(event_log.file_name)}</b> · '
            f"{fmt_int(event_log.n_rows)} events. Types were guessed from the column names; "
            f"check them.{warning}</div>"
        )
        self.message.clear()
        self._validate()

    def definition(self) -> dict:
        return {
            "columns_definition": {row.column: row.definition for row in self.rows},
            "case_attributes": [row.column for row in self.rows if row.case_attribute.value],
            "fast_mode": self.mode.value,
            "start_transition": self.start_transition.value,
            "complete_transition": self.complete_transition.value,
            "abort_transition": self.abort_transition.value,
        }

    def _validate(self, *_):
        """Live validation with the core's rules and messages (nothing is stored until Apply)."""
        if self.event_log is None:
            return
        self.transitions.visible = any(row.definition == "TRANSITION" for row in self.rows)
        given = self.definition()
        try:
            validate_columns_definition(self.event_log.columns_header, **given)
        except PrCoreError as exc:
            self.validation.error(exc.detail)
            return
        self.validation.success("The definition is valid. Apply it to see the activities and resources.")

    async def _apply(self, _):
        if self.event_log is None:
            return
        given = self.definition()
        self.message.clear()
        self.apply_button.disabled = True
        self.progress.visible = True
        try:
            analysis = await self.state.run(self.state.core.set_columns_definition, self.event_log.id, **given)
            analysis["n_cases"] = (await self.state.run(self.state.core.log_analysis, self.event_log.id))["n_cases"]
        except Exception as exc:
            self.message.error(error_text(exc))
            return
        finally:
            self.apply_button.disabled = False
            self.progress.visible = False
        self.state.analysis = analysis
        self._show_analysis(analysis)
        self.state.refresh_now()

    def _show_analysis(self, analysis: dict | None) -> None:
        if not analysis:
            self.charts.objects, self.analysis_text.object = [], ""
            self.next_button.visible = False
            return
        activities, resources = analysis.get("activities_count", {}), analysis.get("resources_count", {})
        cases = analysis.get("n_cases")
        self.analysis_text.object = (
            f'<div style="font-size:15px">Defined: <b>{len(activities)}</b> activities, <b>{len(resources)}</b> '
            f"resources{f', <b>{fmt_int(cases)}</b> cases' if cases is not None else ''}.</div>"
        )
        charts = [
            pn.Column(
                pn.pane.Bokeh(bar_chart(activities, "Activities"), sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
                css_classes=["wb-chart-activities"],
            )
        ]
        if resources:
            charts.append(
                pn.Column(
                    pn.pane.Bokeh(bar_chart(resources, "Resources", colour="#e07a5f"), sizing_mode="stretch_width"),
                    sizing_mode="stretch_width",
                    css_classes=["wb-chart-resources"],
                )
            )
        self.charts.objects = charts
        self.next_button.visible = True

    def __panel__(self):
        return self.layout
