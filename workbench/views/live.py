"""Live prescriptions: start/stop streaming or a simulation, a live table of events and their prescriptions,
a per-case drill-down and live charts.

The core's broker calls :meth:`LiveView._news` from its prescriber thread; that callback only puts the news into a
``queue.Queue``. A periodic callback of the session (every :data:`DRAIN_MS` ms, holding the document lock) drains
the queue and updates the table and charts once per drain, however many events arrived, so a burst of hundreds of
events per second costs a handful of updates per second in the browser.
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import logging
import queue
import time
from typing import ClassVar

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.io import JSCode
from panel.reactive import ReactiveHTML

from prcore_core.status import LIVE, PLUGIN_TRAINED, STARTED
from workbench.views import prescriptions as rx
from workbench.views.charts import Histogram, RateChart, ShareChart, flowing
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, badge, fmt_int, heading, table

log = logging.getLogger(__name__)

DRAIN_MS = 400
#: Rows kept in the live table (a new row takes the place of the oldest).
TABLE_ROWS = 200
#: Events taken from the queue per drain at most (the rest waits for the next drain).
MAX_PER_DRAIN = 5000
#: Cases (and events per case) remembered for the drill-down.
MAX_CASES = 5000
MAX_CASE_EVENTS = 300
#: Values kept for the distribution chart.
DISTRIBUTION_VALUES = 2000
#: The case column's cells: the case id (as text), and the row marked when it is the case open in the drill-down
#: (the hidden ``open`` column), wherever the row moves to.
_OPEN_ROW = """(cell) => {
  cell.getRow().getElement().classList.toggle("wb-open-case", Boolean(cell.getData().open));
  return document.createTextNode(String(cell.getValue() ?? ""));
}"""
#: The highlight of those rows (in the table's shadow root).
_OPEN_ROW_CSS = ".tabulator-row.wb-open-case, .tabulator-row.wb-open-case:hover {background: #fff3cd !important;}"
MODES = {"Simulation (replay held-out cases)": "simulating", "Streaming (events posted over REST)": "streaming"}
PACES = {"Fixed interval": "interval", "The log's real time, sped up": "speed"}


def _clock(text: str | None) -> str:
    if not text:
        return ""
    try:
        return dt.datetime.fromisoformat(text).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(text)


def _epoch_second(text: str | None) -> int:
    try:
        return int(dt.datetime.fromisoformat(text).timestamp())
    except (TypeError, ValueError):
        return int(time.time())


class PointerWatch(ReactiveHTML):
    """A box that tells the server while the pointer is over it: the live table holds still then, so that a click
    lands on the row that was pointed at (a table redrawn under the pointer loses clicks)."""

    table = param.Parameter(allow_refs=False, doc="The live table shown in the box (the widget, not its value).")
    pointer_over = param.Boolean(default=False, doc="Is the pointer over the box?")

    # a move over the box says so too: an enter is missed when the table is redrawn under a still pointer
    _template = (
        '<div id="box" style="width: 100%" onmouseenter="${script(\'enter\')}" '
        "onmousemove=\"${script('enter')}\" onmouseleave=\"${script('leave')}\">${table}</div>"
    )
    _scripts: ClassVar[dict[str, str]] = {
        "enter": "if (!data.pointer_over) { data.pointer_over = true }",
        "leave": "data.pointer_over = false",
    }


def _signature(project) -> tuple:
    """What the table and charts are built for: the project, its columns and the plugins that prescribe.

    A project being (re)trained has no trained plugins yet; when it is trained, the signature changes and the
    view is built again for its plugins (a view opened during training would otherwise never show them).
    """
    definition = (project.event_log.definition or {}).get("columns_definition") or {}
    plugins = tuple(
        (p.key, p.name, p.prescription_type) for p in project.plugins if not p.disabled and p.status in PLUGIN_TRAINED
    )
    case = next((c for c, d in definition.items() if d == "CASE_ID"), None)
    activity = next((c for c, d in definition.items() if d == "ACTIVITY"), None)
    return project.id, plugins, case, activity


class LiveView(pn.viewable.Viewer):
    """Streaming control, live table, case drill-down and charts of the open project."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.queue: queue.Queue = queue.Queue()
        self.token: int | None = None
        self.subscribed_id: int | None = None
        self.received = 0
        self._rate_second = 0
        self._pending_reset = None
        self._signature: tuple | None = None
        self._controls_synced = False
        self.plugins: list[tuple[str, str, str]] = []  # (key, name, type)
        self.case_column = self.activity_column = None
        self.cases: collections.OrderedDict[str, list[dict]] = collections.OrderedDict()
        self.per_second: dict[int, int] = collections.defaultdict(int)
        self.distribution: collections.deque = collections.deque(maxlen=DISTRIBUTION_VALUES)
        self.shares: dict[str, list[int]] = {}
        # controls
        self.mode = pn.widgets.RadioButtonGroup(
            options=MODES,
            value="simulating",
            button_type="primary",
            button_style="outline",
            css_classes=["wb-live-mode"],
        )
        self.pace = pn.widgets.Select(name="Pace", options=PACES, value="interval", width=220)
        self.interval = pn.widgets.FloatInput(
            name="Seconds between events", value=0.1, start=0.0, step=0.05, width=170, css_classes=["wb-live-interval"]
        )
        self.speed = pn.widgets.FloatInput(
            name="Speed-up (× real time)",
            value=3600.0,
            start=1.0,
            width=170,
            visible=False,
            css_classes=["wb-live-speed"],
        )
        self.max_events = pn.widgets.IntInput(
            name="Stop after (events, 0 = all)", value=0, start=0, width=190, css_classes=["wb-live-max"]
        )
        self.start_button = pn.widgets.Button(
            name="Start", button_type="success", width=90, align="end", css_classes=["wb-live-start"]
        )
        self.stop_button = pn.widgets.Button(
            name="Stop", button_type="danger", width=90, align="end", css_classes=["wb-live-stop"]
        )
        self.clear_button = pn.widgets.Button(
            name="Clear streamed events", width=170, align="end", css_classes=["wb-live-clear"]
        )
        self.start_button.on_click(self._start)
        self.stop_button.on_click(self._stop)
        self.clear_button.on_click(self._clear)
        self.pace.param.watch(self._pace_changed, "value")
        self.mode.param.watch(self._mode_changed, "value")
        self.status = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-live-status"])
        self.counter = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-live-counter"])
        self.message = Message("wb-live-error")
        self.hint = pn.pane.HTML(visible=False, sizing_mode="stretch_width")
        self.table: pn.widgets.Tabulator | None = None  # its columns are the plugins': built by ``_reset``
        self.table_holder = PointerWatch(sizing_mode="stretch_width", margin=0, css_classes=["wb-live-table-box"])
        self.table_holder.param.watch(self._pause_changed, "pointer_over")
        self.freeze = pn.widgets.Checkbox(
            name="Pause the table (events keep arriving and are added on resume)", css_classes=["wb-live-freeze"]
        )
        self.freeze.param.watch(self._freeze_changed, "value")
        self.pointer_note = pn.pane.HTML(
            '<span class="wb-muted">The table holds still while the pointer is over it; new events are added '
            "when it leaves.</span>",
            visible=False,
            css_classes=["wb-live-pointer-note"],
            margin=(0, 10),
        )
        # The table's rows, each in a place of its own until the row TABLE_ROWS events newer takes it: a click on
        # a row the browser shows still names that row when newer rows arrived meanwhile (the table sorts them
        # newest first in the browser).
        self._slots: list[dict] = []
        self._next_slot = 0
        self._held: collections.deque = collections.deque(maxlen=TABLE_ROWS)  # arrived while the table is paused
        self._columns: list[str] = ["event", "received", "case", "activity"]
        self.open_case: str | None = None
        # drill-down
        self.case_input = pn.widgets.TextInput(
            name="Case", placeholder="click an event, or type a case id", width=300, css_classes=["wb-case-input"]
        )
        self.case_input.param.watch(lambda _: self._show_case(), "value")
        self.case_header = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-case-header"])
        self.case_events: pn.widgets.Tabulator | None = None  # built when a case is first shown (quicker page load)
        self.case_prescriptions: pn.widgets.Tabulator | None = None
        self.case_tables = pn.Column(sizing_mode="stretch_width")
        # charts
        self.rate = RateChart()
        self.histogram = Histogram("Alarm probability")
        self.share: ShareChart | None = None  # its bars are the project's plugins: built by ``_reset``
        for plot in (self.rate.plot, self.histogram.plot):
            flowing(plot)
        self.share_pane = pn.pane.Bokeh(sizing_mode="stretch_width")
        charts = pn.FlexBox(
            pn.pane.Bokeh(self.rate.plot, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.histogram.plot, sizing_mode="stretch_width"),
            self.share_pane,
            sizing_mode="stretch_width",
            css_classes=["wb-live-charts"],
        )
        self.placeholder = pn.pane.HTML('<div class="wb-muted">Open a trained project on the Projects page.</div>')
        self.body = pn.Column(
            pn.FlexBox(self.mode, self.pace, sizing_mode="stretch_width"),
            pn.FlexBox(
                self.interval,
                self.speed,
                self.max_events,
                self.start_button,
                self.stop_button,
                self.clear_button,
                align_items="flex-end",
                sizing_mode="stretch_width",
            ),
            self.hint,
            self.message,
            self.status,
            self.counter,
            charts,
            heading("Incoming events and their prescriptions (newest first)", 4),
            pn.FlexBox(self.freeze, self.pointer_note, align_items="center", sizing_mode="stretch_width"),
            self.table_holder,
            heading("Case drill-down", 4),
            self.case_input,
            self.case_header,
            self.case_tables,
            sizing_mode="stretch_width",
        )
        self.layout = pn.Column(
            heading("Live prescriptions"),
            self.placeholder,
            self.body,
            sizing_mode="stretch_width",
            css_classes=["wb-view-live"],
        )
        self.drain_callback = pn.state.add_periodic_callback(self._drain, period=DRAIN_MS)
        pn.state.on_session_destroyed(self._session_destroyed)
        self._project_changed()
        if self._pending_reset is not None:
            # Nothing is rendered yet (no model, so no document lock needed): set the table and charts up for the
            # project now, so the first render is the final one instead of a placeholder replaced by the first drain.
            project, self._pending_reset = self._pending_reset, None
            self._reset(project)

    # -- subscription ----------------------------------------------------------------------------------------------
    def _news(self, kind: str, payload) -> None:
        """Called by the broker in the prescriber's thread: only hand the news over, never touch the page here."""
        self.queue.put((kind, payload))

    def _subscribe(self, project_id: int | None) -> None:
        broker = self.state.core.broker
        if self.token is not None:
            broker.unsubscribe(self.token)
            self.token = None
        self.queue = queue.Queue()
        self.subscribed_id = project_id
        if project_id is not None:
            self.token = broker.subscribe(project_id, self._news)

    def _session_destroyed(self, _context) -> None:
        if self.token is not None:
            self.state.core.broker.unsubscribe(self.token)
            self.token = None
        self.drain_callback.stop()

    @param.depends("state.project", watch=True)
    def _project_changed(self):
        project = self.state.project
        self.placeholder.visible = project is None
        self.body.visible = project is not None
        if project is None:
            self._subscribe(None)
            self._signature = None
            return
        if project.id != self.subscribed_id:
            self._subscribe(project.id)
        signature = _signature(project)
        if signature != self._signature:
            self._signature = signature
            self._pending_reset = project
        self._show_status(str(project.status))

    def _reset(self, project) -> None:
        """Start afresh for a project (changes Bokeh models: only called from the drain, under the document lock)."""
        _, plugins, self.case_column, self.activity_column = _signature(project)
        self.plugins = list(plugins)
        self.received = 0
        self._slots.clear()
        self._next_slot = 0
        self._held.clear()
        self.cases.clear()
        self.per_second.clear()
        self.distribution.clear()
        keys = [k for k, _, _ in self.plugins]
        self._columns = ["event", "received", "case", "activity", *keys]
        self.table = table(
            "wb-live-table",
            explained=keys,
            hidden_columns=["open"],
            height=390,
            selectable=False,
            sorters=[{"field": "event", "dir": "desc"}],
            titles={"event": "#", "received": "at", **rx.column_titles(self.plugins)},
            configuration={
                "columns": [{"field": "case", "formatter": JSCode(_OPEN_ROW)}],
                "layoutColumnsOnNewData": True,
            },
            stylesheets=[_OPEN_ROW_CSS],
        )
        self.table.on_click(self._clicked)
        self._show_rows()
        self.table_holder.table = self.table
        alarm = [n for _, n, t in self.plugins if t == "ALARM"]
        self.histogram.set_title(
            "Alarm probability (negative outcome)" if alarm else "Estimated treatment effect (CATE)"
        )
        self.histogram.edges = np.linspace(0, 1, 21) if alarm else np.linspace(-1, 1, 21)
        self.histogram.update([])
        acting = [n for _, n, t in self.plugins if t in ("TREATMENT_EFFECT", "RESOURCE_ALLOCATION")]
        self.shares = {name: [0, 0] for name in acting}
        if self.share is None or self.share.names != acting:
            self.share = ShareChart(acting)
            flowing(self.share.plot)
            self.share_pane.object = self.share.plot
        else:  # the same plugins (a cleared stream): keep the chart, only zero it
            self.share.update({})
        self.rate.update({}, int(time.time()))
        self.counter.object = ""
        self.case_events = self.case_prescriptions = None  # their columns are the plugins' too
        self.case_tables.objects = []
        self.case_input.value = ""
        self._show_case()

    def _show_status(self, status: str) -> None:
        running = status in STARTED
        self.start_button.disabled = status != "TRAINED"
        self.stop_button.disabled = not running
        self.clear_button.disabled = status == "ERROR"
        for control in (self.mode, self.pace, self.interval, self.speed, self.max_events):
            control.disabled = running  # a running session keeps its pace: the controls show it (below)
        if status in LIVE and not self._controls_synced:
            self._controls_synced = True
            pn.state.execute(self._show_running_pace)
        elif not running:
            self._controls_synced = False
        explain = {
            "TRAINED": "Ready: start a simulation or open the stream.",
            "ACTIVATING": "Loading the plugins' models …",
            "SIMULATING": "Simulating: held-out cases are replayed event by event.",
            "STREAMING": "Streaming: events posted to the REST endpoint are prescribed here.",
        }.get(status, "The project must be trained before it can prescribe.")
        self.status.object = f'<span class="wb-live-state" data-status="{status}">{badge(status)}</span> {explain}'

    async def _show_running_pace(self) -> None:
        """Set the controls to what the running session uses (after a reload they would show the defaults)."""
        project = self.state.project
        if project is None or str(project.status) not in LIVE:
            return
        try:
            pace = await self.state.run(self.state.core.simulation_settings, project.id)
        except Exception:  # the controls keep what they show; the session runs on regardless
            log.debug("Reading the pace of project %s failed", project.id, exc_info=True)
            return
        if pace is None:  # streaming (or the simulation just ended)
            if str(project.status) == "STREAMING":
                self.mode.value = "streaming"
            return
        self.mode.value = "simulating"
        if pace["interval"] is None:
            self.pace.value = "speed"
            self.speed.value = float(pace["speed"] or 1.0)
        else:
            self.pace.value = "interval"
            self.interval.value = float(pace["interval"])
        self.max_events.value = int(pace["max_events"] or 0)

    # -- controls --------------------------------------------------------------------------------------------------
    def _pace_changed(self, _):
        self.interval.visible = self.pace.value == "interval"
        self.speed.visible = self.pace.value == "speed"

    def _mode_changed(self, _):
        simulating = self.mode.value == "simulating"
        self.pace.visible = self.max_events.visible = simulating
        self.interval.visible = simulating and self.pace.value == "interval"
        self.speed.visible = simulating and self.pace.value == "speed"
        project = self.state.project
        self.hint.visible = not simulating
        if project is not None:
            self.hint.object = (
                f'<div class="wb-muted">Post events as JSON to <code>/event/{project.id}</code> with '
                "the header <code>Authorization: Bearer &lt;API token&gt;</code> (printed when the "
                "server starts); they appear here with their prescriptions.</div>"
            )

    async def _start(self, _):
        project = self.state.project
        if project is None:
            return
        self.message.clear()
        kwargs = {}
        if self.mode.value == "simulating":
            if self.pace.value == "interval":
                kwargs["interval"] = float(self.interval.value or 0.0)
            else:
                kwargs["interval"], kwargs["speed"] = None, float(self.speed.value or 1.0)
            kwargs["max_events"] = int(self.max_events.value) or None
        self.start_button.disabled = True
        try:
            snapshot = await self.state.run(self.state.core.start_streaming, project.id, self.mode.value, **kwargs)
        except Exception as exc:
            self.message.error(error_text(exc))
            self.start_button.disabled = False
            return
        self._show_status(str(snapshot.status))
        await self.state.refresh()

    async def _stop(self, _):
        project = self.state.project
        if project is None:
            return
        self.message.clear()
        try:
            snapshot = await self.state.run(self.state.core.stop_streaming, project.id)
        except Exception as exc:
            self.message.error(error_text(exc))
            return
        self._show_status(str(snapshot.status))
        await self.state.refresh()

    async def _clear(self, _):
        project = self.state.project
        if project is None:
            return
        self.message.clear()
        try:
            await self.state.run(self.state.core.clear_stream, project.id)
        except Exception as exc:
            self.message.error(error_text(exc))
            return
        self._pending_reset = project  # done by the next drain, which holds the document lock
        await self.state.refresh()

    # -- draining --------------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Take whatever the broker queued and update the page once (runs in the session, with the document lock)."""
        if self._pending_reset is not None:
            project, self._pending_reset = self._pending_reset, None
            self._reset(project)
        events: list[dict] = []
        status = None
        try:
            while len(events) < MAX_PER_DRAIN:
                kind, payload = self.queue.get_nowait()
                if kind == "events":
                    events.extend(payload)
                elif kind == "status":
                    status = str(payload)
                elif kind == "finished":
                    status = status or "TRAINED"
        except queue.Empty:
            pass
        if status is not None:
            self._show_status(status)
            self.state.refresh_now()
        now = int(time.time())
        if not events:
            if self.received and now != self._rate_second:  # the rate chart and counter run on while nothing arrives
                self._rate_second = now
                self.rate.update(self.per_second, now)
                self._show_counter(now)
            return
        try:
            self._take(events, now)
        except Exception:  # a malformed event must not stop the live view
            log.exception("Updating the live view failed")

    def _row(self, event: dict) -> dict:
        data = event.get("data") or {}
        row = {
            "event": event.get("id"),
            "received": _clock(event.get("timestamp")),
            "case": str(data.get(self.case_column, "")),
            "activity": str(data.get(self.activity_column, "")),
        }
        by_key = {rx.plugin_key(p): p for p in event.get("prescriptions") or []}
        for key, _, _ in self.plugins:
            if event.get("case_completed"):
                row.update(rx.cells(key, None))
                row[key] = "case completed"
            else:
                row.update(rx.cells(key, by_key.get(key)))
        return row

    def _take(self, events: list[dict], now: int) -> None:
        self.received += len(events)
        names = {k: n for k, n, _ in self.plugins}
        alarm = any(t == "ALARM" for _, _, t in self.plugins)
        arrived = set()
        for event in events:
            data = event.get("data") or {}
            case = str(data.get(self.case_column, ""))
            arrived.add(case)
            history = self.cases.setdefault(case, [])
            self.cases.move_to_end(case)
            history.append(event)
            del history[:-MAX_CASE_EVENTS]
            self.per_second[_epoch_second(event.get("timestamp"))] += 1
            for prescription in event.get("prescriptions") or []:
                value = rx.alarm_probability(prescription) if alarm else rx.treatment_effect(prescription)
                if value is not None and (alarm or prescription.get("type") == "TREATMENT_EFFECT"):
                    self.distribution.append(value)
                recommended = rx.recommends_treatment(prescription)
                name = names.get(rx.plugin_key(prescription))
                if recommended is not None and name in self.shares:
                    self.shares[name][0] += int(recommended)
                    self.shares[name][1] += 1
        while len(self.cases) > MAX_CASES:
            self.cases.popitem(last=False)
        for second in [s for s in self.per_second if s < now - 300]:
            del self.per_second[second]
        rows = [self._row(e) for e in events[-TABLE_ROWS:]]
        if self.freeze.value or self.table_holder.pointer_over:
            self._held.extend(rows)
        else:
            self._place(rows)
            self._show_rows()
        self.rate.update(self.per_second, now)
        self.histogram.update(list(self.distribution))
        self.share.update({name: tuple(v) for name, v in self.shares.items()})
        self._show_counter(now)
        if self.case_input.value and (self.open_case is None or self.open_case in arrived):
            self._show_case()

    def _show_counter(self, now: int) -> None:
        last = self.per_second.get(now - 1, 0)
        self.counter.object = (
            f'<span class="wb-live-received" data-count="{self.received}">'
            f"<b>{fmt_int(self.received)}</b> events received in this view</span> · "
            f'<span class="wb-live-last-second" data-count="{last}">{fmt_int(last)} in the last second</span> · '
            f"{fmt_int(len(self.cases))} cases"
        )

    def _place(self, rows: list[dict]) -> None:
        """Put new rows in the table's places: free ones first, then each in the place of the oldest row."""
        for row in list(rows)[-TABLE_ROWS:]:
            if len(self._slots) < TABLE_ROWS:
                self._slots.append(row)
            else:
                self._slots[self._next_slot] = row
                self._next_slot = (self._next_slot + 1) % TABLE_ROWS

    def _show_rows(self) -> None:
        """One table update for the whole drain: the rows in their places (the browser shows them newest first),
        the open case's rows marked."""
        if self.table is None:
            return
        frame = pd.DataFrame(self._slots, columns=self._columns + [c for c in self._explained_columns()])
        frame["event"] = pd.to_numeric(frame["event"], errors="coerce")
        frame["open"] = frame["case"] == self.open_case if self.open_case else False
        self.table.value = frame

    def _explained_columns(self) -> list[str]:
        return [f"{k}{suffix}" for k, _, _ in self.plugins for suffix in (rx.WHY, rx.SORT)]

    def _freeze_changed(self, _):
        if not (self.freeze.value or self.table_holder.pointer_over):
            self._place(list(self._held))
            self._held.clear()
            self._show_rows()

    def _pause_changed(self, _):
        """The pointer came over the table (it holds still) or left it (the rows that arrived meanwhile are added)."""
        self.pointer_note.visible = self.table_holder.pointer_over
        self._freeze_changed(None)

    # -- drill-down ------------------------------------------------------------------------------------------------
    def _clicked(self, event) -> None:
        try:
            case = self._slots[event.row]["case"]
        except (IndexError, KeyError, TypeError):
            return
        self.case_input.value = str(case)

    def _find_case(self, text: str) -> tuple[str | None, int]:
        """The case an id names, and how many cases it matches: the exact id, else the log's own id (a simulation
        prefixes each case id with its run, "sAwanUOQ-206793"), else a part of the id; the most recent first."""
        if text in self.cases:
            return text, 1
        for matches in (
            [c for c in self.cases if c.endswith(f"-{text}")],
            [c for c in self.cases if text.lower() in c.lower()],
        ):
            if matches:
                return matches[-1], len(matches)  # the cases are kept in the order of their latest event
        return None, 0

    def _show_case(self) -> None:
        typed = (self.case_input.value or "").strip()
        case, matching = self._find_case(typed) if typed else (None, 0)
        if case != self.open_case:
            self.open_case = case
            self._show_rows()
        history = self.cases.get(case) if case is not None else None
        if history is None:
            self.case_header.object = (
                (f'<div class="wb-muted">No event of case {html.escape(typed)} arrived in this view.</div>')
                if typed
                else ""
            )
            self.case_tables.visible = False
            return
        keys = [k for k, _, _ in self.plugins]
        completed = any(e.get("case_completed") for e in history)
        also = (
            f' <span class="wb-muted">({matching} cases match {html.escape(typed)}; the latest is shown)</span>'
            if matching > 1
            else ""
        )
        self.case_header.object = (
            f'<div class="wb-case-title"><b>Case {html.escape(case)}</b>: '
            f"{len(history)} events{' · completed' if completed else ' · running'}{also}</div>"
        )
        events = pd.DataFrame([{"event": e.get("id"), **(e.get("data") or {})} for e in history])
        events = events.astype(object).where(events.notna(), None)
        rows = []
        for event in history:
            row = {
                "event": event.get("id"),
                "at": _clock(event.get("timestamp")),
                "activity": str((event.get("data") or {}).get(self.activity_column, "")),
            }
            by_key = {rx.plugin_key(p): p for p in event.get("prescriptions") or []}
            for key in keys:
                if event.get("case_completed"):
                    row.update(rx.cells(key, None))
                    row[key] = "case completed"
                else:
                    row.update(rx.cells(key, by_key.get(key), full=True))
            rows.append(row)
        prescribed = pd.DataFrame(rows, columns=["event", "at", "activity", *keys, *self._explained_columns()])
        self.case_tables.visible = True
        if self.case_events is None:  # built with their first rows, in a shown column
            self.case_events = table("wb-case-events", value=events, max_height=220)
            self.case_prescriptions = table(
                "wb-case-prescriptions",
                explained=keys,
                value=prescribed,
                titles={k: n for k, n, _ in self.plugins},
                max_height=260,
            )
            self.case_tables.objects = [
                heading("Prescriptions after each event of the case", 4),
                self.case_prescriptions,
                heading("The case's events", 4),
                self.case_events,
            ]
        else:
            self.case_events.value = events
            self.case_prescriptions.value = prescribed

    def __panel__(self):
        return self.layout
