"""A real `streamlit run` and a headless Chromium for the browser benchmarks, both bounded and cleaned up."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from chatbot.settings import SETTING_NAMES
from tests.browser.ui import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60
TIMEOUT_MS = 60_000  # every browser wait is bounded by this
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@dataclass
class LiveApp:
    url: str
    process: subprocess.Popen
    log: Path

    def rss_kb(self, field: str = "VmRSS") -> int:
        """Resident memory of the `streamlit run` process, from /proc (kB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{field} missing from /proc/{self.process.pid}/status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def _wait_healthy(app: LiveApp) -> None:
    """Bounded wait for the health check; the log tail explains a failure."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and app.process.poll() is None:
        if _healthy(app.url):
            return
        time.sleep(0.1)
    tail = app.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"streamlit did not start at {app.url}:\n{tail}")


@contextlib.contextmanager
def streamlit_app(
    history_dir: Path, model_url: str, script: str = "streamlit_app.py", secrets: str = "", **settings: str
) -> Iterator[LiveApp]:
    """`streamlit run <script>` on a free port, answering through `model_url`, saving to `history_dir`.

    `secrets` is the text of the app's secrets.toml (none by default: a developer's must not leak in).
    """
    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env.update(OPENAI_BASE_URL=model_url, CHATBOT_HISTORY_DIR=str(history_dir), CHATBOT_MAX_RETRIES="0")
    env.update(settings)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-app-") as scratch:
        log = Path(scratch) / "streamlit.log"
        (Path(scratch) / "secrets.toml").write_text(secrets, encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            "--secrets.files",
            str(Path(scratch) / "secrets.toml"),
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        app = LiveApp(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_healthy(app)
            yield app
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Terminate our own child; kill it if it does not exit promptly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium: Playwright cannot download its own browser here."""
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_app(browser: Browser, url: str, ready: str = "Answering:", init_script: str | None = None) -> Page:
    """A new browser session on the app, returned once `ready` shows and the first run has finished."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    page.get_by_text(ready).first.wait_for()
    wait_idle(page)
    return page


def wait_idle(page: Page) -> None:
    """Until Streamlit reports that no script run is in progress."""
    page.locator(IDLE).wait_for(state="attached")
