"""Upload: drop an event log (CSV, XES, zip, gz; chunked, hundreds of MB), see it parsed, go on to its columns."""

from __future__ import annotations

import time

import pandas as pd
import panel as pn
import param

from prcore_core.project import EventLog
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import SEPARATORS, FileDrop, Message, fmt_int, heading, table


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def preview_frame(event_log: EventLog) -> pd.DataFrame:
    """The first rows of an uploaded log, as the core stored them."""
    return pd.DataFrame(event_log.preview, columns=event_log.columns_header)


#: The preview's cells and titles wrap (within a word if need be) instead of being cut off at their column's edge.
PREVIEW_CSS = """
.tabulator-cell, .tabulator-col-title {white-space: normal !important; overflow-wrap: anywhere;}
"""


def preview_table(frame: pd.DataFrame) -> pn.widgets.Tabulator:
    """The preview with every column in view: the columns share the width after their longest texts, and texts wrap
    where it is short (a log of many columns scrolls sideways once they are at their narrowest)."""
    # a share after the longest text, plus room for the padding and the sort arrow
    columns = [
        {"field": str(name), "widthGrow": 6 + max(len(str(v)) for v in [name, *frame[name].tolist()])}
        for name in frame.columns
    ]
    return table(
        "wb-upload-preview",
        value=frame,
        layout="fit_columns",
        stylesheets=[PREVIEW_CSS],
        configuration={"columnDefaults": {"minWidth": 70, "headerWordWrap": True}, "columns": columns},
    )


class UploadView(pn.viewable.Viewer):
    """Drag and drop an event log; the core parses it off the server loop; errors appear next to the drop zone."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.dropper = FileDrop("wb-upload-dropper", self._dropped, height=160, name="Event log file")
        self.separator = pn.widgets.Select(
            name="CSV separator", options=SEPARATORS, width=200, css_classes=["wb-separator"]
        )
        self.reparse = pn.widgets.Button(
            name="Parse again", width=120, visible=False, css_classes=["wb-reparse"], align="end"
        )
        self.progress = pn.indicators.Progress(
            active=True,
            value=-1,
            visible=False,
            sizing_mode="stretch_width",
            height=14,
            css_classes=["wb-upload-progress"],
        )
        self.status = pn.pane.HTML(css_classes=["wb-upload-status"], sizing_mode="stretch_width")
        self.message = Message("wb-upload-error")
        self.summary = pn.pane.HTML(css_classes=["wb-upload-summary"], sizing_mode="stretch_width")
        self.preview = pn.Column(sizing_mode="stretch_width", visible=False, margin=0)  # a table per file
        self.next_button = pn.widgets.Button(
            name="Next: define the columns →",
            button_type="primary",
            visible=False,
            css_classes=["wb-upload-next"],
            width=240,
        )
        self.next_button.on_click(lambda _: self.state.go("columns"))
        self.reparse.on_click(self._reparse)
        self._file: tuple[str, bytes] | None = None
        self.layout = pn.Column(
            heading("1 · Upload an event log"),
            pn.pane.HTML(
                '<div class="wb-muted">CSV (any separator), XES, or either one zipped or gzipped. The file '
                "is sent in chunks, so logs of hundreds of MB are fine. It is parsed once and kept as "
                "uploaded.</div>",
                sizing_mode="stretch_width",
            ),
            pn.Row(self.separator, self.reparse),
            self.dropper,
            self.progress,
            self.status,
            self.message,
            self.summary,
            self.preview,
            self.next_button,
            sizing_mode="stretch_width",
            css_classes=["wb-view-upload"],
        )

    async def _dropped(self, name: str, data: bytes):
        self._file = (name, data)
        await self._parse()

    async def _reparse(self, _):
        if self._file is not None:
            await self._parse()

    async def _parse(self):
        name, data = self._file
        separator = self.separator.value or None
        self.message.clear()
        self.summary.object = ""
        self.preview.visible = self.next_button.visible = False
        self.progress.visible = True
        self.status.object = f"Parsing <b>{name}</b> ({_size(len(data))}) …"
        started = time.perf_counter()
        core = self.state.core
        try:
            event_log = await self.state.run(core.upload_event_log, data, filename=name, separator=separator)
            cases = await self.state.run(core.count_cases, event_log.id)
        except Exception as exc:
            self.progress.visible = False
            self.status.object = ""
            self.message.error(error_text(exc))
            self.reparse.visible = True
            self.dropper.reset()  # not "Upload complete" beside the error: the zone is ready for another file
            return
        self.progress.visible = False
        self.reparse.visible = True
        seconds = time.perf_counter() - started
        self.status.object = f'<span class="wb-muted">Parsed {name} in {seconds:.1f} s.</span>'
        case_text = fmt_int(cases) if cases is not None else "? (no column looks like a case ID; define it next)"
        self.summary.object = (
            f'<div class="wb-upload-counts" style="font-size:15px"><b>{fmt_int(event_log.n_rows)}</b> events · '
            f"<b>{case_text}</b> cases · <b>{len(event_log.columns_header)}</b> columns</div>"
            f'<div class="wb-muted">First {len(event_log.preview)} rows:</div>'
        )
        self.preview.objects = [preview_table(preview_frame(event_log))]
        self.preview.visible = self.next_button.visible = True
        with param.parameterized.batch_call_watchers(self.state):
            self.state.analysis = None
            self.state.event_log_id = event_log.id
        self.state.refresh_now()

    def __panel__(self):
        return self.layout
