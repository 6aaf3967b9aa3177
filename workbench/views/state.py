"""The one store of a dashboard session: which page, project and event log are open, and the latest snapshots.

Views only consume this store (and call the facade through :meth:`WorkbenchState.run`, which keeps every facade
call off the server's event loop). A periodic refresh keeps the project list and the open project's snapshot
current, so the training view follows progress without a reload.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import panel as pn
import param

from prcore_core import PrCore
from prcore_core.errors import PrCoreError
from prcore_core.project import EventLog, Project

log = logging.getLogger(__name__)

#: Pages of the workbench: key -> title shown in the navigation.
PAGES = {
    "projects": "Projects",
    "upload": "1 · Upload",
    "columns": "2 · Columns",
    "definition": "3 · Outcome & treatment",
    "training": "Training & metrics",
    "process": "Process map",
    "live": "Live prescriptions",
    "ongoing": "Ongoing cases",
}
#: Pages that show one project (they need ``project_id``).
PROJECT_PAGES = ("training", "process", "live", "ongoing")
#: Seconds between two refreshes of the project list and the open project.
REFRESH_SECONDS = 1.0

_fallback_executor: ThreadPoolExecutor | None = None


def default_executor() -> ThreadPoolExecutor:
    """A small pool for dashboard work when the server does not hand one over (tests, notebooks)."""
    global _fallback_executor
    if _fallback_executor is None:
        _fallback_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prcore-ui")
    return _fallback_executor


def error_text(exc: BaseException) -> str:
    """What a person reads about a failure: the core's message, never a traceback."""
    if isinstance(exc, PrCoreError):
        return exc.detail
    log.exception("Unexpected error in the dashboard", exc_info=exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"


class WorkbenchState(param.Parameterized):
    """Session state: navigation, the selected project and event log, and the latest snapshots of them."""

    page = param.Selector(default="projects", objects=list(PAGES), doc="The page shown.")
    project_id = param.Integer(default=None, allow_None=True, doc="The open project.")
    event_log_id = param.Integer(default=None, allow_None=True, doc="The event log being defined.")
    project = param.Parameter(default=None, doc="The latest snapshot of the open project (a Project).")
    projects = param.List(default=[], doc="Every project, newest first (Project snapshots).")
    event_logs = param.List(default=[], doc="Uploaded event logs that have no project yet (EventLog snapshots).")
    analysis = param.Dict(default=None, allow_None=True, doc="The analysis of the last columns definition applied.")
    notice = param.String(default="", doc="A short message for the whole page (e.g. the demo is being prepared).")

    def __init__(self, core: PrCore, executor: Executor | None = None, **params):
        super().__init__(**params)
        self.core = core
        self.executor = executor or default_executor()
        self._refreshing = False

    # -- running facade calls ------------------------------------------------------------------------------------
    async def run(self, function, *args, **kwargs) -> Any:
        """Run a (blocking) facade call in the executor and return its result, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args, **kwargs))

    # -- navigation ----------------------------------------------------------------------------------------------
    def go(self, page: str) -> None:
        self.page = page

    def open_project(self, project_id: int, page: str = "training") -> None:
        """Open a project on one of its pages."""
        snapshot = next((p for p in self.projects if p.id == project_id), None)
        with param.parameterized.batch_call_watchers(self):
            self.project_id = project_id
            if snapshot is not None:
                self.project = snapshot
                self.event_log_id = snapshot.event_log.id
            self.page = page

    def new_project(self) -> None:
        """Start the upload - columns - definition sequence for a new event log."""
        with param.parameterized.batch_call_watchers(self):
            self.event_log_id = None
            self.analysis = None
            self.page = "upload"

    def edit_event_log(self, event_log_id: int, page: str = "columns") -> None:
        """Continue defining an uploaded event log."""
        project = next((p for p in self.projects if p.event_log.id == event_log_id), None)
        with param.parameterized.batch_call_watchers(self):
            self.event_log_id = event_log_id
            self.analysis = None
            if project is not None:
                self.project_id = project.id
                self.project = project
            self.page = page

    # -- refreshing ----------------------------------------------------------------------------------------------
    def _snapshots(self) -> tuple[list[Project], list[EventLog]]:
        projects = self.core.list_projects()
        with_project = {p.event_log.id for p in projects}
        logs = [e for e in self.core.list_event_logs() if e.id not in with_project]
        return projects, logs[::-1]

    async def refresh(self) -> None:
        """Fetch the project list (and so the open project) off the loop; update only what changed."""
        if self._refreshing:
            return
        self._refreshing = True
        try:
            projects, logs = await self.run(self._snapshots)
        except Exception:  # the database may be busy; the next refresh tries again
            log.debug("Refreshing the project list failed", exc_info=True)
            return
        finally:
            self._refreshing = False
        self.apply_snapshots(projects, logs)

    def apply_snapshots(self, projects: list[Project], logs: list[EventLog]) -> None:
        if projects != self.projects:
            self.projects = projects
        if logs != self.event_logs:
            self.event_logs = logs
        if self.project_id is not None:
            current = next((p for p in projects if p.id == self.project_id), None)
            if current is None:  # deleted (here or elsewhere)
                with param.parameterized.batch_call_watchers(self):
                    self.project_id = None
                    self.project = None
                    if self.page in PROJECT_PAGES:
                        self.page = "projects"
            elif current != self.project:
                self.project = current

    def refresh_now(self) -> None:
        """Schedule a refresh soon (after an action changed something)."""
        pn.state.execute(self.refresh)

    @param.depends("project_id", watch=True)
    def _project_changed(self):
        if self.project_id is None:
            self.project = None
            return
        current = next((p for p in self.projects if p.id == self.project_id), None)
        if current is not None:
            self.project = current
            if self.event_log_id != current.event_log.id:
                self.event_log_id = current.event_log.id
            self.warm(current.event_log.id)
        else:
            self.refresh_now()

    def warm(self, event_log_id: int) -> None:
        """Have the core parse the defined log now (cached), so the process map and editors open quickly."""

        def build():
            try:
                self.core.defined_log(event_log_id)
            except Exception:  # not defined (yet): nothing to warm
                log.debug("Warming event log %s skipped", event_log_id, exc_info=True)

        self.executor.submit(build)
