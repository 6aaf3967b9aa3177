"""What the storage must do the same on SQLite and PostgreSQL, beyond the facade, API and streaming tests (which run
on both too): state changed from two processes at once, text PostgreSQL cannot hold as such, times, case ids."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from prcore_core.context import StoredState
from prcore_core.db import CaseRecord, EventLogRecord, ProjectRecord, make_engine, make_sessionmaker
from prcore_core.settings import Settings

pytestmark = pytest.mark.databases  # on SQLite and on PostgreSQL (tests/conftest.py)

#: A prescriber process in miniature: changes one plugin state many times, as a resource allocation would.
_CHANGER = textwrap.dedent(
    """
    import sys
    from prcore_core.context import StoredState
    from prcore_core.db import make_engine, make_sessionmaker

    url, project_id, tag, times = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    state = StoredState(make_sessionmaker(make_engine(url)), project_id, "resource-allocation")
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start changing at once
    for i in range(times):
        with state.transaction() as working:
            working["count"] = working.get("count", 0) + 1
            working.setdefault("bookings", []).append(f"{tag}-{i}")
    """
)


@pytest.fixture
def sessions(tmp_path, database_url):
    url = Settings(data_dir=tmp_path, database_url=database_url).url
    engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def _project(sessions) -> int:
    with sessions() as session:
        log = EventLogRecord(file_name="log.csv", raw_path="r", data_path="d", n_rows=0, columns_header=[])
        session.add(log)
        session.flush()
        project = ProjectRecord(name="p", status="TRAINED", event_log_id=log.id)
        session.add(project)
        session.commit()
        return project.id


def test_plugin_state_changed_by_two_processes_at_once_loses_no_change(sessions):
    # the server's batch prescriptions and a streaming project's prescriber process book from the same state
    url, made = sessions
    project_id, times = _project(made), 60
    changers = [
        subprocess.Popen(
            [sys.executable, "-c", _CHANGER, url, str(project_id), tag, str(times)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for changer in changers:
        assert changer.stdout.readline().strip() == "ready"
    for changer in changers:
        changer.stdin.write("go\n")
        changer.stdin.flush()
    assert [changer.wait(120) for changer in changers] == [0, 0]
    state = StoredState(made, project_id, "resource-allocation").snapshot()
    assert state["count"] == 2 * times
    assert sorted(state["bookings"]) == sorted(f"{tag}-{i}" for tag in "ab" for i in range(times))


def test_state_of_a_plugin_that_never_booked_is_empty_and_a_failed_change_is_not_kept(sessions):
    _, made = sessions
    state = StoredState(made, _project(made), "resource-allocation")
    assert state.snapshot() == {}
    with state.transaction() as working:
        working["allocations"] = {"R1": {"case_id": "c"}}
    with pytest.raises(RuntimeError), state.transaction() as working:
        working["allocations"] = {}
        raise RuntimeError("the plugin failed half-way")
    assert state.snapshot() == {"allocations": {"R1": {"case_id": "c"}}}


@pytest.mark.parametrize(
    "case_id",
    ["plain", "a\x00b", "\ue000\ue0000\\0", "ü" * 10_000, "x" * 9_999 + "\x00"],
    ids=["plain", "nul", "escape", "long", "long-nul"],
)
def test_any_posted_case_id_is_stored_found_and_unique(sessions, case_id):
    # PostgreSQL's text holds no NUL and its B-tree entries at most ~2.7 kB; a posted value may have 10,000 characters
    _, made = sessions
    project_id = _project(made)
    with made() as session:
        session.add_all(
            [CaseRecord(project_id=project_id, case_id=case_id), CaseRecord(project_id=project_id, case_id="other")]
        )
        session.commit()
    with made() as session:
        found = session.scalars(select(CaseRecord.case_id).where(CaseRecord.case_id == case_id)).all()
        assert found == [case_id]
    with made() as session, pytest.raises(IntegrityError):
        session.add(CaseRecord(project_id=project_id, case_id=case_id))
        session.commit()


def test_a_forked_child_opens_connections_of_its_own(sessions):
    # a pooled connection is one socket: parent and child talking over it would corrupt both sessions
    _, made = sessions
    engine = made.kw["bind"]
    with engine.connect() as connection:
        connection.execute(select(1))
        parents = connection.connection.dbapi_connection
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            with engine.connect() as connection:
                connection.execute(select(1))
                os._exit(0 if connection.connection.dbapi_connection is not parents else 1)
        except BaseException:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection is parents
        assert connection.execute(select(1)).scalar() == 1


def test_times_are_kept_in_utc_to_the_microsecond(sessions):
    _, made = sessions
    project_id = _project(made)
    moment = dt.datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with made() as session:
        session.get(ProjectRecord, project_id).created_at = moment
        session.commit()
    with made() as session:
        stored = session.get(ProjectRecord, project_id).created_at
    assert stored == moment and stored.utcoffset() == dt.timedelta(0)
