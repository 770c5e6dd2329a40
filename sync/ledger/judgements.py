"""What the ledger keeps of judged reads: read events, safety stops and the listings they hold,
operators' decisions, whether an account is answering badly, and SKUs that left the catalogue.

The writes for a batch run inside the plan's transaction (fenced by the lease like the rest of it);
the queries serve `status`, `explain`, `accept`/`reject`, `/readyz` and the metrics.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.judge import Judgement, ListingKey
from sync.ledger.models import OPEN_PUSH_STATES, Account, Listing, Push, ReadEvent, SafetyStop, Sku

log = structlog.get_logger(__name__)

# Read events are evidence for `explain` and `status`; older ones are pruned.
EVENT_RETENTION = timedelta(days=14)


def write_judgement(
    session: Session,
    judgement: Judgement,
    sku_ids: Mapping[str, int],
    listing_ids: Mapping[ListingKey, int],
    held_by: Mapping[ListingKey, int | None],
    account_ids: Mapping[str, int],
    cycle_id: int | None,
    now: datetime,
) -> None:
    """Write a batch's judgement: read events, new stops, held, released and decided listings, and
    close the stops left with no listing. `held_by` maps a listing to the stop holding it now."""
    if judgement.notes:
        session.execute(
            insert(ReadEvent),
            [
                {
                    "account_id": account_ids[n.account],
                    "sku_id": sku_ids.get(n.sku) if n.sku is not None else None,
                    "cycle_id": cycle_id,
                    "at": now,
                    "kind": n.kind,
                    "quantity": n.quantity,
                    "expected": n.expected,
                    "reason": n.reason[:500],
                    "skus": json.dumps(n.skus) if n.skus else None,
                }
                for n in judgement.notes
            ],
        )
    stop_of: dict[str, int] = {}
    for account, reason in judgement.new_stops.items():
        # One open stop per account: a later batch's drops join it.
        stop_id = session.scalar(
            select(SafetyStop.id)
            .where(SafetyStop.account_id == account_ids[account])
            .where(SafetyStop.closed_at.is_(None))
            .order_by(SafetyStop.id)
            .limit(1)
        )
        if stop_id is None:
            stop = SafetyStop(account_id=account_ids[account], opened_at=now, reason=reason)
            session.add(stop)
            session.flush()
            stop_id = stop.id
        stop_of[account] = stop_id
    table = cast(Table, Listing.__table__)
    holds = [
        {"lid": listing_ids[key], "stop": held_by.get(key) or stop_of[key[0]], "held": quantity}
        for key, quantity in judgement.held.items()
        if key in listing_ids
    ]
    if holds:
        hold = update(table).where(table.c.id == bindparam("lid"))
        session.connection().execute(hold.values(stop_id=bindparam("stop"), held_quantity=bindparam("held")), holds)
    freed = [listing_ids[key] for key in (*judgement.released, *judgement.decided) if key in listing_ids]
    if freed:
        session.execute(
            update(Listing).where(Listing.id.in_(freed)).values(stop_id=None, held_quantity=None, decision=None)
        )
    touched = {held_by[key] for key in judgement.released if held_by.get(key) is not None}
    _close_empty_stops(session, touched, judgement, now)


def _close_empty_stops(session: Session, stop_ids: Collection[int | None], judgement: Judgement, now: datetime) -> None:
    """Close the stops that hold no listing any more, saying how their listings were released."""
    ids = [i for i in stop_ids if i is not None]
    if not ids:
        return
    still = set(session.scalars(select(Listing.stop_id).where(Listing.stop_id.in_(ids)).distinct()))
    empty = [i for i in ids if i not in still]
    if not empty:
        return
    how = Counter(judgement.released.values())
    resolution = "lifted: " + ", ".join(f"{n} {why}" for why, n in how.most_common())
    session.execute(
        update(SafetyStop)
        .where(SafetyStop.id.in_(empty))
        .where(SafetyStop.closed_at.is_(None))
        .values(closed_at=now, resolution=resolution)
    )


def retire_missing(session: Session, catalogue: Collection[str], now: datetime) -> int:
    """Mark the ledger's SKUs that are no longer in the catalogue; returns how many."""
    wanted = set(catalogue)
    live = session.execute(select(Sku.code, Sku.id).where(Sku.retired_at.is_(None)))
    gone = [sku_id for code, sku_id in live if code not in wanted]
    for start in range(0, len(gone), 1000):
        chunk = gone[start : start + 1000]
        session.execute(update(Sku).where(Sku.id.in_(chunk)).values(retired_at=now))
        # A SKU out of the catalogue is never read: its listings leave any stop holding them.
        session.execute(
            update(Listing)
            .where(Listing.sku_id.in_(chunk))
            .where(or_(Listing.stop_id.is_not(None), Listing.decision.is_not(None)))
            .values(stop_id=None, held_quantity=None, decision=None)
        )
    return len(gone)


