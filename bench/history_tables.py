"""The history benchmark's tables: every figure with its sample count, every target with pass or miss."""

from __future__ import annotations

from bench.report import median, ms, section, spread, table, verdict

CHECK_HEAD = ["Target", "Measured", "Result"]


def times(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2f}×"


def saving_tables(results: dict[int, dict]) -> None:
    """Save costs per size and the Flask baseline, then the flatness and speed-up targets."""
    headers = ["Conversations", "On disk", "Save user message", "Save full turn (user + reply)",
               "Flask: user message", "Flask: full turn", "Flask ÷ ours (turn)"]
    rows = [[f"{n:,}", f"{r['mb']:.1f} MB", spread(r["append"]), spread(r["turn"]), spread(r["flask_append"]),
             spread(r["flask_turn"]), times(median(r["flask_turn"]) / median(r["turn"]))]
            for n, r in results.items()]
    section("Saving a turn (median, p90)", table(headers, rows))
    small, large = min(results), max(results)
    checks = []
    for key, name in (("append", "user message"), ("turn", "full turn")):
        big, one = median(results[large][key]), median(results[small][key])
        why = f"{ms(big)} vs {ms(one)}: both rewrite one file with fsync; compare the p90s for disk noise"
        target = f"{name} at {large:,} within 20 % of {small:,}"
        checks.append([target, times(big / one), verdict(big <= one * 1.2, why)])
    if 10_000 in results:
        r = results[10_000]
        for key, name in (("append", "user message"), ("turn", "full turn")):
            speedup = median(r[f"flask_{key}"]) / median(r[key])
            why = "each save is an fsync'd atomic rewrite (a turn is two), and fsync dominates"
            target = f"{name} ≥ 100× faster than Flask at 10,000"
            checks.append([target, times(speedup), verdict(speedup >= 100, why)])
    section("Saving a turn: targets", table(CHECK_HEAD, checks))
