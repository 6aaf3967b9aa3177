"""The in-memory copies of what is derived from persisted state, in one owner.

Persisted state is the truth; these copies only speed things up. Each copy is kept under a key that names what
it belongs to (``("model", project_id, model_path)``, ``("prepared", project_id)``, ``("defined_log",
event_log_id)``) with the *version* it was derived from (a training run, a definition's time stamp). A copy of
another version is never returned: it is rebuilt and replaces the old one. What belongs to a deleted project or
event log is dropped with :meth:`DerivedCache.forget`, the one place copies are invalidated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class DerivedCache:
    """Copies keyed by owner, each with the version it was derived from.

    >>> cache = DerivedCache()
    >>> cache.get(("prepared", 1), 2, lambda: "run 2")
    'run 2'
    >>> cache.get(("prepared", 1), 2, lambda: "built again")
    'run 2'
    >>> cache.get(("prepared", 1), 3, lambda: "run 3")
    'run 3'
    >>> cache.forget("prepared", 1)
    >>> cache.get(("prepared", 1), 3, lambda: "rebuilt")
    'rebuilt'
    """

    def __init__(self):
        self._entries: dict[tuple, tuple[Hashable, Any]] = {}
        self._lock = threading.RLock()

    def get(self, key: tuple, version: Hashable, build: Callable[[], T], *, exclusive: bool = False) -> T:
        """The copy under ``key`` if it is of ``version``, else ``build()`` stored in its place.

        With ``exclusive`` the copy is built under the cache's lock, so that two threads never build it twice
        (for models, which are slow to load and large); otherwise building does not hold up other readers.
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == version:
                return found[1]
            if exclusive:
                value = build()
                self._entries[key] = (version, value)
                return value
        value = build()
        self.put(key, version, value)
        return value

    def peek(self, key: tuple, version: Hashable) -> Any:
        """The copy under ``key`` if it is of ``version``; ``KeyError`` otherwise (nothing is built)."""
        with self._lock:
            found = self._entries.get(key)
        if found is None or found[0] != version:
            raise KeyError(key)
        return found[1]

    def put(self, key: tuple, version: Hashable, value: Any) -> None:
        """Keep ``value`` as the copy of ``version`` under ``key`` (replacing a copy of any other version)."""
        with self._lock:
            self._entries[key] = (version, value)

    def forget(self, kind: str, owner: Hashable) -> None:
        """Drop every copy of ``kind`` that belongs to ``owner`` (e.g. a deleted project's models)."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k[:2] != (kind, owner)}
