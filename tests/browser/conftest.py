"""Browser fixtures: a real `streamlit run` per test, against the test OpenAI server, driven by Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from chatbot.settings import SETTING_NAMES
from tests.browser.ui import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, follow_script_runs

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
STARTUP_SECONDS = 30  # `streamlit run` answers /_stcore/health in ~1.5 s; allow a loaded machine
STOP_SECONDS = 5  # after this, a `streamlit run` asked to stop is killed
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it

READY = '[data-testid="stChatInput"] textarea'  # drawn at the end of the chat view's script run

expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test so the page fixture knows whether to take a screenshot."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@dataclass
class StreamlitApp:
    """A running `streamlit run streamlit_app.py`: where to browse and where it saves history."""

    url: str
    history_dir: Path
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        """The server's combined stdout/stderr, for failure messages."""
        return self.log.read_text("utf-8", errors="replace")[-4000:]

    def healthy(self) -> bool:
        """True once Streamlit's server answers its health check."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as response:
                return response.read().strip() == b"ok"
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self) -> bool:
        """Wait, bounded, for the health check; False if the server died or never answered."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.healthy():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Terminate, then kill if it does not exit promptly."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_streamlit(folder: Path, model_server: str, **settings: str) -> StreamlitApp:
    """Start `streamlit run` on a free port with its own history folder; do not wait for it."""
    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env.update(
        OPENAI_BASE_URL=model_server,
        CHATBOT_MAX_RETRIES="0",
        CHATBOT_TIMEOUT="5",
        CHATBOT_HISTORY_DIR=str(folder / "history"),
        **settings,
    )
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # others edit the sources while tests run
        "--secrets.files", str(folder / "no-secrets.toml"),  # a developer's secrets.toml must not leak in
    ]
    log = folder / "streamlit.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return StreamlitApp(f"http://127.0.0.1:{port}", folder / "history", process, log)


class StreamlitLauncher:
    """Hands each test a fresh app, started and warmed up one test ahead.

    A cold `streamlit run` takes ~8 s to its first rendered page (start, then the script's first run
    imports pandas and openai); starting the next test's app and opening it once in a throwaway context
    while the current test runs brings a test's wait down to ~3 s. Every app still serves exactly one
    test, with its own history folder. The warm-up asks the shared test server for /v1/models, so that
    request may show up in the current test's `openai_server.requests` (never in `chat_requests`).
    """

    def __init__(self, browser: Browser, model_server: str, folders: pytest.TempPathFactory) -> None:
        self.browser = browser
        self.model_server = model_server
        self.folders = folders
        self.spare: StreamlitApp | None = None
        self.warming: BrowserContext | None = None
        self.retired: list[tuple[StreamlitApp, float]] = []

    def spawn(self) -> StreamlitApp:
        """Start an app, retrying when its port was taken between choosing and binding it."""
        for _ in range(START_ATTEMPTS):
            app = spawn_streamlit(self.folders.mktemp("streamlit"), self.model_server)
            if app.wait_healthy():
                return app
            app.stop()
            if f"Port {app.url.rsplit(':', 1)[1]} is not available" not in app.output():
                break
        pytest.fail(f"`streamlit run` did not answer /_stcore/health at {app.url} within {STARTUP_SECONDS}s "
                    f"(exit code {app.process.returncode}). Its output:\n{app.output()}")

    def take(self, spare_needed: bool) -> StreamlitApp:
        """The app for this test: the warmed spare if there is one; start the next test's app."""
        self.reap()
        app, self.spare = self.spare, None
        self.finish_warming()
        if app is None or not app.wait_healthy():
            if app is not None:
                self.retire(app)
            app = self.spawn()
        if spare_needed:
            self.spare = spawn_streamlit(self.folders.mktemp("streamlit"), self.model_server)
        return app

    def retire(self, app: StreamlitApp) -> None:
        """Ask a used app to stop without waiting for it: its shutdown overlaps the next test."""
        if app.process.poll() is None:
            app.process.terminate()
        self.retired.append((app, time.monotonic()))

    def reap(self, grace: float = STOP_SECONDS) -> None:
        """Collect retired apps; kill those still running `grace` seconds after being asked to stop."""
        still_running = []
        for app, since in self.retired:
            if app.process.poll() is None and time.monotonic() - since < grace:
                still_running.append((app, since))
            elif app.process.poll() is None:
                app.process.kill()
                app.process.wait(timeout=STOP_SECONDS)
        self.retired = still_running

    def warm_spare(self) -> None:
        """Open the spare app once in a throwaway context; the page keeps loading while the test runs."""
        if self.spare is None:
            return
        if not self.spare.wait_healthy():
            self.spare.stop()
            self.spare = None
            return
        self.warming = self.browser.new_context()
        self.warming.new_page().goto(self.spare.url, wait_until="commit")

    def finish_warming(self) -> None:
        """Let the warm-up's first run end, then close it; a failed warm-up only costs time."""
        if self.warming is None:
            return
        with contextlib.suppress(PlaywrightError):  # the test's own page waits and reports any problem
            self.warming.pages[0].locator(READY).wait_for(timeout=TIMEOUT_MS)
        self.warming.close()
        self.warming = None

    def close(self) -> None:
        """Stop whatever was started ahead and never used."""
        if self.warming is not None:
            self.warming.close()
        if self.spare is not None:
            self.retire(self.spare)
        for app, _ in self.retired:
            app.stop()
        self.retired = []


