"""Small pieces every view uses: the inline message next to a control, status badges, number formatting, the
file drop zone and the tables."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Sequence

import pandas as pd
import panel as pn
from panel.io import JSCode

#: Colours of project and plugin statuses (badges and progress bars).
STATUS_COLOURS = {
    "WAITING": "#6c757d",
    "PREPROCESSING": "#0d6efd",
    "TRAINING": "#0d6efd",
    "TRAINED": "#198754",
    "ACTIVATING": "#fd7e14",
    "STREAMING": "#6f42c1",
    "SIMULATING": "#6f42c1",
    "ERROR": "#dc3545",
}

CSS = """
.wb-badge {display: inline-block; padding: 2px 8px; border-radius: 10px; color: white; font-size: 12px;
           font-weight: 600; letter-spacing: .02em; vertical-align: middle;}
.wb-muted {color: #6c757d;}
.wb-card {border: 1px solid #dee2e6; border-radius: 8px; padding: 4px 12px; margin: 4px 0; background: white;}
.wb-kpi {font-size: 20px; font-weight: 600;}
"""


#: Stylesheet of every table (injected into the table's shadow root): a compact, readable font size.
TABLE_CSS = ".tabulator, .tabulator-col, .tabulator-row, .tabulator-cell {font-size: 13px !important;}"


def slug(text: str) -> str:
    """A CSS-class-safe form of a column or plugin name (stable selectors for tests)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-").lower() or "x"


def badge(status: str) -> str:
    """HTML of a coloured status badge."""
    colour = STATUS_COLOURS.get(str(status), "#dc3545")
    label = str(status) if str(status) in STATUS_COLOURS else "ERROR"
    return f'<span class="wb-badge" style="background:{colour}">{html.escape(label)}</span>'


def fmt_int(value) -> str:
    return f"{int(value):,}"


def fmt_time(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "—"


_ALERT_STYLES = {
    "danger": ("#842029", "#f8d7da", "#f5c2c7"),
    "info": ("#055160", "#cff4fc", "#b6effb"),
    "success": ("#0f5132", "#d1e7dd", "#badbcc"),
    "warning": ("#664d03", "#fff3cd", "#ffecb5"),
}


class Message(pn.pane.HTML):
    """An inline message next to a control: hidden until something is said (text is shown as is, not markup)."""

    def __init__(self, css_class: str, **params):
        params.setdefault("visible", False)
        params.setdefault("margin", (4, 10))
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__("", css_classes=["wb-message", css_class], **params)
        self.kind = None

    def _say(self, kind: str, text: str, markup: bool = False) -> None:
        colour, background, border = _ALERT_STYLES[kind]
        body = text if markup else html.escape(text)
        self.kind = kind
        self.param.update(
            object=f'<div class="wb-alert wb-alert-{kind}" style="color:{colour};background:{background};'
            f'border:1px solid {border};border-radius:6px;padding:8px 12px;">{body}</div>',
            visible=True,
        )

    def error(self, text: str) -> None:
        self._say("danger", text)

    def info(self, text: str, markup: bool = False) -> None:
        self._say("info", text, markup)

    def success(self, text: str, markup: bool = False) -> None:
        self._say("success", text, markup)

    def warning(self, text: str) -> None:
        self._say("warning", text)

    def clear(self) -> None:
        self.kind = None
        self.visible = False


def heading(text: str, level: int = 2) -> pn.pane.HTML:
    """A page (2), section (3) or block (4) title, the same size in every view."""
    size = {2: 22, 3: 17, 4: 15}[level]
    return pn.pane.HTML(
        f'<div class="wb-h{level}" style="font-size:{size}px;font-weight:600;margin:2px 0">{html.escape(text)}</div>',
        sizing_mode="stretch_width",
        margin=(6, 10, 2, 10),
    )


#: Suffixes of the hidden columns that go with a shown column ``c`` of a table: ``c__why`` is the text of its
#: tooltip (why the plugin says so), ``c__sort`` the number it sorts by ("ok 8%" below "ok 77%").
WHY, SORT = "__why", "__sort"

#: The tooltip of a cell: its ``__why`` text, else the cell's own text when it does not fit its column (as text,
#: never markup: values come from the log).
_TOOLTIP = """(e, cell) => {
  const element = cell.getElement();
  const why = cell.getData()[cell.getField() + "__why"];
  const text = why ? why : (element.scrollWidth > element.clientWidth ? String(cell.getValue() ?? "") : "");
  if (!text) { return false; }
  const tip = document.createElement("div");
  tip.className = "wb-tooltip";
  tip.textContent = text;
  return tip;
}"""
#: Sorts a column by its hidden ``__sort`` number; cells without one come last in both directions.
_SORTER = """(a, b, aRow, bRow, column, dir) => {
  const field = column.getField() + "__sort";
  const x = aRow.getData()[field], y = bRow.getData()[field];
  const xMissing = x == null || Number.isNaN(x), yMissing = y == null || Number.isNaN(y);
  if (xMissing || yMissing) { return xMissing === yMissing ? 0 : (xMissing === (dir === "asc") ? 1 : -1); }
  return x - y;
}"""


def table(css_class: str, explained: Sequence[str] = (), **params) -> pn.widgets.Tabulator:
    """A read-only table with the workbench's look and a stable CSS class.

    Every cell whose text is cut off by its column shows the full text on hover. The ``explained`` columns carry
    hidden ``__why`` and ``__sort`` columns (:func:`workbench.views.prescriptions.cells`): their cells show why on
    hover and the column sorts by the number, not by the text.
    """
    configuration = dict(params.pop("configuration", {}))
    configuration["columnDefaults"] = {"tooltip": JSCode(_TOOLTIP), **configuration.get("columnDefaults", {})}
    configuration["columns"] = [
        *({"field": c, "sorter": JSCode(_SORTER)} for c in explained),
        *configuration.get("columns", []),
    ]
    params = {
        "show_index": False,
        "disabled": True,
        "sizing_mode": "stretch_width",
        "layout": "fit_data_stretch",
        **params,
        "hidden_columns": [f"{c}{suffix}" for c in explained for suffix in (WHY, SORT)]
        + list(params.get("hidden_columns", [])),
        "stylesheets": [TABLE_CSS, *params.get("stylesheets", [])],
    }
    value = params.pop("value", None)
    return pn.widgets.Tabulator(
        pd.DataFrame() if value is None else value, css_classes=[css_class], configuration=configuration, **params
    )


#: Bytes per WebSocket message of a chunked upload.
CHUNK_SIZE = 8 * 1024 * 1024
MAX_FILE_SIZE = "2048MB"
#: The CSV separators offered next to a drop zone (label -> separator; "" lets the core detect it).
SEPARATORS = {"Detect automatically": "", "Comma  ,": ",", "Semicolon  ;": ";", "Tab": "\t", "Pipe  |": "|"}


class FileDrop(pn.viewable.Viewer):
    """A drop zone for one log file (chunked, so hundreds of MB are fine) handing each dropped file to ``on_file``.

    The browser's drop zone marks a file "Upload complete" once its bytes arrived, before the core has read them;
    :meth:`reset` gives a fresh, empty zone, so a file the core refused is not shown beside its error as complete.
    """

    def __init__(self, css_class: str, on_file: Callable[[str, bytes], Awaitable[None]], height: int, **params):
        super().__init__()
        self.css_class, self.on_file, self.height, self.params = css_class, on_file, height, params
        self.holder = pn.Column(sizing_mode="stretch_width", margin=0)
        self.reset()

    def reset(self) -> None:
        """An empty drop zone in place of the current one."""
        self.dropper = pn.widgets.FileDropper(
            multiple=False,
            chunk_size=CHUNK_SIZE,
            max_file_size=MAX_FILE_SIZE,
            layout="compact",
            sizing_mode="stretch_width",
            height=self.height,
            css_classes=[self.css_class],
            **self.params,
        )
        self.dropper.param.watch(self._dropped, "value")
        self.holder.objects = [self.dropper]

    async def _dropped(self, event) -> None:
        dropper = event.obj
        if dropper is not self.dropper or not dropper.value:
            return
        name, data = next(iter(dropper.value.items()))
        # the dropper changes its value in place and keeps earlier files: keep only the one copy the view needs
        dropper.value.clear()
        dropper.mime_type.clear()
        await self.on_file(name, data.encode("utf-8") if isinstance(data, str) else data)  # text/* arrives decoded

    def __panel__(self):
        return self.holder
