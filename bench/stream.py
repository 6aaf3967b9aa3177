"""Streaming benchmark: the real server, a real HTTP client and a connected SSE reader, on loopback only.

Starts ``prcore-workbench serve`` as a separate process on a fresh data directory, uploads the log over REST,
creates a project (outcome A_APPROVED, treatment O_SENT_BACK, 26 resources for resource allocation) and measures
``GET /project/{id}`` latency while it trains. Then it streams the held-out (latest-starting 20 %) cases of the log:

1. paced load (``--rate`` events per second for ``--seconds``): POST latency and POST→SSE delivery latency;
2. burst load (``--burst`` events from ``--clients`` concurrent clients, each owning its cases): sustained
   acknowledged and delivered events per second, and a check that nothing is lost, duplicated or reordered
   within a case.

    python bench/stream.py --log ../shared/data/bpic2012-CSV.zip

All traffic goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
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


def quantiles(samples_ms) -> str:
    if not samples_ms:
        return "no samples"
    values = np.asarray(samples_ms)
    return (f"p50 {np.percentile(values, 50):7.2f}  p95 {np.percentile(values, 95):7.2f}  "
            f"p99 {np.percentile(values, 99):7.2f} ms  (n={len(values)})")  # fmt: skip


class Reader(threading.Thread):
    """SSE reader recording when each event id arrives (and in which order)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.arrived: dict[int, float] = {}
        self.order: list[int] = []
        self.duplicates = 0
        self.connected = threading.Event()

    def run(self) -> None:
        response = requests.get(self.url, headers=AUTH, stream=True, timeout=(5, 600))
        response.raise_for_status()
        for event in sseclient.SSEClient(response).events():
            now = time.perf_counter()
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


def replay_rows(log_path: Path, preset: dict) -> list[dict]:
    """The latest-starting 20 % of cases (the held-out part of a start-time split), in start-time order."""
    frame = read_event_log(log_path)
    columns = preset["columns"]
    case = next(c for c, d in columns.items() if d == "CASE_ID")
    time_column = next(c for c, d in columns.items() if d in ("TIMESTAMP", "START_TIMESTAMP"))
    frame = frame[list(columns)]
    starts = frame.groupby(case)[time_column].min().sort_values(kind="stable")
    held_out = set(starts.index[int(len(starts) * 0.8):])
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
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients in the burst phase")
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
            rows = replay_rows(args.log, preset)
            case_column = next(c for c, d in preset["columns"].items() if d == "CASE_ID")

            # -- phase 1: paced ---------------------------------------------------------------------------------
            count = min(int(args.rate * args.seconds), len(rows))
            post_ms, sent_at = [], {}
            interval = 1.0 / args.rate
            begin = time.perf_counter()
            for number, row in enumerate(rows[:count]):
                target = begin + number * interval
                while (now := time.perf_counter()) < target:
                    time.sleep(min(target - now, 0.002))
                body = {**row, case_column: f"paced-{row[case_column]}"}
                sent = time.perf_counter()
                answer = session.post(f"{url}/event/{project_id}", json=body)
                post_ms.append((time.perf_counter() - sent) * 1000)
                answer.raise_for_status()
                sent_at[answer.json()["event"]["id"]] = sent
            deadline = time.perf_counter() + 30
            while len(set(sent_at) & set(reader.arrived)) < len(sent_at) and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivery = [(reader.arrived[i] - t) * 1000 for i, t in sent_at.items() if i in reader.arrived]
            rate = count / (time.perf_counter() - begin)
            print(f"\npaced phase: {count:,} events at {args.rate:g}/s (achieved {rate:.0f}/s), all plugins active")
            print(f"  POST /event latency                       {quantiles(post_ms)}  (target p50 <= 5)")
            print(f"  POST -> SSE delivery latency              {quantiles(delivery)}  (target p50 <= 20, p99 <= 100)")
            print(f"  delivered {len(delivery):,} of {len(sent_at):,}")

            # -- phase 2: burst ---------------------------------------------------------------------------------
            burst_rows = rows[count: count + args.burst] if len(rows) > count else rows[: args.burst]
            by_client = defaultdict(list)
            for row in burst_rows:
                by_client[hash(row[case_column]) % args.clients].append(row)
            acknowledged: dict[str, list[int]] = defaultdict(list)
            lock = threading.Lock()

            def client(part: list[dict]) -> None:
                own = requests.Session()
                own.headers.update(AUTH)
                for row in part:
                    case = f"burst-{row[case_column]}"
                    answer = own.post(f"{url}/event/{project_id}", json={**row, case_column: case})
                    answer.raise_for_status()
                    with lock:
                        acknowledged[case].append(answer.json()["event"]["id"])

            begin = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(client, by_client.values()))
            ack_seconds = time.perf_counter() - begin
            ids = [i for case_ids in acknowledged.values() for i in case_ids]
            deadline = time.perf_counter() + 120
            while len(set(ids) - set(reader.arrived)) and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivered_seconds = max(reader.arrived[i] for i in ids if i in reader.arrived) - begin
            position = {event_id: n for n, event_id in enumerate(reader.order)}
            reordered = sum(1 for case_ids in acknowledged.values()
                            if [position.get(i, -1) for i in case_ids] != sorted(position.get(i, -1) for i in case_ids))
            lost = len(set(ids) - set(reader.arrived))
            print(f"\nburst phase: {len(ids):,} events from {args.clients} clients")
            print(f"  acknowledged {len(ids) / ack_seconds:,.0f} events/s; delivered over SSE "
                  f"{(len(ids) - lost) / delivered_seconds:,.0f} events/s (target >= 1,000)")  # fmt: skip
            print(f"  lost {lost}, duplicated {reader.duplicates}, cases reordered {reordered}")
            session.put(f"{url}/project/{project_id}/stream/stop")
            print(f"\nPOST latency medians by phase: paced {statistics.median(post_ms):.2f} ms")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
