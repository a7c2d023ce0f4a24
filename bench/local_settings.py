"""Compare sampling settings for the bundled model, to choose LocalProvider's defaults by measurement.

Run: .venv/bin/python -m bench.local_settings [--seeds 2] [--penalties 1.0 1.1] [--system ""]
     .venv/bin/python -m bench.local_settings --facts [--seeds 4]
The first form generates every prompt under every repeat_penalty x temperature with
max_tokens=512; a 256-token cap gives the same reply cut at 256 tokens (sampling does not depend
on the cap), so "over 256" counts the replies it would cut. --facts scores short factual answers
per temperature and system prompt. Both take minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys

from chatbot.providers.base import ChatRequest, Reply
from chatbot.providers.local import DEFAULT_REPEAT_PENALTY, LocalProvider, load_local_provider

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a list is in Python.",
    "My order arrived damaged. How can I get a refund?",
]
FACTS = [
    ("What is the capital of France?", "paris"),
    ("What is the capital of Japan?", "tokyo"),
    ("How many legs does a spider have?", r"\beight\b|\b8\b"),
    ("What is 2 + 2?", r"\bfour\b|\b4\b"),
    ("Who wrote Romeo and Juliet?", "shakespeare"),
    ("What color is the sky on a clear day?", "blue"),
]
REPEAT_PENALTIES = [1.0, 1.1, 1.2, 1.3]
TEMPERATURES = [0.2, 0.7]
APP_SYSTEM_PROMPT = "You are a helpful assistant."  # the app's default (CHATBOT_SYSTEM_PROMPT)
SMOLLM_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
MAX_TOKENS = 512
SHORT_CAP = 256


def distinct_4grams(text: str) -> float:
    """Share of word 4-grams that are distinct: near 1 for prose, low when the model loops."""
    words = text.split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) / len(grams) if grams else 1.0


def generate(
    provider: LocalProvider, system: str, prompt: str, temperature: float, max_tokens: int, seed: int
) -> Reply:
    """One reply; an empty system prompt lets the chat template put in the model's own."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    request = ChatRequest(messages=messages, model="local", temperature=temperature, max_tokens=max_tokens)
    reply = provider.execute(request, seed=seed)
    for _ in reply:
        pass
    return reply


def compare_settings(
    seeds: range, penalties: list[float], temperatures: list[float], system: str, dump: str | None
) -> None:
    """Every prompt under every setting; one summary row per setting."""
    provider = load_local_provider()
    rows, replies = [], []
    for penalty, temperature in itertools.product(penalties, temperatures):
        provider.repeat_penalty = penalty
        tokens, distinct, loops, capped, over_short, paris = [], [], 0, 0, 0, 0
        for prompt, seed in itertools.product(PROMPTS, seeds):
            reply = generate(provider, system, prompt, temperature, MAX_TOKENS, seed)
            count = reply.usage["completion_tokens"] if reply.usage else 0
            ratio = distinct_4grams(reply.text)
            tokens.append(count)
            distinct.append(ratio)
            loops += ratio < 0.8
            capped += reply.finish_reason == "length"
            over_short += count > SHORT_CAP
            paris += "France" in prompt and "Paris" in reply.text
            replies.append((penalty, temperature, seed, prompt, reply.finish_reason, reply.text))
        rows.append(
            f"| {penalty} | {temperature} | {statistics.mean(tokens):.0f} | {capped} | "
            f"{over_short} | {statistics.mean(distinct):.2f} | {loops} | {paris}/{len(seeds)} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"{len(PROMPTS) * len(seeds)} replies per setting, system prompt {system or '(model default)'!r}.\n"
    )
    print(
        f"| repeat_penalty | temperature | mean tokens | hit {MAX_TOKENS} | over {SHORT_CAP} | "
        "distinct 4-grams | looping (<0.8) | Paris |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if dump:
        with open(dump, "w", encoding="utf-8") as handle:
            for penalty, temperature, seed, prompt, finish, text in replies:
                handle.write(f"## rp={penalty} t={temperature} seed={seed} ({finish})\n")
                handle.write(f"**{prompt}**\n\n{text}\n\n")


def compare_facts(seeds: range, temperatures: list[float]) -> None:
    """Short factual answers per temperature and system prompt: how often the answer is right."""
    provider = load_local_provider()
    systems = {"(model default)": "", APP_SYSTEM_PROMPT: APP_SYSTEM_PROMPT}
    systems[SMOLLM_SYSTEM_PROMPT[:24] + "… (explicit)"] = SMOLLM_SYSTEM_PROMPT
    print(f"repeat_penalty={DEFAULT_REPEAT_PENALTY}, max_tokens=48; temperature 0 is greedy (one run).\n")
    print("| temperature | system prompt | right |")
    print("|---|---|---|")
    for temperature, (name, system) in itertools.product(temperatures, systems.items()):
        right = total = 0
        for (question, answer), seed in itertools.product(FACTS, seeds if temperature else [0]):
            reply = generate(provider, system, question, temperature, 48, seed)
            hit = re.search(answer, reply.text.lower()) is not None
            right, total = right + hit, total + 1
            if not hit:
                print(f"  miss t={temperature} {name[:16]!r}: {reply.text[:80]!r}", file=sys.stderr)
        print(f"| {temperature} | {name} | {right}/{total} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", action="store_true", help="score factual answers instead")
    parser.add_argument("--seeds", type=int, default=2, help="replies per prompt and setting")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--penalties", type=float, nargs="+", default=REPEAT_PENALTIES)
    parser.add_argument("--temperatures", type=float, nargs="+")
    parser.add_argument("--system", default=APP_SYSTEM_PROMPT, help='"" for the model\'s own')
    parser.add_argument("--dump", help="write every reply to this markdown file")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.facts:
        compare_facts(seeds, args.temperatures or [0.0, 0.2, 0.7])
    else:
        compare_settings(seeds, args.penalties, args.temperatures or TEMPERATURES, args.system, args.dump)


if __name__ == "__main__":
    main()
