"""The page "Outcome & treatment": the outcome and treatment editors and the plugin forms, then create (or
redefine) the project."""

from __future__ import annotations

import html

import panel as pn
import param

from workbench.views.conditions import DefinitionEditor, EditorContext, PluginForm, load_context
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, heading


class OutcomeTreatmentView(pn.viewable.Viewer):
    """Step 3: outcome and treatment definitions, plugin settings, then create (or redefine) the project."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.outcome: DefinitionEditor | None = None
        self.treatment: DefinitionEditor | None = None
        self.plugin_forms: list[PluginForm] = []
        self.placeholder = pn.pane.HTML(
            '<div class="wb-muted">Define the columns of an event log first (2 · Columns).</div>'
        )
        self.loading = pn.indicators.Progress(active=True, value=-1, visible=False, width=240, height=12)
        self.outcome_box = pn.Column(sizing_mode="stretch_width")
        self.treatment_box = pn.Column(sizing_mode="stretch_width")
        self.plugins_box = pn.Column(sizing_mode="stretch_width")
        self.project_name = pn.widgets.TextInput(name="Project name", width=320, css_classes=["wb-project-name-input"])
        self.description = pn.widgets.TextInput(name="Description (optional)", width=420)
        self.create_button = pn.widgets.Button(
            name="Create project and train",
            button_type="primary",
            width=230,
            css_classes=["wb-create-project"],
            align="end",
        )
        self.create_button.on_click(self._create)
        self.message = Message("wb-create-error")
        self.editor = pn.Column(
            heading("Outcome", 3),
            self.outcome_box,
            heading("Treatment", 3),
            self.treatment_box,
            heading("Plugins", 3),
            pn.pane.HTML(
                '<div class="wb-muted">Every applicable plugin is trained. Open a plugin to change its '
                "parameters or give it additional info.</div>",
                sizing_mode="stretch_width",
            ),
            self.plugins_box,
            pn.FlexBox(self.project_name, self.description, self.create_button, align_items="flex-end"),
            self.message,
            sizing_mode="stretch_width",
            visible=False,
        )
        self.layout = pn.Column(
            heading("3 · Outcome and treatment"),
            self.placeholder,
            self.loading,
            self.editor,
            sizing_mode="stretch_width",
            css_classes=["wb-view-definition"],
        )
        self._loaded = None
        pn.state.execute(self._load)

    @param.depends("state.event_log_id", "state.analysis", watch=True)
    def _event_log_changed(self):
        pn.state.execute(self._load)

    def _project(self):
        return next((p for p in self.state.projects if p.event_log.id == self.state.event_log_id), None)

    async def _load(self):
        event_log_id = self.state.event_log_id
        if event_log_id is None:
            self.placeholder.visible, self.editor.visible = True, False
            return
        key = (event_log_id, id(self.state.analysis))
        if key == self._loaded:
            return
        self._loaded = key
        self.placeholder.visible, self.loading.visible = False, True
        core = self.state.core
        try:
            event_log = await self.state.run(core.get_event_log, event_log_id)
            context = await self.state.run(load_context, core, event_log_id)
            available = await self.state.run(core.available_plugins)
        except Exception as exc:
            self.loading.visible = False
            self.placeholder.object = f'<div class="wb-muted">{html.escape(error_text(exc))}</div>'
            self.placeholder.visible, self.editor.visible = True, False
            return
        if self.state.event_log_id != event_log_id:  # another log was opened meanwhile; its own load shows it
            return
        # the editors and plugin forms in one message: the browser lays the page out once, not once per part
        with pn.io.hold():
            self.loading.visible = False
            self._show(event_log, context, available)

    def _show(self, event_log, context: EditorContext, available: dict) -> None:
        """Build the outcome and treatment editors and the plugin forms of a loaded log."""
        event_log_id = event_log.id
        definition = event_log.definition or {}
        project = self._project()
        self.outcome = DefinitionEditor(
            self.state,
            "outcome",
            context,
            event_log_id,
            definition.get("outcome_definition"),
            bool(definition.get("outcome_definition_negative")),
        )
        self.treatment = DefinitionEditor(
            self.state, "treatment", context, event_log_id, definition.get("treatment_definition")
        )
        if not definition.get("outcome_definition") and project is None:
            self.outcome.add_group()
        self.outcome_box.objects = [self.outcome]
        self.treatment_box.objects = [self.treatment]
        stored = {p.key: p for p in project.plugins} if project else {}
        self.plugin_forms = [
            PluginForm(
                key,
                info,
                stored[key].parameters if key in stored else None,
                stored[key].additional_info if key in stored else None,
            )
            for key, info in available.items()
        ]
        self.plugins_box.objects = self.plugin_forms
        self.project_name.value = project.name if project else event_log.file_name
        self.project_name.disabled = project is not None
        self.description.disabled = project is not None
        self.create_button.name = "Redefine and retrain" if project else "Create project and train"
        self.message.clear()
        self.placeholder.visible, self.editor.visible = False, True

    async def _create(self, _):
        if self.outcome is None:
            return
        self.message.clear()
        try:
            parameters = {f.key: f.parameters() for f in self.plugin_forms if f.parameters()}
            additional_info = {f.key: info for f in self.plugin_forms if (info := f.additional_info())}
        except ValueError as exc:
            self.message.error(str(exc))
            return
        outcome, treatment = self.outcome.to_list(), self.treatment.to_list()
        sign = {"negative_outcome" if self.outcome.negative.value else "positive_outcome": outcome}
        project = self._project()
        core = self.state.core
        self.create_button.disabled = True
        try:
            if project is None:
                created = await self.state.run(
                    core.create_project,
                    self.state.event_log_id,
                    treatment=treatment,
                    parameters=parameters or None,
                    additional_info=additional_info or None,
                    name=self.project_name.value or None,
                    description=self.description.value or None,
                    **sign,
                )
            else:
                created = await self.state.run(
                    core.redefine_project,
                    project.id,
                    treatment=treatment,
                    parameters=parameters or None,
                    additional_info=additional_info or None,
                    **sign,
                )
        except Exception as exc:
            self.message.error(error_text(exc))
            return
        finally:
            self.create_button.disabled = False
        await self.state.refresh()
        self.state.open_project(created.id, "training")

    def __panel__(self):
        return self.layout
