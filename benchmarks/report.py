"""Printing figures: one small fixed-width table per sub-benchmark, and the statistics they use.

Benchmarks print numbers for people to read and compare; nothing here decides pass or
fail. Ratios are always against a baseline measured in the same run on the same machine,
so a busy machine shifts both sides of the ratio instead of the headline figure alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "print_table", "ratio", "section"]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(value: float, baseline: float) -> str:
    if not baseline or math.isnan(baseline) or math.isnan(value):
        return "-"
    return f"{value / baseline:.2f}x"


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print(flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
