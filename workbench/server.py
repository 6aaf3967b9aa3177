"""``prcore-workbench serve``: one process serving the Panel app at ``/`` and the REST/SSE endpoints."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from prcore_core import PrCore
from prcore_core.demo import DEMO_PROJECT, create_demo_project, find_demo_project
from prcore_core.settings import Settings
from workbench import api

log = logging.getLogger(__name__)


#: Largest request body (event log upload) accepted over REST.
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
#: Largest WebSocket message: the dashboard's chunked uploads send chunks of a few MB.
MAX_WEBSOCKET_MESSAGE = 64 * 1024 * 1024
#: Seconds after SIGTERM/SIGINT at which the process ends, whatever it is doing (an event loop too busy to stop,
#: a close that waits on a worker process being started, say).
STOP_DEADLINE = 4.5


class DemoProject:
    """The project ``serve --demo`` opens on: found by name, else created in the background (not blocking start-up).

    Creating it uploads the synthetic demo log, defines its columns and creates the project through the facade;
    training then runs in the core's executor, and the dashboard's training view shows its progress.
    """

    def __init__(self, core: PrCore, n_cases: int = 2000, seed: int = 0):
        self.core, self.n_cases, self.seed = core, n_cases, seed
        self.project_id: int | None = None
        self.error: str | None = None

    def find(self) -> int | None:
        return find_demo_project(self.core)

    def ensure(self) -> None:
        """Find the demo project, or create it (blocking: call it from a background thread)."""
        try:
            self.project_id = self.find()
            if self.project_id is not None:
                return
            self.project_id = create_demo_project(self.core, n_cases=self.n_cases, seed=self.seed).id
            log.info("Demo project %s created; it trains in the background", self.project_id)
        except Exception as exc:  # reported in the log and on the console, the server keeps serving
            self.error = str(exc)
            log.exception("Creating the demo project failed")
            print(f"Creating the demo project failed: {exc}", flush=True)

    def __call__(self) -> int | None:
        return self.project_id


class PortInUseError(RuntimeError):
    """The port is taken by another process."""


class UnprotectedError(RuntimeError):
    """Serving the dashboard without a login on an address other machines reach."""


#: Addresses only this machine reaches: the dashboard may go without a login there.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dashboard_auth_for(host: str, requested: str | None) -> str:
    """``token`` (log in with the API token) or ``none``: by default a login wherever others can connect.

    Raises
    ------
    UnprotectedError
        For ``none`` on a non-loopback address: anyone reaching the port could upload, delete and stream.
    """
    chosen = requested or ("none" if host in LOOPBACK else "token")
    if chosen == "none" and host not in LOOPBACK:
        raise UnprotectedError(
            f"Refusing to serve the dashboard on {host} without a login; use --dashboard-auth token "
            "(log in with the API token) or serve on 127.0.0.1"
        )
    return chosen


def check_port(host: str, port: int) -> None:
    """Refuse to start on a port another process listens on, with a message that says so."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as Tornado binds: connections of an earlier server in TIME_WAIT do not take the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(f"Port {port} on {host} is already in use; choose another with --port") from None
            raise


def warm_up(core: PrCore, demo: DemoProject | None = None, projects: int = 3) -> None:
    """Start-up work in one background thread, one step after the other: load the plugins (their modules import
    slowly, and imports running in several threads at once can trip each other) and start the training processes,
    create the demo project if asked,
    then parse the defined logs of the most recent projects into the core's cache, so that the first visit of a
    view is as quick as the next ones."""
    try:
        core.available_plugins()
        core.warm_up()
    except Exception:
        log.exception("Loading the plugins failed")
    if demo is not None:
        demo.ensure()
    try:
        recent = core.list_projects()[:projects]
    except Exception:
        return
    for project in recent:
        try:
            core.defined_log(project.event_log.id)
        except Exception:  # e.g. a project still waiting for its definition
            log.debug("Warming project %s skipped", project.id, exc_info=True)


