"""PrCore core: event logs, definitions, projects and the plugin lifecycle, behind one facade.

>>> from prcore_core import PrCore  # doctest: +SKIP

Slow imports (pm4py, causalml) happen only when needed, so importing this package stays fast.
"""

from prcore_core.errors import PrCoreError
from prcore_core.facade import PrCore
from prcore_core.plugin import Plugin, PrescriptionType
from prcore_core.project import EventLog, PluginState, Project
from prcore_core.status import PluginStatus, ProjectStatus

__all__ = [
    "EventLog",
    "Plugin",
    "PluginState",
    "PluginStatus",
    "PrCore",
    "PrCoreError",
    "PrescriptionType",
    "Project",
    "ProjectStatus",
]
