"""Ongoing dataset: upload a log of running cases, see each case's prescriptions, download them as CSV."""

from __future__ import annotations

import io
import json
import time

import pandas as pd
import panel as pn
import param

from workbench.views import prescriptions as rx
from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import SEPARATORS, FileDrop, Message, fmt_int, heading, table


def prescriptions_long(result: dict) -> pd.DataFrame:
    """One row per case and prescription: the CSV an analyst downloads."""
    rows = []
    for case, items in result.items():
        for item in items:
            plugin = item.get("plugin") or {}
            output = item.get("output")
            extra = {k: v for k, v in item.items() if k not in ("id", "datetime", "type", "output", "plugin", "detail")}
            rows.append(
                {
                    "case_id": case,
                    "plugin": plugin.get("key", ""),
                    "plugin_name": plugin.get("name", ""),
                    "type": item.get("type"),
                    "prescription": rx.summary(item),
                    "output": json.dumps(output) if isinstance(output, dict | list) else output,
                    "detail": item.get("detail"),
                    "extra": json.dumps(extra, default=str) if extra else None,
                }
            )
    return pd.DataFrame(
        rows, columns=["case_id", "plugin", "plugin_name", "type", "prescription", "output", "detail", "extra"]
    )


def prescriptions_wide(result: dict) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per case, one column per plugin (the summary of its prescription, with why and a number to sort
    by in hidden columns); and the column titles."""
    rows, plugins = [], {}
    for case, items in result.items():
        row = {"case": case}
        for item in items:
            plugin = item.get("plugin") or {}
            key = str(plugin.get("key") or item.get("type"))
            plugins.setdefault(key, (key, plugin.get("name") or key, item.get("type")))
            row.update(rx.cells(key, item))
        rows.append(row)
    return pd.DataFrame(rows), {"case": "case", **rx.column_titles(list(plugins.values()))}


class OngoingView(pn.viewable.Viewer):
    """Prescriptions for every case of an uploaded log of ongoing cases."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.dropper = FileDrop("wb-ongoing-dropper", self._dropped, height=130)
        self.separator = pn.widgets.Select(name="CSV separator", options=SEPARATORS, width=200)
        self.progress = pn.indicators.Progress(
            active=True, value=-1, visible=False, sizing_mode="stretch_width", height=12
        )
        self.status = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-ongoing-status"])
        self.message = Message("wb-ongoing-error")
        self.table = pn.Column(sizing_mode="stretch_width")  # a table per result: its columns are the plugins
        self.download = pn.widgets.FileDownload(
            callback=self._csv,
            filename="prescriptions.csv",
            visible=False,
            button_type="primary",
            label="Download prescriptions (CSV)",
            width=260,
            css_classes=["wb-ongoing-download"],
        )
        self.result: dict | None = None
        self.placeholder = pn.pane.HTML('<div class="wb-muted">Open a trained project on the Projects page.</div>')
        self.body = pn.Column(
            pn.pane.HTML(
                '<div class="wb-muted">A log of running cases with the columns of the project\'s '
                "definition (CSV, XES, zip or gz). Every active plugin prescribes for the last event of "
                "each case.</div>",
                sizing_mode="stretch_width",
            ),
            self.separator,
            self.dropper,
            self.progress,
            self.status,
            self.message,
            self.download,
            self.table,
            sizing_mode="stretch_width",
        )
        self.layout = pn.Column(
            heading("Ongoing cases"),
            self.placeholder,
            self.body,
            sizing_mode="stretch_width",
            css_classes=["wb-view-ongoing"],
        )
        self._project_changed()

    @param.depends("state.project_id", watch=True)
    def _project_changed(self):
        self.placeholder.visible = self.state.project_id is None
        self.body.visible = self.state.project_id is not None
        self.result = None
        self.table.visible = self.download.visible = False
        self.status.object = ""
        self.message.clear()

    async def _dropped(self, name: str, data: bytes):
        if self.state.project_id is None:
            return
        self.message.clear()
        self.table.visible = self.download.visible = False
        self.progress.visible = True
        self.status.object = f"Prescribing for the cases of <b>{name}</b> …"
        started = time.perf_counter()
        try:
            result = await self.state.run(
                self.state.core.prescribe,
                self.state.project_id,
                data,
                filename=name,
                separator=self.separator.value or None,
            )
            wide, titles = await self.state.run(prescriptions_wide, result)
        except Exception as exc:
            self.progress.visible = False
            self.status.object = ""
            self.message.error(error_text(exc))
            self.dropper.reset()
            return
        self.progress.visible = False
        self.result = result
        count = sum(len(v) for v in result.values())
        self.status.object = (
            f'<div class="wb-ongoing-summary" style="font-size:15px"><b>{fmt_int(len(result))}</b> '
            f"cases, <b>{fmt_int(count)}</b> prescriptions in {time.perf_counter() - started:.1f} s"
            "</div>"
        )
        self.download.filename = f"prescriptions-{name.rsplit('.', 1)[0]}.csv"
        self.table.objects = [
            table(
                "wb-ongoing-table",
                explained=[c for c in titles if c != "case"],
                value=wide,
                titles=titles,
                pagination="local",
                page_size=20,
            )
        ]
        self.table.visible = self.download.visible = True

    def _csv(self):
        frame = prescriptions_long(self.result or {})
        return io.StringIO(frame.to_csv(index=False))

    def __panel__(self):
        return self.layout
