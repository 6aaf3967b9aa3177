"""Streaming through the facade: activation, posted events, prescriptions published, simulation, restarts."""

from __future__ import annotations

import os
import queue
import re
import time

import pytest

from prcore_core import PrCore, ProjectStatus
from prcore_core.errors import InvalidEventError, NotFoundError, StateError
from prcore_core.prescriber import PrescriberError, PrescriberProcess, SparePrescriber
from prcore_core.settings import Settings
from prcore_core.streaming import _STOP

pytestmark = pytest.mark.databases  # on SQLite and on PostgreSQL (tests/conftest.py)


def _train(core, demo):
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    project = core.create_project(event_log.id, positive_outcome=demo.outcome, treatment=demo.treatment)
    return project.wait_until("TRAINED", 180)


def _events_of(demo, case_index: int, prefix: str = "new") -> list[dict]:
    case = demo.events["case_id"].unique()[case_index]
    rows = demo.events[demo.events["case_id"] == case].astype(object)
    rows = rows.where(rows.notna(), None).to_dict("records")
    for row in rows:
        row["case_id"] = f"{prefix}-{case}"
    return rows


def _answered(prescription: dict) -> bool:
    """A prescription with an output, or the treatment's "not possible at this point of the case" (a first event is
    no decision point): the plugin answered, it did not fail."""
    kinds = ("TREATMENT_EFFECT", "RESOURCE_ALLOCATION")
    return prescription["output"] is not None or (
        prescription["type"] in kinds and "prescriber" not in str(prescription.get("detail"))
    )


def _collect(core, project_id):
    received: queue.Queue = queue.Queue()
    core.broker.subscribe(project_id, lambda kind, payload: received.put((kind, payload)))
    return received


def _wait_events(received: queue.Queue, count: int, timeout: float = 30) -> list[dict]:
    events, deadline = [], time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        try:
            kind, payload = received.get(timeout=0.2)
        except queue.Empty:
            continue
        if kind == "events":
            events.extend(payload)
    return events


@pytest.fixture
def streaming_project(core, demo):
    project = _train(core, demo)
    core.start_streaming(project.id)
    return core.get_project(project.id).wait_until("STREAMING", 60)


def test_events_are_acknowledged_stored_and_prescribed(core, demo, streaming_project):
    received = _collect(core, streaming_project.id)
    events = _events_of(demo, 0)
    answers = [core.post_event(streaming_project.id, event) for event in events[:-1]]
    last = core.post_event(streaming_project.id, {**events[-1], "COMPLETE_INDICATOR": True})
    assert answers[0]["attributes"]["CASE_ID"] == events[0]["case_id"]
    assert answers[0]["attributes"]["ACTIVITY"] == events[0]["activity"]
    assert answers[0]["attributes"]["CASE_ATTRIBUTE_NUMBER_amount"] == str(events[0]["amount"])
    assert answers[0]["attributes"]["COMPLETE_INDICATOR"] == "False"
    assert last["attributes"]["COMPLETE_INDICATOR"] == "True"
    delivered = _wait_events(received, len(events))
    assert [e["id"] for e in delivered] == [a["id"] for a in answers] + [last["id"]]
    for event in delivered[:-1]:
        assert event["case_completed"] is False
        types = {p["type"] for p in event["prescriptions"]}
        assert "NEXT_ACTIVITY" in types
        assert all(p["plugin"]["name"] for p in event["prescriptions"])
    assert delivered[-1]["case_completed"] is True and delivered[-1]["prescriptions"] == []
    with pytest.raises(InvalidEventError, match="already completed"):
        core.post_event(streaming_project.id, events[0])


def test_concurrent_posts_are_each_stored_once_in_order_and_completion_is_final(core, demo, streaming_project):
    # many clients post at once: the journal commits them together, yet every acknowledged event is stored and
    # prescribed exactly once, in the order of its case, and nothing is accepted after a case's last event
    from concurrent.futures import ThreadPoolExecutor

    from prcore_core.db import EventRecord

    received = _collect(core, streaming_project.id)
    cases = [_events_of(demo, index, prefix="burst") for index in range(2, 10)]
    for events in cases:
        events[-1]["COMPLETE_INDICATOR"] = True

    def client(events):
        return [core.post_event(streaming_project.id, event)["id"] for event in events]

    with ThreadPoolExecutor(8) as pool:
        acknowledged = list(pool.map(client, cases))
    ids = [i for case_ids in acknowledged for i in case_ids]
    assert len(set(ids)) == len(ids) == sum(len(events) for events in cases)
    assert all(case_ids == sorted(case_ids) for case_ids in acknowledged)
    delivered = _wait_events(received, len(ids))
    assert sorted(e["id"] for e in delivered) == sorted(ids)
    order = {e["id"]: n for n, e in enumerate(delivered)}
    assert all([order[i] for i in case_ids] == sorted(order[i] for i in case_ids) for case_ids in acknowledged)
    with core.sessions() as session:
        stored = session.query(EventRecord).filter(EventRecord.id.in_(ids)).count()
    assert stored == len(ids)
    for events in cases[:2]:
        with pytest.raises(InvalidEventError, match="already completed"):
            core.post_event(streaming_project.id, events[0])


