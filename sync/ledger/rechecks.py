"""Orders read one at a time. A list read only at its ends (OTO's, Ankorstore's: no "updated since"
filter, no documented sort order) misses a status change in its middle, so each open order is read
on its own now and then (`orders.checked_at`), the longest unread first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.attribution import RETURNING
from sync.ledger.models import Order, OrderLine, Sku
from sync.ledger.orders import record_statuses
from sync.platforms.base import OrderState

# Orders whose status may still move stock: open ones, and those whose release awaits the platform.
STILL_MOVING = (OrderState.OPEN.value, OrderState.RELEASING.value)
StatusRead = tuple[str, OrderState] | None  # what a single-order read found (None: unknown now)


@dataclass
class Rechecked:
    """What booking single-order reads changed: the SKUs whose orders gave units back, and the
    listings (account id, SKU id) whose attribution may have changed."""

    changes: int = 0
    returned_skus: set[str] = field(default_factory=set)
    listings: set[tuple[int, int]] = field(default_factory=set)


class OrderRechecks:
    """The queue of open orders to read on their own, and the booking of what they showed."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def due(self, account_id: int, now: datetime, every: timedelta, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` open (or releasing) orders of the account (ledger id, platform id) not read, on their own
        or by the feed, within `every`: the longest waiting first."""
        last = func.coalesce(Order.checked_at, Order.updated_at)
        with self.sessions() as session:
            rows = session.execute(
                select(Order.id, Order.external_id)
                .where(Order.account_id == account_id, Order.state.in_(STILL_MOVING))
                .where(last <= now - every)
                .order_by(last, Order.id)
                .limit(limit)
            )
            return [(order_id, external_id) for order_id, external_id in rows]

    def book(
        self,
        account_id: int,
        found: Sequence[tuple[int, StatusRead]],
        now: datetime,
        before_commit: Callable[[Session], None] = lambda _session: None,
    ) -> Rechecked:
        """Record what the reads showed (a new status where it changed) and when they were made."""
        booked = Rechecked()
        if not found:
            return booked
        ids = [order_id for order_id, _ in found]
        with self.sessions.begin() as session:
            current = dict(session.execute(select(Order.id, Order.status).where(Order.id.in_(ids))).all())
            changes = [
                (order_id, read[0], read[1])
                for order_id, read in found
                if read is not None and order_id in current and current[order_id] != read[0]
            ]
            record_statuses(session, changes, now)
            session.execute(update(Order).where(Order.id.in_(ids)).values(checked_at=now))
            changed = [order_id for order_id, _, _ in changes]
            returning = {order_id for order_id, _, state in changes if state.value in RETURNING}
            for order_id, sku_id, code in session.execute(
                select(OrderLine.order_id, Sku.id, Sku.code)
                .join(Sku, OrderLine.sku_id == Sku.id)
                .where(OrderLine.order_id.in_(changed))
            ):
                booked.listings.add((account_id, sku_id))
                if order_id in returning:
                    booked.returned_skus.add(code)
            booked.changes = len(changes)
            before_commit(session)
        return booked
