"""Soak: a steady stream of posted events for minutes, while the server is killed, stopped and its prescriber killed.

Starts ``prcore-workbench serve`` (as ``bench/stream.py`` does) on a loopback port with a data directory of its
own, on a project trained on the built-in synthetic demo log (``--demo``) or on ``--log`` (a log ``bench/ingest.py``
has a preset for, uploaded over REST), and starts streaming. Then, for ``--minutes`` of posting (the time the server
takes to come back after a restart is added):

* one client posts the held-out cases' events (many cases interleaved, in time order; the cases again under new
  ids when they run out) at ``--rate`` events per second. Only a 200 acknowledges an event; a connection error,
  a 5xx or a "Project not streaming" 400 (the project activating again after a restart) is retried, and the pace
  starts again from there (no burst of the events an outage held back);
* one SSE reader stays connected and, after each disconnect, resumes with ``Last-Event-ID`` set to the last id the
  server sent it (messages, the CONNECTED notification and pings all carry the reader's cursor);
* the project's prescriber process (a child of the server's fork server) is SIGKILLed, then the server is SIGKILLed
  and restarted, then SIGTERMed (its time to stop measured) and restarted.

Once every acknowledged event is delivered (or the drain time is over) the server is stopped and its database read:
the events it stored. Each posted event carries its number (``soak_seq``), so an event stored although its post was
never acknowledged (its answer lost to a kill or a stop, the post retried) is told apart from a lost one. The last
line printed is the counts, with the memory (RSS of the server and every process under it) at the start, middle and
end of each server life. The exit status is 1 when an acknowledged event was not delivered, an event was delivered
twice, or the acknowledged events are not exactly the stored ones.

    python bench/soak.py --minutes 5 --rate 50

All traffic goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import psutil
import requests
import sseclient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activation import trained_project
from ingest import PRESETS
from stream import AUTH, TOKEN, Connection, free_port, replay_rows

#: The disruptions in order, each after this share of the posting time since the previous one (or its restart);
#: the posting goes on for the rest of the time after the last restart.
SCHEDULE = (("kill prescriber", 0.2), ("SIGKILL", 0.2), ("SIGTERM", 0.25))
#: The attribute that numbers each posted event (the server keeps it with the event as posted).
SEQ = "soak_seq"
#: Seconds after a restarted server streams again during which its 5xx still count as "around the restart".
RESTART_GRACE = 5.0
#: A server that takes longer than this to stop after SIGTERM is reported.
STOP_TARGET_S = 5.0
#: The answer a post gets while the project is not live (activating again after a restart): retried.
NOT_STREAMING = "Project not streaming"


@dataclass
class Life:
    """One run of the server process: its memory over time and how it ended."""

    pid: int
    #: (monotonic time, RSS bytes of all its processes, of the server process alone, number of processes)
    rss: list[tuple[float, int, int, int]] = field(default_factory=list)
    ended_by: str = ""
    ended_at: float | None = None  # monotonic time of the signal
    stop_seconds: float | None = None  # from the signal until the server process exited

    def figures(self, column: int = 1) -> tuple[int, int, int]:
        """RSS (bytes) of all processes (``column`` 1; 2: the server process alone; 3: how many processes) at the
        start, the middle and the end of this life (0 without samples)."""
        if not self.rss:
            return (0, 0, 0)
        middle = (self.rss[0][0] + self.rss[-1][0]) / 2
        return self.rss[0][column], min(self.rss, key=lambda s: abs(s[0] - middle))[column], self.rss[-1][column]


class SoakServer:
    """``prcore-workbench serve`` on one port and data directory, started again after each kill or stop."""

    def __init__(self, directory: Path, options: list[str]):
        self.directory, self.options = directory, options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.lives: list[Life] = []
        self.outlived: list[int] = []  # processes still running 20 s after their server was killed or stopped
        self._ending: list[psutil.Process] = []
        self.log_path = directory.parent / "server.log"

    def start(self, limit: float = 120.0) -> None:
        """Start and wait until it answers HTTP (any answer)."""
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", "serve", "--port", str(self.port),
                 "--data-dir", str(self.directory), "--token", TOKEN, *self.options],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.lives.append(Life(self.process.pid))
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/project/0", headers=AUTH, timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server ended while starting:\n{self.log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {limit:g} s")

    def processes(self) -> list[psutil.Process]:
        """The server and every process under it (fork server, training workers, prescribers)."""
        try:
            server = psutil.Process(self.process.pid)
            return [server, *server.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> None:
        """Record the memory of the running life: the RSS of the server and every process under it (the previous
        life's last processes, ending, are no longer under it)."""
        if self.process is None or self.process.poll() is not None:
            return
        sizes = []
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes.append(process.memory_info().rss)
        if sizes:  # a new spare prescriber or the training workers starting show in the number of processes
            self.lives[-1].rss.append((time.monotonic(), sum(sizes), sizes[0], len(sizes)))

    def prescriber(self) -> psutil.Process | None:
        """The streaming project's prescriber process: a child of the fork server at normal priority (training
        workers run niced) with the project database open (the warm spare has not loaded a project yet)."""
        database = str(self.directory / "prcore.db")
        found = []
        for process in self.processes()[1:]:
            try:
                if process.ppid() == self.process.pid or "forkserver" not in " ".join(process.cmdline()):
                    continue  # the fork server itself, the resource tracker
                if process.nice() != 0:
                    continue
                has_database = any(f.path == database for f in process.open_files())
                found.append((has_database, process.cpu_times().user, process))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return max(found, key=lambda f: f[:2])[2] if found else None

    def end(self, how: str, limit: float = 30.0) -> float:
        """SIGKILL or SIGTERM the server; the seconds it took to exit (see :meth:`wait_ended` for its children)."""
        children = self.processes()[1:]
        life = self.lives[-1]
        life.ended_by, life.ended_at = how, time.monotonic()
        os.kill(self.process.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)
        try:
            self.process.wait(limit)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        life.stop_seconds = time.monotonic() - life.ended_at
        self._ending = children  # waited for once the next server answers (they end with the server, not at once)
        return life.stop_seconds

    def wait_ended(self, limit: float = 20.0) -> None:
        """Wait for the processes of the previous life; the pids of those that outlive ``limit`` are kept."""
        _, alive = psutil.wait_procs(self._ending, timeout=limit)
        self.outlived += [process.pid for process in alive]
        self._ending = []


class ResumingReader(threading.Thread):
    """The one SSE reader: how often each event id was delivered, reconnecting after each disconnect with
    ``Last-Event-ID`` set to the last id the server sent it."""

    def __init__(self, url: str, told: Callable[[str], None] = lambda text: None):
        super().__init__(daemon=True, name="soak-reader")
        self.url, self.told = url, told
        self.delivered: Counter[int] = Counter()
        self.arrived: dict[int, float] = {}  # event id -> monotonic time it first arrived
        self.last_id: str | None = None
        self.connections = 0
        self.refusals: Counter[str] = Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            headers = dict(AUTH)
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            connected = None
            try:
                response = requests.get(self.url, headers=headers, stream=True, timeout=(5, 60))
                if response.status_code != 200:
                    self.refusals[f"{response.status_code} {response.text[:80]}"] += 1
                else:
                    connected = time.monotonic()
                    self.connections += 1
                    self.told(f"reader connected (Last-Event-ID {self.last_id})")
                    for event in sseclient.SSEClient(response).events():
                        if event.event == "message":
                            now = time.monotonic()
                            for item in json.loads(event.data):
                                self.delivered[item["id"]] += 1
                                self.arrived.setdefault(item["id"], now)
                        if event.id:
                            self.last_id = event.id
                        if self.stopped.is_set():
                            return
            except Exception as exc:  # the server went away under the reader
                self.refusals[type(exc).__name__] += 1
                if connected is not None and not self.stopped.is_set():
                    self.told(f"reader disconnected after {time.monotonic() - connected:.1f} s ({type(exc).__name__})")
            self.stopped.wait(0.3)

    def stop(self) -> None:
        """Stop reconnecting; the connection ends with the server (closing it from this thread would wait for the
        reader's read, up to the next ping)."""
        self.stopped.set()


class Poster:
    """One client posting events at a steady rate; a post is retried until a 200 acknowledges it, it is refused
    for good (a 4xx other than "Project not streaming"), or it has been retried for ``give_up`` seconds."""

    def __init__(self, port: int, project_id: int, bodies: Callable[[int], dict], rate: float, give_up: float = 120):
        self.port, self.path, self.bodies, self.rate, self.give_up = port, f"/event/{project_id}", bodies, rate, give_up
        self.counts: Counter[str] = Counter({"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0, "connection errors": 0})
        self.acknowledged: dict[int, int] = {}  # seq -> event id
        self.acknowledged_at: dict[int, float] = {}  # event id -> monotonic time of its 200
        self.failures: dict[int, list[tuple[float, str]]] = {}  # seq -> when (monotonic) and how its posts failed
        self.refused: dict[int, str] = {}  # seq -> why it was never acknowledged
        self.server_errors: list[float] = []  # monotonic time of each 5xx
        self.stopped = threading.Event()

    async def _post(self, connection: Connection, body: dict) -> tuple[int | None, dict]:
        """One request: its status (``None``: no answer, the connection failed) and answer."""
        try:
            return await asyncio.wait_for(connection.post(self.path, body), 30)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError, RuntimeError) as exc:
            return None, {"detail": type(exc).__name__}

    async def _run(self) -> None:
        connection = Connection(self.port)
        begin, seq = time.monotonic(), 0
        while not self.stopped.is_set():
            delay = begin + seq / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body, first = self.bodies(seq), time.monotonic()
            while True:
                status, answer = await self._post(connection, body)
                self.counts["requests"] += 1
                if status == 200:
                    self.counts["2xx"] += 1
                    self.acknowledged[seq] = answer["event"]["id"]
                    self.acknowledged_at[answer["event"]["id"]] = time.monotonic()
                    break
                detail = str(answer.get("detail", "")) if isinstance(answer, dict) else ""
                self.failures.setdefault(seq, []).append((time.monotonic(), f"{status} {detail}"))
                if status is None:
                    self.counts["connection errors"] += 1
                    connection.close()
                    connection = Connection(self.port)
                elif status >= 500:
                    self.counts["5xx"] += 1
                    self.server_errors.append(time.monotonic())
                else:
                    self.counts["4xx"] += 1
                    if detail != NOT_STREAMING:
                        self.refused[seq] = f"{status} {detail}"
                        break
                if time.monotonic() - first > self.give_up:
                    self.refused[seq] = f"gave up after {self.give_up:g} s: {status} {detail}"
                    break
                await asyncio.sleep(0.2)
            seq += 1
            if time.monotonic() - first > 1.0:  # after an outage the pace starts again from now
                begin = time.monotonic() - seq / self.rate
        connection.close()

    def run(self) -> None:
        asyncio.run(self._run())


@dataclass
class SoakResult:
    """What the soak counted; :meth:`line` prints it, :attr:`ok` is the verdict."""

    counts: Counter
    acknowledged: dict[int, int]  # seq -> event id
    stored: dict[int, int | None]  # event id -> seq
    delivered: Counter  # event id -> times delivered
    latency: dict[int, float]  # event id -> seconds from its 200 to its delivery
    refused: dict[int, str]  # seq -> why it was never acknowledged
    failures: dict[int, list[tuple[float, str]]]  # seq -> when and how its posts failed
    server_errors: list[float]  # monotonic time of each 5xx
    restarts: list[tuple[float, float]]  # (signalled, streaming again + grace)
    lives: list[Life]
    outlived: list[int] = field(default_factory=list)  # processes that outlived their server by 20 s
    reader_connections: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def acknowledged_ids(self) -> set[int]:
        return set(self.acknowledged.values())

    @property
    def lost(self) -> set[int]:
        """Acknowledged but never delivered."""
        return self.acknowledged_ids - set(self.delivered)

    @property
    def duplicated(self) -> set[int]:
        """Delivered more than once."""
        return {i for i, n in self.delivered.items() if n > 1}

    @property
    def stored_unacknowledged(self) -> set[int]:
        """Stored, but its post got no 200 (the answer lost to a kill or a stop; the retry is another event)."""
        return set(self.stored) - self.acknowledged_ids

    def cause(self, event_id: int) -> str:
        """Which server end lost the answer of a stored event: the one its first failed post met, if any."""
        tried = self.failures.get(self.stored.get(event_id), [])
        for life in self.lives if tried else []:
            if life.ended_at is not None and life.ended_at - 1 <= tried[0][0] <= life.ended_at + life.stop_seconds + 1:
                return life.ended_by
        return "unexplained"

    @property
    def server_errors_outside_restarts(self) -> int:
        return sum(1 for t in self.server_errors if not any(a <= t <= b for a, b in self.restarts))

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and self.acknowledged_ids == set(self.stored)

    def line(self) -> str:
        c = self.counts
        causes = Counter(self.cause(i) for i in self.stored_unacknowledged)
        latency = np.asarray(list(self.latency.values()) or [np.nan])
        lives = "; ".join(
            f"life {n} RSS {'/'.join(str(v >> 20) for v in life.figures())} MiB in "
            f"{'/'.join(str(v) for v in life.figures(3))} processes (server process "
            f"{'/'.join(str(v >> 20) for v in life.figures(2))} MiB)"
            + (f", {life.ended_by} -> exit in {life.stop_seconds:.1f} s" if life.ended_by else "")
            for n, life in enumerate(self.lives, 1)
        )
        return (
            f"soak: requests {c['requests']}, 2xx {c['2xx']}, 4xx {c['4xx']}, 5xx {c['5xx']} "
            f"({self.server_errors_outside_restarts} outside restarts), connection errors {c['connection errors']}, "
            f"acknowledged {len(self.acknowledged)}, stored {len(self.stored)}, delivered {len(self.delivered)}, "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, stored unacknowledged "
            f"{len(self.stored_unacknowledged)} {dict(causes)}, refused {len(self.refused)}; delivery latency "
            f"p50 {np.nanpercentile(latency, 50):.2f} p99 {np.nanpercentile(latency, 99):.2f} max "
            f"{np.nanmax(latency):.2f} s; {lives} (start/middle/end); processes outliving their server "
            f"{len(self.outlived)}"
        )


def stored_events(directory: Path, project_id: int) -> dict[int, int | None]:
    """The project's streamed events in the (stopped) server's database: event id -> its ``soak_seq``."""
    from sqlalchemy import select

    from prcore_core.db import EventRecord, make_engine
    from prcore_core.settings import Settings

    engine = make_engine(Settings(data_dir=directory).url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(EventRecord.id, EventRecord.attributes).where(EventRecord.project_id == project_id)
            ).all()
    finally:
        engine.dispose()
    return {event_id: (attributes or {}).get(SEQ) for event_id, attributes in rows}


def wait_streaming(session: requests.Session, url: str, project_id: int, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    status = None
    while time.monotonic() < deadline:
        try:
            status = session.get(f"{url}/project/{project_id}", timeout=10).json()["project"]["status"]
        except (requests.RequestException, ValueError, KeyError):
            status = None
        if status == "STREAMING":
            return
        time.sleep(0.2)
    raise RuntimeError(f"project {project_id} is not streaming after {limit:g} s (last {status})")


def demo_project(session: requests.Session, url: str, limit: float = 600.0) -> int:
    """The project ``serve --demo`` trains on its first start, once TRAINED."""
    from prcore_core.demo import DEMO_PROJECT

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        items = session.get(f"{url}/project/all", timeout=10).json()["items"]
        project = next((p for p in items if p["name"] == DEMO_PROJECT), None)
        if project is not None and project["status"] == "TRAINED":
            return project["id"]
        if project is not None and project["status"] == "ERROR":
            raise RuntimeError(f"the demo project failed: {project}")
        time.sleep(0.5)
    raise RuntimeError(f"the demo project was not trained within {limit:g} s")


def soak(
    minutes: float = 5.0,
    rate: float = 50.0,
    log: Path | None = None,
    demo_cases: int = 2000,
    drain: float = 120.0,
    report: Callable[[str], None] = print,
) -> SoakResult:
    """Run the soak (see the module's docstring) and return what it counted; ``report`` is told what happens."""
    seconds = minutes * 60
    with TemporaryDirectory(prefix="prcore-soak-") as temporary:
        directory = Path(temporary) / "data"
        directory.mkdir()
        if log is None:
            from prcore_core.demo import generate_demo_log

            demo = generate_demo_log(n_cases=demo_cases)  # the server's demo log: its held-out cases are posted
            log_path = Path(temporary) / "demo-loan-applications.csv"
            log_path.write_bytes(demo.to_csv())
            columns, options = demo.columns_definition, ["--demo", "--demo-cases", str(demo_cases)]
        else:
            preset = next((p for name, p in PRESETS.items() if log.name.startswith(name)), None)
            if preset is None:
                raise SystemExit(f"no preset for {log.name} in bench/ingest.py; known: {', '.join(PRESETS)}")
            log_path, columns, options = log, preset["columns"], []
        rows = replay_rows(log_path, {"columns": columns})
        case_column = next(c for c, d in columns.items() if d == "CASE_ID")

        def body(seq: int) -> dict:
            row = rows[seq % len(rows)]
            return {**row, case_column: f"soak{seq // len(rows)}-{row[case_column]}", SEQ: seq}

        events: list[str] = []
        clock = time.monotonic()

        def note(text: str) -> None:
            events.append(f"{time.monotonic() - clock:7.1f} s  {text}")
            report(events[-1])

        def wait(until: float) -> None:
            while time.monotonic() < until:
                server.sample()
                time.sleep(min(1.0, max(0.0, until - time.monotonic())))

        server = SoakServer(directory, options)
        session = requests.Session()
        session.headers.update(AUTH)
        server.start()
        note(f"server {server.process.pid} answers on {server.url}")
        restarts: list[tuple[float, float]] = []
        try:
            if log is None:
                project_id = demo_project(session, server.url)
            else:
                project_id = trained_project(session, server.url, log, directory)
            note(f"project {project_id} trained")
            session.put(f"{server.url}/project/{project_id}/stream/start", timeout=60).raise_for_status()
            wait_streaming(session, server.url, project_id)
            note("streaming")
            server.lives[-1].rss.clear()  # the memory of the streaming server, not of its training
            reader = ResumingReader(f"{server.url}/project/{project_id}/streaming/result", note)
            reader.start()
            poster = Poster(server.port, project_id, body, rate)
            posting = threading.Thread(target=poster.run, name="soak-poster", daemon=True)
            posting.start()
            since = time.monotonic()
            for action, share in SCHEDULE:
                wait(since + share * seconds)
                server.sample()
                if action == "kill prescriber":
                    prescriber = server.prescriber()
                    if prescriber is None:
                        note("no prescriber process found to kill")
                    else:
                        prescriber.kill()
                        note(f"prescriber {prescriber.pid} SIGKILLed")
                    since = time.monotonic()
                    continue
                signalled = time.monotonic()
                note(f"{action} to server {server.process.pid}")
                took = server.end(action)
                slow = f" (more than {STOP_TARGET_S:g} s)" if action == "SIGTERM" and took > STOP_TARGET_S else ""
                note(f"server {server.lives[-1].pid} {action}: exited after {took:.1f} s{slow}")
                server.start()
                server.wait_ended()
                wait_streaming(session, server.url, project_id)
                since = time.monotonic()
                restarts.append((signalled, since + RESTART_GRACE))
                note(f"server {server.process.pid} streaming again")
            wait(since + (1 - sum(share for _, share in SCHEDULE)) * seconds)
            poster.stopped.set()
            posting.join(poster.give_up + 60)
            note(f"posting stopped: {len(poster.acknowledged)} acknowledged")
            deadline = time.monotonic() + drain
            while poster.acknowledged_at.keys() - reader.delivered.keys() and time.monotonic() < deadline:
                server.sample()
                time.sleep(0.2)
            server.sample()
            reader.stop()
            note(f"{len(reader.delivered)} delivered over {reader.connections} connections; failed connection "
                 f"attempts {dict(reader.refusals)}")  # fmt: skip
        finally:
            if server.process is not None and server.process.poll() is None:
                note(f"server stopped after {server.end('SIGTERM'):.1f} s")
                server.wait_ended()
        reader.join(10)
        result = SoakResult(
            counts=poster.counts,
            acknowledged=poster.acknowledged,
            stored=stored_events(directory, project_id),
            delivered=reader.delivered,
            latency={i: reader.arrived[i] - t for i, t in poster.acknowledged_at.items() if i in reader.arrived},
            refused=poster.refused,
            failures=poster.failures,
            server_errors=poster.server_errors,
            restarts=restarts,
            lives=server.lives,
            outlived=server.outlived,
            reader_connections=reader.connections,
            events=events,
        )
        for event_id in sorted(result.stored_unacknowledged):
            seq = result.stored[event_id]
            tried = ", ".join(f"{when - clock:.1f} s {how}" for when, how in poster.failures.get(seq, [])[:3])
            note(f"event {event_id} (seq {seq}) stored but never acknowledged ({result.cause(event_id)}): {tried}")
        for seq, why in list(poster.refused.items())[:5]:
            note(f"seq {seq} not acknowledged: {why}")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of posting (default 5)")
    parser.add_argument("--rate", type=float, default=50.0, help="events posted per second (default 50)")
    parser.add_argument("--log", type=Path, help="event log with a preset in bench/ingest.py (default: the demo log)")
    parser.add_argument("--demo-cases", type=int, default=2000, help="cases of the demo log (default 2000)")
    args = parser.parse_args()
    result = soak(args.minutes, args.rate, args.log, args.demo_cases)
    print(result.line())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
