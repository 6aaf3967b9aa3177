"""Worker processes for training and prescribing: how they start, how they behave beside the server, how they end.

A worker comes from a fork server (a clean process with the plugins imported, not a fork of the threaded server),
runs at a lower CPU priority and ends when the server ends, even a killed one.
"""

from __future__ import annotations

import contextlib
import threading
import time

from prcore_core import registry

_CONTEXT: list = []


def worker_context():
    """The multiprocessing context of training and prescribing processes, made once.

    Processes come from a fork server (a clean process with the plugins imported, not a fork of the threaded server),
    or are spawned where there is none.
    """
    import multiprocessing

    if not _CONTEXT:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            context.set_forkserver_preload(["prcore_core.training", "prcore_core.prescriber", "plugins"])
        _CONTEXT.append(context)
    return _CONTEXT[0]


def worker_setup(server_pid: int) -> None:
    """Prepare a training worker: lower its CPU priority, and end it when the server process ends.

    On a machine with as many cores as workers, the server's answers must not queue behind model fits (at a lower
    priority the operating system runs them whenever the server waits). A worker is a child of the fork server,
    not of the server, and waits on a queue that nobody closes when the server is killed; without the watch it would
    outlive a crashed server, training for nobody (the restarted server resumes the interrupted training itself).
    """
    import os

    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(10)
    threading.Thread(target=_end_with, args=(server_pid,), name="server-watch", daemon=True).start()


def _end_with(pid: int) -> None:
    """Exit this process as soon as process ``pid`` has ended."""
    import os
    import select

    try:
        handle = os.pidfd_open(pid)  # Linux: readable once the process has ended, no polling
    except (AttributeError, OSError):
        import psutil

        while psutil.pid_exists(pid):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])
    os._exit(0)


def warm_worker(plugin_keys: list[str]) -> None:
    """Import the plugins' slow dependencies in a worker process before the first training needs them."""
    for key in plugin_keys:
        registry.get_plugin_class(key).load_dependencies()


def importable(plugin_class: type) -> bool:
    """Can another process import this class by name? (Not one defined in a notebook or inside a function.)"""
    return plugin_class.__module__ != "__main__" and "<locals>" not in plugin_class.__qualname__
