"""Browser tests of the dashboard: the real server as a subprocess, Debian's Chromium driven by Playwright.

The tests FAIL (they do not skip) when Chromium or Playwright is missing: CI must provide them
(``apt-get install chromium``; ``pip install -e ".[test]"``). ``PRCORE_CHROMIUM`` names another Chromium binary.

Screenshots of the main views are written to ``docs/screenshots/`` (committed; the README shows them).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest

from prcore_core import PrCore

CHROMIUM = os.environ.get("PRCORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}
#: Default wait for a condition in the page (the CI machine may be slow; most conditions hold in well under 1 s).
TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; missing Chromium or Playwright is a failure, not a skip."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: the browser tests need it (apt-get install chromium, or set "
                    "PRCORE_CHROMIUM)", pytrace=False)  # fmt: skip
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """Files a user uploads: a demo log, a log of ongoing cases, a broken zip."""
    from prcore_core.demo import generate_demo_log

    directory = tmp_path_factory.mktemp("uploads")
    demo = generate_demo_log(n_cases=400, seed=11)
    (directory / "loan-applications.csv").write_bytes(demo.to_csv())
    ongoing = generate_demo_log(n_cases=60, seed=12).events
    position = ongoing.groupby("case_id").cumcount()
    length = ongoing.groupby("case_id")["case_id"].transform("size")
    running = ongoing[position < (length * 0.5).clip(lower=2)]
    (directory / "ongoing-cases.csv").write_bytes(running.to_csv(index=False).encode())
    (directory / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip file")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    (directory / "two-files.zip").write_bytes(buffer.getvalue())
    return directory


@pytest.fixture(scope="session")
def trained_server(tmp_path_factory, server_class):
    """A server over a data directory with a project already trained on the demo log (through the facade)."""
    from workbench.cli import create_demo_project

    directory = tmp_path_factory.mktemp("trained") / "data"
    with PrCore(data_dir=directory) as core:
        create_demo_project(core, n_cases=400, seed=5).wait_until("TRAINED", 300)
    server = server_class(directory).start()
    yield server
    server.stop()


#: Reads BokehJS' views of the page: for each text glyph of a figure whose title starts with the argument, where
#: its labels are drawn and where its plot frame is.
CHART_LABELS_JS = """(title) => {
  const labels = [], seen = new Set();
  const walk = (view) => {
    if (!view || seen.has(view)) { return; }
    seen.add(view);
    const plot = view.parent;
    if (view.model?.type === "GlyphRenderer" && view.glyph?.model.type === "Text" && plot?.model?.title
        && String(plot.model.title.text).startsWith(title)) {
      const frame = plot.frame.bbox, texts = Array.from(view.glyph.text);
      for (let i = 0; i < view.glyph.data_size; i++) {
        const rect = view.glyph.rect_i(i), xs = [rect.p0.x, rect.p1.x, rect.p2.x, rect.p3.x];
        labels.push({text: String(texts[i]), left: Math.min(...xs), right: Math.max(...xs),
                     frame_left: frame.left, frame_right: frame.right, x_end: plot.model.x_range.end});
      }
    }
    for (const child of (view.children ? view.children() : [])) { walk(child); }
  };
  for (const root of Bokeh.index.roots) { walk(root); }
  return labels;
}"""


class Workbench:
    """The dashboard in one browser page, with waits on conditions (never fixed sleeps)."""

    def __init__(self, page, server):
        self.page, self.server = page, server

    def open(self, view: str | None = None, project: int | None = None) -> Workbench:
        query = "&".join(f"{k}={v}" for k, v in (("view", view), ("project", project)) if v is not None)
        self.page.goto(f"{self.server.url}/{'?' + query if query else ''}")
        self.find(".wb-main").wait_for(timeout=TIMEOUT_MS)
        return self

    def find(self, css: str):
        return self.page.locator(css).first

    def nav(self, page: str) -> None:
        self.find(f".wb-nav-{page} button").click()
        self.find(f".wb-view-{page}").wait_for(timeout=TIMEOUT_MS)

    def click(self, css: str) -> None:
        self.find(f"{css} button").click()

    def select(self, css: str, value: str) -> None:
        self.find(f"{css} select").select_option(value)

    def fill(self, css: str, value: str) -> None:
        box = self.find(f"{css} input")
        box.fill(value)
        box.press("Enter")

    def upload(self, css: str, path: Path) -> None:
        self.find(f"{css} input[type=file]").set_input_files(str(path))

    def wait_text(self, css: str, text: str | re.Pattern, timeout: float = TIMEOUT_MS) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator(css).filter(has_text=text).first).to_be_visible(timeout=timeout)

    def wait(self, css: str, timeout: float = TIMEOUT_MS):
        locator = self.find(css)
        locator.wait_for(state="visible", timeout=timeout)
        return locator

    def open_live_case(self) -> None:
        """Open the case of the newest live row as an operator does: pause the table, click the row, resume (a
        click on rows that move on can land mid-redraw)."""
        freeze = self.find(".wb-live-freeze input")
        freeze.check()
        self.page.wait_for_timeout(600)  # longer than one drain of the live view: an update in flight lands
        for attempt in range(3):
            self.find(".wb-live-table .tabulator-row").click()
            try:
                self.wait_text(".wb-case-header", "Case ", timeout=10_000)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        freeze.uncheck()

    def point_at(self, css: str) -> None:
        """Move the pointer over an element as a person does (no waiting for the element to hold still first)."""
        element = self.find(css)
        element.scroll_into_view_if_needed()
        box = element.bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)

    def chart_labels(self, title: str) -> list[dict]:
        """The text labels drawn in the charts whose title starts with ``title``: each label's left and right edge
        on the canvas, its plot frame's edges (labels are cut off at the frame) and the x axis' end."""
        return self.page.evaluate(CHART_LABELS_JS, title)

    def wait_chart_labels(self, title: str, pattern: str = ".", timeout: float = TIMEOUT_MS) -> list[dict]:
        """:meth:`chart_labels` once one of the labels matches ``pattern`` (a JavaScript regular expression)."""
        self.page.wait_for_function(
            f"([title, pattern]) => ({CHART_LABELS_JS})(title).some((label) => new RegExp(pattern).test(label.text))",
            arg=[title, pattern],
            timeout=timeout,
        )
        return self.chart_labels(title)

    def box(self, css: str) -> dict:
        return self.find(css).bounding_box()

    def screenshot(self, name: str, max_height: int = 2400) -> Path:
        """The whole view: the page grows to the height of the template's scrolling main area for the picture."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        height = self.page.evaluate("() => { const main = document.getElementById('main'); main.scrollTop = 0; "
                                    "return main.scrollHeight + main.getBoundingClientRect().top; }")  # fmt: skip
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(max(height + 16, 700),
                                                                                     max_height))})  # fmt: skip
        self.page.wait_for_timeout(400)  # let the layout settle and the last frame paint
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(VIEWPORT)
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.failed_call = report.failed
    return report


@pytest.fixture
def page(browser, request, tmp_path):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
    yield page
    if getattr(request.node, "failed_call", False):  # a picture of the page as it was when the test failed
        path = tmp_path / "failure.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"Screenshot of the failed page: {path}")
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def wb(page, trained_server) -> Workbench:
    return Workbench(page, trained_server)


@pytest.fixture
def workbench_on(page):
    """The dashboard of another server in this test's page: ``workbench_on(server)``."""
    return lambda server: Workbench(page, server)
