"""Shared fixtures: a fresh workbench per test and small synthetic demo logs (no third-party data).

Tests marked ``databases`` run once on SQLite and once on PostgreSQL: a throw-away cluster on loopback, started
once per session, with a fresh database per test (see :class:`PostgresCluster`).
"""

from __future__ import annotations

import glob
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "databases(*names): run the test on SQLite and on PostgreSQL, or on the backends named (the `database`, "
        "`database_url` fixtures)",
    )


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    """Tests marked ``databases`` that reach the database get one run per backend, grouped by backend;
    ``databases("sqlite")`` keeps a test of such a module that stores nothing of its own to one run."""
    marker = metafunc.definition.get_closest_marker("databases")
    if "database" in metafunc.fixturenames and marker is not None:
        metafunc.parametrize("database", marker.args or DATABASES, indirect=True, scope="module")


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


class PostgresCluster:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temporary directory, ``pg_ctl`` on a free loopback port.

    PostgreSQL refuses to run as root, so under root the binaries run as the ``postgres`` user (Debian's package
    creates it). The cluster trades durability for speed (``fsync=off``): it lives only as long as the session.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_postgres = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="prcore-pg-"))
        self.data = self.directory / "data"
        self.port = 0
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")

    @classmethod
    def find_binaries(cls) -> Path | None:
        """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb`` and ``pg_ctl`` (Debian's layout), if any."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
        return Path(found[-1]).parent if found else None

    def _run(self, tool: str, *arguments: str) -> None:
        command = [str(self.bin_dir / tool), *arguments]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        # a session of its own: a signal to the test run's process group is the test run's to handle, not the server's
        subprocess.run(
            command, cwd=self.directory, check=True, capture_output=True, text=True, timeout=120, start_new_session=True
        )

    def start(self) -> PostgresCluster:
        """``initdb``, then ``pg_ctl start`` on a free port (another, if some process took it meanwhile)."""
        log = self.directory / "server.log"
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
            )
            for attempt in range(3):
                self.port = free_port()
                options = (
                    f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.directory} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
                )
                try:
                    self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
                    break
                except subprocess.CalledProcessError:
                    if attempt == 2:
                        raise
        except subprocess.CalledProcessError as exc:
            details = log.read_text() if log.exists() else ""
            shutil.rmtree(self.directory, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}{details}") from None
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, name: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as admin:
            admin.execute(statement)

    def create_database(self, template: str | None = None) -> str:
        """A new, empty database (or a copy of ``template``, a URL this cluster gave), as a SQLAlchemy URL."""
        name = f"prcore_{uuid.uuid4().hex[:12]}"
        copied = f" TEMPLATE {template.rsplit('/', 1)[1]}" if template else ""
        self._admin(f"CREATE DATABASE {name}{copied}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database, ending whatever is still connected (a killed server's children, say)."""
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def _interrupted(signum, frame):
    """SIGTERM (``timeout``) unwinds the test run as Ctrl-C does, so the cluster is stopped, not left running; once:
    ``timeout`` signals the whole process group, and a second signal would cut the teardown short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL cluster, started on first use; skipped where PostgreSQL is not installed (failed
    instead under ``PRCORE_TEST_POSTGRES=required``, as in CI, so that the variants cannot silently not run)."""
    missing = pytest.fail if os.environ.get("PRCORE_TEST_POSTGRES") == "required" else pytest.skip
    bin_dir = PostgresCluster.find_binaries()
    if bin_dir is None:
        missing("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing('the PostgreSQL driver is not installed (pip install -e ".[postgres]")')
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root, and there is no postgres user to run PostgreSQL as")
    cluster = PostgresCluster(bin_dir).start()
    terminate = signal.getsignal(signal.SIGTERM)
    if terminate is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted)
    try:
        yield cluster
    finally:
        cluster.stop()
        if terminate is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, terminate)


class Database:
    """The backend of a test: :meth:`new` gives a fresh database's URL (``None`` on SQLite: the data directory's
    own file, so a copied data directory copies its database)."""

    def __init__(self, name: str, cluster: PostgresCluster | None = None):
        self.name, self.cluster = name, cluster
        self._made: list[str] = []

    def new(self, template: str | None = None) -> str | None:
        """A fresh database, or a copy of ``template`` (one that :meth:`new` gave and nobody is connected to)."""
        if self.cluster is None:
            return None
        url = self.cluster.create_database(template)
        self._made.append(url)
        return url

    def drop(self, url: str | None) -> None:
        if self.cluster is not None and url in self._made:
            self._made.remove(url)
            self.cluster.drop_database(url)

    def drop_all(self) -> None:
        for url in list(self._made):
            self.drop(url)


@pytest.fixture(scope="module")
def database(request):
    """The backend: SQLite, unless a test marked ``databases`` runs in its PostgreSQL variant."""
    name = getattr(request, "param", "sqlite")
    backend = Database(name, request.getfixturevalue("postgres") if name == "postgresql" else None)
    yield backend
    backend.drop_all()


@pytest.fixture
def database_url(database):
    """A fresh database for one test (``None`` on SQLite: the default file in the data directory)."""
    url = database.new()
    yield url
    database.drop(url)


@pytest.fixture
def core(tmp_path, database_url):
    with PrCore(data_dir=tmp_path / "data", database_url=database_url) as workbench:
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
    """``prcore-workbench serve`` in a subprocess, as a user starts it; its console output goes to a log file.

    ``database_url`` is handed over as ``PRCORE_DATABASE_URL`` (default: the data directory's SQLite file).
    """

    def __init__(self, data_dir: Path, *options: str, database_url: str | None = None):
        self.data_dir, self.options, self.database_url = Path(data_dir), list(options), database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        """Start (again, after :meth:`stop` or a kill) and wait until it answers."""
        self.log = self.log_path.open("a")
        env = {k: v for k, v in os.environ.items() if k != "PRCORE_DATABASE_URL"}
        if self.database_url:
            env["PRCORE_DATABASE_URL"] = self.database_url
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
            env=env,
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


_FRESH = object()


@pytest.fixture
def start_server(tmp_path, database):
    """Start a server of one's own, stopped after the test: ``start_server("--demo", data_dir=..., database_url=...)``
    (default: a new data directory and a new database of the test's backend)."""
    started: list[Server] = []
    fresh: list[str | None] = []

    def start(*options: str, data_dir: Path | None = None, database_url=_FRESH) -> Server:
        if database_url is _FRESH:
            database_url = database.new()
            fresh.append(database_url)
        server = Server(data_dir or tmp_path / f"data{len(started)}", *options, database_url=database_url)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    for url in fresh:
        database.drop(url)


@pytest.fixture
def api_headers() -> dict[str, str]:
    """Headers of an authenticated REST call to the test servers."""
    return dict(AUTH)


@pytest.fixture
def sse_reader():
    """The SSE client class: ``sse_reader(server, project_id, last_event_id=None, path=..., query=...)``."""
    return SseReader
