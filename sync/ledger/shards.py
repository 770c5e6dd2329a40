"""The shard count, recorded in the ledger: every reconciler on one ledger must cut the catalogue
the same way, or two of them would work on one SKU under different leases.

The first cycle records the configured count; a reconciler configured with another count refuses
to start (and a running one stops at its next cycle) with a message that says how to change it:
`stocksync db shards N`, which takes every shard's lease, recovers what any cycle left open, and
records the new count in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sync.errors import ConfigError
from sync.ledger.lease import ReconcileLease, database_now
from sync.ledger.models import LedgerSetting
from sync.sharding import lease_name

SHARDS = "shards"


class ShardsMismatch(ConfigError):
    """This reconciler's `[sync] shards` is not the count recorded in the ledger."""

    def __init__(self, recorded: int, configured: int) -> None:
        super().__init__(
            f"[sync] shards = {configured}, but this ledger is cut into {recorded} shards (recorded when "
            f"it was first reconciled). Every replica on one ledger must use the same count: set "
            f"shards = {recorded}, or change the ledger's count with `stocksync db shards {configured}` "
            "(it waits for every running cycle, so stop the other replicas first)."
        )
        self.recorded = recorded
        self.configured = configured


def recorded_shards(session: Session) -> int | None:
    """The shard count this ledger is cut into, or None before its first cycle."""
    value = session.scalar(select(LedgerSetting.value).where(LedgerSetting.key == SHARDS))
    return None if value is None else int(value)


def check_shards(session: Session, configured: int) -> None:
    """Raise ShardsMismatch unless the ledger records no count yet or `configured`."""
    recorded = recorded_shards(session)
    if recorded is not None and recorded != configured:
        raise ShardsMismatch(recorded, configured)


def agree_on_shards(session: Session, configured: int) -> None:
    """Inside a cycle's opening transaction: record `configured` if nothing is recorded yet,
    else check it (a replica started together with another count loses the insert and checks)."""
    check_shards(session, configured)
    if recorded_shards(session) is None:
        try:
            with session.begin_nested():
                session.add(LedgerSetting(key=SHARDS, value=str(configured)))
        except IntegrityError:
            check_shards(session, configured)


def set_shards(session: Session, shards: int) -> None:
    """Record a new shard count (under every shard's lease: see `stocksync db shards`)."""
    row = session.get(LedgerSetting, SHARDS)
    if row is None:
        session.add(LedgerSetting(key=SHARDS, value=str(shards)))
    else:
        row.value = str(shards)


def check_ledger_shards(sessions: sessionmaker[Session], configured: int) -> None:
    """At start-up, before any work: refuse a count the ledger does not record (reads only)."""
    with sessions() as session:
        check_shards(session, configured)


class Recovering(Protocol):
    """What changing the count needs of the ledger store."""

    sessions: sessionmaker[Session]

    def recover_all(self, session: Session, now: datetime) -> tuple[int, int]: ...


def change_shards(store: Recovering, count: int, wait: float) -> int | None:
    """Record `count` as the ledger's shard count, under every lease of the count recorded now
    (waiting up to `wait` seconds for each; LeaseBusy past it), recovering every shard's open
    pushes and cycles in the same transaction. Returns the count recorded before (None: none)."""
    with store.sessions() as session:
        before = recorded_shards(session)
    old = before or 1
    taken: list[ReconcileLease] = []
    try:
        for shard in range(old):
            lease = ReconcileLease(store.sessions, timedelta(seconds=60), name=lease_name(shard, old))
            lease.acquire(wait)
            taken.append(lease)
        if before == count:
            return before
        with store.sessions.begin() as session:
            for lease in taken:
                lease.extend(session)  # all still ours, checked in the transaction that commits
            store.recover_all(session, database_now(session))
            set_shards(session, count)
        return before
    finally:
        for lease in taken:
            lease.release()
