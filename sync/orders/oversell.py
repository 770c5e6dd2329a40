"""Oversells: a pool below zero means orders the seller cannot fill. The newest orders are the
ones that cannot be filled (the older ones took the units first); this module picks them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    """An open order holding `units` of the oversold SKU."""

    order_id: int
    account: str
    external_id: str
    units: int
    placed_at: datetime


def orders_to_act_on(shortfall: int, covered: int, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The newest candidates whose units cover what the orders already acted on do not.

    `shortfall` is how far the pool is below zero, `covered` the units of the orders already acted
    on for this oversell. Ties in time go to the larger order id, so the choice is deterministic."""
    missing = shortfall - covered
    chosen: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.placed_at, c.external_id, c.order_id), reverse=True):
        if missing <= 0:
            break
        chosen.append(candidate)
        missing -= candidate.units
    return chosen
