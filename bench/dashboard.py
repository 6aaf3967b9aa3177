"""Dashboard benchmark: every view of the workbench in a real browser, on a project trained on a real log.

Trains a project on the log through the facade (or reuses the one in ``--data-dir``), starts
``prcore-workbench serve`` as a separate process and drives Debian's Chromium with Playwright (headless):

1. view loads, ``--repeat`` times each, timed until the view's real content is visible and a frame has been painted
   (the Bokeh canvases, the table's columns, the computed counts — not just the view's header):

   - first visit: ``page.goto`` of the view's URL in a fresh browser context (nothing cached, scripts included);
   - reload: the same in a context that loaded the dashboard once (scripts and styles from the browser's cache);
   - navigation: a click in the sidebar of an open page (the view built by the server and rendered, no page load);

2. the live view while events stream, for ``--seconds``: first the core's simulation with ``interval = 1 / --rate``
   (``PUT /project/{id}/stream/start/simulating``), then ``--rate`` events per second posted to ``/event/{id}`` by
   four clients (streaming mode). Every 0.5 s the newest event shown in the live table is compared with the events
   the server has prescribed (read by the project's one SSE reader, ``/project/{id}/streaming/result``): lag in
   events and seconds, events shown per second, how long after its prescription an event reaches the table, and the
   page's responsiveness (long tasks, timer delays, frame gaps) and the CPU used by the server and the browser.

    python bench/dashboard.py --log ../shared/data/bpic2012-CSV.zip --data-dir /tmp/bench-bpic2012

With ``--data-dir`` the trained project is kept there and reused by the next run (training takes ~15 s).
All traffic goes to 127.0.0.1; every wait is bounded. Figures are printed, nothing is asserted. The browser and the
server share the machine's cores, so on a small machine the figures include their competition (and any other load:
the CPU line of each phase says how busy the rest of the machine was).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import PRESETS
from quality import ADDITIONAL_INFO
from stream import AUTH, TOKEN, Reader, free_port

from prcore_core import PrCore

PROJECT_NAME = "Dashboard benchmark"
TARGET_SECONDS = 2.0
CHROMIUM = os.environ.get("PRCORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 1000}
TIMEOUT_MS = 60_000

# -- the project -----------------------------------------------------------------------------------------------------


def trained_project(data_dir: Path, log: Path) -> int:
    """The id of the benchmark's trained project in ``data_dir``; trains one through the facade when there is none."""
    preset = next(p for name, p in PRESETS.items() if log.name.startswith(name))
    with PrCore(data_dir=data_dir) as core:
        for project in core.list_projects():
            if project.name == PROJECT_NAME and str(project.status) != "ERROR" and project.plugins:
                print(f"reusing project {project.id} ({project.status}) in {data_dir}")
                return project.id
        started = time.perf_counter()
        event_log = core.upload_event_log(log)
        core.set_columns_definition(event_log.id, preset["columns"], preset["case_attributes"], fast_mode=True)
        project = core.create_project(event_log.id, positive_outcome=preset["outcome"], treatment=preset["treatment"],
                                      additional_info=ADDITIONAL_INFO, name=PROJECT_NAME)  # fmt: skip
        project = project.wait_until("TRAINED", timeout=1800)
        print(f"trained project {project.id} on {log.name} in {time.perf_counter() - started:.1f} s")
        return project.id


