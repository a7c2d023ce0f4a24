"""Script rerun time with a 1,000-message conversation open, against rendering all 1,000 messages.

Run: .venv/bin/python -m bench.rerun_bench [--messages 1000] [--repeats 15]
The app shows the newest 50 messages and a "Show earlier messages" button. Measured two ways, each
against the baseline script bench/all_messages_app.py run the same way in the same run:
- AppTest: at.run() of a rerun after the first run (the script alone, no browser);
- browser: Streamlit's rerun key "r" in Chromium until the app's status is idle again (timed in the page).
Target: a rerun under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from playwright.sync_api import Page
from streamlit.testing.v1 import AppTest

from bench import history_data as data
from bench.live_app import REPO, TIMEOUT_MS, chromium, open_app, streamlit_app
from bench.page_probes import RERUN_PROBE
from bench.report import (
    add_quiet_options,
    load_average,
    machine,
    median,
    ms,
    section,
    spread,
    table,
    timed,
    verdict,
    wait_for_quiet,
)
from history.json_store import encode
from tests.openai_server import OpenAIServer

APP = "streamlit_app.py"
BASELINE = "bench/all_messages_app.py"
TARGET = 0.150
SHOWN: dict[str, int] = {}  # chat bubbles each page ended with


def content(n: int, k: int) -> str:
    """Short questions and markdown answers, like a real long chat."""
    return f"Question {k}: how does step {k} work?" if k % 2 == 0 else data.REPLY


def write_conversation(history: Path, messages: int) -> None:
    history.mkdir(parents=True)
    conv = data.conversation(0, messages, content=content)
    (history / f"{conv.id}.json").write_bytes(encode(conv))


def apptest_reruns(script: str, repeats: int) -> list[float]:
    """Seconds per at.run() after the first, which pays for imports and the first load."""
    at = AppTest.from_file(str(REPO / script), default_timeout=60)
    at.run()
    if at.exception:
        raise RuntimeError(f"{script} failed under AppTest: {at.exception}")
    bubbles = len(at.chat_message)
    times = timed(at.run, repeats)
    if len(at.chat_message) != bubbles:
        raise RuntimeError(f"{script} changed between reruns ({bubbles} → {len(at.chat_message)} bubbles)")
    return times


def browser_rerun(page: Page) -> dict[str, float]:
    """Press Streamlit's rerun key; seconds until each script state shows, timed in the page."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the app
    page.keyboard.press("r")
    page.wait_for_function("() => window.__rerun.idle !== null", timeout=TIMEOUT_MS)
    probe = page.evaluate("() => window.__rerun")
    return {state: (t - probe["pressed"]) / 1000 for state, t in probe["states"].items()}


def browser_reruns(history: Path, model_url: str, repeats: int) -> dict[str, list[dict[str, float]]]:
    """Both scripts served at once, reruns alternating so machine load hits them alike."""
    out: dict[str, list[dict[str, float]]] = {APP: [], BASELINE: []}
    with (
        streamlit_app(history, model_url, APP) as app,
        streamlit_app(history, model_url, BASELINE) as base,
        chromium() as browser,
    ):
        pages = {APP: open_app(browser, app.url), BASELINE: open_app(browser, base.url)}
        for page in pages.values():
            page.evaluate(RERUN_PROBE)
            browser_rerun(page)  # warm-up
        for _ in range(repeats):
            for script, page in pages.items():
                out[script].append(browser_rerun(page))
        for script, page in pages.items():
            SHOWN[script] = page.locator('[data-testid="stChatMessage"]').count()
    return out


def state_times(runs: list[dict[str, float]], state: str) -> list[float]:
    return [run[state] for run in runs if state in run]


def report(apptest: dict[str, list[float]], browser: dict[str, list[dict]], messages: int) -> None:
    idle = {script: state_times(runs, "notRunning") for script, runs in browser.items()}
    rows = []
    for how, results in (("AppTest: at.run()", apptest), ("Browser: key r → app idle", idle)):
        app, base = median(results[APP]), median(results[BASELINE])
        rows.append(
            [
                how,
                spread(results[APP]),
                spread(results[BASELINE]),
                f"{base / app:.1f}×",
                "< 150 ms",
                verdict(app < TARGET, "see where the time goes below"),
            ]
        )
    headers = [
        f"Rerun, {messages:,}-message conversation open",
        f"App (newest {SHOWN[APP]} shown)",
        f"Baseline: all {SHOWN[BASELINE]} rendered",
        "Baseline ÷ app",
        "Target",
        "Result",
    ]
    section("Script rerun with a long conversation open (median, p90)", table(headers, rows))
    stages = [
        ("rerunRequested", "key r → the page has asked the server to rerun"),
        ("running", "… → the server says the script is running"),
        ("notRunning", "… → the script has finished and the page is idle"),
    ]
    rows = [
        [name, *(ms(median(state_times(browser[s], state))) for s in (APP, BASELINE))]
        for state, name in stages
    ]
    section(
        "Browser rerun: where the time goes (median time since the key press)",
        table(["Stage", "App", "Baseline (all messages)"], rows),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    add_quiet_options(parser)
    args = parser.parse_args()
    wait_for_quiet(args)
    print(machine(browser=True))
    with OpenAIServer() as server, tempfile.TemporaryDirectory(prefix="rerun-bench-") as scratch:
        history = Path(scratch) / "history"
        write_conversation(history, args.messages)
        os.environ.update(
            CHATBOT_HISTORY_DIR=str(history), OPENAI_BASE_URL=server.base_url, CHATBOT_MAX_RETRIES="0"
        )
        apptest = {script: apptest_reruns(script, args.repeats) for script in (APP, BASELINE)}
        browser = browser_reruns(history, server.base_url, args.repeats)
    report(apptest, browser, args.messages)
    print(load_average())


if __name__ == "__main__":
    main()
