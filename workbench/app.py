"""The Panel app served at ``/``: the projects overview (the full workbench views grow here)."""

from __future__ import annotations

import pandas as pd
import panel as pn

from prcore_core import PrCore


def projects_frame(core: PrCore) -> pd.DataFrame:
    """One row per project: status, plugins and their statuses, times."""
    rows = []
    for project in core.list_projects():
        rows.append({
            "id": project.id,
            "name": project.name,
            "status": project.to_dict()["status"],
            "plugins": ", ".join(f"{p.key}: {p.status}" for p in project.plugins),
            "created": project.created_at.strftime("%Y-%m-%d %H:%M"),
            "updated": (project.updated_at or project.created_at).strftime("%Y-%m-%d %H:%M"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["id", "name", "status", "plugins", "created", "updated"])


def create_app(core: PrCore) -> pn.viewable.Viewable:
    """A fresh app for one browser session."""
    table = pn.widgets.Tabulator(projects_frame(core), show_index=False, disabled=True, sizing_mode="stretch_width")

    def refresh():
        table.value = projects_frame(core)

    pn.state.add_periodic_callback(refresh, period=2000)
    return pn.template.FastListTemplate(
        title="PrCore Workbench",
        main=[pn.pane.Markdown("## Projects"), table],
    )
