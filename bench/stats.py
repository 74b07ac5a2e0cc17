"""Summaries of timing samples and the plain-text tables every benchmark prints."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import date


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually measured, never an interpolation."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def ms(seconds: float) -> str:
    """Milliseconds with the precision the noise of a shared machine allows."""
    value = seconds * 1000
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so a run's output can be pasted into the README as it is."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))


def print_header(title: str) -> None:
    # The machine matters more than anything else for these numbers: say what it was.
    print(f"## {title}")
    print(
        f"{date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), {platform.machine()} {platform.system()}"
    )
    print()
