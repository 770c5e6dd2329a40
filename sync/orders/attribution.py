"""Attribution: linking external movements to the order lines that explain them.

Observed stock stays the only source of truth; an order never moves a pool. It only explains a
movement already booked: a sale explains a drop on its listing, a cancellation or return a rise.
Either can arrive first (a stock read before the feed, or the feed before the read), so matching
runs whenever either side grows, and links whatever is left unexplained, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Unexplained:
    """A movement with `units` (signed like the movement) not yet explained by any order line."""

    movement_id: int
    units: int
    at: datetime


@dataclass(frozen=True)
class Explainer:
    """An order line able to explain `units` more: negative for its sale, positive for its
    cancellation or return. A sale explains only a drop booked at or after its `at` (the earliest
    its stock can have moved): a drop booked before the order existed is something else."""

    line_id: int
    units: int
    at: datetime


@dataclass(frozen=True)
class Link:
    """`units` of a movement explained by an order line (signed like the movement)."""

    movement_id: int
    line_id: int
    units: int


def match(movements: Sequence[Unexplained], explainers: Sequence[Explainer]) -> list[Link]:
    """Link one listing's unexplained movements to its order lines, oldest first on both sides,
    drops to sales (made by then) and rises to cancellations and returns."""
    links: list[Link] = []
    for sign in (-1, 1):
        moves = sorted((m for m in movements if m.units * sign > 0), key=lambda m: (m.at, m.movement_id))
        lines = sorted((e for e in explainers if e.units * sign > 0), key=lambda e: (e.at, e.line_id))
        left = [abs(e.units) for e in lines]
        i = 0
        for move in moves:
            need = abs(move.units)
            # A drop takes only sales that can have happened by then (lines sorted by that time).
            while need and i < len(lines) and (sign > 0 or lines[i].at <= move.at):
                take = min(need, left[i])
                links.append(Link(move.movement_id, lines[i].line_id, take * sign))
                need -= take
                left[i] -= take
                if left[i] == 0:
                    i += 1
    return links
