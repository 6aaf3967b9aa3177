"""Streaming benchmark: the real server, a real HTTP client and a connected SSE reader, on loopback only.

Starts ``prcore-workbench serve`` as a separate process on a fresh data directory, uploads the log over REST,
creates a project (outcome A_APPROVED, treatment O_SENT_BACK, 26 resources for resource allocation) and measures
``GET /project/{id}`` latency while it trains. Then it streams the held-out (latest-starting 20 %) cases of the log:

1. paced load (``--rate`` events per second for ``--seconds``): POST latency and POST→SSE delivery latency;
2. burst load (``--burst`` events over ``--clients`` concurrent keep-alive connections, each owning its cases
   and posting its next event as soon as the previous one is acknowledged): sustained acknowledged and delivered
   events per second, and a check that nothing is lost, duplicated or reordered within a case;
3. bulk load (``--bulk`` events posted to ``POST /project/{id}/stream/events`` in requests of ``--bulk-size``):
   acknowledged and delivered events per second, and the ratio to the burst phase's delivery rate in the same run.

The load comes from a minimal asyncio HTTP/1.1 client (``requests`` would cost the shared cores more than the
server does); the SSE reader is ``sseclient-py`` over ``requests``.

    python bench/stream.py --log ../shared/data/bpic2012-CSV.zip

All traffic goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import psutil
import requests
import sseclient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import PRESETS
from quality import ADDITIONAL_INFO

from prcore_core.reading import read_event_log

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the server has used, with its prescriber and training processes: a
    figure the machine's load cannot inflate."""
    server = psutil.Process(pid)
    total = 0.0
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def quantiles(samples_ms) -> str:
    if not samples_ms:
        return "no samples"
    values = np.asarray(samples_ms)
    return (f"p50 {np.percentile(values, 50):7.2f}  p95 {np.percentile(values, 95):7.2f}  "
            f"p99 {np.percentile(values, 99):7.2f} ms  (n={len(values)})")  # fmt: skip


class Reader(threading.Thread):
    """SSE reader recording when each event id arrives (on ``clock``), in which order, and when it was prescribed.

    A failure is kept in ``error`` (and ``connected`` set) instead of ending the benchmark.
    """

    def __init__(self, url: str, clock=time.perf_counter):
        super().__init__(daemon=True)
        self.url = url
        self.clock = clock
        self.arrived: dict[int, float] = {}  # event id -> arrival on ``clock``
        self.prescribed: dict[int, float] = {}  # event id -> its prescription time (epoch seconds, from the server)
        self.order: list[int] = []
        self.duplicates = 0
        self.connected = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            response = requests.get(self.url, headers=AUTH, stream=True, timeout=(5, 600))
            response.raise_for_status()
            for event in sseclient.SSEClient(response).events():
                now = self.clock()
                if event.event == "notification" and event.data == "CONNECTED":
                    self.connected.set()
                if event.event == "notification" and event.data == "FINISHED":
                    return
                if event.event != "message":
                    continue
                for item in json.loads(event.data):
                    if item["id"] in self.arrived:
                        self.duplicates += 1
                    self.arrived.setdefault(item["id"], now)
                    self.order.append(item["id"])
                    stamp = dt.datetime.fromisoformat(item["timestamp"])
                    stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp
                    self.prescribed.setdefault(item["id"], stamp.timestamp())
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


class Connection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams.

    ``requests`` costs about a millisecond of client CPU per call; on a 2-core machine shared with the server
    that, not the server, would set the burst rate. This client costs a few tens of microseconds per request.
    """

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, document: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(document).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def paced(port: int, path: str, bodies: list[dict], rate: float) -> tuple[list[float], dict[int, float]]:
    """Post ``bodies`` one by one at ``rate`` per second; POST latencies (ms) and send time of each event id."""
    connection, post_ms, sent_at = Connection(port), [], {}
    begin = time.perf_counter()
    for number, body in enumerate(bodies):
        delay = begin + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        status, answer = await connection.post(path, body)
        post_ms.append((time.perf_counter() - sent) * 1000)
        if status != 200:
            raise SystemExit(f"POST failed with {status}: {answer}")
        sent_at[answer["event"]["id"]] = sent
    connection.close()
    return post_ms, sent_at


async def burst(port: int, path: str, parts: list[list[dict]]) -> dict[str, list[int]]:
    """Each connection posts its own cases' events as fast as the server acknowledges them."""
    acknowledged: dict[str, list[int]] = defaultdict(list)

    async def client(part: list[dict]) -> None:
        connection = Connection(port)
        for body in part:
            status, answer = await connection.post(path, body)
            if status != 200:
                raise SystemExit(f"POST failed with {status}: {answer}")
            acknowledged[answer["event"]["attributes"]["CASE_ID"]].append(answer["event"]["id"])
        connection.close()

    await asyncio.gather(*(client(part) for part in parts))
    return acknowledged


