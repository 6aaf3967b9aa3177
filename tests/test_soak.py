"""The soak of ``bench/soak.py``, bounded: a minute of posting with a reader connected while the prescriber is killed
and the server is SIGKILLed and SIGTERMed (restarted after each).

What must hold across all of it: every acknowledged event is stored and delivered, nothing is delivered twice, no
5xx away from the restarts, a SIGTERM stops the server within 5 s, and the memory of the last server life does not
grow beyond a generous bound. The counts are printed (``pytest -s`` shows them, CI logs keep them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
#: Set to True once a SIGTERMed server answers the posts it has committed before it stops (see the test).
SIGTERM_ANSWERS_COMMITTED_POSTS = False


def load_soak():
    """``bench/soak.py`` as a module; the bench directory it puts on ``sys.path`` is taken off again, so that its
    modules (``stream``, ``quality``, ...) do not shadow anything for the tests that run after this one."""
    path = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("soak", BENCH / "soak.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["soak"] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module


@pytest.mark.timeout(400)
def test_a_minute_of_posting_through_kills_and_restarts_loses_and_repeats_nothing():
    soak = load_soak()
    minutes, rate = 0.45, 20.0
    result = soak.soak(minutes=minutes, rate=rate, demo_cases=200, drain=60.0)
    print(result.line())

    assert not result.lost, f"acknowledged but never delivered: {sorted(result.lost)[:20]}"
    assert not result.duplicated, f"delivered more than once: {sorted(result.duplicated)[:20]}"
    assert result.acknowledged_ids <= set(result.stored), "acknowledged but not stored"
    assert set(result.delivered) == set(result.stored)
    # A post whose event was committed but whose answer the killed server never sent is not acknowledged; its retry
    # stores the event again under a new id. Under SIGKILL that needs idempotent posts to avoid; under SIGTERM the
    # server should answer what it committed before it stops (workbench/server.py drops in-flight answers).
    causes = {event_id: result.cause(event_id) for event_id in result.stored_unacknowledged}
    allowed = {"SIGKILL"} if SIGTERM_ANSWERS_COMMITTED_POSTS else {"SIGKILL", "SIGTERM"}
    assert set(causes.values()) <= allowed, f"stored, never acknowledged, and no kill explains it: {causes}"
    if causes:
        print(f"stored but never acknowledged (the answer lost to a server end): {causes}")
    assert result.acknowledged_ids == set(result.stored) - set(causes)

    assert result.server_errors_outside_restarts == 0
    assert not result.outlived, f"processes outlived their server by 20 s: {result.outlived}"
    assert result.counts["2xx"] >= 0.5 * minutes * 60 * rate, "the soak hardly posted"
    assert result.reader_connections >= 3, "the reader did not resume after each restart"
    assert [life.ended_by for life in result.lives] == ["SIGKILL", "SIGTERM", "SIGTERM"]
    for life in result.lives:
        if life.ended_by == "SIGTERM":
            assert life.stop_seconds <= soak.STOP_TARGET_S, f"a SIGTERMed server took {life.stop_seconds:.1f} s"
    for column, what in ((1, "all the server's processes"), (2, "the server process")):
        first, _, last = result.lives[-1].figures(column)
        assert first > 0 and last <= 1.5 * first + 50 * 2**20, f"{what} grew from {first >> 20} to {last >> 20} MiB"
