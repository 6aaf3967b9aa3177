"""PrCore's whole REST API over HTTP, as PrCore's own clients use it (reference sections 1-2, 4, 7 and 14).

One server (``serve --sse-format prcore``, PrCore mode) runs for the module on a synthetic log with BPIC 2012's
columns and activities, so that the documentation's example clients run with only their URL, token and file
paths changed. Every JSON answer the tests receive is checked against the server's own OpenAPI document.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile

import jsonschema
import numpy as np
import openapi_spec_validator
import pandas as pd
import pytest
import requests
import sseclient

from tests.conftest import AUTH, TOKEN, Server
from tests.test_real_logs import CSV_COLUMNS

COLUMNS = CSV_COLUMNS  # BPIC 2012's CSV columns, as the documentation's clients define them
RESOURCES = [f"Resource_{letter}" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def bpic_like_log(n_cases: int = 700, seed: int = 0) -> pd.DataFrame:
    """Loan applications shaped like BPIC 2012's CSV: its columns, activities, resources and time formats."""
    rng = np.random.default_rng(seed)
    rows, start = [], pd.Timestamp("2011-10-01T08:00:00")
    for case in range(n_cases):
        t = start + pd.Timedelta(hours=6 * case + rng.uniform(0, 4))
        amount = int(rng.choice([5000, 10000, 15000, 20000, 30000]))
        sent_back = rng.random() < 0.4
        approved = rng.random() < (0.7 if sent_back else 0.35) * (1.2 if amount <= 15000 else 0.8)
        trace = ["A_SUBMITTED", "A_PARTLYSUBMITTED", "W_Completeren aanvraag", "A_PREACCEPTED", "O_SELECTED"]
        trace += ["O_CREATED", "O_SENT"] + (["O_SENT_BACK", "W_Valideren aanvraag"] if sent_back else [])
        trace += ["A_APPROVED", "A_ACTIVATED"] if approved else ["A_DECLINED"]
        for activity in trace:
            t += pd.Timedelta(minutes=float(rng.exponential(180)))
            resource = "" if activity == "A_SUBMITTED" else str(rng.choice(["112", "10862", "11169", *RESOURCES[:5]]))
            stamp = t.isoformat(timespec="milliseconds")
            rows.append([str(173688 + case), stamp, stamp, str(amount), f"{start.isoformat()}Z", activity, resource])
    return pd.DataFrame(rows, columns=list(COLUMNS))


def zipped(frame: pd.DataFrame, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, frame.to_csv(index=False))
    return buffer.getvalue()


def ongoing_cases(frame: pd.DataFrame, n_cases: int = 60) -> pd.DataFrame:
    """Prefixes of the latest cases, as PrCore's ``bpic2012-ongoing-CSV.zip``."""
    cases = frame["Case ID"].unique()[-n_cases:]
    prefix = frame[frame["Case ID"].isin(cases)].groupby("Case ID", sort=False).head(4)
    return prefix.reset_index(drop=True)


class CheckedServer(Server):
    """A server whose every JSON answer is validated against its own ``/openapi.json``."""

    def start(self) -> CheckedServer:
        super().start()
        self.document = requests.get(f"{self.url}/openapi.json", timeout=30).json()
        self.checked: set[tuple[str, str, str]] = set()
        return self

    def _template(self, path: str) -> str | None:
        """The document's path for ``path``: literal segments before parameters (``/project/all``)."""
        segments = path.split("?")[0].rstrip("/").split("/")
        templates = sorted(self.document["paths"], key=lambda t: t.count("{"))
        for template in templates:
            parts = template.rstrip("/").split("/")
            if len(parts) == len(segments) and all(
                p == s or p.startswith("{") for p, s in zip(parts, segments, strict=True)
            ):
                return template
        return None

    def check(self, method: str, path: str, answer: requests.Response) -> requests.Response:
        if "application/json" not in answer.headers.get("Content-Type", ""):
            return answer
        template = self._template(path)
        assert template is not None, f"{path} is not in the OpenAPI document"
        declared = self.document["paths"][template][method.lower()]["responses"]
        assert str(answer.status_code) in declared, f"{method} {template} answered {answer.status_code} undeclared"
        schema = declared[str(answer.status_code)]["content"]["application/json"]["schema"]
        resolver = {"components": self.document["components"], **schema}
        jsonschema.validate(answer.json(), resolver)
        self.checked.add((method.upper(), template, str(answer.status_code)))
        return answer

    def get(self, path, **kwargs):
        return self.check("GET", path, super().get(path, **kwargs))

    def post(self, path, **kwargs):
        return self.check("POST", path, super().post(path, **kwargs))

    def put(self, path, **kwargs):
        return self.check("PUT", path, super().put(path, **kwargs))

    def delete(self, path, **kwargs):
        answer = requests.delete(self.url + path, headers=kwargs.pop("headers", AUTH), timeout=30, **kwargs)
        return self.check("DELETE", path, answer)


