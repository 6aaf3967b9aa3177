"""Activation benchmark: how long a trained project takes from ``stream/start`` to live, and how the server answers
meanwhile, with the real server and real HTTP and SSE clients on loopback only.

Starts ``prcore-workbench serve`` as a separate process, uploads the log over REST, defines its columns and creates a
project as ``bench/stream.py`` does, waits for TRAINED and for the server's warm-up to end (its processes' CPU quiet:
a trained project in a running server). It measures ``GET /project/{id}`` latency while the server is idle (the
baseline), then ``--runs`` times, for streaming and then simulating:

1. ``PUT /project/{id}/stream/start[/simulating]`` and, right after its answer, an SSE reader connects (as an
   outside user's would);
2. ``GET /project/{id}`` is polled meanwhile: its latency while the project is ``ACTIVATING`` (p50, p95, max), and
   the time from the start call until it says STREAMING/SIMULATING (the activation time);
3. for simulating, the time until the reader's first prescribed event; for both, whether the reader was refused
   (400 "Project not streaming"), and ``GET /project/{id}`` latency over the whole 2 s the activation may take
   (a quick activation leaves few samples while ``ACTIVATING``);
4. ``PUT .../stream/stop`` and wait for TRAINED before the next run.

It prints each run's figures, their medians, the targets (activation within 2 s, GET p95 <= 50 ms while
activating) and the ratio of the GET p95 while activating to the idle one measured in the same run.

    python bench/activation.py --log ../shared/data/bpic2012-CSV.zip

``--data-dir DIR`` keeps the server's data directory (and its trained project) for the next run of the benchmark,
which then skips upload and training; the server's log is written to ``DIR/server.log``. ``--reader-at live``
connects the SSE reader only once the project is live (the activation without the SSE endpoint's wait beside it).

All traffic goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import requests
import sseclient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import PRESETS
from quality import ADDITIONAL_INFO
from stream import AUTH, TOKEN, cpu_seconds, free_port

#: Targets of issue 13, item 4.
ACTIVATION_TARGET_S = 2.0
GET_P95_TARGET_MS = 50.0
#: Where a kept data directory remembers its trained project.
STATE_FILE = "bench-activation.json"
MODES = ("streaming", "simulating")


class Poller(threading.Thread):
    """``GET /project/{id}`` in a loop until stopped: each answer's send time, latency (ms) and status."""

    def __init__(self, url: str, pause: float = 0.02):
        super().__init__(daemon=True)
        self.url = url
        self.pause = pause
        self.samples: list[tuple[float, float, str]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            session.headers.update(AUTH)
            while not self.stopped.is_set():
                sent = time.perf_counter()
                status = session.get(self.url, timeout=120).json()["project"]["status"]
                self.samples.append((sent, (time.perf_counter() - sent) * 1000, status))
                self.stopped.wait(self.pause)

    def first(self, status: str) -> float | None:
        """When the first answer saying ``status`` arrived (perf_counter seconds), if one did."""
        return next((sent + ms / 1000 for sent, ms, seen in self.samples if seen == status), None)


class Reader(threading.Thread):
    """An SSE reader: when it was told CONNECTED, when the first prescribed event arrived, or why it was refused."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.connected: float | None = None
        self.first_message: float | None = None
        self.refused: str | None = None
        self.done = threading.Event()
        self._response = None

    def run(self) -> None:
        try:
            self._response = requests.get(self.url, headers=AUTH, stream=True, timeout=(5, 120))
            if self._response.status_code != 200:
                self.refused = f"{self._response.status_code} {self._response.text}"
                return
            for event in sseclient.SSEClient(self._response).events():
                if event.event == "notification" and event.data == "CONNECTED":
                    self.connected = time.perf_counter()
                elif event.event == "message" and self.first_message is None:
                    self.first_message = time.perf_counter()
                elif event.event == "notification" and event.data == "FINISHED":
                    return
        except Exception as exc:  # the connection closed under the reader when it was stopped
            if self.connected is None:
                self.refused = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) if samples else float("nan")


def median(values) -> str:
    """The median of the runs that have the figure, in seconds, and how many lack it."""
    values = list(values)
    found = [v for v in values if np.isfinite(v)]
    text = f"{statistics.median(found):.2f} s" if found else "none"
    return text + (
        f" ({len(values) - len(found)} of {len(values)} runs never got there)" if len(found) < len(values) else ""
    )


def wait_for(session: requests.Session, url: str, wanted: set[str], limit: float) -> str:
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        status = session.get(url).json()["project"]["status"]
        if status in wanted:
            return status
        time.sleep(0.05)
    raise SystemExit(f"{url} did not reach {sorted(wanted)} within {limit:g} s (last {status})")


def trained_project(session: requests.Session, url: str, log: Path, directory: Path) -> int:
    """The kept directory's trained project, else a new one: upload, columns, project, TRAINED."""
    state = directory / STATE_FILE
    if state.exists():
        project_id = json.loads(state.read_text()).get(log.name)
        if project_id is not None:
            answer = session.get(f"{url}/project/{project_id}")
            if answer.ok and answer.json()["project"]["status"] == "TRAINED":
                print(f"reusing trained project {project_id} of {directory}")
                return project_id
    preset = next(p for name, p in PRESETS.items() if log.name.startswith(name))
    started = time.perf_counter()
    uploaded = session.post(f"{url}/event_log", files={"file": (log.name, log.read_bytes())})
    uploaded.raise_for_status()
    event_log_id = uploaded.json()["event_log_id"]
    session.put(
        f"{url}/event_log/{event_log_id}",
        json={
            "columns_definition": preset["columns"],
            "case_attributes": preset["case_attributes"],
            "fast_mode": preset["fast_mode"],
        },
    ).raise_for_status()
    created = session.post(
        f"{url}/project",
        json={
            "event_log_id": event_log_id,
            "positive_outcome": preset["outcome"],
            "treatment": preset["treatment"],
            "additional_info": ADDITIONAL_INFO,
        },
    )
    created.raise_for_status()
    project_id = created.json()["project"]["id"]
    wait_for(session, f"{url}/project/{project_id}", {"TRAINED", "ERROR"}, 3600)
    print(f"{log.name}: upload -> TRAINED over REST in {time.perf_counter() - started:.1f} s")
    known = json.loads(state.read_text()) if state.exists() else {}
    state.write_text(json.dumps({**known, log.name: project_id}))
    return project_id


def settle(pid: int, limit: float = 180.0) -> float:
    """Wait until the server and its worker processes are quiet (warm-up over: the fork server, the training
    workers and the spare prescriber have imported what they need); the seconds it took."""
    begin = time.perf_counter()
    quiet = 0
    while quiet < 2 and time.perf_counter() - begin < limit:
        used = cpu_seconds(pid)
        time.sleep(1.0)
        quiet = quiet + 1 if cpu_seconds(pid) - used < 0.1 else 0
    return time.perf_counter() - begin


def idle_latency(url: str, count: int = 100) -> list[float]:
    """``GET /project/{id}`` latencies (ms) with nothing else going on: the baseline."""
    samples = []
    with requests.Session() as session:
        session.headers.update(AUTH)
        for _ in range(count):
            sent = time.perf_counter()
            session.get(url).raise_for_status()
            samples.append((time.perf_counter() - sent) * 1000)
            time.sleep(0.02)
    return samples


def activate(
    session: requests.Session, url: str, project_id: int, mode: str, interval: float, reader_at: str = "start"
) -> dict:
    """One activation: start, read, poll until live (and the first message for a simulation), stop."""
    project_url = f"{url}/project/{project_id}"
    target = mode.upper()
    poller = Poller(project_url)
    poller.start()
    time.sleep(0.1)  # the poller is in its loop before the start call
    begin = time.perf_counter()
    started = session.put(f"{project_url}/stream/start/{mode}", params={"interval": interval})
    start_ms = (time.perf_counter() - begin) * 1000
    started.raise_for_status()
    reader = Reader(f"{project_url}/streaming/result")
    if reader_at == "start":
        reader.start()
    deadline = begin + 120
    while poller.first(target) is None and time.perf_counter() < deadline:
        time.sleep(0.01)
    live = poller.first(target)
    if reader_at == "live":
        reader.start()
    if mode == "simulating":
        while reader.first_message is None and not reader.done.is_set() and time.perf_counter() < deadline:
            time.sleep(0.01)
    else:
        while reader.connected is None and not reader.done.is_set() and time.perf_counter() < deadline:
            time.sleep(0.01)
    while time.perf_counter() < begin + ACTIVATION_TARGET_S:  # GET latency over the whole allowed window too
        time.sleep(0.01)
    poller.stopped.set()
    poller.join(120)
    until = live if live is not None else time.perf_counter()
    activating = [ms for sent, ms, status in poller.samples if begin <= sent < until]
    window = [ms for sent, ms, status in poller.samples if begin <= sent < begin + ACTIVATION_TARGET_S]
    session.put(f"{project_url}/stream/stop")
    reader.close()
    reader.join(30)
    wait_for(session, project_url, {"TRAINED"}, 120)
    return {
        "start_call_ms": start_ms,
        "activation_s": (live - begin) if live is not None else float("nan"),
        "first_message_s": (reader.first_message - begin) if reader.first_message is not None else float("nan"),
        "connected_s": (reader.connected - begin) if reader.connected is not None else float("nan"),
        "refused": reader.refused,
        "get_ms": activating,
        "window_ms": window,
    }


def report(mode: str, runs: list[dict], idle_p95: float) -> None:
    print(f"\n{mode}:")
    for number, run in enumerate(runs, 1):
        line = (
            f"  run {number}: start call {run['start_call_ms']:7.1f} ms  live after {run['activation_s']:6.2f} s  "
            f"SSE connected after {run['connected_s']:6.2f} s"
        )
        if mode == "simulating":
            line += f"  first message after {run['first_message_s']:6.2f} s"
        samples = run["get_ms"]
        line += (
            f"  GET while activating p50 {percentile(samples, 50):7.1f} p95 {percentile(samples, 95):7.1f} "
            f"max {max(samples, default=float('nan')):7.1f} ms (n={len(samples)})"
        )
        if run["refused"]:
            line += f"  READER REFUSED: {run['refused']}"
        print(line)
    print(f"  median live after {median(r['activation_s'] for r in runs)} (target <= {ACTIVATION_TARGET_S:g} s)")
    if mode == "simulating":
        print(f"  median first SSE message after {median(r['first_message_s'] for r in runs)}")
    for key, during in (("get_ms", "while activating"), ("window_ms", f"in the {ACTIVATION_TARGET_S:g} s after start")):
        p95 = statistics.median(percentile(r[key], 95) for r in runs)
        pooled = [ms for r in runs for ms in r[key]]
        print(
            f"  GET /project {during}: median p95 {p95:.1f} ms (target <= {GET_P95_TARGET_MS:g} ms), "
            f"{p95 / idle_p95:.1f} x the idle p95; all runs' samples p50 {percentile(pooled, 50):.1f} "
            f"p95 {percentile(pooled, 95):.1f} max {max(pooled, default=float('nan')):.1f} ms (n={len(pooled)})"
        )
    refused = sum(1 for r in runs if r["refused"])
    print(f"  readers refused: {refused} of {len(runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=3, help="activations per mode")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between simulated events")
    parser.add_argument("--data-dir", type=Path, help="keep the data directory (and its trained project) here")
    parser.add_argument(
        "--reader-at",
        choices=("start", "live"),
        default="start",
        help="the SSE reader connects right after the start call (an outside user's), or once the project is live "
        "(the activation without the SSE endpoint's wait beside it)",
    )
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.data_dir is None:
            directory = Path(stack.enter_context(TemporaryDirectory()))
        else:
            directory = args.data_dir.resolve()
            directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server_log = (directory / "server.log").open("a")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(directory),
                "--token",
                TOKEN,
            ],
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            session = requests.Session()
            session.headers.update(AUTH)
            for _ in range(300):
                try:
                    session.get(f"{url}/project/0", timeout=1)
                    break
                except (requests.ConnectionError, requests.Timeout):  # not listening, or still starting
                    time.sleep(0.2)
            project_id = trained_project(session, url, args.log, directory)
            print(f"server warm-up over after {settle(server.pid):.1f} s")
            idle = idle_latency(f"{url}/project/{project_id}")
            idle_p95 = percentile(idle, 95)
            print(f"server pid {server.pid}; project {project_id}")
            print(
                f"GET /project/{{id}} idle (baseline): p50 {percentile(idle, 50):.1f} p95 {idle_p95:.1f} "
                f"max {max(idle):.1f} ms (n={len(idle)})"
            )
            results = {mode: [] for mode in MODES}
            for _ in range(args.runs):
                for mode in MODES:
                    results[mode].append(activate(session, url, project_id, mode, args.interval, args.reader_at))
            for mode in MODES:
                report(mode, results[mode], idle_p95)
        finally:
            server.terminate()
            server.wait(30)
            server_log.close()


if __name__ == "__main__":
    main()
