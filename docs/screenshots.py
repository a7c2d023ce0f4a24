"""Take the screenshots in docs/screenshots/ of each page, on a demo history: `make screenshots`.

A real `streamlit run` with the customer-service profile, answering through the test OpenAI server,
over a generated history of four weeks, photographed by Debian's headless Chromium.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.live_app import chromium, open_app, streamlit_app, wait_idle
from chatbot.profile import PROFILES_DIR, load_profile
from history.models import Conversation, make_message, utc_now
from history.stores.json_store import JsonHistoryStore
from tests.openai_server import OpenAIServer

OUT = Path(__file__).resolve().parent / "screenshots"
PROFILE = PROFILES_DIR / "customer_service.toml"
QUESTIONS = [
    "Do you sell waterproof hiking boots?",
    "Can I change the size of my order?",
    "Is the Summit 2 tent good for winter?",
    "Do you ship to Canada?",
    "What sleeping bag do you recommend for -5 °C?",
]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def demo_history(store: JsonHistoryStore, days: int = 28, seed: int = 7) -> None:
    """Conversations over `days` days: starters answered by the script, others by the model, some rated."""
    rng = random.Random(seed)
    profile = load_profile(PROFILE)
    start = datetime.now(UTC) - timedelta(days=days)
    for day in range(days):
        for _ in range(rng.randint(2, 9)):
            moment = start + timedelta(days=day, hours=rng.uniform(8, 20))
            question = rng.choice([*profile.starters, *QUESTIONS])
            messages = [make_message("user", question, created_at=stamp(moment))]
            moment += timedelta(seconds=rng.uniform(1, 4))
            scripted = profile.scripted_answer(question)
            if scripted:
                answer = make_message("assistant", scripted, created_at=stamp(moment), source="scripted")
                messages.append(answer)
            elif rng.random() < 0.06:
                messages.append(make_message("assistant", profile.fallback, created_at=stamp(moment),
                                             source="fallback", error="server"))
            else:
                latency = int(rng.lognormvariate(7.3, 0.4))
                rating = rng.choices(["up", "down", None], [5, 1, 6])[0]
                extra = {"feedback": rating} if rating else {}
                messages.append(make_message(
                    "assistant", "Here is what I found…", created_at=stamp(moment), model="gpt-4.1-mini",
                    finish_reason="stop", latency_ms=latency, first_token_ms=latency // 4,
                    usage={"prompt_tokens": rng.randint(300, 600), "completion_tokens": rng.randint(40, 250)},
                    **extra,
                ))
            store.create(Conversation(model="gpt-4.1-mini", created_at=messages[0]["created_at"],
                                      messages=messages, title=question))


def showcase(store: JsonHistoryStore) -> None:
    """The newest conversation, which the Chat page opens: a scripted answer, then a model one."""
    profile = load_profile(PROFILE)
    question = "What is your return policy?"
    messages = [
        make_message("user", question),
        make_message("assistant", profile.scripted_answer(question), source="scripted"),
        make_message("user", "Can I return boots I wore once on a trail?"),
        make_message(
            "assistant",
            "Returns need to be **unworn, with the tags attached**, so boots worn outdoors can't be "
            "returned. If they are faulty, though, our 1-year warranty covers them: email "
            "support@acme-outfitters.example with your order number and a photo.",
            model="gpt-4.1-mini", finish_reason="stop", latency_ms=1840, first_token_ms=420,
            usage={"prompt_tokens": 512, "completion_tokens": 61}, feedback="up",
        ),
    ]
    store.create(Conversation(model="gpt-4.1-mini", created_at=utc_now(), messages=messages, title=question))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    pages = (("chat", "", 900), ("history", "history", 900), ("insights", "insights", 3400))
    server = OpenAIServer(["gpt-4.1-mini"])
    with tempfile.TemporaryDirectory(prefix="screenshots-") as scratch, server:
        store = JsonHistoryStore(Path(scratch) / "history")
        demo_history(store)
        showcase(store)
        app_context = streamlit_app(store.root, server.base_url, CHATBOT_PROFILE=str(PROFILE))
        with app_context as app, chromium() as browser:
            for name, path, height in pages:
                page = open_app(browser, f"{app.url}/{path}", ready="Answering:")
                page.set_viewport_size({"width": 1280, "height": height})  # the app scrolls inside the page
                page.wait_for_timeout(1500)  # charts and the table's canvas draw after the run ends
                wait_idle(page)
                page.screenshot(path=str(OUT / f"{name}.png"))
                page.context.close()
                print(f"Saved {OUT / f'{name}.png'}")


if __name__ == "__main__":
    main()
