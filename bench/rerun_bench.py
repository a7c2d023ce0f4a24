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
import contextlib
import os
import tempfile
from pathlib import Path

from playwright.sync_api import Page
from streamlit.testing.v1 import AppTest

from bench import history_data as data
from bench.live_app import REPO, TIMEOUT_MS, chromium, open_app, streamlit_app, wait_idle
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
from history.stores.json_store import encode
from tests.openai_server import OpenAIServer

APP = "streamlit_app.py"
BASELINE = "bench/all_messages_app.py"
FLOOR = "bench/empty_app.py"
EARLIER = "Show 50 earlier"  # the app's button that widens its window by 50 messages
TARGET = 0.150
# variant -> (script, widen the window once); a widened app gives a second point for the cost per message
VARIANTS = {"app": (APP, False), "app+50": (APP, True), "baseline": (BASELINE, False),
            "floor": (FLOOR, False)}


def content(n: int, k: int) -> str:
    """Short questions and markdown answers, like a real long chat."""
    return f"Question {k}: how does step {k} work?" if k % 2 == 0 else data.REPLY


def write_conversation(history: Path, messages: int) -> None:
    history.mkdir(parents=True)
    conv = data.conversation(0, messages, content=content)
    (history / f"{conv.id}.json").write_bytes(encode(conv))


def apptest_reruns(script: str, widen: bool, repeats: int) -> tuple[int, list[float]]:
    """Bubbles shown, and seconds per at.run() after the first (which pays for imports and loading)."""
    at = AppTest.from_file(str(REPO / script), default_timeout=60).run()
    if widen:
        next(b for b in at.button if b.label.startswith(EARLIER)).click().run()
    if at.exception:
        raise RuntimeError(f"{script} failed under AppTest: {at.exception}")
    bubbles = len(at.chat_message)
    times = timed(at.run, repeats)
    if len(at.chat_message) != bubbles:
        raise RuntimeError(f"{script} changed between reruns ({bubbles} → {len(at.chat_message)} bubbles)")
    return bubbles, times


def browser_rerun(page: Page) -> dict[str, float]:
    """Press Streamlit's rerun key; seconds until each script state shows, timed in the page."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the app
    page.keyboard.press("r")
    page.wait_for_function("() => window.__rerun.idle !== null", timeout=TIMEOUT_MS)
    probe = page.evaluate("() => window.__rerun")
    return {state: (t - probe["pressed"]) / 1000 for state, t in probe["states"].items()}


def browser_reruns(history: Path, model_url: str, repeats: int, shown: dict[str, int]) -> dict[str, list]:
    """One page per variant, showing as many bubbles as under AppTest; reruns take turns."""
    out: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    scripts = sorted({script for script, _ in VARIANTS.values()})
    with contextlib.ExitStack() as stack:
        apps = {script: stack.enter_context(streamlit_app(history, model_url, script)) for script in scripts}
        browser = stack.enter_context(chromium())
        pages = {name: open_app(browser, apps[script].url) for name, (script, _) in VARIANTS.items()}
        for name, page in pages.items():
            if VARIANTS[name][1]:
                page.get_by_role("button", name=EARLIER).click()
            bubbles = "() => document.querySelectorAll('[data-testid=\"stChatMessage\"]').length"
            page.wait_for_function(f"() => ({bubbles})() === {shown[name]}", timeout=TIMEOUT_MS)
            wait_idle(page)
            page.evaluate(RERUN_PROBE)
            browser_rerun(page)  # warm-up
        for _ in range(repeats):
            for name, page in pages.items():
                out[name].append(browser_rerun(page))
    return out


def idle_times(runs: list[dict[str, float]], state: str = "notRunning") -> list[float]:
    return [run[state] for run in runs if state in run]


def fit(shown: dict[str, int], results: dict[str, list[float]]) -> tuple[float, float]:
    """Seconds per shown message and with none shown, from the app at two window sizes."""
    per = (median(results["app+50"]) - median(results["app"])) / (shown["app+50"] - shown["app"])
    return per, median(results["app"]) - per * shown["app"]


def why_missed(shown: dict[str, int], results: dict[str, list[float]]) -> str:
    """Split the app's rerun into a part per shown message and a fixed part, next to Streamlit's floor."""
    per, fixed = fit(shown, results)
    floor = median(results["floor"])
    window = (TARGET - fixed) / per if per > 0 else float("inf")
    fix = f"a window of ≤ {window:.0f} messages would do" if window >= 1 else "no window size gets there"
    return (f"{ms(per)} per shown message + {ms(fixed)} fixed (fit through {shown['app']} and "
            f"{shown['app+50']} shown), of which an empty script costs {ms(floor)}: {fix}")


def report(shown: dict[str, int], apptest: dict, browser: dict[str, list[dict]], messages: int) -> None:
    idle = {name: idle_times(runs) for name, runs in browser.items()}
    rows = []
    for how, results in (("AppTest: at.run()", apptest), ("Browser: key r → app idle", idle)):
        app, base = median(results["app"]), median(results["baseline"])
        rows.append([how, spread(results["app"]), spread(results["app+50"]), spread(results["baseline"]),
                     spread(results["floor"]), f"{base / app:.1f}×", "< 150 ms",
                     verdict(app < TARGET, why_missed(shown, results))])
    headers = [f"Rerun, {messages:,}-message conversation open", f"App (newest {shown['app']} shown)",
               f"App after one “Show earlier” ({shown['app+50']} shown)",
               f"Baseline: all {shown['baseline']} rendered", "Floor: empty script", "Baseline ÷ app",
               "Target", "Result"]
    section("Script rerun with a long conversation open (median, p90)", table(headers, rows))
    stages = [("rerunRequested", "key r → the page has asked the server to rerun"),
              ("running", "… → the page shows the script as running"),
              ("notRunning", "… → the script has finished and the page is idle")]
    rows = [[name, *(ms(median(idle_times(browser[v], state))) for v in VARIANTS)] for state, name in stages]
    section("Browser rerun: where the time goes (median time since the key press)",
            table(["Stage", *(f"{v} ({shown[v]} shown)" for v in VARIANTS)], rows))


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
        os.environ.update(CHATBOT_HISTORY_DIR=str(history), OPENAI_BASE_URL=server.base_url,
                          CHATBOT_MAX_RETRIES="0")
        shown, apptest = {}, {}
        for name, (script, widen) in VARIANTS.items():
            shown[name], apptest[name] = apptest_reruns(script, widen, args.repeats)
        browser = browser_reruns(history, server.base_url, args.repeats, shown)
    report(shown, apptest, browser, args.messages)
    print(load_average())


if __name__ == "__main__":
    main()
