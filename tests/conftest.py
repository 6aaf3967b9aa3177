"""Shared fixtures: a fresh workbench per test and small synthetic demo logs (no third-party data)."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import sseclient

from prcore_core import PrCore
from prcore_core.demo import generate_demo_log


def pytest_addoption(parser):
    parser.addoption(
        "--shared-data",
        default=None,
        help="directory with the real event logs (bpic2012-CSV.zip, ...) for the integration tests",
    )


@pytest.fixture
def shared_data(request) -> Path:
    """The real-log directory given with --shared-data; tests that need it are skipped without it."""
    value = request.config.getoption("--shared-data")
    if not value or not Path(value).is_dir():
        pytest.skip("real event logs not given (--shared-data PATH)")
    return Path(value)


@pytest.fixture(scope="session")
def demo():
    """A small demo log (600 cases)."""
    return generate_demo_log(n_cases=600, seed=3)


@pytest.fixture
def core(tmp_path):
    with PrCore(data_dir=tmp_path / "data") as workbench:
        yield workbench


@pytest.fixture
def defined_log(core, demo):
    """An uploaded demo log with its columns defined."""
    event_log = core.upload_event_log(demo.to_csv(), filename="demo.csv")
    core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    return event_log


TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``prcore-workbench serve`` in a subprocess, as a user starts it; its console output goes to a log file."""

    def __init__(self, data_dir: Path, *options: str):
        self.data_dir, self.options = Path(data_dir), list(options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        """Start (again, after :meth:`stop` or a kill) and wait until it answers."""
        self.log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--token",
                TOKEN,
                *self.options,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/project/0", headers=AUTH, timeout=2)
                return self
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.output()) from None
                time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> str:
        """Terminate the server (killed if it does not stop within 20 s); its console output."""
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.output()

    def get(self, path, **kwargs):
        return requests.get(self.url + path, headers=kwargs.pop("headers", AUTH), timeout=30, **kwargs)

    def post(self, path, **kwargs):
        return requests.post(self.url + path, headers=kwargs.pop("headers", AUTH), timeout=30, **kwargs)

    def put(self, path, **kwargs):
        return requests.put(self.url + path, headers=kwargs.pop("headers", AUTH), timeout=30, **kwargs)

    def wait_status(self, project_id, status, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.get(f"/project/{project_id}").json()["project"]["status"]
            if current == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"project {project_id} is {current}, not {status}")


class SseReader:
    """An SSE client in a thread, collecting (event, id, data) into a queue."""

    def __init__(self, server, project_id, last_event_id=None, path="streaming", query=""):
        headers = dict(AUTH)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(
            f"{server.url}/project/{project_id}/{path}/result{query}", headers=headers, stream=True, timeout=(5, 60)
        )
        self.items: queue.Queue = queue.Queue()
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for event in sseclient.SSEClient(self.response).events():
                self.items.put((event.event, event.id, event.data))
        except Exception as exc:  # connection closed
            self.items.put(("closed", None, str(exc)))
        self.items.put(("closed", None, ""))

    def until(self, predicate, timeout=30):
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.items.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(item)
            if predicate(item, seen):
                return seen
        raise AssertionError(f"condition not met; saw {seen}")

    def messages(self, seen):
        return [event for kind, _, data in seen if kind == "message" for event in json.loads(data)]

    def close(self):
        self.response.close()


@pytest.fixture(scope="session")
def server_class():
    """:class:`Server`, for fixtures of other scopes: ``server_class(data_dir, *options).start()``."""
    return Server


@pytest.fixture
def start_server(tmp_path):
    """Start a server of one's own, stopped after the test: ``start_server("--demo", data_dir=...)`` (default: a new
    data directory)."""
    started: list[Server] = []

    def start(*options: str, data_dir: Path | None = None) -> Server:
        server = Server(data_dir or tmp_path / f"data{len(started)}", *options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def api_headers() -> dict[str, str]:
    """Headers of an authenticated REST call to the test servers."""
    return dict(AUTH)


@pytest.fixture
def sse_reader():
    """The SSE client class: ``sse_reader(server, project_id, last_event_id=None, path=..., query=...)``."""
    return SseReader