def close_orphaned_stops(session: Session, accounts: Collection[str], now: datetime) -> None:
    """Release the listings of accounts no longer configured, and close every open stop left
    holding no listing (its SKUs left the catalogue, or its account the configuration)."""
    session.execute(
        update(Listing)
        .where(Listing.stop_id.is_not(None))
        .where(Listing.account_id.in_(select(Account.id).where(Account.name.not_in(list(accounts)))))
        .values(stop_id=None, held_quantity=None, decision=None)
    )
    session.execute(
        update(SafetyStop)
        .where(SafetyStop.closed_at.is_(None))
        .where(~select(Listing.id).where(Listing.stop_id == SafetyStop.id).exists())
        .values(closed_at=now, resolution="lifted: its listings left the catalogue or the configuration")
    )


def unretire(session: Session, sku_ids: Iterable[int]) -> None:
    """The SKUs started afresh after coming back to the catalogue."""
    ids = list(sku_ids)
    if ids:
        session.execute(update(Sku).where(Sku.id.in_(ids)).values(retired_at=None))


@dataclass(frozen=True)
class AnsweringChange:
    """An account that started answering badly, or recovered."""

    account: str
    bad: bool
    since: datetime | None


def note_answering(
    session: Session, bad_reads: Mapping[str, int], read_ok: Collection[str], now: datetime, quiet: timedelta
) -> list[AnsweringChange]:
    """Update each account's answering state: bad from its first bad read, well again once it has
    been read with no bad read for `quiet`. Returns the changes (each logged once)."""
    changes: list[AnsweringChange] = []
    for account in session.scalars(select(Account).where(Account.name.in_([*bad_reads, *read_ok]))):
        if bad_reads.get(account.name):
            account.last_bad_at = now
            if account.bad_since is None:
                account.bad_since = now
                changes.append(AnsweringChange(account.name, True, now))
        elif (
            account.bad_since is not None
            and account.name in read_ok
            and (account.last_bad_at is None or now - account.last_bad_at >= quiet)
        ):
            changes.append(AnsweringChange(account.name, False, account.bad_since))
            account.bad_since = None
    return changes


def answering_badly(session: Session) -> set[str]:
    """Accounts answering badly now."""
    return set(session.scalars(select(Account.name).where(Account.bad_since.is_not(None))))


def prune_events(session: Session, now: datetime) -> int:
    """Drop read events older than the retention; returns how many."""
    return _rowcount(session.execute(delete(ReadEvent).where(ReadEvent.at < now - EVENT_RETENTION)))


def _rowcount(result: Any) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(getattr(result, "rowcount", 0) or 0)


# --- views -------------------------------------------------------------------------------------


def open_stops(session: Session, account: str | None = None) -> list[dict[str, Any]]:
    """Open safety stops with the listings they hold (SKU, expected, held reading)."""
    query = (
        select(SafetyStop.id, Account.name, SafetyStop.opened_at, SafetyStop.reason)
        .join(Account, SafetyStop.account_id == Account.id)
        .where(SafetyStop.closed_at.is_(None))
        .order_by(SafetyStop.id)
    )
    if account is not None:
        query = query.where(Account.name == account)
    stops: list[dict[str, Any]] = [
        {"id": i, "account": name, "opened_at": at.isoformat(), "reason": reason, "listings": []}
        for i, name, at, reason in session.execute(query)
    ]
    if not stops:
        return stops
    by_id = {stop["id"]: stop for stop in stops}
    rows = session.execute(
        select(Listing.stop_id, Sku.code, Listing.expected, Listing.held_quantity, Listing.decision)
        .join(Sku, Listing.sku_id == Sku.id)
        .where(Listing.stop_id.in_(by_id))
        .order_by(Sku.code)
    )
    for stop_id, code, expected, held, decision in rows:
        by_id[stop_id]["listings"].append({"sku": code, "expected": expected, "held": held, "decision": decision})
    return stops


def decide(session: Session, account: str, decision: str, skus: Collection[str] = ()) -> int:
    """Record an operator's decision on the listings an account's open stops hold (all of them,
    or only `skus`); the next read of each applies it. Returns how many listings."""
    # One statement whatever the stop's size (a whole catalogue of ids would pass PostgreSQL's
    # limit of 65,535 bound parameters).
    held = (
        update(Listing)
        .where(Listing.account_id == select(Account.id).where(Account.name == account).scalar_subquery())
        .where(Listing.stop_id.is_not(None))
    )
    if skus:
        held = held.where(Listing.sku_id.in_(select(Sku.id).where(Sku.code.in_(list(skus)))))
    return _rowcount(session.execute(held.values(decision=decision)))


