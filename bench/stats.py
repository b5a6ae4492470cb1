"""Pure helpers for the figures: percentiles and summaries (no Django, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks; ``None`` if empty."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0-100, not {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """``n``, ``p50``, ``p95``, ``p99``, ``max`` and ``min`` of ``values`` (``None`` for an empty list)."""
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
        "min": ordered[0] if ordered else None,
    }


def rate(count: int, seconds: float) -> float | None:
    """Events per second, ``None`` when nothing was timed."""
    return count / seconds if seconds > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def scaled(value: float | None, factor: float, digits: int = 1) -> float | None:
    """``value * factor`` rounded, keeping ``None``: seconds to milliseconds, bytes to MB."""
    return None if value is None else round(value * factor, digits)


def duplicates(counts: Iterable[int]) -> int:
    """Messages beyond the first, over all keys: 3 messages for one (alert, minute) are 2 duplicates."""
    return sum(count - 1 for count in counts if count > 1)
