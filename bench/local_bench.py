"""Is the app's in-process local path as fast as llama-cpp-python's own OpenAI-compatible server?

Run: .venv/bin/python -m bench.local_bench [--repeats 5] [--max-tokens 128] [--long-repeats 2]
(needs bench/requirements.txt). Both paths load the same GGUF with the same context size and
threads, get the same prompts, caps, sampling settings and seeds, and are timed alternately in
one run; the table shows medians. Target: the app streams at >= 90 % of the server's tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from openai import OpenAI

from bench.llama_server import run_llama_server, served_models
from chatbot.local_model import find_model_file
from chatbot.providers.base import ChatRequest
from chatbot.providers.local import (
    CONTEXT_TOKENS,
    DEFAULT_REPEAT_PENALTY,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    LocalProvider,
    default_threads,
)

PROMPTS = [
    "Explain what a list is in Python.",
    "My order arrived damaged. How can I get a refund?",
    "Write a short story about a lighthouse keeper.",
]
TARGET = 0.90
# A long first message, like a pasted document: how long the model reads before it answers.
LONG_NOTE = " ".join(
    f"Item {n}: the shipment for customer {n * 7} left the warehouse on day {n % 28 + 1}." for n in range(60)
)
LONG_QUESTION = "Which customer's shipment is item 12?"
LONG_REPLY = 32


@dataclass
class Sample:
    """One streamed reply: when its first text arrived and how fast the rest came."""

    first_token_ms: float
    tokens_per_s: float
    text: str


def time_stream(deltas: Iterator[str], started: float, count_tokens: Callable[[str], int]) -> Sample:
    """Decode speed counts the tokens after the first over the time after the first."""
    first = None
    text = ""
    for delta in deltas:
        if delta and first is None:
            first = time.perf_counter()
        text += delta
    end = time.perf_counter()
    if first is None:
        raise RuntimeError("the stream produced no text")
    tokens = count_tokens(text)
    rate = (tokens - 1) / (end - first) if end > first else 0.0
    return Sample((first - started) * 1000, rate, text)


def app_stream(provider: LocalProvider, prompt: str, max_tokens: int, seed: int) -> Sample:
    """The app's path: LocalProvider.execute, iterating the Reply as the UI does."""
    request = ChatRequest(
        messages=[{"role": "user", "content": prompt}],
        model=provider.model_name,
        temperature=DEFAULT_TEMPERATURE,
        max_tokens=max_tokens,
    )
    started = time.perf_counter()
    return time_stream(iter(provider.execute(request, seed=seed)), started, provider.count_tokens)


def server_stream(
    client: OpenAI, model: str, prompt: str, max_tokens: int, seed: int, count: Callable[[str], int]
) -> Sample:
    """The reference: the same request, streamed from llama_cpp.server with the openai client."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=max_tokens,
        temperature=DEFAULT_TEMPERATURE,
        top_p=DEFAULT_TOP_P,
        seed=seed,
        extra_body={"repeat_penalty": DEFAULT_REPEAT_PENALTY},
    )
    deltas = (chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    return time_stream(deltas, started, count)


@dataclass
class Results:
    """Samples per path, and the app/server ratio of each adjacent pair (cancels machine drift)."""

    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"app": [], "server": []})
    paired_rate: list[float] = field(default_factory=list)
    paired_first: list[float] = field(default_factory=list)
    same_text: int = 0


def run(repeats: int, max_tokens: int, threads: int, long_repeats: int) -> None:
    """Alternate the two paths per prompt and repetition, then print the medians as a table."""
    model_path = find_model_file()
    if model_path is None:
        raise SystemExit("No local model: run `make run` once, or set CHATBOT_LOCAL_MODEL_PATH.")
    provider = LocalProvider.load(model_path, n_ctx=CONTEXT_TOKENS, n_threads=threads)
    short, long = Results(), Results()
    with run_llama_server(model_path, n_ctx=CONTEXT_TOKENS, n_threads=threads) as base_url:
        client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
        model = served_models(base_url)[0]

        def measure(path: str, prompt: str, cap: int, seed: int) -> Sample:
            if path == "app":
                return app_stream(provider, prompt, cap, seed)
            return server_stream(client, model, prompt, cap, seed, provider.count_tokens)

        measure("app", "Hi", 8, 0)  # warm both up: page the model in, fill caches
        measure("server", "Hi", 8, 0)
        step = 0
        for _ in range(repeats):
            for prompt in PROMPTS:
                add_pair(short, measure, prompt, max_tokens, step)
                step += 1
        for repeat in range(long_repeats):  # a new opening each time, so no prompt cache helps
            add_pair(long, measure, f"Note {repeat}: {LONG_NOTE}\n{LONG_QUESTION}", LONG_REPLY, step)
            step += 1
    long_tokens = provider.count_prompt_tokens([{"role": "user", "content": f"Note 0: {LONG_NOTE}"}])
    print(
        f"{len(PROMPTS)} prompts x {repeats} repeats, max_tokens={max_tokens}; then {long_repeats} "
        f"fresh prompts of {long_tokens} tokens, max_tokens={LONG_REPLY}. n_ctx={CONTEXT_TOKENS}, "
        f"n_threads={threads}, temperature={DEFAULT_TEMPERATURE}, top_p={DEFAULT_TOP_P}, "
        f"repeat_penalty={DEFAULT_REPEAT_PENALTY}; same seed per pair, identical text in "
        f"{short.same_text + long.same_text}/{repeats * len(PROMPTS) + long_repeats} pairs.\n"
    )
    print("| prompt | path | first token, ms | tokens/s | first token vs server | tokens/s vs server |")
    print("|---|---|---:|---:|---:|---:|")
    print_rows("short", short)
    if long_repeats:
        print_rows(f"{long_tokens} tokens", long)
    ratio = statistics.median(short.paired_rate)
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"\nThe app {verdict} the target of {TARGET:.0%} of the server's tokens/s ({ratio:.0%}).")


def add_pair(results: Results, measure: Callable[..., Sample], prompt: str, cap: int, step: int) -> None:
    """Both paths back to back with the same seed, the first to go alternating."""
    order = ("app", "server") if step % 2 == 0 else ("server", "app")
    pair = {path: measure(path, prompt, cap, step) for path in order}
    for path, sample in pair.items():
        results.samples[path].append(sample)
    results.same_text += pair["app"].text == pair["server"].text
    results.paired_rate.append(pair["app"].tokens_per_s / pair["server"].tokens_per_s)
    results.paired_first.append(pair["app"].first_token_ms / pair["server"].first_token_ms)


def print_rows(label: str, results: Results) -> None:
    """Medians; the ratios are medians of per-pair ratios (the table is ready for docs/benchmarks.md)."""
    labels = {"app": "app (LocalProvider.execute)", "server": "llama_cpp.server + openai client"}
    for path in ("app", "server"):
        samples = results.samples[path]
        first = statistics.median(s.first_token_ms for s in samples)
        rate = statistics.median(s.tokens_per_s for s in samples)
        first_ratio = statistics.median(results.paired_first) if path == "app" else 1.0
        rate_ratio = statistics.median(results.paired_rate) if path == "app" else 1.0
        print(
            f"| {label} | {labels[path]} | {first:.0f} | {rate:.1f} | {first_ratio:.0%} | {rate_ratio:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--long-repeats", type=int, default=2, help="fresh long prompts (0: none)")
    args = parser.parse_args()
    run(args.repeats, args.max_tokens, args.threads, args.long_repeats)


if __name__ == "__main__":
    main()