def test_post_events_answers_each_event_in_order(core, demo, streaming_project):
    received = _collect(core, streaming_project.id)
    events = _events_of(demo, 11, prefix="bulk")
    results = core.post_events(streaming_project.id, [events[0], {**events[1], "amount": "a lot"}, *events[1:]])
    assert results[1] == {"detail": "Invalid number value for amount: 'a lot'", "status_code": 400}
    ids = [r["event"]["id"] for r in results if "event" in r]
    assert len(ids) == len(events) and ids == sorted(ids)
    assert [e["id"] for e in _wait_events(received, len(ids))] == ids


def _refuse_case_in_the_database(core, case_id: str) -> None:
    """A trigger that makes the database refuse one case's row, as a full disk or a constraint would."""
    from sqlalchemy import text

    with core.sessions() as session:
        if session.bind.dialect.name == "sqlite":
            session.execute(text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON \"case\" WHEN NEW.case_id = '{case_id}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ))  # fmt: skip
        else:
            session.execute(text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.case_id = '{case_id}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; "
                "END $$ LANGUAGE plpgsql"
            ))  # fmt: skip
            session.execute(
                text('CREATE TRIGGER refuse BEFORE INSERT ON "case" FOR EACH ROW EXECUTE FUNCTION refuse()')
            )
        session.commit()


def test_an_event_the_database_refuses_never_refuses_the_events_committed_beside_it(core, demo, streaming_project):
    # the journal writes events posted meanwhile in one transaction; when the database refuses one of them, the
    # others are written one by one and acknowledged, and the refused one gets a 503 (retryable), not a 4xx
    from prcore_core.errors import StorageError

    _refuse_case_in_the_database(core, "poison")
    received = _collect(core, streaming_project.id)
    events = [e for index in range(2, 6) for e in _events_of(demo, index, prefix="beside")]
    poisoned = {**events[0], "case_id": "poison"}
    futures = [core.submit_event(streaming_project.id, e) for e in [*events[:3], poisoned, *events[3:]]]
    refused = futures.pop(3)
    with pytest.raises(StorageError, match="could not be stored") as caught:
        refused.result(30)
    assert caught.value.status_code == 503
    ids = [f.result(30)["id"] for f in futures]
    assert len(set(ids)) == len(events)
    assert sorted(e["id"] for e in _wait_events(received, len(ids))) == sorted(ids)
    assert core.post_event(streaming_project.id, {**events[0], "case_id": "beside-after"})["id"] > max(ids)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"activity": None}, "The activity (activity) must not be empty"),
        ({"timestamp": "yesterday-ish"}, "Invalid datetime value for timestamp"),
        ({"amount": "a lot"}, "Invalid number value for amount"),
        ({"COMPLETE_INDICATOR": "perhaps"}, "Invalid value for COMPLETE_INDICATOR"),
        ({"loan_goal": {"nested": 1}}, "nested objects"),
    ],
)
def test_bad_events_name_the_problem(core, demo, streaming_project, change, message):
    event = {**_events_of(demo, 1)[0], **change}
    with pytest.raises(InvalidEventError, match=re.escape(message)):
        core.post_event(streaming_project.id, event)
    missing = {k: v for k, v in _events_of(demo, 1)[0].items() if k != "timestamp"}
    with pytest.raises(InvalidEventError, match="Missing pre-defined column timestamp"):
        core.post_event(streaming_project.id, missing)
    with pytest.raises(InvalidEventError, match="JSON object"):
        core.post_event(streaming_project.id, ["not", "an", "object"])


