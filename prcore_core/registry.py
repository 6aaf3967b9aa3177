"""Finding plugins: the entry-point group ``prcore.plugins``, plus classes registered at run time.

Nothing in the core names a concrete plugin; the built-ins are registered through the same entry-point group as
third-party packages. :func:`register` adds a class at run time (notebooks, tests).
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points

from prcore_core import errors
from prcore_core.plugin import Plugin

GROUP = "prcore.plugins"
log = logging.getLogger(__name__)

_registered: dict[str, type[Plugin]] = {}


def register(plugin_class: type[Plugin]) -> type[Plugin]:
    """Make ``plugin_class`` available to new projects (usable as a class decorator)."""
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, Plugin)) or not plugin_class.key:
        raise TypeError("register() takes a Plugin subclass with a key")
    _registered[plugin_class.key] = plugin_class
    return plugin_class


def unregister(key: str) -> None:
    """Remove a plugin registered with :func:`register`."""
    _registered.pop(key, None)


@functools.cache
def _entry_point_plugins() -> dict[str, type[Plugin]]:
    """Plugins of the entry-point group, loaded once per process (a broken one is reported once, then skipped)."""
    found: dict[str, type[Plugin]] = {}
    for entry in entry_points(group=GROUP):
        try:
            plugin_class = entry.load()
        except Exception as exc:  # a broken third-party plugin must not take the workbench down
            log.error("Could not load plugin entry point %s: %s", entry.value, exc)
            continue
        if isinstance(plugin_class, type) and issubclass(plugin_class, Plugin) and plugin_class.key:
            found[plugin_class.key] = plugin_class
        else:
            log.warning("Entry point %s is not a Plugin subclass with a key; ignored", entry.value)
    return found


def refresh() -> None:
    """Forget the loaded entry points, e.g. after installing a plugin package into the running process."""
    _entry_point_plugins.cache_clear()


def available_plugins() -> dict[str, type[Plugin]]:
    """Every known plugin class by key: entry points first, then run-time registrations."""
    return dict(sorted({**_entry_point_plugins(), **_registered}.items()))


def resolve_key(key: str, plugins: dict[str, type[Plugin]] | None = None) -> str:
    """The plugin key for ``key`` or one of its aliases (PrCore's ``plugin-...`` keys)."""
    plugins = available_plugins() if plugins is None else plugins
    if key in plugins:
        return key
    for plugin_key, plugin_class in plugins.items():
        if key in plugin_class.aliases:
            return plugin_key
    raise errors.InvalidParameterError(f"Unknown plugin '{key}'; available: {', '.join(plugins)}")


def get_plugin_class(key: str) -> type[Plugin]:
    """The plugin class for a key or alias."""
    plugins = available_plugins()
    return plugins[resolve_key(key, plugins)]
