"""Read-only views of the ledger for `stocksync status`: account health, the last cycle, and per
SKU the pool and each listing's numbers (and for `explain`, `accept` and `reject`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.ledger import order_views
from sync.ledger.models import Account, Cycle, Listing, Movement, Push, PushState, Sku


@dataclass(frozen=True)
class ListingView:
    """A listing's expected and last observed quantity."""

    account: str
    expected: int
    last_observed: int | None
    last_observed_at: datetime | None
    in_doubt: bool


@dataclass(frozen=True)
class SkuView:
    """A SKU's pool and its listings."""

    sku: str
    pool: int
    listings: list[ListingView]


def accounts(session: Session) -> list[Account]:
    """Every account with its health."""
    return list(session.scalars(select(Account).order_by(Account.name)))


def last_cycle(session: Session) -> Cycle | None:
    """The most recent cycle."""
    return session.scalars(select(Cycle).order_by(Cycle.id.desc()).limit(1)).first()


def skus(session: Session, only: list[str] | None = None, limit: int | None = None) -> list[SkuView]:
    """Pools and listings, by SKU code; `only` restricts to some codes."""
    query = select(Sku.id, Sku.code).order_by(Sku.code)
    if only:
        query = query.where(Sku.code.in_(only))
    if limit:
        query = query.limit(limit)
    rows = session.execute(query).all()
    ids = [sku_id for sku_id, _ in rows]
    every = not only and not limit  # the whole catalogue: no list of ids (100,000 would overflow a query)
    pools = _pools(session, None if every else ids)
    doubtful = set(session.scalars(select(Push.listing_id).where(Push.state == PushState.IN_DOUBT.value)).all())
    listings: dict[int, list[ListingView]] = {sku_id: [] for sku_id in ids}
    wanted = select(Listing, Account.name).join(Account).order_by(Account.name)
    for listing, name in session.execute(wanted if every else wanted.where(Listing.sku_id.in_(ids))):
        listings[listing.sku_id].append(
            ListingView(name, listing.expected, listing.last_observed, listing.last_observed_at, listing.id in doubtful)
        )
    return [SkuView(code, int(pools.get(sku_id, 0)), listings[sku_id]) for sku_id, code in rows]


def _pools(session: Session, sku_ids: Collection[int] | None) -> dict[int, int]:
    """SKU id -> pool (the sum of its movements), of `sku_ids` or every SKU; SKUs with no movement
    are left out."""
    query = select(Movement.sku_id, func.sum(Movement.quantity)).group_by(Movement.sku_id)
    rows = session.execute(query if sku_ids is None else query.where(Movement.sku_id.in_(list(sku_ids))))
    return {sku_id: int(total) for sku_id, total in rows}


def pools(session: Session, codes: Collection[str]) -> dict[str, int]:
    """SKU code -> pool (the sum of its movements; 0 with none) for the codes the ledger knows."""
    wanted, result = list(codes), {}
    for start in range(0, len(wanted), 1000):  # a safety stop can hold a whole catalogue
        chunk = wanted[start : start + 1000]
        found = dict(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(chunk))).all())
        by_id = _pools(session, found.values())
        result.update({code: by_id.get(sku_id, 0) for code, sku_id in found.items()})
    return result


SETTLED_BY = ("orders", "quiet", "rule", "adopted")


def in_doubt_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per platform, how many pushes are in doubt now and how each settled one was decided:
    `orders_applied`, `quiet_not_applied`, ... (quiet and rule are the flagged, undecidable ones)."""
    rows = session.execute(
        select(Account.platform, Push.state, Push.settled_by, Push.resolution)
        .join(Listing, Push.listing_id == Listing.id)
        .join(Account, Listing.account_id == Account.id)
        .where(Push.state.in_([PushState.IN_DOUBT.value, PushState.APPLIED.value, PushState.NOT_APPLIED.value]))
    ).all()
    empty = {"open": 0} | {f"{by}_{state}": 0 for by in SETTLED_BY for state in ("applied", "not_applied")}
    counts: dict[str, dict[str, int]] = {}
    for platform, state, settled_by, resolution in rows:
        mine = counts.setdefault(platform, dict(empty))
        if state == PushState.IN_DOUBT.value:
            mine["open"] += 1
            continue
        by = settled_by or _settled_by_words(resolution or "")
        mine[f"{by}_{state}"] += 1
    return counts


def _settled_by_words(resolution: str) -> str:
    """What settled a push before the ledger said (migration 0008), from the old rules' words."""
    if resolution.startswith("in doubt past"):
        return "rule"
    if resolution.startswith(("listing adopted afresh", "SKU back in the catalogue")):
        return "adopted"
    return "quiet"


def as_json(value: Any) -> Any:
    """Datetimes as ISO strings, for json.dumps."""
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Explanation:
    """Everything behind one SKU's numbers."""

    sku: str
    pool: int
    movements: list[dict[str, Any]]
    listings: list[dict[str, Any]]
    pushes: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    oversells: list[dict[str, Any]]
    # Listings held by an open safety stop, and the newest held or refused readings (newest first):
    # filled by the caller from sync.ledger.judgements.sku_judged.
    holds: list[dict[str, Any]] = field(default_factory=list)
    read_events: list[dict[str, Any]] = field(default_factory=list)


def explain(session: Session, sku: str) -> Explanation | None:
    """The chain behind a SKU: movements, listings and pushes, oldest first; None if unknown."""
    sku_id = session.scalar(select(Sku.id).where(Sku.code == sku))
    if sku_id is None:
        return None
    listing_names = dict(
        session.execute(select(Listing.id, Account.name).join(Account).where(Listing.sku_id == sku_id)).all()
    )
    movements: list[dict[str, Any]] = [
        {
            "id": m.id,
            "at": m.created_at,
            "cycle": m.cycle_id,
            "kind": m.kind,
            "quantity": m.quantity,
            "source": listing_names.get(m.listing_id) if m.listing_id else None,
            "note": m.note,
            "flagged": m.flagged,
            "explained": m.explained,
        }
        for m in session.scalars(select(Movement).where(Movement.sku_id == sku_id).order_by(Movement.id))
    ]
    explained_by = order_views.movement_orders(session, [m["id"] for m in movements])
    for m in movements:
        m["orders"] = explained_by.get(m["id"], [])
    listings = [
        {
            "account": name,
            "platform": platform,
            "code": listing.code,
            "expected": listing.expected,
            "last_observed": listing.last_observed,
            "last_observed_at": listing.last_observed_at,
        }
        for listing, name, platform in session.execute(
            select(Listing, Account.name, Account.platform)
            .join(Account)
            .where(Listing.sku_id == sku_id)
            .order_by(Account.name)
        ).all()
    ]
    pushes = [
        {
            "id": p.id,
            "at": p.created_at,
            "cycle": p.cycle_id,
            "account": listing_names[p.listing_id],
            "observed": p.observed,
            "target": p.target,
            "delta": p.delta,
            "state": p.state,
            "detail": p.detail,
            "answer_quantity": p.answer_quantity,
            "resolution": p.resolution,
            "settled_by": p.settled_by,
            "settled_at": p.settled_at,
        }
        for p in session.scalars(select(Push).where(Push.listing_id.in_(listing_names)).order_by(Push.id))
    ]
    pool = sum(int(m["quantity"]) for m in movements)
    orders = order_views.sku_orders(session, sku_id)
    return Explanation(
        sku,
        pool,
        movements,
        listings,
        pushes,
        orders,
        order_views.oversells(session, open_only=False, sku_id=sku_id),
    )
