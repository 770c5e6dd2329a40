"""The ledger's order queries: feed cursors and the pages they book, and the urgent queue of SKUs
for other shards (attribution of movements to order lines comes from `sync.ledger.attribution`;
oversells, order actions and drift from `sync.ledger.oversells`).

Orders never move a pool. Booking a page is idempotent: an order is stored once per (account,
order) and a line once per (order, line); a status is recorded only when it changes. The page and
the cursor after it commit together, so a crash re-reads the page and never skips one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.attribution import RETURNING, AttributionQueries
from sync.ledger.models import (
    ActionState,
    Listing,
    Order,
    OrderAction,
    OrderEvent,
    OrderFeed,
    OrderLine,
    Push,
    PushState,
    Sku,
    UrgentSku,
)
from sync.ledger.oversells import OversellQueries
from sync.platforms.base import OrderPage, OrderRecord, OrderState
from sync.sharding import shard_of


@dataclass
class BookedPage:
    """What booking a page changed: SKUs with new orders, SKUs whose orders gave units back, and the
    listings (account id, SKU id) whose attribution may have changed."""

    new_skus: set[str] = field(default_factory=set)
    returned_skus: set[str] = field(default_factory=set)
    listings: set[tuple[int, int]] = field(default_factory=set)
    new_orders: int = 0
    status_changes: int = 0


class OrderStore(AttributionQueries, OversellQueries):
    """Order bookkeeping in short transactions."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- feeds --------------------------------------------------------------------------------

    def cursor(self, account_id: int) -> str | None:
        """The stored cursor of an account's feed (None: never read)."""
        with self.sessions() as session:
            return session.scalar(select(OrderFeed.cursor).where(OrderFeed.account_id == account_id))

    def book_page(
        self,
        account_id: int,
        page: OrderPage,
        sku_of: Mapping[str, str],
        now: datetime,
        before_commit: Callable[[Session], None] = lambda _session: None,
        read_through: datetime | None = None,
    ) -> BookedPage:
        """Book a page's orders and advance the cursor past it, in one transaction (a handful of
        bulk statements, whatever the page's size). `read_through`: the page ends the feed, read
        by a poll that began then."""
        booked = BookedPage()
        records = _latest(page.orders)
        with self.sessions.begin() as session:
            codes = {sku_of[line.code] for o in records for line in o.lines if line.code in sku_of}
            sku_ids = self._sku_ids(session, codes, now)
            existing = {
                external_id: (order_id, status, state)
                for order_id, external_id, status, state in session.execute(
                    select(Order.id, Order.external_id, Order.status, Order.state)
                    .where(Order.account_id == account_id)
                    .where(Order.external_id.in_([o.order_id for o in records]))
                )
            }
            fresh = [o for o in records if o.order_id not in existing]
            if fresh:
                inserted = session.execute(
                    insert(Order).returning(Order.id, Order.external_id),
                    [
                        {
                            "account_id": account_id,
                            "external_id": o.order_id,
                            "status": o.status,
                            "state": o.state.value,
                            "placed_at": o.placed_at,
                            "moved_by": o.moved_by,
                            "first_seen_at": now,
                            "updated_at": now,
                            "handle": json.dumps(dict(o.handle), sort_keys=True),
                        }
                        for o in fresh
                    ],
                )
                ids = {external_id: order_id for order_id, external_id in inserted}
            else:
                ids = {}
            ids.update({external_id: row[0] for external_id, row in existing.items()})
            known_lines: dict[tuple[int, str], str | None] = {
                (order_id, line_id): state
                for order_id, line_id, state in session.execute(
                    select(OrderLine.order_id, OrderLine.line_id, OrderLine.state).where(
                        OrderLine.order_id.in_([row[0] for row in existing.values()])
                    )
                )
            }
            # Lines whose own state changed (an item cancelled while its order goes on).
            moved_lines = {
                key: state
                for o in records
                for line in o.lines
                if (key := (ids[o.order_id], line.line_id)) in known_lines
                and known_lines[key] != (state := line.state.value if line.state is not None else None)
            }
            changed = [
                o
                for o in records
                if o.order_id in existing
                and (
                    existing[o.order_id][1] != o.status
                    or any((ids[o.order_id], ln.line_id) in moved_lines for ln in o.lines)
                )
            ]
            record_statuses(session, [(ids[o.order_id], o.status, o.state) for o in changed], now)
            for (order_id, line_id), state in moved_lines.items():
                session.execute(
                    update(OrderLine)
                    .where(OrderLine.order_id == order_id, OrderLine.line_id == line_id)
                    .values(state=state)
                )
            if fresh:
                session.execute(
                    insert(OrderEvent),
                    [
                        {"order_id": ids[o.order_id], "status": o.status, "state": o.state.value, "seen_at": now}
                        for o in fresh
                    ],
                )
            new_lines = [
                {
                    "order_id": ids[o.order_id],
                    "line_id": line.line_id,
                    "code": line.code,
                    "sku_id": sku_ids[sku_of[line.code]],
                    "quantity": line.quantity,
                    "state": line.state.value if line.state is not None else None,
                    "sale_explained": 0,
                    "return_explained": 0,
                }
                for o in records
                for line in o.lines
                if line.code in sku_of and (ids[o.order_id], line.line_id) not in known_lines
            ]
            if new_lines:
                session.execute(insert(OrderLine), new_lines)
            for o in records:
                skus = {sku_of[line.code] for line in o.lines if line.code in sku_of}
                # Every order on the page, known or not: attribution after each page also heals a
                # movement a crash left unattributed (its order would look unbooked-for otherwise).
                booked.listings |= {(account_id, sku_ids[sku]) for sku in skus}
                was = existing.get(o.order_id)
                if was is None:
                    booked.new_skus |= skus
                for line in o.lines:
                    now_state = (line.state or o.state).value
                    before = None if was is None else known_lines.get((was[0], line.line_id)) or was[2]
                    if line.code in sku_of and now_state in RETURNING and before not in RETURNING:
                        booked.returned_skus.add(sku_of[line.code])
            booked.new_orders, booked.status_changes = len(fresh), len(changed)
            self._store_cursor(session, account_id, page.cursor, now, read_through)
            before_commit(session)
        return booked

    @staticmethod
    def _sku_ids(session: Session, codes: Collection[str], now: datetime) -> dict[str, int]:
        """Ids of catalogue SKUs, creating the rows of those an order names before any read did."""
        if not codes:
            return {}
        ids = dict(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(codes))).all())
        missing = sorted(set(codes) - ids.keys())
        if missing:
            session.execute(insert(Sku), [{"code": code, "created_at": now} for code in missing])
            ids.update(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(missing))).all())
        return ids

    @staticmethod
    def _store_cursor(
        session: Session, account_id: int, cursor: str, now: datetime, read_through: datetime | None
    ) -> None:
        feed = session.get(OrderFeed, account_id)
        if feed is None:
            feed = OrderFeed(account_id=account_id, cursor=cursor, updated_at=now)
            session.add(feed)
        feed.cursor, feed.updated_at = cursor, now
        if read_through is not None and (feed.read_through_at is None or read_through > feed.read_through_at):
            feed.read_through_at = read_through
        if read_through is not None and feed.caught_up_at is None:
            # The orders booked so far were there before we first looked: history, whose sales
            # may have left the count unbooked. Picked or fulfilled, they are not waited for; open,
            # they are still held (see `AttributionQueries.unshown_sales`), never taken for an
            # oversell (`unbooked_new_sales`).
            feed.caught_up_at = now

    def waiting_on_feeds(self, account_ids: Collection[int], margin: timedelta) -> set[int]:
        """The accounts with a push in doubt whose probe their feed has not been read `margin`
        past yet (whichever shard planned it: the feeds are read by shard 0's engine alone)."""
        if not account_ids:
            return set()
        with self.sessions() as session:
            rows = session.execute(
                select(Listing.account_id, func.max(Push.probe_ended_at), OrderFeed.read_through_at)
                .join(Push, Push.listing_id == Listing.id)
                .outerjoin(OrderFeed, OrderFeed.account_id == Listing.account_id)
                .where(Listing.account_id.in_(list(account_ids)), Push.state == PushState.IN_DOUBT.value)
                .where(Push.probe_ended_at.is_not(None))
                .group_by(Listing.account_id, OrderFeed.read_through_at)
            )
            waiting: set[int] = set()
            for account, probe, through in rows:
                if probe is not None and (through is None or through < probe + margin):
                    waiting.add(account)
            return waiting

    def read_through(self, account_ids: Collection[int]) -> dict[int, datetime]:
        """Per account: when the last poll that read its feed to the end began."""
        with self.sessions() as session:
            rows = session.execute(
                select(OrderFeed.account_id, OrderFeed.read_through_at).where(OrderFeed.account_id.in_(account_ids))
            )
            return {account_id: at for account_id, at in rows if at is not None}

    # --- attribution --------------------------------------------------------------------------

    # --- the urgent queue (several replicas) --------------------------------------------------

    def enqueue_urgent(self, skus: Collection[str], now: datetime) -> None:
        """Queue SKUs new orders touched for their shards' reconcilers."""
        if not skus:
            return
        with self.sessions.begin() as session:
            ids = self._sku_ids(session, skus, now)
            queued = set(session.scalars(select(UrgentSku.sku_id).where(UrgentSku.sku_id.in_(ids.values()))))
            fresh = [{"sku_id": sku_id, "queued_at": now} for sku_id in ids.values() if sku_id not in queued]
            if fresh:
                session.execute(insert(UrgentSku), fresh)

    def urgent(self, shard: int, shards: int) -> list[str]:
        """The queued SKUs of one shard."""
        with self.sessions() as session:
            codes = session.scalars(select(Sku.code).join(UrgentSku, UrgentSku.sku_id == Sku.id))
            return [code for code in codes if shard_of(code, shards) == shard]

    def claim_urgent(self, shard: int, shards: int) -> list[str]:
        """Take one shard's queued SKUs off the queue (under that shard's lease)."""
        with self.sessions.begin() as session:
            rows = session.execute(select(Sku.id, Sku.code).join(UrgentSku, UrgentSku.sku_id == Sku.id)).all()
            mine = [(sku_id, code) for sku_id, code in rows if shard_of(code, shards) == shard]
            if mine:
                session.execute(delete(UrgentSku).where(UrgentSku.sku_id.in_([sku_id for sku_id, _ in mine])))
            return [code for _, code in mine]


def _latest(orders: Iterable[OrderRecord]) -> list[OrderRecord]:
    """One record per order id (a page may list an order twice as it moves): the last one wins."""
    return list({o.order_id: o for o in orders}.values())


def record_statuses(session: Session, changes: Collection[tuple[int, str, OrderState]], now: datetime) -> None:
    """Record new statuses of known orders (ledger id, status, state): the order row, an event
    each, and a cancel we sent (or lost the answer of) done where the platform took it."""
    for order_id, status, state in changes:
        session.execute(
            update(Order).where(Order.id == order_id).values(status=status, state=state.value, updated_at=now)
        )
        if state in (OrderState.CANCELLED, OrderState.RELEASING):
            session.execute(
                update(OrderAction)
                .where(OrderAction.order_id == order_id)
                .where(OrderAction.kind == "cancel")
                .where(OrderAction.state.in_([ActionState.SENT.value, ActionState.IN_DOUBT.value]))
                .values(state=ActionState.DONE.value, settled_at=now, detail="the platform shows it cancelled")
            )
    if changes:
        session.execute(
            insert(OrderEvent),
            [{"order_id": i, "status": status, "state": state.value, "seen_at": now} for i, status, state in changes],
        )
