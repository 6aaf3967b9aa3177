"""The Panel app served at ``/``: the workbench a process analyst works in, from upload to live prescriptions.

One :class:`~workbench.views.state.WorkbenchState` per browser session owns the state (page, open project, latest
snapshots); every view in :mod:`workbench.views` consumes it and calls the :class:`~prcore_core.PrCore` facade
through it, off the server loop. The page and the open project are kept in the URL (``?view=live&project=3``), so a
view can be bookmarked or reloaded.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from concurrent.futures import Executor

import panel as pn
import param
from bokeh.models import CustomJS

from prcore_core import PrCore
from workbench.views.live import PointerWatch
from workbench.views.state import PAGES, PROJECT_PAGES, REFRESH_SECONDS, WorkbenchState
from workbench.views.widgets import CSS, badge

_VIEWS = {
    "projects": ("workbench.views.projects", "ProjectsView"),
    "upload": ("workbench.views.upload", "UploadView"),
    "columns": ("workbench.views.columns", "ColumnsView"),
    "definition": ("workbench.views.outcome_treatment", "OutcomeTreatmentView"),
    "training": ("workbench.views.training", "TrainingView"),
    "process": ("workbench.views.process", "ProcessView"),
    "live": ("workbench.views.live", "LiveView"),
    "ongoing": ("workbench.views.ongoing", "OngoingView"),
}

pn.extension("tabulator", "filedropper", raw_css=[CSS], notifications=False)

#: Below this window width the sidebar is folded away (the main area needs 800 px) and opens over the page.
NARROW_PX = 1100
#: The open sidebar of a narrow window lies over the page instead of squeezing it.
SIDEBAR_CSS = f"""
@media (max-width: {NARROW_PX - 1}px) {{
  #sidebar.show, #sidebar.collapsing {{position: absolute; z-index: 1040; height: 100%; background: white;
                                       box-shadow: 4px 0 12px rgba(0, 0, 0, .18);}}
  #content {{position: relative;}}
}}
"""
#: Run once the page is built: fold the sidebar of a narrow window (and when a window becomes narrow), unfold it
#: when the window becomes wide, and fold it again after a page was chosen in it on a narrow window.
SIDEBAR_JS = f"""
const sidebar = document.getElementById("sidebar");
const toggle = document.getElementById("sidebar-toggle");
if (sidebar && !sidebar.dataset.wbFolding) {{
  sidebar.dataset.wbFolding = "1";
  const narrow = window.matchMedia("(max-width: {NARROW_PX - 1}px)");
  const show = (open) => {{
    if (sidebar.classList.contains("collapsing")) {{  // still sliding open or shut: once it is done
      sidebar.addEventListener("transitionend", () => show(open), {{once: true}});
      return;
    }}
    sidebar.classList.toggle("show", open);
    if (toggle) {{ toggle.setAttribute("aria-expanded", String(open)); }}
  }};
  if (narrow.matches) {{ show(false); }}
  narrow.addEventListener("change", (event) => show(!event.matches));
  sidebar.addEventListener("click", (event) => {{
    const path = event.composedPath();
    if (narrow.matches && path.some((node) => node.classList && node.classList.contains("wb-nav"))) {{
      show(false);
    }}
  }});
}}
"""


class Navigation(pn.viewable.Viewer):
    """The sidebar: pages, with the open project's name and status."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.buttons = {}
        for page, title in PAGES.items():
            button = pn.widgets.Button(
                name=title,
                sizing_mode="stretch_width",
                button_style="outline",
                css_classes=["wb-nav", f"wb-nav-{page}"],
                margin=(3, 5),
            )
            button.on_click(lambda _, page=page: setattr(state, "page", page))
            self.buttons[page] = button
        self.project = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-nav-project"], margin=(8, 5, 0, 5))
        self.layout = pn.Column(
            self.buttons["projects"],
            pn.pane.HTML('<div class="wb-muted" style="margin-top:8px">NEW PROJECT</div>', margin=(0, 5)),
            self.buttons["upload"],
            self.buttons["columns"],
            self.buttons["definition"],
            pn.pane.HTML('<div class="wb-muted" style="margin-top:8px">OPEN PROJECT</div>', margin=(0, 5)),
            self.project,
            *[self.buttons[p] for p in PROJECT_PAGES],
            sizing_mode="stretch_width",
        )
        self._update()

    @param.depends("state.page", "state.project", watch=True)
    def _update(self):
        for page, button in self.buttons.items():
            button.button_type = "primary" if page == self.state.page else "default"
            button.button_style = "solid" if page == self.state.page else "outline"
            if page in PROJECT_PAGES:
                button.disabled = self.state.project is None
        project = self.state.project
        self.project.object = (
            f"<b>{html.escape(project.name)}</b><br>{badge(project.status)}"
            if project
            else '<span class="wb-muted">none: open one on the Projects page</span>'
        )

    def __panel__(self):
        return self.layout


