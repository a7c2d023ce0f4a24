"""bench/index_bench.py's tables: each figure for both designs and their ratio; each target, pass or miss."""

from __future__ import annotations

import argparse

from bench.index_data import QUERIES
from bench.report import median, ms, p90, section, spread, table, verdict

LABELS = {
    "session": "New session: newest conversation found and opened",
    "page": "First History page (100 rows now; every row before)",
}
LABELS |= {f"search:{label}": f"Search, {label}: `{query}`" for label, query in QUERIES.items()}
TARGETS = {"session": (0.300, 1.0), "page": (0.150, 1.0)} | {
    f"search:{label}": (0.200, 0.200) for label in QUERIES
}
INSIGHTS_TARGET = 1.0
FLAT = 1.2


def ratio(new: float, old: float) -> str:
    """New ÷ old: below 1 the new design is faster."""
    value = new / old
    return f"{value:.3f}×" if value < 0.1 else f"{value:.2f}×"


def reads(results: dict, n: int) -> list[list[str]]:
    """The warm and cold rows of the reads table, and their target checks."""
    rows, checks = [], []
    warm = {design: results["warm"][design]["samples"] for design in ("new", "old")}
    what = {design: results["warm"][design]["what"] for design in ("new", "old")}
    for key, label in LABELS.items():
        cold = results["cold"][key]
        new_warm, old_warm = warm["new"][key], warm["old"][key]
        new_cold = [r["work_s"] for r in cold["new"]]
        old_cold = [r["work_s"] for r in cold["old"]]
        process = " / ".join(ms(median([r["process_s"] for r in cold[design]])) for design in ("new", "old"))
        rows.append(
            [
                label,
                f"{what['new'][key]} / {what['old'][key]}",
                spread(new_warm),
                spread(old_warm),
                ratio(median(new_warm), median(old_warm)),
                spread(new_cold),
                spread(old_cold),
                ratio(median(new_cold), median(old_cold)),
                process,
            ]
        )
        warm_limit, cold_limit = TARGETS[key]
        for name, samples, limit in (("warm", new_warm, warm_limit), ("cold", new_cold, cold_limit)):
            value = median(samples)
            checks.append(
                [
                    f"{label}, {name} < {ms(limit)}",
                    f"{ms(value)} (p90 {ms(p90(samples))})",
                    verdict(value < limit, f"{value / limit:.1f}× the target"),
                ]
            )
    headers = [
        "Operation",
        "Result (new / old)",
        "New, warm",
        "Old, warm",
        "New ÷ old",
        "New, cold",
        "Old, cold",
        "New ÷ old",
        "Cold process incl. start and imports (new / old)",
    ]
    section(
        f"Reads at {n:,} conversations: warm (same process again) and cold (a fresh process, index "
        "files present; after imports) — median, p90",
        table(headers, rows),
    )
    return checks


def insights(results: dict, n: int) -> list[list[str]]:
    cold = results["cold"]["insights"]
    rows, checks = [], []
    parts = (
        ("rows_s", "Read: new `store.insights()` (SQL aggregates); old `insight_rows()`, the message frame"),
        ("figures_s", "The figures the page draws on what was read (new: none left)"),
        ("work_s", "Both: the Insights page's data"),
        ("process_s", "The fresh process incl. start and imports"),
    )
    for key, label in parts:
        new, old = [r[key] for r in cold["new"]], [r[key] for r in cold["old"]]
        rows.append([label + " (fresh process)", spread(new), spread(old), ratio(median(new), median(old))])
    new, old = results["warm"]["new"]["samples"]["insights"], results["warm"]["old"]["samples"]["insights"]
    rows.append(
        [
            "The page's data again in the same process (warm)",
            spread(new),
            spread(old),
            ratio(median(new), median(old)),
        ]
    )
    title = f"Insights at {n:,} conversations ({cold['new'][0]['what']}) — median, p90"
    section(title, table(["Step", "New", "Old", "New ÷ old"], rows))
    value = median([r["work_s"] for r in cold["new"]])
    checks.append(
        [
            f"Insights in a fresh process < {ms(INSIGHTS_TARGET)} (the page's data)",
            ms(value),
            verdict(value < INSIGHTS_TARGET, f"{value / INSIGHTS_TARGET:.1f}× the target"),
        ]
    )
    return checks


def saving(results: dict) -> list[list[str]]:
    saves = results["save"]
    sizes = sorted(saves["new"])
    rows = []
    for size in sizes:
        new, old = saves["new"][size], saves["old"][size]
        rows.append(
            [
                f"{size:,}",
                spread(new),
                f"{median(new) / median(saves['new'][sizes[0]]):.2f}×",
                spread(old),
                f"{median(old) / median(saves['old'][sizes[0]]):.2f}×",
                ratio(median(new), median(old)),
            ]
        )
    headers = [
        "Conversations",
        "New",
        f"New ÷ new at {sizes[0]:,}",
        "Old",
        f"Old ÷ old at {sizes[0]:,}",
        "New ÷ old",
    ]
    section(
        "Saving a turn: `exists()` + `append()` of one user message, sizes taking turns — median, p90",
        table(headers, rows),
    )
    checks = []
    for design in ("new", "old"):
        flat = median(saves[design][sizes[-1]]) / median(saves[design][sizes[0]])
        target = f"{design} design: a save at {sizes[-1]:,} within 20 % of {sizes[0]:,}"
        checks.append([target, f"{flat:.2f}×", verdict(flat <= FLAT, f"{flat:.2f}×")])
    return checks


def rebuilds(results: dict) -> None:
    rows = []
    for design, label in (
        ("new", "New: `count()` builds `.index/index.sqlite`"),
        ("old", "Old: first `list()` + search + `insight_rows()` write their three files"),
    ):
        runs = results["rebuild"][design]
        if not runs:
            continue
        seconds = [r["work_s"] for r in runs]
        parts = "; ".join(
            f"{part} {ms(median([r['parts'][part] for r in runs]))}" for part in runs[0]["parts"]
        )
        rate = runs[0]["conversations"] / median(seconds)
        rows.append([label, spread(seconds), f"{rate:,.0f}", parts, f"{runs[0]['index_mb']:,.0f} MB"])
    if rows:
        headers = [
            "Design",
            "From no index files (fresh process)",
            "Conversations per second",
            "Parts (median)",
            "Index files",
        ]
        section("Rebuilding the folder's index from nothing — median, p90", table(headers, rows))


def print_tables(results: dict, args: argparse.Namespace) -> None:
    checks = reads(results, args.conversations) + insights(results, args.conversations) + saving(results)
    rebuilds(results)
    section("Targets (new design)", table(["Target", "Measured (median)", "Result"], checks))
