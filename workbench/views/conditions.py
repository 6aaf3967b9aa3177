"""The condition editor: OR-of-AND groups of conditions, live counts of labelled cases, plugin forms.

Only operators valid for a column's type are offered (``prcore_core.conditions.operators_for``), activity and
other text values come from the log (``DefinedLog.values_of``), and the live counts are the core's
(``PrCore.count_matching_cases``), so the editor holds no rule of the condition language itself.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json

import panel as pn
import param
from bokeh.models import Tooltip

from prcore_core import registry
from prcore_core.columns import ColumnsDefinition, Family, family
from prcore_core.conditions import operators_for, value_kind
from prcore_core.errors import PrCoreError
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, fmt_int, slug

#: Operators for which a value picker offers the log's values.
_PICK_OPERATORS = ("EQUAL", "NOT_EQUAL", "IS")
_PLACEHOLDERS = {
    "duration": "e.g. 10d, 4h, 30min, 3600",
    Family.NUMBER: "a number, e.g. 15000",
    Family.DATETIME: "e.g. 2024-03-01 or 2024-03-01T12:00",
    Family.TEXT: "text",
    Family.CATEGORICAL: "a value",
}


class EditorContext:
    """What the condition pickers need to know about the defined log: columns, their values."""

    def __init__(self, columns: ColumnsDefinition, values: dict[str, list[str]], n_cases: int):
        self.columns = columns
        self.values = values
        self.n_cases = n_cases

    def kind(self, column: str):
        return value_kind(column, self.columns)

    def operators(self, column: str) -> list[str]:
        try:
            return [str(o) for o in operators_for(column, self.columns)]
        except PrCoreError:
            return []


def load_context(core, event_log_id: int) -> EditorContext:
    """Read the defined log once (cached by the core) and the values offered for text-like columns."""
    defined = core.defined_log(event_log_id)
    columns = defined.columns
    values = {}
    for column in columns.outcome_columns:
        if column in defined.log and family(columns.columns.get(column)) in (Family.TEXT, Family.CATEGORICAL):
            values[column] = defined.values_of(column)
    return EditorContext(columns, values, defined.n_cases)


class ConditionRow(pn.viewable.Viewer):
    """column · operator · value, with a remove button."""

    def __init__(self, editor: DefinitionEditor, condition: dict | None = None):
        super().__init__()
        self.editor = editor
        context = editor.context
        options = editor.column_options
        condition = condition or {}
        column = condition.get("column") if condition.get("column") in options else None
        if column is None:
            column = context.columns.activity if context.columns.activity in options else options[0]
        self.column = pn.widgets.Select(options=options, value=column, width=170, css_classes=["wb-cond-column"])
        self.operator = pn.widgets.Select(width=180, css_classes=["wb-cond-operator"])
        self.value_select = pn.widgets.Select(width=240, css_classes=["wb-cond-value", "wb-cond-value-select"])
        self.value_text = pn.widgets.TextInput(width=240, css_classes=["wb-cond-value", "wb-cond-value-text"])
        self.remove = pn.widgets.Button(name="✕", width=36, button_style="outline", css_classes=["wb-cond-remove"])
        self.remove.on_click(lambda _: editor.remove_condition(self))
        self._set_operators(condition.get("operator"))
        self._set_value_widget(condition.get("value"))
        self.column.param.watch(self._column_changed, "value")
        self.operator.param.watch(self._operator_changed, "value")
        self.value_select.param.watch(lambda _: editor.changed(), "value")
        self.value_text.param.watch(lambda _: editor.changed(), "value")
        self.layout = pn.Row(
            self.column,
            self.operator,
            self.value_select,
            self.value_text,
            self.remove,
            css_classes=["wb-condition"],
            margin=(0, 0),
        )

    def _set_operators(self, wanted=None):
        operators = self.editor.context.operators(self.column.value)
        self.operator.options = operators
        if wanted in operators:
            self.operator.value = wanted
        elif operators:
            self.operator.value = operators[0]

    def _set_value_widget(self, value=None):
        context = self.editor.context
        kind = context.kind(self.column.value)
        offered = context.values.get(self.column.value, [])
        pick = bool(offered) and self.operator.value in _PICK_OPERATORS
        boolean = kind == Family.BOOLEAN
        self.value_select.visible = pick and not boolean
        self.value_text.visible = not pick and not boolean
        self.value_text.placeholder = _PLACEHOLDERS.get(kind, "value")
        if pick:
            options = list(offered)
            if value is not None and value not in options:
                options = [value, *options]
            self.value_select.options = options
            self.value_select.value = value if value is not None else options[0]
        elif value is not None:
            self.value_text.value = str(value)

    def _column_changed(self, _):
        self.value_text.value = ""
        self._set_operators()
        self._set_value_widget()
        self.editor.changed()

    def _operator_changed(self, _):
        current = self.value
        self._set_value_widget(current if current else None)
        self.editor.changed()

    @property
    def value(self):
        if self.value_select.visible:
            return self.value_select.value
        if self.value_text.visible:
            return self.value_text.value
        return None

    def to_dict(self) -> dict:
        condition = {"column": self.column.value, "operator": self.operator.value}
        if self.value is not None:
            condition["value"] = self.value
        return condition

    def __panel__(self):
        return self.layout


class GroupEditor(pn.viewable.Viewer):
    """An AND group: every condition must hold on one event of the case."""

    def __init__(self, editor: DefinitionEditor, conditions: list[dict] | None = None):
        super().__init__()
        self.editor = editor
        self.rows: list[ConditionRow] = [ConditionRow(editor, c) for c in (conditions or [{}])]
        self.box = pn.Column(*self.rows, margin=(0, 0))
        self.title = pn.pane.HTML(margin=(4, 10))
        add = pn.widgets.Button(name="+ and", width=70, button_style="outline", css_classes=["wb-add-and"])
        add.on_click(lambda _: self.add())
        remove = pn.widgets.Button(
            name="Remove group", width=120, button_style="outline", css_classes=["wb-remove-group"]
        )
        remove.on_click(lambda _: editor.remove_group(self))
        self.layout = pn.Column(
            pn.Row(self.title, pn.HSpacer(), remove),
            self.box,
            add,
            css_classes=["wb-card", "wb-group"],
            sizing_mode="stretch_width",
        )

    def add(self):
        self.rows.append(ConditionRow(self.editor))
        self.box.objects = list(self.rows)
        self.editor.changed()

    def remove(self, row: ConditionRow) -> bool:
        if row not in self.rows:
            return False
        self.rows.remove(row)
        self.box.objects = list(self.rows)
        return True

    def to_list(self) -> list[dict]:
        return [row.to_dict() for row in self.rows]

    def __panel__(self):
        return self.layout


class DefinitionEditor(pn.viewable.Viewer):
    """An outcome or treatment definition: OR of AND groups, with a live count of the cases it labels."""

    def __init__(
        self,
        state: WorkbenchState,
        kind: str,
        context: EditorContext,
        event_log_id: int,
        raw: list | None = None,
        negative: bool = False,
    ):
        super().__init__()
        self.state, self.kind, self.context, self.event_log_id = state, kind, context, event_log_id
        columns = context.columns
        self.column_options = list(columns.outcome_columns if kind == "outcome" else columns.condition_columns)
        self.groups: list[GroupEditor] = []
        self.box = pn.Column(sizing_mode="stretch_width", margin=(0, 0))
        self.count = pn.pane.HTML(css_classes=[f"wb-{kind}-count", "wb-count"], sizing_mode="stretch_width")
        self.add_group_button = pn.widgets.Button(
            name="+ or group" if raw else f"+ define the {kind}",
            width=170,
            button_style="outline",
            css_classes=["wb-add-or"],
        )
        self.add_group_button.on_click(lambda _: self.add_group())
        self.negative = pn.widgets.RadioButtonGroup(
            options={"positive (desired)": False, "negative (undesired)": True},
            value=negative,
            button_type="primary",
            button_style="outline",
            css_classes=["wb-outcome-sign"],
            visible=kind == "outcome",
        )
        self.negative.param.watch(lambda _: self.changed(), "value")
        self._version = 0
        for group in raw or []:
            self.groups.append(GroupEditor(self, group))
        self._refresh_groups()
        if kind == "outcome":
            intro = (
                "A case has the outcome below when <b>any</b> group holds; a group holds when <b>all</b> its "
                "conditions hold on one event of the case. The outcome it describes is:"
            )
        else:
            intro = "A case is treated when <b>any</b> group holds (same rules). Leave it empty for no treatment."
        self.layout = pn.Column(
            pn.pane.HTML(f'<div class="wb-muted">{intro}</div>', sizing_mode="stretch_width"),
            self.negative,
            self.box,
            self.add_group_button,
            self.count,
            css_classes=[f"wb-{kind}", "wb-definition-editor"],
            sizing_mode="stretch_width",
        )
        self.changed(debounce=0.0)  # the first count at once; later edits come in bursts

    def add_group(self):
        self.groups.append(GroupEditor(self))
        self._refresh_groups()
        self.changed()

    def remove_group(self, group: GroupEditor):
        if group in self.groups:
            self.groups.remove(group)
            self._refresh_groups()
            self.changed()

    def remove_condition(self, row: ConditionRow):
        for group in list(self.groups):
            if group.remove(row):
                if not group.rows:
                    self.groups.remove(group)
                    self._refresh_groups()
                break
        self.changed()

    def _refresh_groups(self):
        for index, group in enumerate(self.groups):
            group.title.object = (
                f"<b>{'Either' if index == 0 else 'or'}</b> all of:" if len(self.groups) > 1 else "<b>All of:</b>"
            )
            group.layout.css_classes = ["wb-card", "wb-group", f"wb-group-{index}"]
        self.box.objects = list(self.groups)
        self.add_group_button.name = "+ or group" if self.groups else f"+ define the {self.kind}"

    def to_list(self) -> list[list[dict]] | None:
        groups = [group.to_list() for group in self.groups if group.rows]
        return groups or None

    def changed(self, debounce: float = 0.25):
        """Recount (debounced: only the last change of a burst asks the core)."""
        self._version += 1
        pn.state.execute(functools.partial(self._count, debounce))

    async def _count(self, debounce: float = 0.25):
        version = self._version
        await asyncio.sleep(debounce)
        if version != self._version:
            return
        raw = self.to_list()
        if raw is None:
            text = (
                "No outcome defined: plugins that need one are left out."
                if self.kind == "outcome"
                else "No treatment defined: plugins that need one are left out."
            )
            self.count.object = f'<div class="wb-muted">{text}</div>'
            return
        try:
            matching, total = await self.state.run(self.state.core.count_matching_cases, self.event_log_id, raw)
        except Exception as exc:
            if version == self._version:
                self.count.object = (
                    f'<div class="wb-count-error" style="color:#b02a37">{html.escape(error_text(exc))}</div>'
                )
            return
        if version != self._version:
            return
        share = matching / total if total else 0.0
        if self.kind == "treatment":
            text = f"<b>{fmt_int(matching)}</b> of {fmt_int(total)} cases ({share:.1%}) are treated."
        elif self.negative.value:
            text = (
                f"<b>{fmt_int(total - matching)}</b> of {fmt_int(total)} cases ({1 - share:.1%}) are labelled "
                f"positive ({fmt_int(matching)} match the negative outcome)."
            )
        else:
            text = f"<b>{fmt_int(matching)}</b> of {fmt_int(total)} cases ({share:.1%}) are labelled positive."
        self.count.object = f'<div class="wb-count-ok" style="font-size:15px">{text}</div>'

    def __panel__(self):
        return self.layout


def parameter_widget(instance: param.Parameterized, name: str) -> pn.viewable.Viewable:
    """The input for one declared parameter, linked to it (numbers as inputs: a parameter may be unset), with its
    documentation behind a help icon."""
    declared = instance.param[name]
    options = {"css_classes": [f"wb-param-{slug(name)}"], "width": 210, "margin": (5, 0, 5, 10)}
    if isinstance(declared, param.Boolean):
        return pn.widgets.Checkbox.from_param(declared, **options)
    # no description: the help icon below replaces the one ``from_param`` makes of the parameter's doc
    options["description"] = None
    if isinstance(declared, param.Integer):
        widget = pn.widgets.IntInput.from_param(declared, **options)
    elif isinstance(declared, param.Number):
        widget = pn.widgets.FloatInput.from_param(declared, **options)
    elif isinstance(declared, param.Selector):
        widget = pn.widgets.Select.from_param(declared, **options)
    elif isinstance(declared, param.String):
        widget = pn.widgets.TextInput.from_param(declared, **options)
    else:
        return pn.Param(instance, parameters=[name], show_name=False, css_classes=[f"wb-param-{slug(name)}"])
    if not declared.doc:
        return widget
    # The widgets' own help tooltip opens to the right and is cut off at the page's edge for the inputs on the
    # right: this one opens to the right where there is room, else to the left.
    tooltip = Tooltip(
        content=" ".join(declared.doc.split()),
        position="left",
        attachment="horizontal",
        stylesheets=[":host { white-space: initial; max-width: 300px; }"],
    )
    help_icon = pn.widgets.TooltipIcon(
        value=tooltip, margin=(30, 10, 0, 4), css_classes=[f"wb-param-help-{slug(name)}"]
    )
    return pn.Row(widget, help_icon, margin=0)


class PluginForm(pn.viewable.Viewer):
    """A plugin's declared parameters as a form (from its ``param`` declarations), plus its additional info."""

    def __init__(self, key: str, info: dict, parameters: dict | None = None, additional_info: dict | None = None):
        super().__init__()
        self.key = key
        self.plugin_class = registry.get_plugin_class(key)
        self.defaults = info["parameters"]
        try:
            self.instance = self.plugin_class.from_parameters(parameters or {})
        except PrCoreError:
            self.instance = self.plugin_class.from_parameters({})
        self.names = list(self.defaults)
        self.form = pn.Column(sizing_mode="stretch_width")  # the parameter widgets are built on first opening
        needs = [
            what
            for what, flag in (("an outcome", info["needs_outcome"]), ("a treatment", info["needs_treatment"]))
            if flag
        ]
        self.info_input = pn.widgets.TextAreaInput(
            name="Additional info (JSON object)",
            value=json.dumps(additional_info) if additional_info else "",
            placeholder='{"key": "value"}',
            height=80,
            sizing_mode="stretch_width",
            css_classes=["wb-plugin-info", f"wb-plugin-info-{slug(key)}"],
        )
        self.info_message = Message(f"wb-plugin-info-message-{slug(key)}")
        self.info_input.param.watch(self._check_info, "value")
        self._check_info()
        self.layout = pn.Card(
            pn.pane.HTML(
                f'<div class="wb-muted">{html.escape(info["description"] or "")}'
                f"{' Needs ' + ' and '.join(needs) + ' definition.' if needs else ''}</div>",
                sizing_mode="stretch_width",
            ),
            self.form,
            self.info_input,
            self.info_message,
            title=f"{info['name']} · {info['prescription_type']}",
            collapsed=True,
            sizing_mode="stretch_width",
            css_classes=["wb-plugin-form", f"wb-plugin-form-{slug(key)}"],
        )
        self.layout.param.watch(self._opened, "collapsed")

    def _opened(self, event):
        if event.new or self.form.objects:
            return
        if not self.names:
            self.form.objects = [pn.pane.HTML("No parameters.")]
            return
        widgets = [parameter_widget(self.instance, name) for name in self.names]
        self.form.objects = [pn.FlexBox(*widgets, sizing_mode="stretch_width", css_classes=["wb-plugin-params"])]

    def parameters(self) -> dict:
        """The parameters that differ from the declared defaults."""
        return {
            n: getattr(self.instance, n) for n, default in self.defaults.items() if getattr(self.instance, n) != default
        }

    def additional_info(self) -> dict | None:
        """The additional info as an object; raises ``ValueError`` with a readable message when it is not one."""
        text = (self.info_input.value or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"The additional info of {self.key} is not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ValueError(f"The additional info of {self.key} must be a JSON object")
        return value

    def _check_info(self, *_):
        try:
            value = self.additional_info()
        except ValueError as exc:
            self.info_message.error(str(exc))
            return
        try:
            self.plugin_class.validate_additional_info(value or {})
        except PrCoreError as exc:
            if value is None:
                self.info_message.info(
                    f"Without additional info this plugin is left out: {html.escape(exc.detail)}", markup=True
                )
            else:
                self.info_message.error(exc.detail)
            return
        self.info_message.clear()

    def __panel__(self):
        return self.layout