@pytest.fixture(scope="module")
def bpic_like(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bpic-like")
    log = bpic_like_log()
    training = directory / "bpic2012-CSV.zip"
    training.write_bytes(zipped(log, "bpic2012.csv"))
    ongoing = directory / "bpic2012-ongoing-CSV.zip"
    ongoing.write_bytes(zipped(ongoing_cases(log), "bpic2012-ongoing-CSV.csv"))
    return directory, training, ongoing, log


@pytest.fixture(scope="module")
def prcore_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("prcore-mode") / "data"
    server = CheckedServer(data, "--sse-format", "prcore", "--username", "analyst", "--password", "s3cret")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trained(prcore_server, bpic_like):
    """The documentation's "Ongoing Dataset Example" (reference 14.2), unchanged but for URL, token and paths."""
    _, training, ongoing, _ = bpic_like
    printed: list[str] = []
    BASE_URL, API_TOKEN = prcore_server.url, TOKEN
    headers = {"Authorization": f"Bearer {API_TOKEN}"}

    # -- workflow-example-dataset.py, step by step -----------------------------------------------------------
    files = [
        ("file", ("bpic2012-CSV.zip", open(training, "rb"), "application/zip")),  # noqa: SIM115
        ("test", ("bpic2012-ongoing-CSV.zip", open(ongoing, "rb"), "application/zip")),  # noqa: SIM115
    ]
    response = requests.post(f"{BASE_URL}/event_log", headers=headers, files=files, data={"separator": ","})
    response.raise_for_status()
    event_log_id = response.json()["event_log_id"]
    response = requests.put(
        f"{BASE_URL}/event_log/{event_log_id}",
        headers={**headers, "Content-Type": "application/json"},
        data=json.dumps({"columns_definition": COLUMNS}),
    )
    response.raise_for_status()
    response = requests.post(
        f"{BASE_URL}/project",
        headers={**headers, "Content-Type": "application/json"},
        data=json.dumps(
            {
                "event_log_id": event_log_id,
                "positive_outcome": [[{"column": "Activity", "operator": "EQUAL", "value": "A_APPROVED"}]],
                "treatment": [[{"column": "Activity", "operator": "EQUAL", "value": "O_SENT_BACK"}]],
                "additional_info": {
                    "plugin-causallift-resource-allocation": {
                        "available_resources": RESOURCES,
                        "treatment_duration": "1h",
                    }
                },
            }
        ),
    )
    response.raise_for_status()
    project_id, result_key = response.json()["project"]["id"], response.json()["result_key"]
    assert isinstance(result_key, str) and len(result_key) == 8
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        response = requests.get(f"{BASE_URL}/project/{project_id}/result/{result_key}", headers=headers)
        response.raise_for_status()  # 200 while pre-processing and training too
        result = response.json()
        printed.append(f"{result['project_status']} {result['expected_plugins']} {result['finished_plugins']}")
        if result["cases"]:
            break
        time.sleep(1)
    first = next(iter(result["cases"]))
    printed.append(json.dumps(result["cases"][first]))
    return {"project_id": project_id, "event_log_id": event_log_id, "result_key": result_key, "result": result}


def test_the_dataset_example_gets_every_case_with_prcore_prescriptions(trained, bpic_like):
    result = trained["result"]
    assert result["message"] == "Ongoing dataset result retrieved successfully"
    assert result["cases_count"] == 60
    assert result["columns"] == list(COLUMNS)
    assert result["columns_definition"] == COLUMNS
    assert set(result["expected_plugins"]) == set(result["finished_plugins"])
    assert {"plugin-knn-next-activity", "plugin-random-forest-alarm"} <= set(result["expected_plugins"])
    case = result["cases"]["173688" if "173688" in result["cases"] else next(iter(result["cases"]))]
    assert len(case["events"]) == 4 and all(len(row) == len(COLUMNS) for row in case["events"])
    for prescription in case["prescriptions"]:  # PrCore mode: PrCore's prescription objects
        assert set(prescription) <= {"date", "type", "output", "plugin", "model"}
        assert ("plugin" in prescription) != ("model" in prescription)


def test_results_are_kept_readable_and_survive_a_restart(prcore_server, trained):
    path = f"/project/{trained['project_id']}/result/{trained['result_key']}"
    again = prcore_server.get(path).json()
    assert again["cases_count"] == 60  # PrCore deleted a result on its first read
    listed = prcore_server.get(path + "?format=list").json()
    prescription = next(iter(listed["cases"].values()))["prescriptions"][0]
    assert {"id", "datetime", "type", "output", "plugin"} <= set(prescription)
    assert all(not key.startswith("plugin-") for key in listed["expected_plugins"])
    prcore_server.stop()
    prcore_server.start()
    assert prcore_server.get(path).json()["cases_count"] == 60
    assert prcore_server.get(f"/project/{trained['project_id']}/result/NOPE1234").json() == {
        "detail": "Result not found"
    }
    other = prcore_server.get(f"/project/999/result/{trained['result_key']}")
    assert (other.status_code, other.json()) == (400, {"detail": "Project not found"})


def test_posting_an_ongoing_dataset_to_a_trained_project(prcore_server, trained, bpic_like):
    _, _, ongoing, _ = bpic_like
    project_id = trained["project_id"]
    with ongoing.open("rb") as file:
        answer = prcore_server.post(f"/project/{project_id}/result", files={"file": file}, data={"seperator": ","})
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["message"] == "Ongoing dataset uploaded successfully" and body["project_id"] == project_id
    bad = prcore_server.post(f"/project/{project_id}/result", files={"file": ("x.csv", b"a,b\n1,2\n")})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("There was an error processing the dataset: missing pre-defined column")
    wrong = prcore_server.post(f"/project/{project_id}/result", files={"file": ("x.txt", b"a")})
    assert wrong.json() == {"detail": "No valid event log provided"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        result = prcore_server.get(f"/project/{project_id}/result/{body['result_key']}").json()
        if result["cases"]:
            break
        assert result["message"] == "Ongoing dataset result is still processing"
        time.sleep(0.5)
    assert result["cases_count"] == 60


def test_event_log_routes(prcore_server, trained, bpic_like):
    event_log_id = trained["event_log_id"]
    listed = prcore_server.get("/event_log/all").json()
    assert listed["message"] == "Event logs retrieved successfully"
    assert [e["id"] for e in listed["event_logs"]] == [event_log_id]
    assert prcore_server.get("/event_log/all?skip=1").json()["event_logs"] == []
    one = prcore_server.get(f"/event_log/{event_log_id}").json()
    assert one["message"] == "Event log retrieved successfully"
    assert one["event_log"]["definition"]["columns_definition"] == COLUMNS
    assert prcore_server.get("/event_log/999").json() == {"detail": "Event log not found"}
    definition = prcore_server.get(f"/event_log/{event_log_id}/definition").json()
    assert definition["columns_header"] == list(COLUMNS)
    assert definition["columns_old_definition"] == list(COLUMNS.values())
    assert len(definition["columns_data"]) == 5 and len(definition["columns_data"][0]) == len(COLUMNS)
    not_integer = prcore_server.get("/event_log/abc")
    assert not_integer.status_code == 422
    assert not_integer.json()["detail"][0]["loc"] == ["path", "event_log_id"]


def test_downloads(prcore_server, trained, bpic_like):
    project_id = trained["project_id"]
    original = prcore_server.get(f"/project/{project_id}/dataset/original")
    assert original.status_code == 200
    assert original.content == bpic_like[1].read_bytes()
    assert original.headers["Content-Disposition"].endswith('.zip"')
    frames = {}
    for kind in ("processed", "simulation", "ongoing"):
        answer = prcore_server.get(f"/project/{project_id}/dataset/{kind}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/csv")
        frames[kind] = pd.read_csv(io.BytesIO(answer.content), dtype=str)
    assert {"CASE_ID", "ACTIVITY", "OUTCOME", "TREATMENT"} <= set(frames["processed"].columns)
    assert list(frames["simulation"].columns) == list(COLUMNS)
    assert list(frames["ongoing"].columns) == list(COLUMNS)
    sizes = frames["simulation"].groupby("Case ID").size()
    prefixes = frames["ongoing"].groupby("Case ID").size()
    assert ((prefixes >= 3) & (prefixes <= sizes.reindex(prefixes.index) - 1)).all()
    training_cases = set(frames["processed"]["CASE_ID"])
    assert not training_cases & set(frames["simulation"]["Case ID"])
    assert prcore_server.get(f"/project/{project_id}/dataset/other").json() == {"detail": "Invalid dataset type"}


def test_plugin_routes_update_retrains_and_enable_disable(prcore_server, trained):
    available = prcore_server.get("/plugin/available").json()
    assert available["message"] == "Available plugins retrieved successfully"
    knn = available["plugins"]["knn-next-activity"]
    assert knn["prescription_type"] == "NEXT_ACTIVITY" and knn["prcore_id"] == "plugin-knn-next-activity"
    assert knn["parameter_declarations"]["n_neighbors"]["default"] == knn["parameters"]["n_neighbors"]
    plugins = prcore_server.get("/plugin/all").json()["plugins"]
    plugin = next(p for p in plugins if p["key"] == "knn-next-activity")
    assert prcore_server.get(f"/plugin/{plugin['id']}").json()["plugin"]["id"] == plugin["id"]
    assert prcore_server.get("/plugin/9999").json() == {"detail": "Plugin not found"}
    assert prcore_server.put("/plugin/9999", json={"parameters": {}}).json() == {"detail": "Plugin not found"}
    assert prcore_server.put(f"/plugin/{plugin['id']}/toggle").json() == {"detail": "Plugin trigger type not valid"}
    assert prcore_server.put(f"/plugin/{plugin['id']}/enable").json() == {"detail": "Plugin already enabled"}
    disabled = prcore_server.put(f"/plugin/{plugin['id']}/disable").json()
    assert disabled["message"] == "Plugin is disabled successfully" and disabled["plugin"]["disabled"] is True
    assert prcore_server.put(f"/plugin/{plugin['id']}/disable").json() == {"detail": "Plugin already disabled"}
    enabled = prcore_server.put(f"/plugin/{plugin['id']}/enable").json()
    assert enabled["message"] == "Plugin is enabled successfully" and enabled["plugin"]["disabled"] is False
    unknown = prcore_server.put(f"/plugin/{plugin['id']}", json={"parameters": {"no_such": 1}})
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith("Unknown parameter(s) no_such")
    updated = prcore_server.put(f"/plugin/{plugin['id']}", json={"parameters": {"n_neighbors": 7}}).json()
    assert updated["message"] == "Plugin is updated successfully"
    assert updated["plugin"]["parameters"]["n_neighbors"] == 7 and updated["plugin"]["status"] == "TRAINING"
    busy = prcore_server.put(f"/plugin/{plugin['id']}/disable")
    assert busy.json() in ({"detail": "Project not ready"}, {"message": busy.json().get("message")})
    prcore_server.wait_status(trained["project_id"], "TRAINED", timeout=300)
    retrained = prcore_server.get(f"/plugin/{plugin['id']}").json()["plugin"]
    assert retrained["status"] == "TRAINED" and retrained["parameters"]["n_neighbors"] == 7
    assert retrained["metrics"] and retrained["updated_at"] != plugin["updated_at"]


def test_prcore_mode_streams_prcore_prescriptions_to_the_docs_sse_client(prcore_server, trained):
    """``workflow-example.py`` from step 5 (reference 14.1): simulate, read SSE, print truthy outputs, stop."""
    BASE_URL, PROJECT_ID = prcore_server.url, trained["project_id"]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    printed = []
    response = requests.put(f"{BASE_URL}/project/{PROJECT_ID}/stream/start/simulating?interval=0.05", headers=headers)
    response.raise_for_status()
    try:
        stream = requests.get(f"{BASE_URL}/project/{PROJECT_ID}/stream/result", headers=headers, stream=True)
        client = sseclient.SSEClient(stream)
        for event in client.events():
            if event.event == "message":
                data = json.loads(event.data)
                prescriptions = data[0]["prescriptions"]
                printed.extend(v for v in prescriptions.values() if v["output"])
                if len(printed) >= 6:
                    break
    finally:
        response = requests.put(f"{BASE_URL}/project/{PROJECT_ID}/stream/stop", headers=headers)
        response.raise_for_status()
    assert printed
    assert all(set(p) == {"date", "type", "output", "plugin"} for p in printed)
    assert {p["type"] for p in printed} >= {"NEXT_ACTIVITY"}
    prcore_server.wait_status(PROJECT_ID, "TRAINED", timeout=60)
    requests.put(f"{BASE_URL}/project/{PROJECT_ID}/stream/clear", headers=headers).raise_for_status()


def test_projects_listing_renaming_redefining_and_deleting(prcore_server, trained, bpic_like):
    _, training, _, _ = bpic_like
    project_id = trained["project_id"]
    page = prcore_server.get("/project/all?page=1&size=100").json()
    assert (page["total"], page["page"], page["size"], page["pages"]) == (1, 1, 100, 1)
    assert page["items"][0]["id"] == project_id
    too_big = prcore_server.get("/project/all?size=101")
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["query", "size"]
    renamed = prcore_server.put(f"/project/{project_id}", json={"name": "New name", "description": "Custom"}).json()
    assert renamed["message"] == "Project's basic information updated successfully"
    assert (renamed["project"]["name"], renamed["project"]["description"]) == ("New name", "Custom")
    nameless = prcore_server.put(f"/project/{project_id}", json={"description": "x"})
    assert nameless.status_code == 422 and nameless.json()["detail"][0]["msg"] == "'name' is a required property"
    flat = prcore_server.put(
        f"/project/{project_id}/definition",
        json={"positive_outcome": [{"column": "Activity", "operator": "EQUAL", "value": "A_APPROVED"}]},
    )
    assert flat.status_code == 422  # a flat list is not an OR of AND-groups
    # a second upload with a test file, then a second project on it: deleted with everything it owns
    with training.open("rb") as file:
        uploaded = prcore_server.post("/event_log", files={"file": file, "test": ("t.csv", b"bad,file\n1,2\n")})
    assert uploaded.status_code == 200
    second_log = uploaded.json()["event_log_id"]
    prcore_server.put(f"/event_log/{second_log}", json={"columns_definition": COLUMNS})
    created = prcore_server.post(
        "/project",
        json={"event_log_id": second_log, "positive_outcome": [[{"column": "Activity", "operator": "EQUAL",
                                                                  "value": "A_APPROVED"}]]},
    ).json()  # fmt: skip
    second = created["project"]["id"]
    assert created["result_key"]
    redefined = prcore_server.put(
        f"/project/{second}/definition",
        json={"event_log_id": second_log, "negative_outcome": [[{"column": "Activity", "operator": "EQUAL",
                                                                  "value": "A_DECLINED"}]]},
    )  # fmt: skip
    assert redefined.status_code in (200, 400)  # 400 "Project not ready" while it still pre-processes
    if redefined.status_code == 400:
        assert redefined.json() == {"detail": "Project not ready"}
    deleted = prcore_server.delete(f"/project/{second}").json()
    assert deleted == {"message": "Project deleted successfully", "project_id": second}
    assert prcore_server.get(f"/project/{second}").json() == {"detail": "Project not found"}
    assert prcore_server.get(f"/event_log/{second_log}").json() == {"detail": "Event log not found"}
    assert prcore_server.get("/project/all").json()["total"] == 1


def test_reupload_replaces_the_data_and_retrains(prcore_server, trained, bpic_like):
    log = bpic_like[3]
    event_log_id, project_id = trained["event_log_id"], trained["project_id"]
    smaller = log[log["Case ID"].astype(int) < 173688 + 650]
    renamed = smaller.rename(columns={"Resource": "Worker"})
    mismatch = prcore_server.put(
        f"/event_log/{event_log_id}/upload", files={"file": ("new.csv", renamed.to_csv(index=False))}
    )
    assert mismatch.json() == {"detail": "Event log columns mismatch with previous definition"}
    answer = prcore_server.put(
        f"/event_log/{event_log_id}/upload",
        files={"file": ("bpic2012-again.csv", smaller.to_csv(index=False).encode())},
        data={"separator": ","},
    )
    body = answer.json()
    assert answer.status_code == 200, body
    assert {"received_definition", "activities_count", "resources_count", "outcome_options"} <= set(body)
    project = prcore_server.get(f"/project/{project_id}").json()["project"]
    assert project["event_log"]["file_name"] == "bpic2012-again.csv"
    prcore_server.wait_status(project_id, "TRAINED", timeout=300)
    project = prcore_server.get(f"/project/{project_id}").json()["project"]
    assert project["split"]["training_cases"] + project["split"]["held_out_cases"] == 650


def test_token_info_docs_and_json_errors(prcore_server):
    token = prcore_server.post("/token", headers={}, data={"username": "analyst", "password": "s3cret"})
    assert token.json() == {"access_token": TOKEN, "token_type": "bearer"}
    wrong = prcore_server.post("/token", headers={}, data={"username": "analyst", "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Incorrect username or password"})
    assert prcore_server.post("/token", headers={}, data={"username": "analyst"}).status_code == 422
    info = prcore_server.get("/", headers={})
    assert set(info.json()) >= {"API", "Documentation", "Swagger UI"}
    browser = requests.get(prcore_server.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.headers["Content-Type"].startswith("text/html")  # the dashboard
    docs = requests.get(prcore_server.url + "/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    bundle = requests.get(prcore_server.url + "/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    for method, path in (("GET", "/nowhere"), ("GET", "/project/1/nowhere"), ("POST", "/event_log/all/x")):
        answer = requests.request(method, prcore_server.url + path, headers=AUTH)
        assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
        assert answer.headers["Content-Type"].startswith("application/json")
    wrong_method = requests.delete(prcore_server.url + "/event_log/all", headers=AUTH)
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})
    preflight = requests.options(prcore_server.url + "/project/1", headers={"Origin": "http://elsewhere"})
    assert preflight.status_code == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    unauthenticated = requests.get(prcore_server.url + "/plugin/all")
    assert (unauthenticated.status_code, unauthenticated.json()) == (401, {"detail": "Not authenticated"})


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "detail"),
    [
        ("POST", "/project", {"data": "[" * 50_000 + "]" * 50_000}, 400, "The request body is not valid JSON: it is"),
        ("POST", "/project", {"data": '{"event_log_id": ' + "9" * 5000 + "}"}, 400, "The request body is not valid"),
        ("POST", "/project", {"json": {"event_log_id": True}}, 422, None),
        ("POST", "/project", {"json": {"event_log_id": 1e30}}, 422, None),
        ("PUT", "/event_log/1", {"json": {"columns_definition": {}, "fast_mode": "false"}}, 422, None),
        ("PUT", "/event_log/1", {"json": {"columns_definition": {}, "case_attributes": 5}}, 422, None),
        ("GET", f"/project/{2**64}", {}, 422, None),
        ("GET", f"/event_log/{-(2**70)}", {}, 422, None),
        ("POST", f"/event/{2**63}", {"json": {}}, 422, None),
        ("PUT", "/project/1/stream/start/simulating?interval=nan", {}, 400, "Query parameter interval must be"),
        ("PUT", "/project/1/stream/start/simulating?interval=inf", {}, 400, "Query parameter interval must be"),
        ("PUT", "/project/1/stream/start/simulating?interval=1e308", {}, 400, "interval must be a number from 0"),
        ("PUT", "/project/1/stream/start/simulating?speed=1e-300", {}, 400, "speed must be a number from 0.01"),
        ("PUT", "/project/1/stream/start/simulating?max_events=" + "9" * 40, {}, 400, "Query parameter max_events"),
        ("POST", "/event_log", {"files": {"file": ("x." + "a" * 300 + ".csv", b"a,b\n1,2\n")}}, 200, None),
        ("POST", "/event/1", {"json": {f"k{n}": "x" * 9_000 for n in range(1_100)}}, 413, "The event has 9,"),
    ],
)
def test_hostile_requests_get_a_4xx_naming_the_problem(prcore_server, trained, method, path, options, status, detail):
    """Rows 9-11 and 15 of the reliability issue's table: each was a 500 or silently accepted before."""
    answer = prcore_server.check(method, path, requests.request(method, prcore_server.url + path, headers=AUTH,
                                                                  timeout=60, **options))  # fmt: skip
    assert answer.status_code == status, answer.text[:300]
    if detail is not None:
        assert answer.json()["detail"].startswith(detail), answer.json()
        assert len(answer.json()["detail"]) < 400
    if status == 422:
        assert isinstance(answer.json()["detail"], list) and answer.json()["detail"][0]["loc"]
    resume = requests.get(
        f"{prcore_server.url}/project/1/stream/result", headers={**AUTH, "Last-Event-ID": str(2**63)}, timeout=30
    )
    assert resume.status_code == 400 and resume.json()["detail"].startswith("Last-Event-ID must be an event id")


