"""Read-only views of the order side of the ledger, for `stocksync status` and `explain`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.ledger.models import Account, Attribution, Order, OrderAction, OrderFeed, OrderLine, Oversell, Sku


def feeds(session: Session) -> list[dict[str, Any]]:
    """Each account's feed: when a page was last booked and how many orders it holds."""
    counts = dict(session.execute(select(Order.account_id, func.count()).group_by(Order.account_id)).all())
    return [
        {"account": name, "last_page_at": feed.updated_at, "orders": int(counts.get(feed.account_id, 0))}
        for feed, name in session.execute(
            select(OrderFeed, Account.name).join(Account, Account.id == OrderFeed.account_id).order_by(Account.name)
        )
    ]


def oversells(session: Session, *, open_only: bool = True, sku_id: int | None = None) -> list[dict[str, Any]]:
    """Oversells (open ones by default) with the orders acted on for each."""
    query = select(Oversell, Sku.code).join(Sku, Sku.id == Oversell.sku_id).order_by(Oversell.id)
    if open_only:
        query = query.where(Oversell.closed_at.is_(None))
    if sku_id is not None:
        query = query.where(Oversell.sku_id == sku_id)
    found = session.execute(query).all()
    acts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for action, external_id, account in session.execute(
        select(OrderAction, Order.external_id, Account.name)
        .join(Order, Order.id == OrderAction.order_id)
        .join(Account, Account.id == Order.account_id)
        .where(OrderAction.oversell_id.in_([o.id for o, _ in found]))
        .order_by(OrderAction.id)
    ):
        acts[action.oversell_id].append(
            {
                "account": account,
                "order": external_id,
                "kind": action.kind,
                "state": action.state,
                "units": action.units,
                "detail": action.detail,
                "at": action.created_at,
            }
        )
    return [
        {
            "sku": code,
            "shortfall": o.shortfall,
            "opened_at": o.opened_at,
            "closed_at": o.closed_at,
            "actions": acts[o.id],
        }
        for o, code in found
    ]


def action_counts(session: Session) -> dict[str, int]:
    """Order actions by `kind.state` (alert.done, cancel.done, cancel.in_doubt, cancel.failed...)."""
    rows = session.execute(
        select(OrderAction.kind, OrderAction.state, func.count()).group_by(OrderAction.kind, OrderAction.state)
    )
    return {f"{kind}.{state}": int(n) for kind, state, n in rows}


def movement_orders(session: Session, movement_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """For each movement, the order lines that explain it."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for link, order, line in session.execute(
        select(Attribution, Order, OrderLine)
        .join(OrderLine, OrderLine.id == Attribution.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Attribution.movement_id.in_(movement_ids))
        .order_by(Attribution.id)
    ):
        found[link.movement_id].append(
            {"order": order.external_id, "line": line.line_id, "units": link.quantity, "status": order.status}
        )
    return found


def sku_orders(session: Session, sku_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The newest order lines of a SKU across accounts."""
    return [
        {
            "account": account,
            "order": order.external_id,
            "quantity": line.quantity,
            "status": order.status,
            "state": order.state,
            "placed_at": order.placed_at,
        }
        for line, order, account in session.execute(
            select(OrderLine, Order, Account.name)
            .join(Order, Order.id == OrderLine.order_id)
            .join(Account, Account.id == Order.account_id)
            .where(OrderLine.sku_id == sku_id)
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(limit)
        )
    ]
