"""The real server over HTTP: the seeds' three endpoints, streaming control, SSE with resume, auth, bad input.

A project is trained on the demo log through the facade, then ``prcore-workbench serve`` runs as a separate
process on the same data directory, and the tests talk to it with ``requests`` and ``sseclient-py``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from prcore_core import PrCore

pytestmark = pytest.mark.databases  # on SQLite and on PostgreSQL (tests/conftest.py)


@pytest.fixture(scope="module")
def trained_database(database):
    """The trained data directory's database (``None`` on SQLite: the directory's own file)."""
    return database.new()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, trained_database):
    from prcore_core.demo import generate_demo_log

    directory = tmp_path_factory.mktemp("served")
    demo = generate_demo_log(n_cases=500, seed=5)
    with PrCore(data_dir=directory, database_url=trained_database) as core:
        event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        project = core.create_project(event_log.id, positive_outcome=demo.outcome, treatment=demo.treatment)
        project.wait_until("TRAINED", 180)
    return directory, demo


@pytest.fixture
def served_dir(trained_dir, tmp_path):
    """A copy of the trained data directory for one test."""
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(trained_dir[0], copy)
    return copy


@pytest.fixture
def served_database(database, trained_database, trained_dir):
    """A copy of the trained database for one test, beside the copy of its directory (the same on SQLite)."""
    url = database.new(template=trained_database)
    yield url
    database.drop(url)


@pytest.fixture
def server(served_dir, served_database, start_server):
    return start_server(data_dir=served_dir, database_url=served_database)


def _events(demo, index, prefix):
    case = demo.events["case_id"].unique()[index]
    rows = demo.events[demo.events["case_id"] == case].astype(object)
    rows = rows.where(rows.notna(), None).to_dict("records")
    return [{**row, "case_id": f"{prefix}-{case}"} for row in rows]


@pytest.mark.databases("sqlite")  # nothing stored: once is enough
def test_auth(server):
    assert server.get("/project/1", headers={}).status_code == 401
    assert server.get("/project/1", headers={}).json() == {"detail": "Not authenticated"}
    assert server.get("/project/1", headers={}).headers["WWW-Authenticate"] == "Bearer"
    wrong = server.get("/project/1", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid token"})
    assert server.post("/event/1", headers={}, data="{}").status_code == 401


def test_check_project_status(server):
    answer = server.get("/project/1")
    assert answer.status_code == 200
    document = answer.json()
    assert list(document) == ["message", "project"]
    project = document["project"]
    assert list(project)[:8] == [
        "id",
        "created_at",
        "updated_at",
        "name",
        "description",
        "status",
        "event_log",
        "plugins",
    ]
    assert project["status"] == "TRAINED"
    assert set(project["event_log"]["definition"]) >= {
        "columns_definition",
        "outcome_definition",
        "treatment_definition",
    }
    assert {p["prescription_type"] for p in project["plugins"]} >= {"NEXT_ACTIVITY"}
    missing = server.get("/project/999")
    assert (missing.status_code, missing.json()) == (400, {"detail": "Project not found"})


def test_streaming_flow_seeds(server, trained_dir, sse_reader):
    _, demo = trained_dir
    not_yet = server.post("/event/1", json=_events(demo, 0, "a")[0])
    assert (not_yet.status_code, not_yet.json()) == (400, {"detail": "Project not streaming"})
    assert server.get("/project/1/streaming/result").json() == {"detail": "Project not streaming"}
    started = server.put("/project/1/stream/start")
    assert started.json() == {"message": "Project streaming started successfully", "project_id": 1}
    server.wait_status(1, "STREAMING")
    reader = sse_reader(server, 1)
    assert reader.response.status_code == 200
    assert reader.response.headers["Content-Type"].startswith("text/event-stream")
    second = sse_reader(server, 1)
    assert (second.response.status_code, second.response.json()) == (
        400,
        {"detail": "Project streaming result already be reading"},
    )
    events = _events(demo, 0, "a")
    answers = []
    for event in events[:-1]:
        answer = server.post("/event/1", json=event)
        assert answer.status_code == 200
        assert answer.json()["message"] == "Event received successfully"
        answers.append(answer.json()["event"])
    last = server.post("/project/1/stream/event", json={**events[-1], "COMPLETE_INDICATOR": True}).json()
    assert last["message"] == "Event received successfully, this is the last event of the case"
    first = answers[0]
    assert set(first) == {"project_id", "attributes", "id", "created_at", "updated_at"}
    assert first["attributes"]["CASE_ID"] == events[0]["case_id"]
    assert first["attributes"]["COMPLETE_INDICATOR"] == "False"
    seen = reader.until(lambda item, seen: len(reader.messages(seen)) >= len(events))
    assert seen[0][:3] == ("notification", "0", "CONNECTED")
    delivered = reader.messages(seen)
    assert [e["id"] for e in delivered] == [a["id"] for a in answers] + [last["event"]["id"]]
    assert all(kind != "message" or event_id for kind, event_id, _ in seen)
    message = delivered[0]
    assert set(message) >= {"id", "timestamp", "case_completed", "data", "prescriptions"}
    assert message["data"]["case_id"] == events[0]["case_id"]
    prescription = next(p for p in message["prescriptions"] if p["type"] == "NEXT_ACTIVITY")
    assert set(prescription) >= {"id", "datetime", "type", "output", "plugin"}
    assert set(prescription["plugin"]) >= {"name", "description", "accuracy", "precision", "recall"}
    assert delivered[-1]["case_completed"] is True and delivered[-1]["prescriptions"] == []
    stopped = server.put("/project/1/stream/stop").json()
    assert stopped == {"message": "Project streaming stopped successfully", "project_id": 1}
    reader.until(lambda item, seen: item[0] == "notification" and item[2] == "FINISHED")
    server.wait_status(1, "TRAINED")


def test_resume_with_last_event_id_and_backlog(server, trained_dir, sse_reader):
    _, demo = trained_dir
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    events = _events(demo, 1, "b")[:5]
    ids = [server.post("/event/1", json=e).json()["event"]["id"] for e in events[:3]]
    reader = sse_reader(server, 1)  # backlog: prescribed while nobody was reading
    seen = reader.until(lambda item, seen: len(reader.messages(seen)) >= 3)
    assert [e["id"] for e in reader.messages(seen)] == ids
    reader.close()
    time.sleep(0.3)
    ids += [server.post("/event/1", json=e).json()["event"]["id"] for e in events[3:]]
    resumed = sse_reader(server, 1, last_event_id=ids[1], path="stream", query="?format=prcore")
    seen = resumed.until(lambda item, seen: len(resumed.messages(seen)) >= 3)
    delivered = resumed.messages(seen)
    assert [e["id"] for e in delivered] == ids[2:]  # exactly what it missed, nothing twice
    third = sse_reader(server, 1)  # the first reader left, the second holds the stream: a third is refused
    assert (third.response.status_code, third.response.json()) == (
        400,
        {"detail": "Project streaming result already be reading"},
    )
    assert isinstance(delivered[0]["prescriptions"], dict)
    assert "plugin-knn-next-activity" in delivered[0]["prescriptions"]  # PrCore's plugin ids
    knn = delivered[0]["prescriptions"]["plugin-knn-next-activity"]
    assert set(knn) <= {"date", "type", "output", "plugin", "model"}


def test_restart_between_posting_and_reading(server, trained_dir, sse_reader):
    _, demo = trained_dir
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    ids = [server.post("/event/1", json=e).json()["event"]["id"] for e in _events(demo, 2, "c")[:4]]
    server.stop()
    server.start()
    server.wait_status(1, "STREAMING")
    reader = sse_reader(server, 1)
    seen = reader.until(lambda item, seen: len(reader.messages(seen)) >= 4)
    assert [e["id"] for e in reader.messages(seen)] == ids


@pytest.mark.parametrize(
    ("data", "status", "detail"),
    [
        ("{not json", 400, "The request body is not valid JSON"),
        ("[1, 2]", 400, "The event must be a JSON object"),
        ("", 400, "The request body is empty"),
    ],
)
@pytest.mark.databases("sqlite")  # nothing stored: once is enough
def test_malformed_bodies(server, data, status, detail):
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    answer = server.post("/event/1", data=data)
    assert answer.status_code == status
    assert answer.json()["detail"].startswith(detail)


def test_invalid_events_and_control(server, trained_dir):
    _, demo = trained_dir
    assert server.put("/project/1/stream/start/trained").json() == {"detail": "Invalid streaming type"}
    assert server.put("/project/1/stream/stop").json() == {"detail": "Streaming not started"}
    server.put("/project/1/stream/start/streaming")
    server.wait_status(1, "STREAMING")
    assert server.put("/project/1/stream/start").json() == {"detail": "Streaming already started"}
    event = _events(demo, 3, "d")[0]
    bad_time = server.post("/event/1", json={**event, "timestamp": "31/31/2024 25:61"})
    assert bad_time.status_code == 400 and bad_time.json()["detail"].startswith("Invalid datetime value for timestamp")
    missing = server.post("/event/1", json={k: v for k, v in event.items() if k != "activity"})
    assert missing.json() == {"detail": "Missing pre-defined column activity"}
    wrong_type = server.post("/event/1", json={**event, "credit_score": "excellent"})
    assert wrong_type.json()["detail"].startswith("Invalid number value for credit_score")
    assert server.post("/event/999", json=event).json() == {"detail": "Project not found"}
    cleared = server.put("/project/1/stream/clear").json()
    assert cleared == {"message": "Project stream data is cleared successfully", "project_id": 1}
    server.wait_status(1, "TRAINED")


def test_simulation_over_http(server, sse_reader):
    started = server.put("/project/1/stream/start/simulating?interval=0&max_events=40")
    assert started.status_code == 200
    reader = sse_reader(server, 1)
    seen = reader.until(lambda item, seen: item[2] == "FINISHED", timeout=60)
    assert len(reader.messages(seen)) == 40
    server.wait_status(1, "TRAINED")


@pytest.mark.databases("sqlite")  # nothing stored: once is enough
def test_port_in_use_is_refused(server):
    taken = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "serve",
            "--port",
            str(server.port),
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 2
    assert f"Port {server.port} on 127.0.0.1 is already in use" in taken.stderr


@pytest.mark.databases("sqlite")  # nothing stored: once is enough
def test_hostile_uploads_get_413_naming_the_limit_and_the_server_goes_on(start_server, monkeypatch):
    import io
    import zipfile

    monkeypatch.setenv("PRCORE_MAX_DECOMPRESSED_BYTES", str(16 * 2**20))
    server = start_server()
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.csv", "w", force_zip64=True) as member,
    ):
        member.write(b"case,activity\n")
        for _ in range(16):  # 256 MiB of NUL bytes, a quarter of a megabyte zipped
            member.write(b"\x00" * 2**24)
    bomb = server.post("/event_log", files={"file": ("bomb.zip", buffer.getvalue())})
    assert bomb.status_code == 413
    assert bomb.json() == {"detail": "The event log inside the archive is larger than 16,777,216 bytes decompressed "
                                     "(limit max_decompressed_bytes)"}  # fmt: skip
    header = ",".join(f"c{i}" for i in range(2_001))
    wide = server.post("/event_log", files={"file": ("wide.csv", f"{header}\n{header}\n".encode())})
    assert (wide.status_code, wide.json()) == (
        413, {"detail": "The event log has 2,001 columns; at most 2,000 are accepted (limit max_columns)"}
    )  # fmt: skip
    fine = server.post("/event_log", files={"file": ("ok.csv", b"case,activity,time\n1,A,2024-01-01\n")})
    assert fine.status_code == 200, fine.text


def test_from_file_to_project_over_http(server, trained_dir):
    _, demo = trained_dir
    uploaded = server.post(
        "/event_log", files={"file": ("loans.csv", demo.to_csv(separator=";"))}, data={"separator": ";"}
    )
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert body["message"] == "Event log uploaded"
    assert body["columns_header"][:3] == ["case_id", "activity", "timestamp"]
    assert body["columns_inferred_definition"][:3] == ["CASE_ID", "ACTIVITY", "TIMESTAMP"]
    assert len(body["columns_data"]) == 5
    bad = server.post("/event_log", files={"file": ("notes.txt", b"hello")})
    assert (bad.status_code, bad.json()) == (400, {"detail": "No valid event log provided"})
    event_log_id = body["event_log_id"]
    wrong = server.put(f"/event_log/{event_log_id}", json={"columns_definition": {"case_id": "CASE_ID"}})
    assert wrong.json() == {"detail": "No activity column found"}
    defined = server.put(
        f"/event_log/{event_log_id}",
        json={"columns_definition": demo.columns_definition, "case_attributes": demo.case_attributes},
    )
    assert defined.json()["message"] == "Event log updated"
    created = server.post("/project", json={"event_log_id": event_log_id, "positive_outcome": demo.outcome})
    assert created.status_code == 200
    project = created.json()["project"]
    assert project["status"] == "PREPROCESSING"
    server.wait_status(project["id"], "TRAINED", timeout=120)


def test_a_killed_server_loses_no_acknowledged_event_and_a_resuming_reader_gets_each_once(
    server, trained_dir, sse_reader
):
    import psutil

    _, demo = trained_dir
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    events = _events(demo, 4, "k")[:6]
    reader = sse_reader(server, 1)
    ids = [server.post("/event/1", json=e).json()["event"]["id"] for e in events[:3]]
    seen = reader.until(lambda item, seen: len(reader.messages(seen)) >= 3)
    ids += [server.post("/event/1", json=e).json()["event"]["id"] for e in events[3:]]  # acknowledged, then:
    children = psutil.Process(server.process.pid).children(recursive=True)
    server.process.kill()  # no clean shutdown: SIGKILL right after the last acknowledgement
    server.process.wait(10)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"processes outlived the killed server: {alive}"
    seen += reader.until(lambda item, seen: item[0] == "closed", timeout=10)  # what it got before the crash
    received = [e["id"] for e in reader.messages(seen)]
    assert received == ids[: len(received)] and len(received) >= 3
    server.start()
    server.wait_status(1, "STREAMING")  # re-activated after the crash
    resumed = sse_reader(server, 1, last_event_id=received[-1])
    rest = ids[len(received) :]
    if rest:
        seen = resumed.until(lambda item, seen: len(resumed.messages(seen)) >= len(rest))
        assert [e["id"] for e in resumed.messages(seen)] == rest  # exactly what it missed, nothing twice
    assert all(e["prescriptions"] for e in resumed.messages(seen) if not e["case_completed"])


def test_idle_stream_is_kept_alive_with_pings_that_carry_the_cursor(
    served_dir, served_database, start_server, sse_reader
):
    server = start_server("--ping-interval", "0.3", data_dir=served_dir, database_url=served_database)
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    reader = sse_reader(server, 1)
    seen = reader.until(lambda item, seen: sum(kind == "ping" for kind, _, _ in seen) >= 2, timeout=10)
    assert seen[0][:3] == ("notification", "0", "CONNECTED")
    assert {event_id for kind, event_id, _ in seen if kind == "ping"} == {"0"}


def test_reading_a_stream_that_is_not_open_or_with_a_bad_last_event_id(server, sse_reader):
    not_open = sse_reader(server, 1)
    assert (not_open.response.status_code, not_open.response.json()) == (400, {"detail": "Project not streaming"})
    assert sse_reader(server, 999).response.json() == {"detail": "Project not found"}
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    bad = sse_reader(server, 1, last_event_id="yesterday")
    assert (bad.response.status_code, bad.response.json()) == (
        400,
        {"detail": "Last-Event-ID must be an event id, got 'yesterday'"},
    )
    good = sse_reader(server, 1)  # the refused reader did not take the project's one reading slot
    assert good.response.status_code == 200


@pytest.mark.databases("sqlite")
def test_a_reader_that_takes_nothing_is_disconnected_and_resumes_with_every_event(
    served_dir, start_server, trained_dir, sse_reader, monkeypatch
):
    """A reader whose buffers stay full is dropped after the timeout (events wait in the database, not in the
    server's memory); the stream is free for the next reader, and resuming gives it every event once."""
    import re
    import socket

    from tests.conftest import TOKEN

    _, demo = trained_dir
    monkeypatch.setenv("PRCORE_SSE_READER_TIMEOUT", "2")
    server = start_server(data_dir=served_dir, database_url=None)
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's writes stall
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(
        f"GET /project/1/streaming/result HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    time.sleep(1)  # connected: the stream has its reader
    assert server.get("/project/1/streaming/result").json() == {"detail": "Project streaming result already be reading"}
    # large events (72 KB), so that the 14 MB posted overflow the buffers between the server and the reader
    notes = {f"note{n}": "n" * 9_000 for n in range(8)}
    ids = [
        server.post("/event/1", json={**e, **notes}).json()["event"]["id"]
        for index in range(3, 23)
        for e in _events(demo, index, "slow")
    ]
    time.sleep(10)  # the reader takes nothing while the server prescribes and sends (2 s is its timeout)
    received, closed = b"", False
    stalled.settimeout(5)
    deadline = time.monotonic() + 60
    while not closed and time.monotonic() < deadline:  # what the server had sent, then its close
        try:
            chunk = stalled.recv(1 << 20)
        except TimeoutError:
            continue
        received += chunk
        closed = chunk == b""
    print(f"the stalled reader had {len(received):,} bytes when the server closed it: {closed}")
    assert closed, "the server kept a reader that took nothing"
    seen = [int(i) for i in re.findall(rb"\r\nid: (\d+)\r\nevent: message", b"\r\n" + received)]
    assert seen and max(seen) < ids[-1]  # it was dropped before it had everything
    resumed = sse_reader(server, 1, last_event_id=max(seen))
    rest = resumed.until(lambda item, got: len(resumed.messages(got)) >= len([i for i in ids if i > max(seen)]))
    delivered = [e["id"] for e in resumed.messages(rest)]
    assert delivered == [i for i in ids if i > max(seen)]
    resumed.close()


@pytest.mark.databases("sqlite")
def test_bulk_ingestion_answers_each_event_and_one_bad_event_refuses_no_other(server, trained_dir, sse_reader):
    import json

    import jsonschema

    from tests.conftest import AUTH

    _, demo = trained_dir
    events = [e for index in range(5, 9) for e in _events(demo, index, "bulk")]
    refused = server.post("/project/1/stream/events", json=events[:2])
    assert (refused.status_code, refused.json()) == (400, {"detail": "Project not streaming"})
    server.put("/project/1/stream/start")
    server.wait_status(1, "STREAMING")
    reader = sse_reader(server, 1)
    bad = {**events[1], "timestamp": "yesterday-ish"}
    body = [events[0], bad, *events[1:], "not an event"]
    answer = server.post("/project/1/stream/events", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    document = server.get("/openapi.json").json()
    declared = document["paths"]["/project/{project_id}/stream/events"]["post"]["responses"]["200"]
    jsonschema.validate(
        result, {"components": document["components"], **declared["content"]["application/json"]["schema"]}
    )
    assert (result["accepted"], result["refused"]) == (len(events), 2)
    assert result["message"] == f"Events received: {len(events)} accepted, 2 refused"
    why = "Invalid datetime value for timestamp: 'yesterday-ish'"
    assert result["results"][1] == {"detail": why, "status_code": 400}
    assert result["results"][-1]["detail"] == "The event must be a JSON object of column names and values"
    ids = [r["event"]["id"] for r in result["results"] if "event" in r]
    assert ids == sorted(ids) and len(set(ids)) == len(events)
    seen = reader.until(lambda item, got: len(reader.messages(got)) >= len(ids))
    assert [e["id"] for e in reader.messages(seen)] == ids  # prescribed and delivered once, in order
    more = [{**e, "case_id": f"nd-{e['case_id']}"} for e in events[:3]]
    ndjson = "\n".join(json.dumps(e, default=str) for e in more[:2]) + "\n{broken\n" + json.dumps(more[2], default=str)
    lines = server.post(
        "/project/1/stream/events", data=ndjson.encode(), headers={**AUTH, "Content-Type": "application/x-ndjson"}
    ).json()
    assert (lines["accepted"], lines["refused"]) == (3, 1)
    assert lines["results"][2]["detail"].startswith("Line 3 is not valid JSON")
    not_a_list = server.post("/project/1/stream/events", json={"case_id": "1"})
    assert (not_a_list.status_code, not_a_list.json()) == (
        400,
        {"detail": "The events must be a JSON array of event objects"},
    )
