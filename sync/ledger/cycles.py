"""The ledger's cycle bookkeeping: open a cycle (recovering what a dead reconciler left open), keep
every configured account's row, and close the cycle with its counts and each account's health."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.models import Account, Cycle, Listing, Push, PushState
from sync.ledger.shards import agree_on_shards


@dataclass(frozen=True)
class OpenedCycle:
    """A cycle just opened, with what recovery found."""

    cycle_id: int
    account_ids: dict[str, int]
    cancelled: int
    doubted: int


@dataclass(frozen=True)
class CycleCounts:
    """What a cycle did, for its ledger row."""

    outcome: str
    listings_observed: int = 0
    movements: int = 0
    pushes_planned: int = 0
    pushes_confirmed: int = 0
    pushes_failed: int = 0
    pushes_in_doubt: int = 0
    accounts_failed: int = 0
    error: str | None = None


class CycleQueries:
    """Opening and closing cycles, in short transactions."""

    sessions: sessionmaker[Session]

    # --- opening and closing a cycle ------------------------------------------------------

    def open_cycle(
        self,
        trigger: str,
        now: datetime,
        holder: str | None,
        accounts: Iterable[tuple[str, str]],
        shard: int | None = None,
        shard_count: int = 1,
        records_before_set: Collection[str] = (),
    ) -> OpenedCycle:
        """In one transaction: agree on the shard count (ShardsMismatch otherwise), recover what a
        dead reconciler left open (in this shard, among several), make sure every account has a
        row, and open the cycle row. `records_before_set` names the accounts whose sets record
        their fresh read before they leave (see `_recover`)."""
        with self.sessions.begin() as session:
            agree_on_shards(session, shard_count)
            cancelled, doubted = self._recover(session, now, shard, records_before_set)
            account_ids = self._sync_accounts(session, accounts)
            cycle = Cycle(trigger=trigger, started_at=now, outcome="running", holder=holder, shard=shard)
            session.add(cycle)
            session.flush()
            return OpenedCycle(cycle.id, account_ids, cancelled, doubted)

    def close_cycle(
        self, cycle_id: int, counts: CycleCounts, now: datetime, health: Sequence[tuple[str, bool, str | None]]
    ) -> list[str]:
        """In one transaction: each account's health and the cycle's outcome. Returns the accounts
        whose health changed (broke or recovered)."""
        with self.sessions.begin() as session:
            accounts = {a.name: a for a in session.scalars(select(Account))}
            changed = []
            for name, ok, error in health:
                account = accounts[name]
                if account.healthy != ok:
                    changed.append(name)
                account.healthy = ok
                if ok:
                    account.last_success_at = now
                else:
                    account.last_error_at, account.last_error = now, error
            session.execute(update(Cycle).where(Cycle.id == cycle_id).values(finished_at=now, **counts.__dict__))
            return changed

    def account_ids(self) -> dict[str, int]:
        """The ids of the accounts the ledger has, by name (reads only)."""
        with self.sessions() as session:
            return {name: account_id for name, account_id in session.execute(select(Account.name, Account.id))}

    def ensure_accounts(self, accounts: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Make sure every configured account has a row; return their ids by name."""
        with self.sessions.begin() as session:
            return self._sync_accounts(session, accounts)

    @staticmethod
    def _sync_accounts(session: Session, accounts: Iterable[tuple[str, str]]) -> dict[str, int]:
        existing = {a.name: a for a in session.scalars(select(Account))}
        for name, platform in accounts:
            if name not in existing:
                existing[name] = Account(name=name, platform=platform, healthy=True)
                session.add(existing[name])
            elif existing[name].platform != platform:
                existing[name].platform = platform
        session.flush()
        return {name: account.id for name, account in existing.items()}

    def recover_all(self, session: Session, now: datetime) -> tuple[int, int]:
        """Recover what every shard's cycles left open (under every shard's lease)."""
        return self._recover(session, now, None)

    @staticmethod
    def _recover(
        session: Session, now: datetime, shard: int | None, records_before_set: Collection[str] = ()
    ) -> tuple[int, int]:
        """Settle pushes a crash left open: planned ones were never sent (cancelled); sent ones may
        have been applied (in doubt), except an absolute set on an account of `records_before_set`
        with no fresh read recorded: the record comes first, under the lease, so that set never
        left (cancelled; in doubt it would wait for evidence of a write that cannot exist). Close
        the cycles that never finished. Only safe under the reconcile lease (the shard's, among
        several replicas: then only that shard's cycles)."""
        mine_push: list[ColumnElement[bool]] = []
        mine_cycle: list[ColumnElement[bool]] = []
        if shard is not None:
            # Cycles from before shards count as shard 0's.
            in_shard = Cycle.shard == shard if shard else or_(Cycle.shard == 0, Cycle.shard.is_(None))
            mine_cycle = [in_shard]
            mine_push = [Push.cycle_id.in_(select(Cycle.id).where(in_shard))]
        cancelled = _rowcount(
            session.execute(
                update(Push)
                .where(*mine_push)
                .where(Push.state == PushState.PLANNED.value)
                .values(state=PushState.CANCELLED.value, settled_at=now, detail="never sent: stopped before sending")
            )
        )
        if records_before_set:
            recording = select(Listing.id).join(Account).where(Account.name.in_(sorted(records_before_set)))
            cancelled += _rowcount(
                session.execute(
                    update(Push)
                    .where(*mine_push)
                    .where(Push.state == PushState.SENT.value, Push.fresh_quantity.is_(None))
                    .where(Push.listing_id.in_(recording))
                    .values(
                        state=PushState.CANCELLED.value,
                        settled_at=now,
                        detail="never sent: stopped before its fresh read was recorded",
                    )
                )
            )
        sent = list(session.scalars(select(Push.id).where(*mine_push).where(Push.state == PushState.SENT.value)))
        if sent:
            session.execute(
                update(Push)
                .where(Push.id.in_(sent))
                .values(
                    state=PushState.IN_DOUBT.value,
                    detail="sent, then the process stopped before the answer",
                    sent_at=now,  # the last moment it can have left (see record_outcomes)
                )
            )
            move_expected(session, sent, upward_only=True)
        doubted = len(sent)
        session.execute(
            update(Cycle)
            .where(*mine_cycle)
            .where(Cycle.finished_at.is_(None))
            .values(finished_at=now, outcome="abandoned", error="the reconciler stopped mid-cycle")
        )
        return cancelled, doubted


def move_expected(session: Session, push_ids: Sequence[int], *, upward_only: bool) -> None:
    """Move each push's listing's expected by what the push moves (a clamped set's real move, not
    its delta): for a confirmed push, or provisionally for an upward one going in doubt (the
    ledger's side of `sync.settling.provisional_base`). Never to the platform's answer: a sale
    folded into it would vanish."""
    if not push_ids:
        return
    moves = func.coalesce(Push.applied_delta, Push.delta)
    query = select(Push.listing_id, moves).where(Push.id.in_(push_ids))
    deltas = session.execute(query.where(moves > 0) if upward_only else query).all()
    if not deltas:
        return
    table = cast(Table, Listing.__table__)
    bump = (
        update(table).where(table.c.id == bindparam("listing")).values(expected=table.c.expected + bindparam("delta"))
    )
    session.connection().execute(bump, [{"listing": lid, "delta": d} for lid, d in sorted(deltas)])


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE touched."""
    return cast(CursorResult[Any], result).rowcount
