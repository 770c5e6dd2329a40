"""The ledger's oversell queries: oversells and the actions taken on them (alerts, cancels as
an outbox), their recovery after a crash, and drifting listings. `OrderStore` inherits them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.models import (
    LINE_STATE,
    Account,
    ActionState,
    Listing,
    Movement,
    MovementKind,
    Order,
    OrderAction,
    OrderLine,
    Oversell,
    Sku,
)
from sync.orders.oversell import Candidate
from sync.platforms.base import OrderRecord, OrderState


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


class OversellQueries:
    """Oversells, order actions and drift, in short transactions."""

    sessions: sessionmaker[Session]

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
                .where(Order.state == OrderState.OPEN.value, LINE_STATE.in_([OrderState.OPEN.value]))
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