def bad_read_counts(session: Session, since: datetime) -> dict[str, dict[str, int]]:
    """Per account, read events since `since` by kind (bad reads and how held drops ended)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(Account.name, ReadEvent.kind, func.count())
        .join(Account, ReadEvent.account_id == Account.id)
        .where(ReadEvent.at >= since)
        .group_by(Account.name, ReadEvent.kind)
    )
    for name, kind, n in rows:
        counts[name][kind] = int(n)
    return dict(counts)


_EVENT_COLUMNS = (ReadEvent.at, Account.name, ReadEvent.kind, ReadEvent.quantity, ReadEvent.expected, ReadEvent.reason)


def sku_events(session: Session, sku: str, sku_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The newest read events of one SKU's listings, and the whole answers refused that were asked
    for it: newest first."""
    events_of = select(*_EVENT_COLUMNS).join(Account, ReadEvent.account_id == Account.id)
    own = events_of.where(ReadEvent.sku_id == sku_id).order_by(ReadEvent.id.desc()).limit(limit)
    events = [_event(*row, whole=False) for row in session.execute(own)]
    accounts = select(Listing.account_id).where(Listing.sku_id == sku_id)
    whole = (
        events_of.where(ReadEvent.sku_id.is_(None), ReadEvent.account_id.in_(accounts))
        .where(ReadEvent.skus.contains(json.dumps(sku), autoescape=True))
        .order_by(ReadEvent.id.desc())
        .limit(limit)
    )
    events += [_event(*row, whole=True) for row in session.execute(whole)]
    events.sort(key=lambda e: e["at"], reverse=True)
    return events[:limit]


def _event(
    at: datetime, account: str, kind: str, quantity: int | None, expected: int | None, reason: str, *, whole: bool
) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "account": account,
        "kind": kind,
        "quantity": quantity,
        "expected": expected,
        "reason": reason,
        "whole_answer": whole,
    }


def sku_holds(session: Session, sku_id: int) -> list[dict[str, Any]]:
    """The listings of one SKU held by an open safety stop: account, stop, since when, why, the
    held reading, what the ledger expected and any decision waiting for the next read."""
    rows = session.execute(
        select(
            Account.name,
            SafetyStop.id,
            SafetyStop.opened_at,
            SafetyStop.reason,
            Listing.held_quantity,
            Listing.expected,
            Listing.decision,
        )
        .select_from(Listing)
        .join(Account, Listing.account_id == Account.id)
        .join(SafetyStop, Listing.stop_id == SafetyStop.id)
        .where(Listing.sku_id == sku_id)
        .where(SafetyStop.closed_at.is_(None))
        .order_by(Account.name)
    )
    return [
        {
            "account": name,
            "stop": stop_id,
            "since": at.isoformat(),
            "reason": reason,
            "held": held,
            "expected": expected,
            "decision": decision,
        }
        for name, stop_id, at, reason, held, expected, decision in rows
    ]


def sku_judged(session: Session, sku: str) -> dict[str, list[dict[str, Any]]]:
    """For `explain`: the SKU's listings held by an open stop ("holds") and its newest read events
    ("read_events"); both empty for an unknown SKU."""
    sku_id = session.scalar(select(Sku.id).where(Sku.code == sku))
    if sku_id is None:
        return {"holds": [], "read_events": []}
    return {"holds": sku_holds(session, sku_id), "read_events": sku_events(session, sku, sku_id)}


class JudgementStore:
    """The judged-read state the engine reads and updates around its cycles."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def prepare(self, catalogue: Collection[str] | None, accounts: Collection[str], now: datetime) -> set[str]:
        """At a cycle's start: retire SKUs gone from `catalogue` (when given; then also close the
        stops nothing configured is held by any more) and return the accounts answering badly."""
        with self.sessions.begin() as session:
            if catalogue is not None:
                retired = retire_missing(session, catalogue, now)
                if retired:
                    log.info("catalogue.retired", skus=retired)
                close_orphaned_stops(session, accounts, now)
            return answering_badly(session)

    def answering_badly(self) -> set[str]:
        """Accounts answering badly now (reads only)."""
        with self.sessions() as session:
            return answering_badly(session)

    def after_cycle(
        self, bad_reads: Mapping[str, int], read_ok: Collection[str], now: datetime, quiet: timedelta
    ) -> list[AnsweringChange]:
        """At a cycle's end: each account's answering state, and pruning of old read events."""
        with self.sessions.begin() as session:
            changes = note_answering(session, bad_reads, read_ok, now, quiet)
            prune_events(session, now)
            return changes

    def stocked_listings(self, account: str, exclude: Collection[str], count: int) -> dict[str, int]:
        """Up to `count` listings of `account` the ledger believes hold the most stock, outside
        `exclude`, neither held, retired nor with a push in doubt or in flight: SKU -> expected.
        Canaries for a confirming read when its batch has too few listings of its own (the fast
        path's one or two SKUs)."""
        unsettled = select(Push.listing_id).where(Push.state.in_(OPEN_PUSH_STATES))
        with self.sessions() as session:
            rows = session.execute(
                select(Sku.code, Listing.expected)
                .join(Sku, Listing.sku_id == Sku.id)
                .join(Account, Listing.account_id == Account.id)
                .where(
                    Account.name == account,
                    Listing.expected > 0,
                    Listing.stop_id.is_(None),
                    Sku.retired_at.is_(None),
                    Listing.id.not_in(unsettled),
                )
                .order_by(Listing.expected.desc(), Sku.code)
                .limit(count + len(exclude))
            )
            return dict([(code, expected) for code, expected in rows if code not in exclude][:count])