class Server:
    """``prcore-workbench serve`` as a subprocess (its output goes to ``server.log`` beside the data directory)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    def __enter__(self) -> Server:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--token", TOKEN],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/project/0", headers=AUTH, timeout=2)
                return self
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    raise SystemExit(f"the server stopped:\n{self.log_path.read_text()}") from None
                time.sleep(0.2)
        raise SystemExit(f"the server did not start:\n{self.log_path.read_text()}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def project(self, project_id: int) -> dict:
        answer = requests.get(f"{self.url}/project/{project_id}", headers=AUTH, timeout=30)
        answer.raise_for_status()
        return answer.json()["project"]

    def stream(self, project_id: int, action: str, **query) -> None:
        requests.put(f"{self.url}/project/{project_id}/stream/{action}", params=query, headers=AUTH,
                     timeout=60).raise_for_status()  # fmt: skip

    def wait_status(self, project_id: int, wanted: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.project(project_id)["status"]) != wanted:
            if time.monotonic() > deadline:
                raise SystemExit(f"project {project_id} is {status}, not {wanted}, after {timeout:.0f} s")
            time.sleep(0.1)


class CpuMeter:
    """CPU time over a phase: the server's, the browser's (Chromium's processes) and the rest of the machine's."""

    def __init__(self, server: Server):
        self.server = psutil.Process(server.process.pid)
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        def used(process: psutil.Process, name: str = "") -> float:
            try:
                if name not in process.name().lower():
                    return 0.0
                times = process.cpu_times()
            except psutil.Error:  # ended meanwhile
                return 0.0
            return times.user + times.system + times.children_user + times.children_system

        browser = sum(used(p, "chrom") for p in psutil.Process().children(recursive=True))
        machine = psutil.cpu_times()
        busy = sum(getattr(machine, name, 0.0) for name in ("user", "system", "nice", "irq", "softirq", "steal"))
        return time.monotonic(), used(self.server), browser, busy

    def report(self) -> str:
        end = self._read()
        seconds, server, browser, busy = (b - a for a, b in zip(self.start, end, strict=True))
        other = max(0.0, busy - server - browser)
        return (f"CPU (share of one core): server {server / seconds:.0%}, Chromium {browser / seconds:.0%}, "
                f"everything else on the machine {other / seconds:.0%} ({os.cpu_count()} cores)")  # fmt: skip


# -- the views -------------------------------------------------------------------------------------------------------

#: Resolves after the next frame was painted (two animation frames: the one scheduled, then the one after paint).
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


@dataclass
class View:
    """A page of the dashboard: its URL query, navigation key and the selectors present only with its content."""

    key: str
    title: str
    visible: list[str]
    texts: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    project: bool = True

    def query(self, project_id: int) -> str:
        return f"?view={self.key}" + (f"&project={project_id}" if self.project else "")

    def wait(self, page) -> None:
        from playwright.sync_api import expect

        for css in self.visible:
            page.locator(css).first.wait_for(state="visible", timeout=TIMEOUT_MS)
        for css, text in self.texts.items():
            expect(page.locator(css).filter(has_text=text).first).to_be_visible(timeout=TIMEOUT_MS)
        for css, count in self.counts.items():
            page.locator(css).nth(count - 1).wait_for(state="visible", timeout=TIMEOUT_MS)
        page.evaluate(PAINTED)


def views(project: dict) -> list[View]:
    """The pages ``workbench/app.py`` serves, each with what shows that its content is there (for this project)."""
    pid = project["id"]
    plotted = [p["key"] for p in project["plugins"] if (p.get("metrics") or {}).get("by_prefix_length")]
    return [
        View("projects", "Projects home", [f".wb-project-{pid} .wb-project-plugins .wb-badge"], project=False),
        View("upload", "1 · Upload", [".wb-upload-dropper .filepond--drop-label"], project=False),
        View("columns", "2 · Columns", [".wb-col-row select", ".wb-chart-activities canvas",
                                        ".wb-chart-resources canvas"],
             texts={".wb-analysis-summary": "activities"}),
        View("definition", "3 · Outcome & treatment",
             [".wb-outcome .wb-cond-value-select select", ".wb-treatment .wb-cond-value-select select",
              ".wb-plugin-form .card-header"],
             texts={".wb-outcome-count": "labelled positive", ".wb-treatment-count": "treated"}),
        View("training", "Training & metrics", [".wb-plugin-metrics"],
             texts={".wb-training-header": "TRAINED"},
             counts={".wb-plugin-plot canvas": len(plotted)} if plotted else {}),
        View("process", "Process map", [".wb-dfg canvas"], texts={".wb-dfg-summary": "cases"}),
        View("live", "Live prescriptions",  # the table's columns are the plugins' once the view is set up
             [".wb-live-start button", *[f'.wb-live-table .tabulator-col[tabulator-field="{p["key"]}"]'
                                         for p in project["plugins"][:1]]],
             texts={".wb-live-status": "TRAINED"}, counts={".wb-live-charts canvas": 3}),
        View("ongoing", "Ongoing cases", [".wb-ongoing-dropper .filepond--drop-label"]),
    ]  # fmt: skip


def fresh_page(browser, errors: list[str]):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page


def url_load(browser, server: Server, view: View, project_id: int, errors: list[str], cached: bool = False) -> float:
    """Seconds from ``goto`` of the view's URL in a new page until its content is painted: in a fresh browser context
    (empty cache: a first visit), or with ``cached`` in a context that loaded the dashboard once before (a reload:
    the scripts and styles come from the browser's cache)."""
    context, page = fresh_page(browser, errors)
    try:
        if cached:
            home = views(server.project(project_id))[0]
            page.goto(f"{server.url}/{home.query(project_id)}")
            home.wait(page)
            page.close()
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
        started = time.perf_counter()
        page.goto(f"{server.url}/{view.query(project_id)}")
        view.wait(page)
        return time.perf_counter() - started
    finally:
        context.close()


def nav_loads(browser, server: Server, pages: list[View], project: dict, errors: list[str]) -> dict[str, float]:
    """Seconds from a click in the navigation until the view's content is painted, visiting the pages in turn
    (from the projects home with the project open; the home itself last, coming back from another page)."""
    home, upload = views(project)[:2]
    order = [view for view in pages if view.key != home.key] + [view for view in pages if view.key == home.key]
    context, page = fresh_page(browser, errors)
    seconds = {}
    try:
        page.goto(f"{server.url}/?view=projects&project={project['id']}")
        home.wait(page)
        if order[0].key == home.key:  # leave the home first, untimed
            page.locator(f".wb-nav-{upload.key} button").first.click()
            upload.wait(page)
        for view in order:
            started = time.perf_counter()
            page.locator(f".wb-nav-{view.key} button").first.click()
            view.wait(page)
            seconds[view.key] = time.perf_counter() - started
    finally:
        context.close()
    return seconds


def bench_views(browser, server: Server, project: dict, repeat: int, only: str | None = None) -> None:
    pages = [view for view in views(project) if only is None or view.key in only.split(",")]
    errors: list[str] = []
    kinds = ("first visit", "reload", "navigation")
    seconds = {(view.key, kind): [] for view in pages for kind in kinds}
    meter = CpuMeter(server)
    for _ in range(repeat):  # interleaved, so a slow moment of the (shared) machine does not hit one view only
        for view in pages:
            seconds[view.key, "first visit"].append(url_load(browser, server, view, project["id"], errors))
            seconds[view.key, "reload"].append(url_load(browser, server, view, project["id"], errors, cached=True))
        for key, value in nav_loads(browser, server, pages, project, errors).items():
            seconds[key, "navigation"].append(value)
    cpu = meter.report()
    print(f"\nview loads, {repeat} runs each: seconds until the content is painted, median / max (target < "
          f"{TARGET_SECONDS:g} s)")  # fmt: skip
    print("  first visit: the view's URL in a fresh browser (nothing cached); reload: the URL again, scripts cached;")
    print("  navigation: a click in the sidebar of an open page")
    print(f"  {'view':<26}" + "".join(f"{kind:>16}" for kind in kinds))
    for view in pages:
        cells = [seconds[view.key, kind] for kind in kinds]
        slow = [kind for kind, values in zip(kinds, cells, strict=True) if max(values) >= TARGET_SECONDS]
        print(f"  {view.title:<26}" + "".join(f"{statistics.median(v):9.2f} /{max(v):5.2f}" for v in cells)
              + (f"   max over {TARGET_SECONDS:g} s: {', '.join(slow)}" if slow else "   ok"))  # fmt: skip
    print(f"  {cpu}")
    if errors:
        print(f"  JavaScript errors in the pages: {sorted(set(errors))}")


# -- the live view ---------------------------------------------------------------------------------------------------

#: Installed in the live page: every 50 ms it notes the newest event id of the table and the view's own count (when
#: they change, with the wall-clock time), the timer's delay (how late the main thread ran it), the gaps between
#: animation frames and the long tasks the browser reports.
SAMPLER = """() => {
  const probe = {changes: [], counts: [], delays: [], frames: [], longtasks: [], started: Date.now()};
  const deep = (root, css) => {
    const hit = root.querySelector(css);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const found = deep(el.shadowRoot, css); if (found) return found; }
    }
    return null;
  };
  let table = null, counter = null, last = null, lastCount = null, expected = performance.now() + 50;
  probe.timer = setInterval(() => {
    const now = performance.now();
    probe.delays.push(now - expected);
    expected = now + 50;
    if (!table || !table.isConnected) {  // the table lives in the shadow root of the element with the class
      const host = deep(document, '.wb-live-table');
      table = host && host.shadowRoot ? deep(host.shadowRoot, '.tabulator-tableholder') : null;
    }
    if (!counter || !counter.isConnected) counter = deep(document, '.wb-live-received');
    const cell = table && table.querySelector('.tabulator-row .tabulator-cell[tabulator-field=event]');
    const id = cell ? parseInt(cell.textContent.replace(/[^0-9]/g, ''), 10) : null;
    if (id !== null && id !== last) { last = id; probe.changes.push([Date.now(), id]); }
    const count = counter ? parseInt(counter.dataset.count, 10) : null;
    if (count !== null && count !== lastCount) { lastCount = count; probe.counts.push([Date.now(), count]); }
  }, 50);
  let previous = performance.now();
  const frame = (t) => {
    probe.frames.push(t - previous);
    previous = t;
    if (!probe.stop) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  new PerformanceObserver(list => {
    for (const entry of list.getEntries()) probe.longtasks.push([entry.startTime, entry.duration]);
  }).observe({type: 'longtask'});
  probe.latest = () => [last, lastCount];
  window.__probe = probe;
  return true;
}"""


def figures(values, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    if len(values) == 0:
        return "no samples"
    data = np.asarray(values, dtype=float) * scale
    return (f"median {np.median(data):.{digits}f}{unit}  p95 {np.percentile(data, 95):.{digits}f}{unit}  "
            f"max {data.max():.{digits}f}{unit}  (n={len(data)})")  # fmt: skip


class Poster(threading.Thread):
    """Posts held-out events to ``/event/{id}`` at ``rate`` in all, from ``clients`` connections that each own a
    share of the cases (so a case's events stay in order); each paces on a schedule, so a slow answer is caught up."""

    def __init__(self, server: Server, project_id: int, rows: list[dict], case_column: str, rate: float,
                 clients: int = 4):  # fmt: skip
        super().__init__(daemon=True)
        self.server, self.project_id, self.case_column = server, project_id, case_column
        self.lanes = [[r for r in rows if hash(r[case_column]) % clients == k] for k in range(clients)]
        self.interval = clients / rate
        self.stopped = threading.Event()
        self.sent = 0
        self.lock = threading.Lock()
        self.error: str | None = None

    def run(self) -> None:
        tag = f"bench{int(time.time())}"
        begin = time.perf_counter()
        lanes = [threading.Thread(target=self._post, args=(lane, tag, begin), daemon=True) for lane in self.lanes]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()

    def _post(self, rows: list[dict], tag: str, begin: float) -> None:
        session = requests.Session()
        session.headers.update(AUTH)
        try:
            for number, row in enumerate(rows):
                target = begin + number * self.interval
                while (now := time.perf_counter()) < target and not self.stopped.is_set():
                    time.sleep(min(target - now, 0.002))
                if self.stopped.is_set():
                    return
                body = {**row, self.case_column: f"{tag}-{row[self.case_column]}"}
                session.post(f"{self.server.url}/event/{self.project_id}", json=body, timeout=30).raise_for_status()
                with self.lock:
                    self.sent += 1
        except Exception as exc:  # reported, the benchmark goes on without it
            self.error = f"{type(exc).__name__}: {exc}"


def start_load(server: Server, project_id: int, load: str, rate: float, log: Path) -> Poster | None:
    """Start the events: the core's simulation (``interval = 1 / rate``) or paced POSTs of held-out events."""
    if load == "simulation":
        server.stream(project_id, "start/simulating", interval=f"{1 / rate:g}")
        return None
    from stream import replay_rows

    preset = next(p for name, p in PRESETS.items() if log.name.startswith(name))
    case_column = next(c for c, d in preset["columns"].items() if d == "CASE_ID")
    rows = replay_rows(log, preset)
    server.stream(project_id, "start/streaming")
    server.wait_status(project_id, "STREAMING")
    poster = Poster(server, project_id, rows, case_column, rate)
    poster.start()
    return poster


def bench_live(browser, server: Server, project_id: int, load: str, rate: float, seconds: float, log: Path) -> None:
    errors: list[str] = []
    context, page = fresh_page(browser, errors)
    poster = None
    try:
        page.goto(f"{server.url}/?view=live&project={project_id}")
        next(v for v in views(server.project(project_id)) if v.key == "live").wait(page)
        page.evaluate(SAMPLER)
        poster = start_load(server, project_id, load, rate, log)
        reader = Reader(f"{server.url}/project/{project_id}/streaming/result", clock=time.time)
        reader.start()
        reader.connected.wait(60)
        if reader.error:
            print(f"  SSE reader failed: {reader.error}")
        begin = time.time()
        meter = CpuMeter(server)
        samples = []  # (wall time, newest event id shown)
        while (now := time.time()) < begin + seconds:
            samples.append((now, page.evaluate("() => window.__probe.latest()")[0]))
            page.wait_for_timeout(max(0, 500 - (time.time() - now) * 1000))
        probe = page.evaluate("() => { window.__probe.stop = true; clearInterval(window.__probe.timer); const p = "
                              "window.__probe; return {changes: p.changes, counts: p.counts, delays: p.delays, "
                              "frames: p.frames, longtasks: p.longtasks, started: p.started}; }")  # fmt: skip
        end = time.time()
        cpu = meter.report()
    finally:
        if poster is not None:
            poster.stopped.set()
            poster.join(30)
        server.stream(project_id, "stop")
        context.close()
    reader.join(30)
    arrived, prescribed = dict(reader.arrived), dict(reader.prescribed)
    ids = sorted(arrived)
    window = [i for i in ids if begin <= arrived[i] <= end]
    server_rate = len(window) / (end - begin)
    how = (f"the core's simulation, interval {1 / rate:g} s" if load == "simulation"
           else f"{rate:g} events/s posted to /event/{project_id} by 4 clients, streaming mode")  # fmt: skip
    print(f"\nlive view, {seconds:g} s of {how}")
    if poster is not None:
        print(f"  posted {poster.sent:,} events" + (f"; posting failed: {poster.error}" if poster.error else ""))
    print(f"  server: {len(window):,} events prescribed in the window, {server_rate:.1f} events/s "
          "(as delivered to the SSE reader)")  # fmt: skip
    # every 0.5 s: the prescribed events newer than the newest row of the table, and how long the oldest of them
    # has been waiting (0 when the table shows the newest event)
    lag_events, lag_seconds = [], []
    for now, shown in samples[4:]:  # the first 2 s: the load and the reader starting
        if shown is None:
            continue
        waiting = [arrived[i] for i in ids if shown < i and arrived[i] <= now]
        lag_events.append(len(waiting))
        lag_seconds.append(now - min(waiting) if waiting else 0.0)
    print(f"  behind the server, sampled every 0.5 s:  events {figures(lag_events, digits=0)}")
    print(f"  {'':<40}seconds {figures(lag_seconds, ' s')}")
    # each time the newest row changed: how long after the server prescribed (and delivered) that event
    changes = [(t / 1000, i) for t, i in probe["changes"] if i in arrived and begin <= t / 1000 <= end]
    after_sse = [t - arrived[i] for t, i in changes]
    after_prescribed = [t - prescribed[i] for t, i in changes if i in prescribed]
    print(f"  newest row shown after SSE delivery     {figures(after_sse, ' s')}")
    print(f"  newest row shown after it was prescribed {figures(after_prescribed, ' s')}")
    counts = [(t / 1000, c) for t, c in probe["counts"] if begin <= t / 1000 <= end]
    if len(counts) >= 2 and server_rate:
        shown_rate = (counts[-1][1] - counts[0][1]) / (counts[-1][0] - counts[0][0])
        print(f"  events shown per second (the view's own count) {shown_rate:.1f} "
              f"({shown_rate / server_rate:.0%} of the server's rate); table updates "
              f"{len(changes) / (end - begin):.2f} per second")  # fmt: skip
    duration_ms = (end - probe["started"] / 1000) * 1000
    tasks = [d for _, d in probe["longtasks"]]
    print(f"  long tasks (> 50 ms): {len(tasks)}, {figures(tasks, ' ms', 1, 0)}; "
          f"busy with them {sum(tasks) / duration_ms:.1%} of the time")  # fmt: skip
    print(f"  delay of a 50 ms timer (main thread busy) {figures(probe['delays'], ' ms', 1, 0)}")
    print(f"  gaps between frames                      {figures(probe['frames'], ' ms', 1, 0)}")
    print(f"  {cpu}")
    if errors:
        print(f"  JavaScript errors in the page: {sorted(set(errors))}")


# -- main ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, type=Path, help="the event log (a BPIC 2012 CSV zip)")
    parser.add_argument("--repeat", type=int, default=5, help="loads of each view")
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the trained project here")
    parser.add_argument("--rate", type=float, default=100.0, help="simulated events per second in the live phase")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of the live phase")
    parser.add_argument("--views", help="only these views, e.g. 'projects,live' (the keys of ?view=)")
    parser.add_argument("--skip-views", action="store_true", help="only the live phase")
    parser.add_argument("--skip-live", action="store_true", help="only the view loads")
    parser.add_argument("--load", choices=("simulation", "posted", "both"), default="both",
                        help="the core's simulation (interval 1/rate), paced POSTs, or both")  # fmt: skip
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with TemporaryDirectory() as scratch:
        data_dir = (args.data_dir or Path(scratch) / "data").resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        project_id = trained_project(data_dir, args.log)
        with Server(data_dir) as server, sync_playwright() as playwright:
            if server.project(project_id)["status"] in ("ACTIVATING", "STREAMING", "SIMULATING"):
                server.stream(project_id, "stop")  # left running by an interrupted run
            server.stream(project_id, "clear")  # earlier runs' streamed events
            server.wait_status(project_id, "TRAINED")
            project = server.project(project_id)
            print(f"server {server.url} (log {server.log_path}); project {project_id}: {project['name']}, "
                  f"{len(project['plugins'])} plugins; {os.cpu_count()} CPUs (shared: figures are noisy)")  # fmt: skip
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # one untimed visit: the server's first-use work (plugin imports, parsed-log cache) is not a page's
                url_load(browser, server, views(project)[0], project_id, [])
                if not args.skip_views:
                    bench_views(browser, server, project, args.repeat, args.views)
                if not args.skip_live:
                    for load in ("simulation", "posted") if args.load == "both" else (args.load,):
                        bench_live(browser, server, project_id, load, args.rate, args.seconds, args.log)
                        server.wait_status(project_id, "TRAINED")
                        server.stream(project_id, "clear")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
