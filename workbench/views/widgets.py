"""Small pieces every view uses: the inline message next to a control, status badges, number formatting."""

from __future__ import annotations

import html
import re

import pandas as pd
import panel as pn

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


def table(css_class: str, **params) -> pn.widgets.Tabulator:
    """A read-only table with the workbench's look and a stable CSS class."""
    params = {
        "show_index": False,
        "disabled": True,
        "sizing_mode": "stretch_width",
        "layout": "fit_data_stretch",
        **params,
    }
    return pn.widgets.Tabulator(pd.DataFrame(), stylesheets=[TABLE_CSS], css_classes=[css_class], **params)