def _exit_now(note: str = "") -> None:
    """End the process without waiting for its threads, which the interpreter would join at exit: a pool thread
    parsing an upload or preparing a log in pandas cannot be interrupted, nor can one waiting on a worker process.

    Nothing is lost: an upload is stored only once parsed, commits are atomic, files of an unfinished upload are
    removed at the next start, training resumes there, and the worker processes end with the server
    (:mod:`prcore_core.workers`).
    """
    with contextlib.suppress(Exception):
        print(f"Stopped{note}.", flush=True)
        sys.stderr.flush()
    os._exit(0)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir=None,
    database_url=None,
    token=None,
    show: bool = False,
    core: PrCore | None = None,
    demo: bool = False,
    demo_cases: int = 2000,
    ping_interval: float = api.PING_INTERVAL,
    sse_format: str | None = None,
    credentials: tuple[str, str] | None = None,
    dashboard_auth: str | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; prints the URLs and the API token first.

    With ``demo``, the dashboard opens on a project trained on the built-in demo log (created and trained in the
    background on first start; the training view shows its progress). ``ping_interval`` is the seconds between
    keep-alive pings on an idle SSE stream. ``sse_format="prcore"`` sends prescriptions in PrCore's form by
    default (PrCore mode); ``credentials`` are the user name and password ``POST /token`` accepts.
    ``dashboard_auth="token"`` puts the dashboard behind a login page whose password is the API token (signed
    session cookies); it is the default on any address other than loopback, where serving without it is refused.
    """
    import panel as pn
    from threadpoolctl import threadpool_limits

    from workbench.app import create_app

    auth = dashboard_auth_for(host, dashboard_auth)
    check_port(host, port)
    # The server's own numeric work is small (one burst of prefixes at a time; training runs in worker processes),
    # and multi-threaded BLAS only adds threads that spin between calls, taking a core from the event loop.
    threadpool_limits(limits=1, user_api="blas")
    # A thread waiting for the interpreter lock (the event loop, the event journal) waits up to the switch interval
    # while the prescriber computes: 1 ms instead of Python's 5 ms keeps answers quick under streaming load.
    sys.setswitchinterval(0.001)
    if core is None:
        given = {"data_dir": data_dir, "database_url": database_url}
        # plugins train, and streams are prescribed for, in processes of their own: requests are answered promptly
        if sse_format is not None:
            given["sse_format"] = sse_format
        core = PrCore(
            settings=Settings(
                training_processes=True, prescribing_processes=True, **{k: v for k, v in given.items() if v is not None}
            )
        )
    token = api.resolve_token(core.settings.data_dir, token)
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prcore-api")
    demo_project = DemoProject(core, n_cases=demo_cases) if demo else None
    login = {}
    if auth == "token":  # Panel's own login page; cookies signed with a secret derived from the token
        secret = hmac.new(token.encode(), b"prcore-dashboard-cookie", hashlib.sha256).hexdigest()
        login = {"basic_auth": token, "cookie_secret": secret}
    server = pn.serve(
        {"/": lambda: create_app(core, executor=pool, demo=demo_project)},
        port=port,
        address=host,
        websocket_origin=[f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"],
        show=show,
        start=False,
        title="PrCore Workbench",
        extra_patterns=api.routes(core, token, pool, ping_interval, sse_format, credentials),
        http_server_kwargs={"max_buffer_size": MAX_UPLOAD_BYTES, "max_body_size": MAX_UPLOAD_BYTES},
        websocket_max_message_size=MAX_WEBSOCKET_MESSAGE,
        verbose=False,
        **login,
    )
    api.install(server._tornado, core, token, pool, sse_format=sse_format)  # Bokeh has no public accessor
    loop = server.io_loop
    stop_requested = threading.Event()

    def shutdown(*_):
        if stop_requested.is_set():  # a second signal: the user does not want to wait
            _exit_now(" (second signal)")
        stop_requested.set()
        loop.add_callback_from_signal(_stop)

    def deadline_watch():
        """End the process STOP_DEADLINE s after the first signal (a thread started before any signal comes:
        starting one in a signal handler could deadlock)."""
        stop_requested.wait()
        time.sleep(STOP_DEADLINE)
        _exit_now(f" (after {STOP_DEADLINE:g} s, without waiting for the rest)")

    def _stop():
        print("Shutting down ...", flush=True)
        server.stop()
        loop.stop()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    base = f"http://{host}:{port}"
    print(f"PrCore Workbench serving data directory {core.settings.data_dir}", flush=True)
    print(f"  dashboard:  {base}/", flush=True)
    print(f"  REST API:   {base}/docs (Swagger UI), {base}/openapi.json", flush=True)
    print(f"  SSE:        {base}/project/{{id}}/stream/result (format: {core.settings.sse_format})", flush=True)
    print(f"  API token:  {token}   (send 'Authorization: Bearer <token>')", flush=True)
    if auth == "token":
        print("  dashboard login: any user name, the API token as password", flush=True)
    threading.Thread(target=warm_up, args=(core, demo_project), name="prcore-warm-up", daemon=True).start()
    threading.Thread(target=deadline_watch, name="prcore-stop-deadline", daemon=True).start()
    if demo_project is not None:
        print(f"  demo:       project '{DEMO_PROJECT}' (trained in the background on first start)", flush=True)
    server.start()
    try:
        loop.start()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        # told to stop: training processes are terminated (their runs resume at the next start), and the threads
        # still at work are not waited for
        told = stop_requested.is_set()
        core.close(wait=not told)
        if told:
            _exit_now()
        print("Stopped.", flush=True)
        sys.stdout.flush()
