"""Projects home: every project with its status and plugins; open, rename, delete (confirmed), create."""

from __future__ import annotations

import html

import panel as pn
import param

from prcore_core.project import EventLog, Project
from prcore_core.status import BUSY
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, badge, fmt_int, fmt_time, heading


def plugins_html(project: Project) -> str:
    """One line per plugin: its name and status (and the error, if any)."""
    if not project.plugins:
        excluded = len(project.excluded_plugins)
        return '<span class="wb-muted">no plugin yet</span>' + (f" ({excluded} not applicable)" if excluded else "")
    parts = []
    for plugin in project.plugins:
        error = f'<div style="color:#dc3545">{html.escape(plugin.error)}</div>' if plugin.error else ""
        parts.append(
            f'<div style="white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{badge(plugin.status)} '
            f"{html.escape(plugin.name)}</div>{error}"
        )
    return "".join(parts)


class ProjectRow(pn.viewable.Viewer):
    """One project: name, status, plugins, times and its actions (updated in place on every refresh)."""

    def __init__(self, state: WorkbenchState, project: Project):
        super().__init__()
        self.state = state
        self.project_id = project.id
        cls = f"wb-project-{project.id}"
        self.info = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-project-info"], margin=(4, 8))
        self.open_button = pn.widgets.Button(name="Open", button_type="primary", width=70, css_classes=["wb-open"])
        self.rename_button = pn.widgets.Button(name="Rename", width=80, css_classes=["wb-rename"])
        self.delete_button = pn.widgets.Button(
            name="Delete", button_type="danger", button_style="outline", width=70, css_classes=["wb-delete"]
        )
        self.name_input = pn.widgets.TextInput(name="New name", width=260, css_classes=["wb-rename-input"])
        self.save_button = pn.widgets.Button(
            name="Save", button_type="primary", width=70, css_classes=["wb-rename-save"]
        )
        self.cancel_button = pn.widgets.Button(name="Cancel", width=70, css_classes=["wb-rename-cancel"])
        self.confirm_text = pn.pane.HTML(sizing_mode="stretch_width")
        self.confirm_button = pn.widgets.Button(
            name="Delete for good", button_type="danger", width=130, css_classes=["wb-delete-confirm"]
        )
        self.keep_button = pn.widgets.Button(name="Keep it", width=80, css_classes=["wb-delete-cancel"])
        self.message = Message("wb-project-message")
        self.rename_row = pn.Row(self.name_input, self.save_button, self.cancel_button, visible=False, align="end")
        self.confirm_row = pn.Row(self.confirm_text, self.confirm_button, self.keep_button, visible=False)
        self.open_button.on_click(lambda _: self.state.open_project(self.project_id))
        self.rename_button.on_click(self._start_rename)
        self.cancel_button.on_click(lambda _: setattr(self.rename_row, "visible", False))
        self.save_button.on_click(self._rename)
        self.delete_button.on_click(self._ask_delete)
        self.keep_button.on_click(lambda _: setattr(self.confirm_row, "visible", False))
        self.confirm_button.on_click(self._delete)
        self.layout = pn.Column(
            pn.Row(
                self.info,
                pn.Row(self.open_button, self.rename_button, self.delete_button, align="center"),
                sizing_mode="stretch_width",
            ),
            self.rename_row,
            self.confirm_row,
            self.message,
            css_classes=["wb-card", "wb-project", cls],
            sizing_mode="stretch_width",
        )
        self.snapshot = None
        self.update(project)

    def update(self, project: Project) -> None:
        if project == self.snapshot:
            return
        self.snapshot = project
        description = f'<div class="wb-muted">{html.escape(project.description)}</div>' if project.description else ""
        status = badge(project.status)
        if project.status.value == "ERROR":
            status += f'<div style="color:#dc3545">{html.escape(project.error or "")}</div>'
        elif project.progress_message and project.status in BUSY:
            status += f'<div class="wb-muted">{project.progress:.0%} · {html.escape(project.progress_message)}</div>'
        self.info.object = (
            # wraps on a narrow window rather than running under the buttons beside it
            '<div style="display:flex;flex-wrap:wrap;gap:6px 18px;align-items:flex-start">'
            '<div class="wb-project-name" style="flex:2.2 1 180px;min-width:160px">'
            f'<div style="font-size:16px;font-weight:600">{html.escape(project.name)}</div>'
            f'<div class="wb-muted">#{project.id} · {html.escape(project.event_log.file_name)} · '
            f"{fmt_int(project.event_log.n_rows)} events</div>{description}</div>"
            f'<div class="wb-project-status" data-status="{project.status}" style="flex:1.3 1 90px">{status}</div>'
            f'<div class="wb-project-plugins" style="flex:2.4 1 220px;min-width:0">{plugins_html(project)}</div>'
            f'<div class="wb-muted" style="flex:0 0 150px;font-size:12px;white-space:nowrap">created '
            f"{fmt_time(project.created_at)}<br>"
            f"updated {fmt_time(project.updated_at or project.created_at)}</div></div>"
        )

    def _start_rename(self, _):
        self.name_input.value = self.snapshot.name
        self.rename_row.visible = True

    async def _rename(self, _):
        try:
            await self.state.run(self.state.core.update_project, self.project_id, name=self.name_input.value)
        except Exception as exc:
            self.message.error(error_text(exc))
            return
        self.message.clear()
        self.rename_row.visible = False
        await self.state.refresh()

    def _ask_delete(self, _):
        self.confirm_text.object = (
            f"Delete <b>{html.escape(self.snapshot.name)}</b> with its event log, models and "
            "streamed events? This cannot be undone."
        )
        self.confirm_row.visible = True

    async def _delete(self, _):
        self.confirm_button.disabled = True
        try:
            await self.state.run(self.state.core.delete_project, self.project_id)
        except Exception as exc:
            self.message.error(error_text(exc))
            self.confirm_button.disabled = False
            return
        await self.state.refresh()

    def __panel__(self):
        return self.layout