def replay_rows(log_path: Path, preset: dict) -> list[dict]:
    """The latest-starting 20 % of cases (the held-out part of a start-time split), in start-time order."""
    frame = read_event_log(log_path)
    columns = preset["columns"]
    case = next(c for c, d in columns.items() if d == "CASE_ID")
    time_column = next(c for c, d in columns.items() if d in ("TIMESTAMP", "START_TIMESTAMP"))
    frame = frame[list(columns)]
    starts = frame.groupby(case)[time_column].min().sort_values(kind="stable")
    held_out = set(starts.index[int(len(starts) * 0.8) :])
    frame = frame[frame[case].isin(held_out)].sort_values(time_column, kind="stable")
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    last = ~frame[case].duplicated(keep="last").to_numpy()
    for row, final in zip(rows, last, strict=True):
        row["COMPLETE_INDICATOR"] = bool(final)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--rate", type=float, default=100.0, help="paced events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the paced phase")
    parser.add_argument("--burst", type=int, default=6000, help="events in the burst phase")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections in the burst phase")
    parser.add_argument("--bulk", type=int, default=20000, help="events in the bulk phase")
    parser.add_argument("--bulk-size", type=int, default=1000, help="events per bulk request")
    args = parser.parse_args()
    preset = next(p for name, p in PRESETS.items() if args.log.name.startswith(name))

    with TemporaryDirectory() as directory:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port),
                                   "--data-dir", directory, "--token", TOKEN],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            session = requests.Session()
            session.headers.update(AUTH)
            for _ in range(300):
                try:
                    session.get(f"{url}/project/0", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            started = time.perf_counter()
            uploaded = session.post(f"{url}/event_log", files={"file": (args.log.name, args.log.read_bytes())})
            uploaded.raise_for_status()
            event_log_id = uploaded.json()["event_log_id"]
            session.put(f"{url}/event_log/{event_log_id}", json={
                "columns_definition": preset["columns"], "case_attributes": preset["case_attributes"],
                "fast_mode": preset["fast_mode"]}).raise_for_status()  # fmt: skip
            created = session.post(f"{url}/project", json={
                "event_log_id": event_log_id, "positive_outcome": preset["outcome"], "treatment": preset["treatment"],
                "additional_info": ADDITIONAL_INFO})  # fmt: skip
            created.raise_for_status()
            project_id = created.json()["project"]["id"]
            during_training = []
            while True:
                sent = time.perf_counter()
                status = session.get(f"{url}/project/{project_id}").json()["project"]["status"]
                during_training.append((time.perf_counter() - sent) * 1000)
                if status == "TRAINED":
                    break
                if status not in ("PREPROCESSING", "TRAINING"):
                    raise SystemExit(f"project failed: {status}")
                time.sleep(0.05)
            print(f"{args.log.name}: upload -> TRAINED over REST in {time.perf_counter() - started:.1f} s")
            print(f"  GET /project/{{id}} while training        {quantiles(during_training)}  (target p95 <= 50)")

            session.put(f"{url}/project/{project_id}/stream/start").raise_for_status()
            while session.get(f"{url}/project/{project_id}").json()["project"]["status"] != "STREAMING":
                time.sleep(0.05)
            reader = Reader(f"{url}/project/{project_id}/streaming/result")
            reader.start()
            reader.connected.wait(30)
            if reader.error:
                raise SystemExit(f"the SSE reader failed: {reader.error}")
            rows = replay_rows(args.log, preset)
            case_column = next(c for c, d in preset["columns"].items() if d == "CASE_ID")

            # -- phase 1: paced ---------------------------------------------------------------------------------
            count = min(int(args.rate * args.seconds), len(rows))
            bodies = [{**row, case_column: f"paced-{row[case_column]}"} for row in rows[:count]]
            begin, cpu = time.perf_counter(), cpu_seconds(server.pid)
            post_ms, sent_at = asyncio.run(paced(port, f"/event/{project_id}", bodies, args.rate))
            rate = count / (time.perf_counter() - begin)
            deadline = time.perf_counter() + 30
            while len(set(sent_at) & set(reader.arrived)) < len(sent_at) and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivery = [(reader.arrived[i] - t) * 1000 for i, t in sent_at.items() if i in reader.arrived]
            paced_cpu = (cpu_seconds(server.pid) - cpu) / count * 1000
            print(f"\npaced phase: {count:,} events at {args.rate:g}/s (achieved {rate:.0f}/s), all plugins active")
            print(f"  POST /event latency                       {quantiles(post_ms)}  (target p50 <= 5)")
            print(f"  POST -> SSE delivery latency              {quantiles(delivery)}  (target p50 <= 20, p99 <= 100)")
            print(f"  delivered {len(delivery):,} of {len(sent_at):,}; server CPU {paced_cpu:.2f} ms per event")

            # -- phase 2: burst ---------------------------------------------------------------------------------
            burst_rows = rows[count : count + args.burst] if len(rows) > count else rows[: args.burst]
            by_client = defaultdict(list)
            for row in burst_rows:
                case = f"burst-{row[case_column]}"
                by_client[hash(case) % args.clients].append({**row, case_column: case})
            begin, cpu = time.perf_counter(), cpu_seconds(server.pid)
            acknowledged = asyncio.run(burst(port, f"/event/{project_id}", list(by_client.values())))
            ack_seconds = time.perf_counter() - begin
            ids = [i for case_ids in acknowledged.values() for i in case_ids]
            deadline = time.perf_counter() + 120
            while len(set(ids) - set(reader.arrived)) and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivered_seconds = max(reader.arrived[i] for i in ids if i in reader.arrived) - begin
            burst_cpu = (cpu_seconds(server.pid) - cpu) / len(ids) * 1000
            position = {event_id: n for n, event_id in enumerate(reader.order)}
            reordered = sum(
                1
                for case_ids in acknowledged.values()
                if [position.get(i, -1) for i in case_ids] != sorted(position.get(i, -1) for i in case_ids)
            )
            lost = len(set(ids) - set(reader.arrived))
            print(f"\nburst phase: {len(ids):,} events over {args.clients} connections")
            print(f"  acknowledged {len(ids) / ack_seconds:,.0f} events/s; delivered over SSE "
                  f"{(len(ids) - lost) / delivered_seconds:,.0f} events/s (target >= 1,000)")  # fmt: skip
            print(
                f"  lost {lost}, duplicated {reader.duplicates}, cases reordered {reordered}; server CPU "
                f"{burst_cpu:.2f} ms per event"
            )
            burst_delivered = (len(ids) - lost) / delivered_seconds

            # -- phase 3: bulk (POST /project/{id}/stream/events) ----------------------------------------------
            bulk_rows = [{**row, case_column: f"bulk-{row[case_column]}"} for row in rows[: args.bulk]]
            begin, cpu = time.perf_counter(), cpu_seconds(server.pid)
            bulk_ids: list[int] = []
            refused = 0
            for start in range(0, len(bulk_rows), args.bulk_size):
                answer = session.post(f"{url}/project/{project_id}/stream/events",
                                      json=bulk_rows[start : start + args.bulk_size], timeout=300)  # fmt: skip
                answer.raise_for_status()
                results = answer.json()["results"]
                bulk_ids += [r["event"]["id"] for r in results if "event" in r]
                refused += sum("event" not in r for r in results)
            ack_seconds = time.perf_counter() - begin
            deadline = time.perf_counter() + 300
            while len(set(bulk_ids) - set(reader.arrived)) and time.perf_counter() < deadline:
                time.sleep(0.05)
            lost = len(set(bulk_ids) - set(reader.arrived))
            delivered_seconds = max(reader.arrived[i] for i in bulk_ids if i in reader.arrived) - begin
            bulk_cpu = (cpu_seconds(server.pid) - cpu) / max(len(bulk_ids), 1) * 1000
            bulk_delivered = (len(bulk_ids) - lost) / delivered_seconds
            print(f"\nbulk phase: {len(bulk_ids):,} events in requests of {args.bulk_size:,} ({refused} refused)")
            print(f"  acknowledged {len(bulk_ids) / ack_seconds:,.0f} events/s; delivered over SSE "
                  f"{bulk_delivered:,.0f} events/s (target >= 20,000); {bulk_delivered / burst_delivered:.1f}x the "
                  "burst phase's delivery rate in this run")  # fmt: skip
            print(f"  lost {lost}, duplicated {reader.duplicates}; server CPU {bulk_cpu:.2f} ms per event")
            session.put(f"{url}/project/{project_id}/stream/stop")
            print(f"\nPOST latency medians by phase: paced {statistics.median(post_ms):.2f} ms")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