def test_state_rules(core, demo, streaming_project):
    with pytest.raises(StateError, match="Streaming already started"):
        core.start_streaming(streaming_project.id)
    with pytest.raises(NotFoundError, match="Project not found"):
        core.post_event(999, {})
    received = _collect(core, streaming_project.id)
    stopped = core.stop_streaming(streaming_project.id)
    assert stopped.status is ProjectStatus.TRAINED
    assert all(p.status == "TRAINED" for p in stopped.plugins)
    kinds = []
    while "finished" not in kinds:
        kinds.append(received.get(timeout=5)[0])
    assert kinds[-2:] == ["status", "finished"]
    with pytest.raises(StateError, match="Project not streaming"):
        core.post_event(streaming_project.id, _events_of(demo, 2)[0])
    with pytest.raises(StateError, match="Streaming not started"):
        core.stop_streaming(streaming_project.id)
    with pytest.raises(StateError, match="Invalid streaming type"):
        core.start_streaming(streaming_project.id, "trained")


def test_simulation_replays_held_out_cases_and_finishes(core, demo):
    project = _train(core, demo)
    received = _collect(core, project.id)
    core.start_streaming(project.id, "simulating", interval=0, max_events=60)
    kinds, events, deadline = [], [], time.monotonic() + 60
    while "finished" not in kinds and time.monotonic() < deadline:
        try:
            kind, payload = received.get(timeout=0.5)
        except queue.Empty:
            continue
        kinds.append(kind)
        if kind == "events":
            events.extend(payload)
    assert "finished" in kinds
    assert len(events) == 60
    assert core.get_project(project.id).status is ProjectStatus.TRAINED
    held_out = set(core.trainer.prepared_cases(project.id)) if hasattr(core.trainer, "prepared_cases") else None
    prefixes = {e["data"]["case_id"].split("-", 1)[0] for e in events}
    assert len(prefixes) == 1  # one random prefix per run: every run creates new cases
    if held_out is not None:
        assert {e["data"]["case_id"].split("-", 1)[1] for e in events} <= held_out
    times = [e["data"]["timestamp"] for e in events]
    assert times == sorted(times)


def test_a_simulating_project_takes_no_posted_events_and_its_replay_goes_on(core, demo):
    # the reference accepted them and mixed them into the replay; they are refused with its message
    project = _train(core, demo)
    received = _collect(core, project.id)
    core.start_streaming(project.id, "simulating", interval=0.2)
    core.get_project(project.id).wait_until("SIMULATING", 60)
    with pytest.raises(StateError, match=r"^Project not streaming$"):
        core.post_event(project.id, _events_of(demo, 2)[0])
    assert len(_wait_events(received, 3)) >= 3  # the replay's own events are still taken
    core.stop_streaming(project.id)


def test_restart_reactivates_streaming_and_prescribes_acknowledged_events(tmp_path, demo, database_url):
    with PrCore(data_dir=tmp_path, database_url=database_url) as core:
        project = _train(core, demo)
        core.start_streaming(project.id)
        core.get_project(project.id).wait_until("STREAMING", 60)
        active = core.streaming._active[project.id]
        active.queue.put(_STOP)  # the prescriber ends: acknowledged events stay unprescribed, as in a crash
        active.thread.join(5)
        answers = [core.post_event(project.id, e) for e in _events_of(demo, 3)[:3]]
        assert core.streaming.prescribed_events(project.id) == []
    with PrCore(data_dir=tmp_path, database_url=database_url) as core:
        received = _collect(core, project.id)
        assert core.get_project(project.id).wait_until("STREAMING", 60).status is ProjectStatus.STREAMING
        pending = core.streaming.prescribed_events(project.id)
        deadline = time.monotonic() + 30
        while len(pending) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            pending = core.streaming.prescribed_events(project.id)
        assert [e["id"] for e in pending] == [a["id"] for a in answers]
        assert all(e["prescriptions"] for e in pending)
        more = core.post_event(project.id, _events_of(demo, 3)[3])
        published = _wait_events(received, 4)
        assert [e["id"] for e in published] == [a["id"] for a in answers] + [more["id"]]
        # the same events in a case that saw no restart get the same prescriptions: the restart counted each once
        again = [core.post_event(project.id, e)["id"] for e in _events_of(demo, 3, prefix="again")[:4]]
        fresh = _wait_events(received, 4)
        assert [e["id"] for e in fresh] == again
        assert [_outputs(e) for e in fresh] == [_outputs(e) for e in published]


def _outputs(event: dict) -> dict:
    return {p["plugin"]["key"]: p["output"] for p in event["prescriptions"]}