def test_every_route_is_documented_and_was_checked_against_the_document(prcore_server):
    document = requests.get(prcore_server.url + "/openapi.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    openapi_spec_validator.validate(document)
    operations = {(m.upper(), t) for t, methods in document["paths"].items() for m in methods}
    assert len(operations) == 31  # PrCore's 28 routes, legacy POST /event/{id}, the old SSE path, bulk events
    checked = {(m, t) for m, t, _ in prcore_server.checked}
    streaming = {
        ("PUT", "/project/{project_id}/stream/start"),
        ("PUT", "/project/{project_id}/stream/stop"),
        ("PUT", "/project/{project_id}/stream/clear"),
        ("POST", "/project/{project_id}/stream/event"),
        ("POST", "/event/{project_id}"),
        ("POST", "/project/{project_id}/stream/events"),
        ("GET", "/project/{project_id}/stream/result"),
        ("GET", "/project/{project_id}/streaming/result"),
        ("PUT", "/project/{project_id}/stream/start/{streaming_type}"),
        ("GET", "/project/{project_id}/dataset/{dataset_type}"),
        ("GET", "/"),
        ("POST", "/token"),
    }  # driven with requests directly above and in tests/test_api.py
    assert operations - checked <= streaming, operations - checked - streaming


def test_a_list_mode_server_keeps_the_seed_list_and_prcore_on_request(tmp_path, bpic_like, prcore_server, trained):
    """Without PrCore mode the seed's list is sent; ``?format=prcore`` gives PrCore's object for one reader."""
    prcore_server.stop()
    copy = tmp_path / "data"
    shutil.copytree(prcore_server.data_dir, copy)
    prcore_server.start()
    server = Server(copy).start()
    try:
        project_id = trained["project_id"]
        server.put(f"/project/{project_id}/stream/start/simulating?interval=0.05").raise_for_status()
        for query, expected in (("", list), ("?format=prcore", dict)):
            stream = requests.get(
                f"{server.url}/project/{project_id}/stream/result{query}", headers=AUTH, stream=True, timeout=60
            )
            for event in sseclient.SSEClient(stream).events():
                if event.event == "message":
                    assert isinstance(json.loads(event.data)[0]["prescriptions"], expected)
                    break
            stream.close()
            time.sleep(0.5)  # the reader is released when the server notices the closed connection
        bad = server.get(f"/project/{project_id}/stream/result?format=xml")
        assert bad.status_code == 400 and bad.json()["detail"].startswith("Unknown format 'xml'")
        server.put(f"/project/{project_id}/stream/stop")
    finally:
        server.stop()
