"""What every benchmark prints the same way: medians, markdown tables, verdicts and the machine."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call, so medians and spreads come from the same samples."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    """The 90th percentile by rank: one slow outlier in ten shows, one in a hundred does not."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def ms(seconds: float) -> str:
    """Milliseconds with precision that suits the size, so small and large values both read well."""
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def spread(values: Sequence[float]) -> str:
    """Median and p90 in one cell, with the sample count so a single run is not mistaken for more."""
    return f"{ms(median(values))} (p90 {ms(p90(values))}, n={len(values)})"


def verdict(ok: bool, why: str = "") -> str:
    """A table cell that says pass, or miss and why."""
    return "pass" if ok else f"**miss** — {why}" if why else "**miss**"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title: str, body: str) -> None:
    """Print a titled markdown block, flushed at once so long runs show progress."""
    print(f"\n### {title}\n\n{body}\n", flush=True)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gb() -> float:
    """Physical memory, from sysconf: what the OS file cache can hold of a large history."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _chromium_version() -> str:
    try:
        out = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "chromium: not found"
    return out.stdout.strip() or "chromium: unknown version"


def machine(browser: bool = False) -> str:
    """Date, cores, CPU, Python and load: numbers from a busy 2-core box need this context."""
    import streamlit  # late: history-only runs need not pay for it in their header

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        f"nproc={os.cpu_count()} ({_cpu_model()})",
        f"RAM {_ram_gb():.0f} GB",
        f"Python {sys.version.split()[0]}",
        f"streamlit {streamlit.__version__}",
        f"load average {load}",
    ]
    if browser:
        parts.append(_chromium_version())
    return "Machine: " + "; ".join(parts) + "\n" + command()


def command() -> str:
    """The exact command of this run, to copy into docs/benchmarks.md with its results."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    name = spec.name if spec else sys.argv[0]
    return f"Command: .venv/bin/python -m {' '.join([name, *sys.argv[1:]])}"


def add_quiet_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-load", type=float, default=1.5, help="wait for a 1-minute load below this")
    parser.add_argument("--wait", type=float, default=120, help="but wait at most this many seconds")


def wait_for_quiet(args: argparse.Namespace) -> None:
    """Bounded wait for other work to end: on a shared 2-core box, other jobs decide the numbers."""
    deadline = time.monotonic() + args.wait
    while os.getloadavg()[0] > args.max_load and time.monotonic() < deadline:
        time.sleep(5)
    load = os.getloadavg()[0]
    if load > args.max_load:
        print(
            f"Warning: the 1-minute load is still {load:.1f} after waiting {args.wait:.0f} s: "
            "other work on this machine inflates the numbers below.",
            flush=True,
        )


def load_average() -> str:
    """The 1-minute load now, printed at the end so a run disturbed by other work is visible."""
    return f"load average at the end: {os.getloadavg()[0]:.2f}"
