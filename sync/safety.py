"""Safety stops: an account whose answer looks like an outage rather than trade is not booked.

A platform that suddenly reports none of its items, only zeros, or a drop on more than a set share
of its listings in one read would, if booked, empty the pool everywhere. Such a read is refused for
the cycle and the account reported as stopped; it resumes by itself once its reads look sane.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SafetyLimits:
    """When to refuse an account's read: at least `min_listings` known listings in the batch, and
    more than `max_drop_share` of them lower than expected (or all gone, or all zero)."""

    min_listings: int = 10
    max_drop_share: float = 0.5


def refuse_reason(
    known: Mapping[str, int], observed: Mapping[str, int], limits: SafetyLimits, *, expect_drops: bool = False
) -> str | None:
    """Why this read must not be booked, or None. `known` maps SKU -> expected for listings the
    ledger already holds; `observed` maps SKU -> quantity read now. `expect_drops` is for a batch
    chosen because orders say its SKUs sold (the fast path): drops are its point, so only an
    answer with none of the listings, or all of them at zero, is refused."""
    if len(known) < limits.min_listings:
        return None
    seen = {sku: observed[sku] for sku in known if sku in observed}
    if not seen:
        return f"reported none of its {len(known)} known listings"
    if all(q == 0 for q in seen.values()) and any(known[sku] > 0 for sku in seen):
        return f"reported all {len(seen)} listings at zero"
    dropped = sum(1 for sku, q in seen.items() if q < known[sku])
    if not expect_drops and dropped / len(seen) > limits.max_drop_share:
        return f"{dropped} of {len(seen)} listings dropped at once (limit {limits.max_drop_share:.0%})"
    return None