def _prescribing_in_a_process(core, demo):
    """A streaming project whose prescriber runs in a process of its own, after its first event was prescribed:
    the project, the broker's news, the events of the case and the first one's prescribed form, the process."""
    project = _train(core, demo)
    core.start_streaming(project.id)
    core.get_project(project.id).wait_until("STREAMING", 60)
    received = _collect(core, project.id)
    events = _events_of(demo, 4)
    core.post_event(project.id, events[0])
    [first] = _wait_events(received, 1)
    assert first["prescriptions"] and all(_answered(p) for p in first["prescriptions"])
    process = core.streaming._active[project.id].prescriber.process
    assert process.pid != os.getpid()
    return project, received, events, first, process


def test_a_killed_prescriber_process_is_replaced_and_its_burst_is_delivered_with_the_reason(
    tmp_path, demo, database_url
):
    settings = Settings(data_dir=tmp_path, database_url=database_url, prescribing_processes=True)
    with PrCore(settings=settings) as core:
        project, received, events, first, process = _prescribing_in_a_process(core, demo)
        process.kill()
        process.join(10)
        core.post_event(project.id, events[1])
        [failed] = _wait_events(received, 1)
        assert len(failed["prescriptions"]) == len(first["prescriptions"])
        assert all(
            p["output"] is None and "prescriber process ended unexpectedly" in p["detail"]
            for p in failed["prescriptions"]
        )
        core.post_event(project.id, events[2])
        [recovered] = _wait_events(received, 1)
        assert all(_answered(p) for p in recovered["prescriptions"])
        assert core.streaming._active[project.id].prescriber.process.pid != process.pid
        core.stop_streaming(project.id)
    # the replacement prescribed the third event from the whole prefix: as a prescriber that never died does
    with PrCore(data_dir=tmp_path, database_url=database_url) as core:
        received = _collect(core, project.id)
        core.start_streaming(project.id)
        core.get_project(project.id).wait_until("STREAMING", 60)
        for event in _events_of(demo, 4, prefix="again")[:3]:
            core.post_event(project.id, event)
        assert _outputs(_wait_events(received, 3)[2]) == _outputs(recovered)


@pytest.mark.databases("sqlite")
def test_a_stopped_prescriber_process_is_ended_after_the_timeout_and_its_burst_is_delivered(tmp_path, demo):
    # SIGSTOP: the process is alive but never answers; before, its bursts waited forever and stop took 40 s
    import signal

    settings = Settings(data_dir=tmp_path, prescribing_processes=True, prescriber_timeout=2)
    with PrCore(settings=settings) as core:
        project, received, events, _, process = _prescribing_in_a_process(core, demo)
        os.kill(process.pid, signal.SIGSTOP)
        started = time.monotonic()
        core.post_event(project.id, events[1])
        [failed] = _wait_events(received, 1)
        assert time.monotonic() - started < 15
        assert failed["prescriptions"] and all(
            p["output"] is None and "did not answer within 2 s" in p["detail"] for p in failed["prescriptions"]
        )
        process.join(5)
        assert not process.is_alive()
        core.post_event(project.id, events[2])
        [recovered] = _wait_events(received, 1)
        assert all(_answered(p) for p in recovered["prescriptions"])
        started = time.monotonic()
        core.stop_streaming(project.id)
        assert time.monotonic() - started < 10


def _simulated(received: queue.Queue, timeout: float = 60) -> list[dict]:
    """The events of one simulation, until it finishes."""
    kinds, events, deadline = [], [], time.monotonic() + timeout
    while "finished" not in kinds and time.monotonic() < deadline:
        try:
            kind, payload = received.get(timeout=0.5)
        except queue.Empty:
            continue
        kinds.append(kind)
        if kind == "events":
            events.extend(payload)
    assert "finished" in kinds
    return events


def test_activation_with_prescriber_processes_goes_live_and_the_project_answers_meanwhile(tmp_path, demo, database_url):
    # a server's setting: the models load in a warm prescriber process, the simulation's replay in a worker
    settings = Settings(data_dir=tmp_path, database_url=database_url, prescribing_processes=True)
    with PrCore(settings=settings) as core:
        project = _train(core, demo)
        received = _collect(core, project.id)
        assert core.start_streaming(project.id).status in (ProjectStatus.ACTIVATING, ProjectStatus.STREAMING)
        deadline = time.monotonic() + 60
        while (status := core.get_project(project.id).status) is ProjectStatus.ACTIVATING:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert status is ProjectStatus.STREAMING and core.stream_is_open(project.id)
        assert received.get(timeout=5) == ("status", "STREAMING")
        core.post_event(project.id, _events_of(demo, 5)[0])
        [event] = _wait_events(received, 1)
        assert event["prescriptions"] and all(_answered(p) for p in event["prescriptions"])
        core.stop_streaming(project.id)

        # started again right away, as a simulation: every event is prescribed; a second run replays the same
        runs = []
        for _ in range(2):
            received = _collect(core, project.id)
            core.start_streaming(project.id, "simulating", interval=0, max_events=25)
            runs.append(_simulated(received))
            assert core.get_project(project.id).status is ProjectStatus.TRAINED
        for events in runs:
            assert len(events) == 25
            assert all(all(_answered(p) for p in e["prescriptions"]) for e in events if not e["case_completed"])
        replayed = [[(e["data"]["case_id"].split("-", 1)[1], e["data"]["activity"]) for e in events] for events in runs]
        assert replayed[0] == replayed[1]


