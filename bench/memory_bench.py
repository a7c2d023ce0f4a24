"""Server memory with 10,000 conversations stored, against the same server with an empty history folder.

Run: .venv/bin/python -m bench.memory_bench [--conversations 10000]
For each folder: `streamlit run streamlit_app.py`, Chromium opens the app, then its Load History table;
the `streamlit run` process's VmRSS (and peak VmHWM) is read from /proc after each step.
No target was set: the numbers are reported so a change that grows them shows up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import history_data as data
from bench.live_app import LiveApp, chromium, open_app, streamlit_app, wait_idle
from bench.report import add_quiet_options, load_average, machine, section, table, wait_for_quiet
from tests.openai_server import OpenAIServer

SETTLE_SECONDS = 2.0  # let the server finish sending before reading its memory


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def sample(app: LiveApp) -> dict[str, int]:
    time.sleep(SETTLE_SECONDS)
    return {"rss": app.rss_kb("VmRSS"), "peak": app.rss_kb("VmHWM")}


def measure(history: Path, model_url: str, rows: int) -> dict[str, dict[str, int]]:
    """RSS after start-up, after a browser session opened the app, and after it opened Load History."""
    with streamlit_app(history, model_url) as app:
        steps = {"started": sample(app)}
        with chromium() as browser:
            page = open_app(browser, app.url)
            steps["app open"] = sample(app)
            page.get_by_test_id("stSidebar").get_by_role("button", name="Load History").click()
            if rows:
                page.locator('[data-testid="stDataFrame"]').wait_for()
            else:
                page.get_by_text("No saved conversations yet").wait_for()
            wait_idle(page)
            steps["Load History open"] = sample(app)
    return steps


def report(empty: dict, full: dict, conversations: int) -> None:
    rows = []
    for step in empty:
        for key, label in (("rss", "VmRSS"), ("peak", "VmHWM (peak)")):
            base, value = empty[step][key], full[step][key]
            rows.append([step, label, mb(base), mb(value), f"{(value - base) / 1024:+,.0f} MB"])
    headers = ["After", "Measure", "Baseline: empty history", f"{conversations:,} stored", "Difference"]
    section("`streamlit run` server memory (one browser session)", table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    add_quiet_options(parser)
    args = parser.parse_args()
    wait_for_quiet(args)
    print(machine(browser=True))
    with OpenAIServer() as server, tempfile.TemporaryDirectory(prefix="memory-bench-") as scratch:
        empty, full = Path(scratch) / "empty", Path(scratch) / "full"
        empty.mkdir()
        data.fill(full, args.conversations, args.messages)
        baseline = measure(empty, server.base_url, 0)
        stored = measure(full, server.base_url, args.conversations)
    report(baseline, stored, args.conversations)
    print(load_average())


if __name__ == "__main__":
    main()
