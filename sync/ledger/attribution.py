"""Attribution: which order lines explain a listing's external movements, and which sold units no
booked drop accounts for yet (the order feeds' side of the books; `sync.orders.attribution` holds
the pure matching)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, case, false, func, insert, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.domain import Unshown
from sync.ledger.models import (
    LINE_STATE,
    Attribution,
    Listing,
    Movement,
    MovementKind,
    Order,
    OrderFeed,
    OrderLine,
)
from sync.orders.attribution import Explainer, Unexplained, match
from sync.platforms.base import OrderState

# How far back attribution looks for the other side of a match: a sale and the movement it
# explains are seconds apart, a cancellation can be days after the sale.
ATTRIBUTION_WINDOW = timedelta(days=7)
# How long before we first saw an order (or before its own time, whichever is earlier) a drop it
# explains can have been booked: a read may come before the feed shows the order. A drop booked
# longer before (a write-off last week) cannot be its sale.
FEED_LAG = timedelta(minutes=10)
# Orders whose units came back to their listing, or may have (RELEASING).
RETURNING = (OrderState.CANCELLED.value, OrderState.RETURNED.value, OrderState.RELEASING.value)


class AttributionQueries:
    """Linking movements to order lines, and the sales not yet booked, in short transactions."""

    sessions: sessionmaker[Session]

    def attribute(self, listings: Iterable[tuple[int, int]], now: datetime) -> int:
        """Link the unexplained external movements of these listings (account id, SKU id) to their
        order lines with units left to explain. Returns the units linked."""
        wanted = set(listings)
        if not wanted:
            return 0
        since = now - ATTRIBUTION_WINDOW
        linked = 0
        with self.sessions.begin() as session:
            listing_of = {
                (account_id, sku_id): listing_id
                for listing_id, account_id, sku_id in session.execute(
                    select(Listing.id, Listing.account_id, Listing.sku_id).where(
                        Listing.sku_id.in_({sku_id for _, sku_id in wanted})
                    )
                )
                if (account_id, sku_id) in wanted
            }
            moves: dict[int, list[Unexplained]] = defaultdict(list)
            for movement_id, listing_id, quantity, explained, at in session.execute(
                select(Movement.id, Movement.listing_id, Movement.quantity, Movement.explained, Movement.created_at)
                .where(Movement.listing_id.in_(listing_of.values()))
                .where(Movement.kind == MovementKind.EXTERNAL.value)
                .where(Movement.created_at >= since)
                .where(func.abs(Movement.quantity) > Movement.explained)
            ):
                sign = 1 if quantity > 0 else -1
                moves[cast(int, listing_id)].append(Unexplained(movement_id, quantity - sign * explained, at))
            lines: dict[int, list[Explainer]] = defaultdict(list)
            for line_id, account_id, sku_id, quantity, sold, returned, state, placed, seen, updated in session.execute(
                select(
                    OrderLine.id,
                    Order.account_id,
                    OrderLine.sku_id,
                    OrderLine.quantity,
                    OrderLine.sale_explained,
                    OrderLine.return_explained,
                    LINE_STATE,
                    Order.placed_at,
                    Order.first_seen_at,
                    Order.updated_at,
                )
                .join(Order, OrderLine.order_id == Order.id)
                .where(OrderLine.sku_id.in_({sku_id for _, sku_id in wanted}))
                .where(or_(Order.placed_at >= since, Order.updated_at >= since))
                .where(
                    or_(
                        OrderLine.quantity > OrderLine.sale_explained,
                        and_(LINE_STATE.in_(RETURNING), OrderLine.quantity > OrderLine.return_explained),
                    )
                )
            ):
                listing_id = listing_of.get((account_id, cast(int, sku_id)))
                if listing_id is None:
                    continue
                if quantity > sold:
                    lines[listing_id].append(Explainer(line_id, -(quantity - sold), min(placed, seen) - FEED_LAG))
                if state in RETURNING and quantity > returned:
                    lines[listing_id].append(Explainer(line_id, quantity - returned, updated))
            links = [link for listing_id in moves for link in match(moves[listing_id], lines.get(listing_id, []))]
            if not links:
                return 0
            session.execute(
                insert(Attribution),
                [{"movement_id": k.movement_id, "order_line_id": k.line_id, "quantity": k.units} for k in links],
            )
            by_movement: dict[int, int] = defaultdict(int)
            sold_by_line: dict[int, int] = defaultdict(int)
            returned_by_line: dict[int, int] = defaultdict(int)
            for k in links:
                by_movement[k.movement_id] += abs(k.units)
                (sold_by_line if k.units < 0 else returned_by_line)[k.line_id] += abs(k.units)
                linked += abs(k.units)
            movements = cast(Table, Movement.__table__)
            session.connection().execute(
                update(movements)
                .where(movements.c.id == bindparam("mid"))
                .values(explained=movements.c.explained + bindparam("units")),
                [{"mid": mid, "units": units} for mid, units in by_movement.items()],
            )
            lines_table = cast(Table, OrderLine.__table__)
            for column, amounts in (("sale_explained", sold_by_line), ("return_explained", returned_by_line)):
                if amounts:
                    session.connection().execute(
                        update(lines_table)
                        .where(lines_table.c.id == bindparam("lid"))
                        .values({column: lines_table.c[column] + bindparam("units")}),
                        [{"lid": lid, "units": units} for lid, units in amounts.items()],
                    )
        return linked

    def unbooked_sales(
        self, account_ids: Collection[int], sku_ids: Collection[int], now: datetime
    ) -> dict[tuple[int, int], int]:
        """Per listing (account id, SKU id): units of its orders' sales (open or fulfilled) that no
        booked drop accounts for yet. A drop up to that many units is explained by orders.

        Drops booked but not yet linked to an order (attribution runs after the booking commits:
        a crash between the two, or a read no feed page followed) are taken off: the sale they may
        be must not explain a second drop."""
        if not account_ids or not sku_ids:
            return {}
        since = now - ATTRIBUTION_WINDOW
        with self.sessions() as session:
            sales = session.execute(
                select(Order.account_id, OrderLine.sku_id, func.sum(OrderLine.quantity - OrderLine.sale_explained))
                .join(Order, OrderLine.order_id == Order.id)
                .where(OrderLine.sku_id.in_(list(sku_ids)))
                .where(Order.account_id.in_(list(account_ids)))
                .where(LINE_STATE.in_((OrderState.OPEN.value, OrderState.FULFILLED.value)))
                .where(Order.placed_at >= since)
                .where(OrderLine.quantity > OrderLine.sale_explained)
                .group_by(Order.account_id, OrderLine.sku_id)
            )
            units = {(account_id, cast(int, sku_id)): int(n) for account_id, sku_id, n in sales}
            if not units:
                return {}
            drops = session.execute(
                select(Listing.account_id, Listing.sku_id, func.sum(-Movement.quantity - Movement.explained))
                .join(Listing, Movement.listing_id == Listing.id)
                .where(Listing.sku_id.in_({sku for _, sku in units}))
                .where(Listing.account_id.in_({account for account, _ in units}))
                .where(Movement.kind == MovementKind.EXTERNAL.value)
                .where(Movement.quantity < 0, -Movement.quantity > Movement.explained)
                .where(Movement.created_at >= since)
                .group_by(Listing.account_id, Listing.sku_id)
            )
            for account_id, sku_id, dropped in drops:
                key = (account_id, sku_id)
                if key in units:
                    units[key] -= int(dropped)
            return {key: n for key, n in units.items() if n > 0}

    def unshown_sales(
        self,
        account_ids: Collection[int],
        sku_ids: Collection[int],
        now: datetime,
        picked: Mapping[int, Collection[str]] | None = None,
    ) -> dict[tuple[int, int], Unshown]:
        """Per listing (account id, SKU id), on accounts whose read may show a sale only at
        picking (`Unshown`): the units of its orders still open and not picked, however old (one
        open for weeks, or from before the feed caught up, is in the count until it is picked),
        and those of its orders picked or fulfilled since the feed caught up that no booked drop
        accounts for yet. `picked` gives per account the statuses of an open order already picked."""
        if not account_ids or not sku_ids:
            return {}
        since = now - ATTRIBUTION_WINDOW
        unpicked = _open_unpicked(picked)
        with self.sessions() as session:
            rows = session.execute(
                select(
                    Order.account_id,
                    OrderLine.sku_id,
                    func.sum(case((unpicked, OrderLine.quantity), else_=0)),
                    func.sum(case((unpicked, 0), else_=OrderLine.quantity - OrderLine.sale_explained)),
                )
                .join(Order, OrderLine.order_id == Order.id)
                .join(OrderFeed, OrderFeed.account_id == Order.account_id)
                .where(OrderLine.sku_id.in_(list(sku_ids)))
                .where(Order.account_id.in_(list(account_ids)))
                .where(LINE_STATE.in_((OrderState.OPEN.value, OrderState.FULFILLED.value)))
                .where(or_(unpicked, and_(Order.first_seen_at >= since, Order.first_seen_at > OrderFeed.caught_up_at)))
                .group_by(Order.account_id, OrderLine.sku_id)
            )
            found = {(a, cast(int, k)): Unshown(int(o or 0), int(p or 0)) for a, k, o, p in rows}
        return {key: n for key, n in found.items() if n.open_units or n.picked_unexplained}

    def unbooked_new_sales(
        self,
        account_ids: Collection[int],
        sku_ids: Collection[int],
        now: datetime,
        picked: Mapping[int, Collection[str]] | None = None,
    ) -> dict[tuple[int, int], int]:
        """Per listing (account id, SKU id), on accounts whose read may show a sale only at
        picking: units of orders first seen since the feed caught up, open and not picked, that no
        booked drop accounts for. Sold, so not in stock, though no read may show it yet; orders
        from before (history) are left out, as their sale may have left the count unbooked."""
        if not account_ids or not sku_ids:
            return {}
        with self.sessions() as session:
            rows = session.execute(
                select(Order.account_id, OrderLine.sku_id, func.sum(OrderLine.quantity - OrderLine.sale_explained))
                .join(Order, OrderLine.order_id == Order.id)
                .join(OrderFeed, OrderFeed.account_id == Order.account_id)
                .where(OrderLine.sku_id.in_(list(sku_ids)))
                .where(Order.account_id.in_(list(account_ids)))
                .where(_open_unpicked(picked), Order.first_seen_at > OrderFeed.caught_up_at)
                .where(OrderLine.quantity > OrderLine.sale_explained)
                .group_by(Order.account_id, OrderLine.sku_id)
            )
            return {(a, cast(int, k)): int(n) for a, k, n in rows if n}


def _open_unpicked(picked: Mapping[int, Collection[str]] | None) -> ColumnElement[bool]:
    """Order lines still open and not picked: `picked` gives per account the statuses of an open
    order already picked."""
    was_picked = or_(
        false(),
        *(and_(Order.account_id == a, Order.status.in_(sorted(s))) for a, s in (picked or {}).items() if s),
    )
    return and_(LINE_STATE.in_((OrderState.OPEN.value,)), not_(was_picked))
