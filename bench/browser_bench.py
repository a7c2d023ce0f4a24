"""What the browser adds on top of the model server: delay to the first token, and a long reply's stream.

Run: .venv/bin/python -m bench.browser_bench [--repeats 7] [--long-repeats 3]
Starts the test OpenAI server and `streamlit run streamlit_app.py`, and drives Debian's Chromium. Times are
taken inside the page (performance.now() at the Enter keydown, and in a MutationObserver when the text
appears), so Python's polling adds nothing. Baseline, same run and server: the raw openai client.
Targets: the browser adds < 100 ms to the first token; a 4,000-token reply at 500 tokens/s is fully shown
within 1.1x the server's own stream time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

import openai
from playwright.sync_api import Page

from bench import report as rp
from bench.live_app import TIMEOUT_MS, chromium, open_app, streamlit_app, wait_idle
from bench.page_probes import CHAT_PROBE, WEBSOCKET_HOOK
from chatbot.settings import DEFAULT_SYSTEM_PROMPT
from tests.openai_server import OpenAIServer, Script

MARKER = "finis."  # the long reply's last token; no other token contains it
HEAD = ["Measure", "Median (p90, n)", "Target", "Result"]


def short_script(i: int) -> Script:
    """A short reply whose first token names the round, so old bubbles never match it."""
    return Script(text=f"Reply{i:03d}: Paris is the capital of France, and it sits on the Seine.")


def long_script(i: int) -> Script:
    """Script.long(4000 tokens at 500/s), unique per round, ending in a marker the page looks for.

    Unique because Streamlit's browser-side message cache would otherwise replay a repeated text.
    """
    script = Script.long(tokens=4000, tokens_per_second=500)
    script.deltas[0] = f"Essay{i:03d} {script.deltas[0]}"
    script.deltas[-1] = " " + MARKER
    script.text = "".join(script.deltas)
    return script


def raw_stream(client: openai.OpenAI, text: str) -> tuple[float, float]:
    """Seconds from the request to the first and to the last content delta, as the app requests it."""
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": text}]
    started = time.perf_counter()
    first = last = None
    stream = client.chat.completions.create(
        model="test-model", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                last = time.perf_counter()
                first = first or last
    if first is None:
        raise RuntimeError("the raw stream produced no text")
    return first - started, last - started


def saved_messages(history: Path) -> list[list[dict]]:
    """Every saved conversation's messages, oldest file first; a file being replaced is skipped."""
    found = []
    for path in sorted(history.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            found.append(json.loads(path.read_text("utf-8"))["messages"])
        except (OSError, ValueError, KeyError):
            continue
    return found


def wait_saved(history: Path, count: int) -> None:
    """Bounded wait until `count` replies are saved, so the next round starts from a finished turn."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while sum(m["role"] == "assistant" for c in saved_messages(history) for m in c) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the reply was not saved within {TIMEOUT_MS / 1000:.0f} s")
        time.sleep(0.05)


def record_arrivals(server: OpenAIServer) -> list[float]:
    """Wall-clock arrival of each chat request at the model server, to split the delay into stages."""
    arrivals: list[float] = []
    pick = server._next_script

    def recording(body: dict) -> Script:
        arrivals.append(time.time())
        return pick(body)

    server._next_script = recording
    return arrivals


def browser_round(page: Page, history: Path, text: str, needle: str, replies: int) -> dict[str, float]:
    """Send one message and wait for `needle` in the reply; wall-clock time of every stage seen."""
    page.evaluate("needle => { window.__bench.needle = needle; }", needle)
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill(text)
    box.press("Enter")
    page.wait_for_function("() => window.__bench.shown !== null", timeout=TIMEOUT_MS)
    wait_saved(history, replies)
    wait_idle(page)
    probe = page.evaluate("() => ({origin: performance.timeOrigin, ...window.__bench})")
    page_keys = ("sent", "wsFirst", "wsNeedle", "shown")
    stamps = {k: (probe["origin"] + probe[k]) / 1000 for k in page_keys if probe[k] is not None}
    *_, user, reply = saved_messages(history)[-1]
    saved = {"user_saved": user["created_at"], "reply_saved": reply["created_at"]}
    return stamps | {k: datetime.fromisoformat(v).timestamp() for k, v in saved.items()}


def start_fresh(page: Page) -> None:
    """An empty conversation, so every long reply renders into the same page."""
    page.get_by_test_id("stSidebar").get_by_role("button", name="Start Fresh").click()
    page.get_by_role("heading", name="New conversation").first.wait_for()
    wait_idle(page)


def run(args: argparse.Namespace) -> dict[str, list]:
    """Alternate raw and browser rounds so drifting machine load hits both alike; round 0 warms up."""
    out: dict[str, list] = {"raw_first": [], "page_first": [], "raw_long": [], "page_long": []}
    with OpenAIServer() as server, tempfile.TemporaryDirectory(prefix="browser-bench-") as scratch:
        client = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0, timeout=60)
        history, arrivals = Path(scratch) / "history", record_arrivals(server)
        with streamlit_app(history, server.base_url) as app, chromium() as browser:
            page = open_app(browser, app.url, init_script=WEBSOCKET_HOOK)
            page.evaluate(CHAT_PROBE)
            replies = 0
            for i in range(args.repeats + 1):
                question = f"Question {i}: what is the capital of France?"
                server.enqueue(short_script(i), short_script(i))
                raw = raw_stream(client, question)[0]
                replies += 1
                shown = browser_round(page, history, question, f"Reply{i:03d}", replies)
                if i:
                    out["raw_first"].append(raw)
                    out["page_first"].append(shown | {"arrived": arrivals[-1]})
            for i in range(args.long_repeats):
                server.enqueue(long_script(2 * i), long_script(2 * i + 1))
                out["raw_long"].append(raw_stream(client, f"Write me a long essay, take {i}.")[1])
                start_fresh(page)
                replies += 1
                shown = browser_round(page, history, f"Write me a long essay, take {i}.", MARKER, replies)
                out["page_long"].append(shown | {"arrived": arrivals[-1]})
    return out


def stages_table(title: str, rounds: list[dict], stages: list[tuple[str, str, str]]) -> None:
    """Median of each stage, from consecutive timestamps of the same rounds."""
    rows = [[name, rp.spread([r[end] - r[start] for r in rounds])] for name, start, end in stages]
    rp.section(title, rp.table(["Stage", "Median (p90, n)"], rows))


def report(out: dict[str, list]) -> None:
    first, raw = [r["shown"] - r["sent"] for r in out["page_first"]], out["raw_first"]
    added = rp.median(first) - rp.median(raw)
    rows = [["Raw openai client: request → first content delta", rp.spread(raw), "baseline", ""],
            ["Browser: Enter keydown → first reply text in the bubble", rp.spread(first), "", ""],
            ["**Added by the app and browser** (difference of medians)", rp.ms(added), "< 100 ms",
             rp.verdict(added < 0.100, "see where the time goes, below")]]
    rp.section("Delay before the first token", rp.table(HEAD, rows))
    stages_table("First token: where the time goes (wall clock)", out["page_first"], [
        ("Enter keydown → first websocket message back (rerun started)", "sent", "wsFirst"),
        ("… → user message saved (rerun up to the save)", "wsFirst", "user_saved"),
        ("… → request reaches the model server (fsync'd save, request)", "user_saved", "arrived"),
        ("… → websocket message with the first token reaches the page", "arrived", "wsNeedle"),
        ("… → first token shown in the bubble (page renders)", "wsNeedle", "shown")])
    shown, raw_long = [r["shown"] - r["sent"] for r in out["page_long"]], out["raw_long"]
    ratio = rp.median(shown) / rp.median(raw_long)
    rows = [["Raw openai client: request → last delta", rp.spread(raw_long), "baseline", ""],
            ["Browser: Enter keydown → last token shown", rp.spread(shown), "", ""],
            ["**Browser ÷ raw** (ratio of medians)", f"{ratio:.2f}×", "≤ 1.10×",
             rp.verdict(ratio <= 1.10, "see where the time goes, below")]]
    rp.section("A 4,000-token reply at 500 tokens/s", rp.table(HEAD, rows))
    stages_table("Long reply: where the time goes (wall clock)", out["page_long"], [
        ("Enter keydown → request reaches the model server", "sent", "arrived"),
        ("… → websocket message with the last token reaches the page", "arrived", "wsNeedle"),
        ("… → last token shown in the bubble (page renders)", "wsNeedle", "shown"),
        ("(request reaches the server → app saved the whole reply)", "arrived", "reply_saved")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="first-token rounds (after one warm-up)")
    parser.add_argument("--long-repeats", type=int, default=3, help="4,000-token rounds")
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    rp.wait_for_quiet(args)
    print(rp.machine(browser=True))
    report(run(args))
    print(rp.load_average())


if __name__ == "__main__":
    main()