def test_a_project_stopped_while_activating_can_start_again(core, demo, monkeypatch):
    import threading

    project = _train(core, demo)
    gate, calls = threading.Event(), []
    prescriber_for = core.streaming.prescribing.prescriber_for

    def slow_prescriber_for(*args):  # the models take their time to load
        calls.append(args[0])
        assert gate.wait(30)
        return prescriber_for(*args)

    monkeypatch.setattr(core.streaming.prescribing, "prescriber_for", slow_prescriber_for)
    core.start_streaming(project.id, "simulating", interval=0.05)
    activating = core.get_project(project.id)
    assert activating.status is ProjectStatus.ACTIVATING
    assert all(p.status == "ACTIVATING" for p in activating.plugins)
    assert not core.stream_is_open(project.id)
    with pytest.raises(StateError, match="Streaming already started"):
        core.start_streaming(project.id)
    with pytest.raises(StateError, match="Project not streaming"):
        core.post_event(project.id, _events_of(demo, 6)[0])
    assert core.stop_streaming(project.id).status is ProjectStatus.TRAINED
    core.start_streaming(project.id)  # streaming, while the stopped simulation still waits for its models
    gate.set()
    assert core.get_project(project.id).wait_until("STREAMING", 60).status is ProjectStatus.STREAMING
    assert len(calls) == 2 and list(core.streaming._active) == [project.id]
    time.sleep(1)  # the stopped activation has its models too by now: the later request still wins
    assert core.get_project(project.id).status is ProjectStatus.STREAMING
    received = _collect(core, project.id)
    core.post_event(project.id, _events_of(demo, 6)[0])
    [event] = _wait_events(received, 1)
    assert all(_answered(p) for p in event["prescriptions"])


class _FakeProcess(PrescriberProcess):
    """A prescriber process without a process: warm once ``warm`` is set, ended by ``terminate``."""

    def __init__(self, warm: bool = True):
        import threading
        import types

        self.warm = threading.Event()
        if warm:
            self.warm.set()
        self.ended = self.closed = False
        self.unloads = 0
        self.process = types.SimpleNamespace(terminate=self._end)

    def _end(self):
        self.ended = True
        self.warm.set()

    def wait_warm(self):
        assert self.warm.wait(10)
        if self.ended:
            raise PrescriberError("ended")

    def unload(self, timeout=10.0):
        self.unloads += 1
        return not self.ended

    @property
    def alive(self):
        return not (self.ended or self.closed)

    def close(self, wait=5.0):
        self.closed = True


def test_the_spare_prescriber_is_taken_given_back_and_replaced():
    started = []

    def start(warm=True):
        started.append(_FakeProcess(warm))
        return started[-1]

    spare = SparePrescriber(start)
    assert spare.take(0.0) is None  # none ready or coming
    spare.fill()
    first = spare.take(10)
    assert first is started[0] and spare.take(0.0) is None
    assert spare.give_back(first)  # a stopped project's process is kept, its cases dropped
    assert spare.take(10) is first and first.unloads == 1
    spare.fill()
    ready = spare.take(10)
    spare.give_back(ready)
    assert spare.give_back(first) is False  # one is ready: the caller closes this one
    assert spare.take(10) is ready

    spare._start = lambda: start(warm=False)
    spare.fill()  # a new spare still importing ...
    while len(started) < 3:
        time.sleep(0.01)
    assert spare.give_back(first)  # ... gives way to a process that is warm again sooner
    assert spare.take(10) is first
    deadline = time.monotonic() + 10
    while not started[2].closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started[2].ended and started[2].closed
    spare.give_back(first)
    spare.close()
    assert first.closed and spare.take(0.0) is None and spare.give_back(ready) is False