def uses_the_app_later(item: pytest.Item) -> bool:
    """True when a test after this one also needs an app, so starting one ahead is not wasted."""
    later = item.session.items[item.session.items.index(item) + 1:]
    return any("streamlit_app" in other.fixturenames for other in later)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the whole run; Playwright cannot download its own here."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
                    "Install it with `apt-get install -y chromium` (or run `make browser`).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def streamlit_launcher(browser, openai_server_session, tmp_path_factory) -> Iterator[StreamlitLauncher]:
    """One launcher per run, so each test's app can be started during the test before it."""
    launcher = StreamlitLauncher(browser, openai_server_session.base_url, tmp_path_factory)
    yield launcher
    launcher.close()


@pytest.fixture
def streamlit_app(streamlit_launcher, openai_server, request) -> Iterator[StreamlitApp]:
    """The app as deployed, on its own port and empty history folder, answering through the test server."""
    app = streamlit_launcher.take(spare_needed=uses_the_app_later(request.node))
    yield app
    streamlit_launcher.retire(app)


@pytest.fixture
def history_dir(history_dir, streamlit_app):
    """In browser tests, the folder the app under test saves to, not the pytest process's own."""
    return streamlit_app.history_dir


def screenshot_path(item: pytest.Item) -> Path:
    """test-artifacts/screenshots/<test name>.png, with the name made safe for a file system."""
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', item.name)}.png"


def save_screenshot(page: Page, item: pytest.Item) -> None:
    """A full-page picture of what the user saw when the test failed."""
    path = screenshot_path(item)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(path), full_page=True, timeout=5_000)
    except PlaywrightError as error:  # the page may have crashed; the test's own error matters more
        print(f"Could not save a screenshot to {path}: {error}")
    else:
        print(f"Screenshot of the failure: {path}")


def failed(item: pytest.Item) -> bool:
    """True when the test's setup or body failed."""
    reports = (getattr(item, f"report_{when}", None) for when in ("setup", "call"))
    return any(report is not None and report.failed for report in reports)


@pytest.fixture
def page(browser, streamlit_app, streamlit_launcher, request) -> Iterator[Page]:
    """A fresh browser context on the app, opened and ready for input; screenshot kept if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    follow_script_runs(page)
    try:
        page.goto(streamlit_app.url)
        expect(page.locator(READY)).to_be_editable()  # the script's first run is over
    except (PlaywrightError, AssertionError):
        save_screenshot(page, request.node)
        context.close()
        raise
    streamlit_launcher.warm_spare()
    yield page
    if failed(request.node):
        save_screenshot(page, request.node)
    context.close()
