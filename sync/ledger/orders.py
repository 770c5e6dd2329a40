"""The ledger's order queries: feed cursors and the pages they book, attribution of movements to
order lines, oversells and the actions taken on them, and drifting listings.

Orders never move a pool. Booking a page is idempotent: an order is stored once per (account,
order) and a line once per (order, line); a status is recorded only when it changes. The page and
the cursor after it commit together, so a crash re-reads the page and never skips one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.models import (
    Account,
    ActionState,
    Attribution,
    Listing,
    Movement,
    MovementKind,
    Order,
    OrderAction,
    OrderEvent,
    OrderFeed,
    OrderLine,
    Oversell,
    Sku,
    UrgentSku,
)
from sync.orders.attribution import Explainer, Unexplained, match
from sync.orders.oversell import Candidate
from sync.platforms.base import OrderPage, OrderRecord, OrderState
from sync.sharding import shard_of

# How far back attribution looks for the other side of a match: a sale and the movement it
# explains are seconds apart, a cancellation can be days after the sale.
ATTRIBUTION_WINDOW = timedelta(days=7)
RETURNING = (OrderState.CANCELLED.value, OrderState.RETURNED.value)


@dataclass
class BookedPage:
    """What booking a page changed: SKUs with new orders, SKUs whose orders gave units back, and the
    listings (account id, SKU id) whose attribution may have changed."""

    new_skus: set[str] = field(default_factory=set)
    returned_skus: set[str] = field(default_factory=set)
    listings: set[tuple[int, int]] = field(default_factory=set)
    new_orders: int = 0
    status_changes: int = 0


@dataclass(frozen=True)
class OpenOversell:
    """An oversell still open: its row, the deepest shortfall, units already covered by actions,
    and the ids of the orders already acted on."""

    id: int
    sku_id: int
    shortfall: int
    covered: int
    acted: frozenset[int]


@dataclass(frozen=True)
class PlannedAction:
    """An order action written to the ledger (a cancel to send, or an alert)."""

    action_id: int
    kind: str
    order: OrderRecord
    account: str
    sku: str
    units: int


@dataclass(frozen=True)
class Drift:
    """A listing whose changes keep going unexplained by any order."""

    account: str
    sku: str
    movements: int
    units: int


class OrderStore:
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
    ) -> BookedPage:
        """Book a page's orders and advance the cursor past it, in one transaction (a handful of
        bulk statements, whatever the page's size)."""
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
            changed = [o for o in records if o.order_id in existing and existing[o.order_id][1] != o.status]
            for o in changed:
                session.execute(
                    update(Order)
                    .where(Order.id == ids[o.order_id])
                    .values(status=o.status, state=o.state.value, updated_at=now)
                )
                if o.state is OrderState.CANCELLED:
                    self._cancel_seen(session, ids[o.order_id], now)
            if fresh or changed:
                session.execute(
                    insert(OrderEvent),
                    [
                        {"order_id": ids[o.order_id], "status": o.status, "state": o.state.value, "seen_at": now}
                        for o in [*fresh, *changed]
                    ],
                )
            known_lines = {
                (order_id, line_id)
                for order_id, line_id in session.execute(
                    select(OrderLine.order_id, OrderLine.line_id).where(
                        OrderLine.order_id.in_([row[0] for row in existing.values()])
                    )
                )
            }
            new_lines = [
                {
                    "order_id": ids[o.order_id],
                    "line_id": line.line_id,
                    "code": line.code,
                    "sku_id": sku_ids[sku_of[line.code]],
                    "quantity": line.quantity,
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
                booked.listings |= {(account_id, sku_ids[sku]) for sku in skus}
                was = existing.get(o.order_id)
                if was is None:
                    booked.new_skus |= skus
                if o.state.value in RETURNING and (was is None or was[2] not in RETURNING):
                    booked.returned_skus |= skus
            booked.new_orders, booked.status_changes = len(fresh), len(changed)
            self._store_cursor(session, account_id, page.cursor, now)
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
    def _store_cursor(session: Session, account_id: int, cursor: str, now: datetime) -> None:
        feed = session.get(OrderFeed, account_id)
        if feed is None:
            session.add(OrderFeed(account_id=account_id, cursor=cursor, updated_at=now))
        else:
            feed.cursor, feed.updated_at = cursor, now

    @staticmethod
    def _cancel_seen(session: Session, order_id: int, now: datetime) -> None:
        """The feed shows an order cancelled: a cancel we sent (or lost the answer of) is done."""
        session.execute(
            update(OrderAction)
            .where(OrderAction.order_id == order_id)
            .where(OrderAction.kind == "cancel")
            .where(OrderAction.state.in_([ActionState.SENT.value, ActionState.IN_DOUBT.value]))
            .values(state=ActionState.DONE.value, settled_at=now, detail="the order feed shows it cancelled")
        )

    # --- attribution --------------------------------------------------------------------------

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
            for line_id, account_id, sku_id, quantity, sold, returned, state, placed, updated in session.execute(
                select(
                    OrderLine.id,
                    Order.account_id,
                    OrderLine.sku_id,
                    OrderLine.quantity,
                    OrderLine.sale_explained,
                    OrderLine.return_explained,
                    Order.state,
                    Order.placed_at,
                    Order.updated_at,
                )
                .join(Order, OrderLine.order_id == Order.id)
                .where(OrderLine.sku_id.in_({sku_id for _, sku_id in wanted}))
                .where(or_(Order.placed_at >= since, Order.updated_at >= since))
                .where(
                    or_(
                        OrderLine.quantity > OrderLine.sale_explained,
                        and_(Order.state.in_(RETURNING), OrderLine.quantity > OrderLine.return_explained),
                    )
                )
            ):
                listing_id = listing_of.get((account_id, cast(int, sku_id)))
                if listing_id is None:
                    continue
                if quantity > sold:
                    lines[listing_id].append(Explainer(line_id, -(quantity - sold), placed))
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

    # --- oversells ----------------------------------------------------------------------------

    def open_oversells(self, sku_ids: Collection[int]) -> dict[int, OpenOversell]:
        """The open oversells of these SKUs, by SKU id, with what their actions cover."""
        if not sku_ids:
            return {}
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(Oversell).where(Oversell.sku_id.in_(sku_ids)).where(Oversell.closed_at.is_(None))
                )
            )
            actions = session.execute(
                select(OrderAction.oversell_id, OrderAction.order_id, OrderAction.units, OrderAction.state).where(
                    OrderAction.oversell_id.in_([r.id for r in rows])
                )
            ).all()
        covered: dict[int, int] = defaultdict(int)
        acted: dict[int, set[int]] = defaultdict(set)
        for oversell_id, order_id, units, state in actions:
            acted[oversell_id].add(order_id)
            if state != ActionState.FAILED.value:
                covered[oversell_id] += units
        return {
            r.sku_id: OpenOversell(r.id, r.sku_id, r.shortfall, covered[r.id], frozenset(acted[r.id])) for r in rows
        }

    def candidates(self, sku_id: int, exclude: Collection[int]) -> list[Candidate]:
        """Open orders holding units of a SKU that no action has touched yet."""
        with self.sessions() as session:
            acted = select(OrderAction.order_id)
            rows = session.execute(
                select(Order.id, Account.name, Order.external_id, func.sum(OrderLine.quantity), Order.placed_at)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .join(Account, Account.id == Order.account_id)
                .where(OrderLine.sku_id == sku_id)
                .where(Order.state == OrderState.OPEN.value)
                .where(Order.id.not_in(acted))
                .group_by(Order.id, Account.name, Order.external_id, Order.placed_at)
            ).all()
        return [
            Candidate(oid, account, ext, int(units), placed)
            for oid, account, ext, units, placed in rows
            if oid not in exclude
        ]

    def record_oversell(
        self,
        sku_id: int,
        sku: str,
        shortfall: int,
        existing: OpenOversell | None,
        chosen: Iterable[tuple[Candidate, str]],
        now: datetime,
    ) -> list[PlannedAction]:
        """Open (or deepen) an oversell and write an action per chosen order: a cancel is planned
        (sent after this commits), an alert is done at once. Returns the actions written."""
        with self.sessions.begin() as session:
            if existing is None:
                oversell = Oversell(sku_id=sku_id, shortfall=shortfall, opened_at=now)
                session.add(oversell)
                session.flush()
                oversell_id = oversell.id
            else:
                oversell_id = existing.id
                if shortfall > existing.shortfall:
                    session.execute(update(Oversell).where(Oversell.id == oversell_id).values(shortfall=shortfall))
            written = []
            for candidate, kind in chosen:
                state = ActionState.PLANNED if kind == "cancel" else ActionState.DONE
                action = OrderAction(
                    order_id=candidate.order_id,
                    oversell_id=oversell_id,
                    kind=kind,
                    state=state.value,
                    units=candidate.units,
                    detail="" if kind == "cancel" else "alert only: the account's oversell policy is alert",
                    created_at=now,
                    settled_at=None if kind == "cancel" else now,
                )
                session.add(action)
                session.flush()
                order = session.get_one(Order, candidate.order_id)
                written.append(PlannedAction(action.id, kind, _record(order), candidate.account, sku, candidate.units))
            return written

    def pending_cancels(self, oversell_ids: Collection[int]) -> list[PlannedAction]:
        """Cancels written but never sent (a crash, or a refusal before sending): safe to send."""
        if not oversell_ids:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(OrderAction, Account.name, Sku.code)
                .join(Order, Order.id == OrderAction.order_id)
                .join(Account, Account.id == Order.account_id)
                .join(Oversell, Oversell.id == OrderAction.oversell_id)
                .join(Sku, Sku.id == Oversell.sku_id)
                .where(OrderAction.oversell_id.in_(oversell_ids))
                .where(OrderAction.kind == "cancel")
                .where(OrderAction.state == ActionState.PLANNED.value)
            ).all()
            return [
                PlannedAction(a.id, a.kind, _record(session.get_one(Order, a.order_id)), name, code, a.units)
                for a, name, code in rows
            ]

    def mark_actions(self, action_ids: Collection[int], state: ActionState, now: datetime, detail: str = "") -> None:
        """Move actions to a new state (sent, or an outcome)."""
        if not action_ids:
            return
        with self.sessions.begin() as session:
            values: dict[str, object] = {"state": state.value}
            if detail:
                values["detail"] = detail[:500]
            if state not in (ActionState.PLANNED, ActionState.SENT):
                values["settled_at"] = now
            session.execute(update(OrderAction).where(OrderAction.id.in_(action_ids)).values(**values))

    def close_oversells(self, sku_ids: Collection[int], now: datetime) -> int:
        """Close the open oversells of SKUs whose pool is back at zero or above."""
        if not sku_ids:
            return 0
        with self.sessions.begin() as session:
            result = session.execute(
                update(Oversell)
                .where(Oversell.sku_id.in_(sku_ids))
                .where(Oversell.closed_at.is_(None))
                .values(closed_at=now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def recover_actions(self, mine: Callable[[str], bool] = lambda _sku: True) -> int:
        """Cancels marked sent when a reconciler died, for the SKUs that are `mine`: their outcome
        is unknown (in doubt)."""
        with self.sessions.begin() as session:
            sent = [
                action_id
                for action_id, code in session.execute(
                    select(OrderAction.id, Sku.code)
                    .join(Oversell, Oversell.id == OrderAction.oversell_id)
                    .join(Sku, Sku.id == Oversell.sku_id)
                    .where(OrderAction.state == ActionState.SENT.value)
                )
                if mine(code)
            ]
            if sent:
                session.execute(
                    update(OrderAction)
                    .where(OrderAction.id.in_(sent))
                    .values(state=ActionState.IN_DOUBT.value, detail="sent, then the process stopped before the answer")
                )
            return len(sent)

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

    # --- drift --------------------------------------------------------------------------------

    def drifting(
        self, feed_accounts: Collection[str], now: datetime, window: timedelta, grace: timedelta, threshold: int
    ) -> list[Drift]:
        """Listings on accounts with an order feed that booked at least `threshold` external
        movements within `window` that no order explains, ignoring the last `grace` (the feed may
        not have caught up yet)."""
        if not feed_accounts:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(Account.name, Sku.code, func.count(), func.sum(func.abs(Movement.quantity) - Movement.explained))
                .select_from(Movement)
                .join(Listing, Listing.id == Movement.listing_id)
                .join(Account, Account.id == Listing.account_id)
                .join(Sku, Sku.id == Listing.sku_id)
                .where(Account.name.in_(feed_accounts))
                .where(Movement.kind == MovementKind.EXTERNAL.value)
                .where(Movement.created_at >= now - window)
                .where(Movement.created_at <= now - grace)
                .where(func.abs(Movement.quantity) > Movement.explained)
                .group_by(Account.name, Sku.code)
                .having(func.count() >= threshold)
                .order_by(Account.name, Sku.code)
            ).all()
        return [Drift(account, sku, int(count), int(units)) for account, sku, count, units in rows]


def _latest(orders: Iterable[OrderRecord]) -> list[OrderRecord]:
    """One record per order id (a page may list an order twice as it moves): the last one wins."""
    return list({o.order_id: o for o in orders}.values())


def _record(order: Order) -> OrderRecord:
    """An order row back as the record an adapter cancels."""
    return OrderRecord(
        order_id=order.external_id,
        status=order.status,
        state=OrderState(order.state),
        placed_at=order.placed_at,
        lines=(),
        handle=json.loads(order.handle or "{}"),
    )