class Workbench(pn.viewable.Viewer):
    """The page: navigation and the current view (views are built on first visit, then kept)."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.views: dict[str, pn.viewable.Viewer] = {}
        self.main = pn.Column(sizing_mode="stretch_width", css_classes=["wb-main"])
        self.navigation = Navigation(state)
        self._show()

    def view(self, page: str):
        if page not in self.views:
            module_name, class_name = _VIEWS[page]
            module = __import__(module_name, fromlist=[class_name])
            self.views[page] = getattr(module, class_name)(self.state)
        return self.views[page]

    @param.depends("state.page", watch=True)
    def _show(self):
        page = self.state.page
        if page in PROJECT_PAGES and self.state.project_id is None:
            page = "projects"
        self.main.objects = [self.view(page)]

    def __panel__(self):
        return self.main


def create_app(
    core: PrCore, executor: Executor | None = None, demo: Callable[[], int | None] | None = None
) -> pn.viewable.Viewable:
    """A fresh app for one browser session.

    Parameters
    ----------
    core
        The facade every view calls.
    executor
        Where blocking facade calls run (the server's pool); a small default pool otherwise.
    demo
        For ``serve --demo``: returns the demo project's id once it exists; a new session opens on it.
    """
    state = WorkbenchState(core, executor)
    state.apply_snapshots(*state._snapshots())
    if pn.state.location is not None:
        pn.state.location.sync(state, {"page": "view", "project_id": "project"})
    if demo is not None and state.project_id is None and state.page == "projects":
        _open_demo(state, demo)
    workbench = Workbench(state)
    pn.state.add_periodic_callback(state.refresh, period=int(REFRESH_SECONDS * 1000))
    template = pn.template.BootstrapTemplate(
        title="PrCore Workbench",
        sidebar=[workbench.navigation],
        # A hidden PointerWatch makes its model's type known to the page from the start: the live view, built on a
        # later visit, adds one (the browser cannot resolve a custom model's type that arrives later).
        main=[workbench, PointerWatch(visible=False)],
        sidebar_width=250,
        header_background="#1d3557",
        raw_css=[SIDEBAR_CSS],
    )
    if pn.state.curdoc is not None:
        pn.state.curdoc.js_on_event("document_ready", CustomJS(code=SIDEBAR_JS))
    return template


def _open_demo(state: WorkbenchState, demo: Callable[[], int | None]) -> None:
    """Open the demo project as soon as it exists (it is created in the background by ``serve --demo``)."""
    project_id = demo()
    if project_id is not None:
        state.open_project(project_id, "training")
        return
    state.notice = "Preparing the demo project (a synthetic loan-application log) … it opens here in a moment."

    def check():
        found = demo()
        if found is None:
            return
        callback.stop()
        state.notice = ""
        state.refresh_now()
        if state.page == "projects" and state.project_id is None:
            state.open_project(found, "training")

    callback = pn.state.add_periodic_callback(check, period=500)