class EventLogRow(pn.viewable.Viewer):
    """An uploaded event log that has no project yet, with a way to continue defining it."""

    def __init__(self, state: WorkbenchState, event_log: EventLog):
        super().__init__()
        defined = "columns defined" if event_log.definition else "columns not defined yet"
        button = pn.widgets.Button(name="Continue", width=100, css_classes=["wb-continue"], align="center")
        page = "definition" if event_log.definition else "columns"
        button.on_click(lambda _: state.edit_event_log(event_log.id, page))
        self.layout = pn.Row(
            pn.pane.HTML(
                f"<b>{html.escape(event_log.file_name)}</b> "
                f'<span class="wb-muted">#{event_log.id} · {fmt_int(event_log.n_rows)} events · '
                f"uploaded {fmt_time(event_log.created_at)} · {defined}</span>",
                sizing_mode="stretch_width",
            ),
            button,
            css_classes=["wb-card", "wb-event-log"],
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return self.layout


class ProjectsView(pn.viewable.Viewer):
    """The home page."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self._shown: list[int] = []
        self.rows: dict[int, ProjectRow] = {}
        new = pn.widgets.Button(name="+ New project", button_type="primary", css_classes=["wb-new-project"], width=150)
        new.on_click(lambda _: state.new_project())
        self.list = pn.Column(sizing_mode="stretch_width", css_classes=["wb-project-list"])
        self.empty = pn.pane.HTML(
            '<div class="wb-muted" style="font-size:15px">No project yet. Upload an event log with '
            "<b>New project</b> (CSV, XES, zip or gz) to create one.</div>",
            visible=False,
        )
        self.logs = pn.Column(sizing_mode="stretch_width")
        self.logs_title = heading("Uploaded event logs without a project", 4)
        self.logs_title.visible = False
        self.notice = pn.pane.HTML(css_classes=["wb-notice"], visible=False, sizing_mode="stretch_width")
        self.layout = pn.Column(
            pn.Row(heading("Projects"), pn.HSpacer(), new),
            self.notice,
            self.empty,
            self.list,
            self.logs_title,
            self.logs,
            sizing_mode="stretch_width",
            css_classes=["wb-view-projects"],
        )
        self._update_projects()
        self._update_logs()
        self._update_notice()

    @param.depends("state.projects", watch=True)
    def _update_projects(self):
        projects = self.state.projects
        ids = [p.id for p in projects]
        for project in projects:
            if project.id in self.rows:
                self.rows[project.id].update(project)
            else:
                self.rows[project.id] = ProjectRow(self.state, project)
        for gone in set(self.rows) - set(ids):
            del self.rows[gone]
        if self._shown != ids:
            self._shown = ids
            self.list.objects = [self.rows[i] for i in ids]
        self.empty.visible = not projects

    @param.depends("state.event_logs", watch=True)
    def _update_logs(self):
        self.logs.objects = [EventLogRow(self.state, e) for e in self.state.event_logs[:20]]
        self.logs_title.visible = bool(self.state.event_logs)

    @param.depends("state.notice", watch=True)
    def _update_notice(self):
        self.notice.object = f'<div class="wb-muted" style="font-size:14px">{self.state.notice}</div>'
        self.notice.visible = bool(self.state.notice)

    def __panel__(self):
        return self.layout
