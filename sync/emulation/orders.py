"""The orders an emulated platform's customers place: one order per sale, with a status history
the platform's own order list shows, and cancellation that gives the units back."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmuLine:
    """One order line: the code sold and how many units."""

    line_id: str
    code: str
    quantity: int


@dataclass
class EmuOrder:
    """One order: its lines, status in the platform's words, and wall-clock times."""

    order_id: str
    lines: list[EmuLine]
    status: str
    placed: float
    modified: float
    seq: int
    history: list[str] = field(default_factory=list)
    # An item's own status where it left its order's (Graas, for Lazada: one item cancelled).
    item_status: dict[str, str] = field(default_factory=dict)

    def move_to(self, status: str, now: float) -> None:
        """Change status, as the platform would record it."""
        self.status, self.modified = status, now
        self.history.append(status)

    def move_item(self, line_id: str, status: str, now: float) -> None:
        """Change one item's status while the order's stays."""
        self.item_status[line_id], self.modified = status, now
        self.history.append(status)


class OrderBook:
    """Every order of one emulated account, newest last."""

    def __init__(self, clock: Callable[[], float], order_id: Callable[[int], str]) -> None:
        self.clock = clock
        self._order_id = order_id
        self._seq = itertools.count(1)
        self.orders: dict[str, EmuOrder] = {}

    def place_lines(self, items: Iterable[tuple[str, int]], status: str) -> EmuOrder:
        """A new order of (code, units) lines, placed now."""
        seq = next(self._seq)
        order_id = self._order_id(seq)
        now = self.clock()
        lines = [EmuLine(f"{order_id}-{i}", code, units) for i, (code, units) in enumerate(items, start=1)]
        order = EmuOrder(order_id, lines, status, now, now, seq, [status])
        self.orders[order_id] = order
        return order

    def oldest(self, code: str, statuses: Iterable[str], *, newest: bool = False) -> EmuOrder | None:
        """The oldest (or newest) order in one of `statuses` with a line for `code`."""
        wanted = set(statuses)
        found = (o for o in (reversed(self.orders.values()) if newest else self.orders.values()) if o.status in wanted)
        return next((o for o in found if any(line.code == code for line in o.lines)), None)

    def by_newest(self, key: Callable[[EmuOrder], float]) -> list[EmuOrder]:
        """Every order, newest first by `key` (ties: the later placed first)."""
        return sorted(self.orders.values(), key=lambda o: (key(o), o.seq), reverse=True)
