"""The ledger queries the engine runs for a batch: load its state, apply a plan in one transaction
(the reads' judgement included), and record what became of each push. Cycles open and close in
`cycles.py`.

Every write is in bulk (one statement per table per batch); no query runs per listing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.judge import Judgement
from sync.ledger.cycles import CycleQueries, move_expected
from sync.ledger.judgements import unretire, write_judgement
from sync.ledger.models import Account, Listing, Movement, Push, PushState, Sku
from sync.ledger.settlements import DoubtReads, write_settlements
from sync.planner import InDoubtPush, ListingKey, ListingState, Plan, SkuState
from sync.platforms.base import Observed, Outcome, PushResult
from sync.platforms.batching import REJECTED_ALONE, REJECTED_BATCH


@dataclass
class BatchState:
    """The ledger's view of a batch of SKUs, plus the ids needed to write back."""

    skus: list[SkuState]
    sku_ids: dict[str, int] = field(default_factory=dict)
    listing_ids: dict[ListingKey, int] = field(default_factory=dict)
    refs: dict[ListingKey, str] = field(default_factory=dict)
    last_observed: dict[ListingKey, int | None] = field(default_factory=dict)
    expected: dict[ListingKey, int] = field(default_factory=dict)
    holds: dict[ListingKey, Hold] = field(default_factory=dict)
    # The pushes in doubt and when their reads were made, for the order feed's evidence.
    doubts: dict[ListingKey, DoubtReads] = field(default_factory=dict)
    # Listings whose last push was rejected (with its batch, or alone): the next goes alone.
    isolate: set[ListingKey] = field(default_factory=set)
    # When this batch's reads began and ended (set by the engine once it has read).
    read_began: datetime | None = None
    read_ended: datetime | None = None
    _by_sku: dict[str, SkuState] = field(default_factory=dict, repr=False)

    def sku(self, code: str) -> SkuState | None:
        """The ledger's state of one SKU of the batch."""
        if len(self._by_sku) != len(self.skus):
            self._by_sku = {state.sku: state for state in self.skus}
        return self._by_sku.get(code)

    def listing(self, account: str, sku: str) -> ListingState | None:
        """The ledger's state of one listing, or None when it has none (or its SKU starts afresh)."""
        state = self.sku(sku)
        return None if state is None or state.retired else state.listings.get(account)


@dataclass(frozen=True)
class Hold:
    """A listing held by a safety stop (or carrying an operator's decision for its next read)."""

    stop_id: int | None
    held_quantity: int | None
    decision: str | None


class LedgerStore(CycleQueries):
    """Reads and writes the ledger through short transactions."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- one batch --------------------------------------------------------------------------

    def load_batch(self, skus: Sequence[str]) -> BatchState:
        """Pools, listings and in-doubt pushes for `skus`, in three queries."""
        with self.sessions() as session:
            found = session.execute(select(Sku.code, Sku.id, Sku.retired_at).where(Sku.code.in_(skus))).all()
            sku_ids = {code: sku_id for code, sku_id, _ in found}
            retired = {code for code, _, retired_at in found if retired_at is not None}
            pools = dict(
                session.execute(
                    select(Movement.sku_id, func.sum(Movement.quantity))
                    .where(Movement.sku_id.in_(sku_ids.values()))
                    .group_by(Movement.sku_id)
                ).all()
            )
            # Plain columns, not ORM objects: a batch holds thousands of listings.
            in_batch = Listing.sku_id.in_(sku_ids.values())
            rows = session.execute(
                select(
                    Listing.id,
                    Listing.expected,
                    Listing.ref,
                    Listing.last_observed,
                    Account.name,
                    Sku.code,
                    Listing.stop_id,
                    Listing.held_quantity,
                    Listing.decision,
                )
                .join(Account, Listing.account_id == Account.id)
                .join(Sku, Listing.sku_id == Sku.id)
                .where(in_batch)
            ).all()
            doubts = {
                push.listing_id: push
                for push in session.scalars(
                    select(Push)
                    .where(Push.state == PushState.IN_DOUBT.value)
                    .where(Push.listing_id.in_(select(Listing.id).where(in_batch)))
                    .order_by(Push.id)
                )
            }
            # Listings whose last push was rejected: first those with any rejected push (rare, and
            # no grouping over the whole push history of the batch), then whether it was the last.
            marked = Push.detail.startswith(REJECTED_BATCH) | Push.detail.startswith(REJECTED_ALONE)
            candidates = set(
                session.scalars(
                    select(Push.listing_id).where(Push.listing_id.in_(select(Listing.id).where(in_batch))).where(marked)
                )
            )
            rejected: set[int] = set()
            if candidates:
                latest = select(func.max(Push.id)).where(Push.listing_id.in_(candidates)).group_by(Push.listing_id)
                rejected = set(session.scalars(select(Push.listing_id).where(Push.id.in_(latest)).where(marked)))
        state = BatchState(skus=[], sku_ids=sku_ids)
        listings: dict[str, dict[str, ListingState]] = {code: {} for code in skus}
        for listing_id, expected, ref, last_observed, account, code, stop_id, held, decision in rows:
            push = doubts.get(listing_id)
            in_doubt = None
            if push is not None:
                moves = push.applied_delta if push.applied_delta is not None else push.delta  # a clamped set
                sent = push.sent_at or push.created_at
                in_doubt = InDoubtPush(
                    push.id,
                    moves,
                    push.expected_before,
                    sent,
                    push.probe_quantity,
                    push.probe_began_at,
                    answered=(push.detail or "").startswith(REJECTED_BATCH),
                )
                state.doubts[(account, code)] = _doubt_reads(push)
            listings[code][account] = ListingState(expected, in_doubt)
            state.listing_ids[(account, code)] = listing_id
            state.refs[(account, code)] = ref
            state.last_observed[(account, code)] = last_observed
            state.expected[(account, code)] = expected
            if listing_id in rejected:
                state.isolate.add((account, code))
            if stop_id is not None or decision is not None:
                state.holds[(account, code)] = Hold(stop_id, held, decision)
        for code in skus:
            sku_id = sku_ids.get(code)
            pool = int(pools[sku_id]) if sku_id is not None and sku_id in pools else None
            state.skus.append(SkuState(code, pool, listings[code], retired=code in retired))
        return state

    def apply_plan(
        self,
        cycle_id: int,
        plan: Plan,
        state: BatchState,
        observed: Mapping[ListingKey, Observed],
        account_ids: Mapping[str, int],
        now: datetime,
        before_commit: Callable[[Session], None] = lambda _session: None,
        judgement: Judgement | None = None,
    ) -> dict[ListingKey, int]:
        """Write a plan in one transaction: SKUs, listings, movements, settlements, the judgement
        of the reads and the planned pushes. Returns (account, sku) -> push id. Nothing is sent
        before this commits. `before_commit` runs last inside the transaction (the lease check);
        raising rolls it back."""
        with self.sessions.begin() as session:
            self._create_skus(session, state, plan, now)
            self._create_listings(session, state, plan, observed, account_ids)
            self._update_listings(session, state, plan, observed, now)
            self._append_movements(session, state, plan, cycle_id, now)
            write_settlements(session, state.doubts, plan, state.read_began or now, state.read_ended or now, now)
            unretire(session, (state.sku_ids[sku] for sku in plan.readopted))
            if judgement is not None:
                held_by = {key: hold.stop_id for key, hold in state.holds.items()}
                write_judgement(
                    session, judgement, state.sku_ids, state.listing_ids, held_by, account_ids, cycle_id or None, now
                )
            push_ids = self._plan_pushes(session, state, plan, cycle_id, now)
            before_commit(session)
            return push_ids

    def _create_skus(self, session: Session, state: BatchState, plan: Plan, now: datetime) -> None:
        new = sorted({m.sku for m in plan.movements} - state.sku_ids.keys())
        if new:
            session.execute(insert(Sku), [{"code": code, "created_at": now} for code in new])
            state.sku_ids.update(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(new))).all())

    def _create_listings(
        self,
        session: Session,
        state: BatchState,
        plan: Plan,
        observed: Mapping[ListingKey, Observed],
        account_ids: Mapping[str, int],
    ) -> None:
        new = sorted(key for key in plan.adopted if key not in state.listing_ids)
        if not new:
            return
        session.execute(
            insert(Listing),
            [
                {
                    "account_id": account_ids[account],
                    "sku_id": state.sku_ids[sku],
                    "code": observed[(account, sku)].code,
                    "ref": observed[(account, sku)].ref,
                    "expected": plan.expected[(account, sku)],
                }
                for account, sku in new
            ],
        )
        rows = session.execute(
            select(Listing.id, Account.name, Sku.code)
            .join(Account, Listing.account_id == Account.id)
            .join(Sku, Listing.sku_id == Sku.id)
            .where(Listing.sku_id.in_({state.sku_ids[sku] for _, sku in new}))
        )
        for listing_id, account, code in rows:
            state.listing_ids[(account, code)] = listing_id
            state.refs[(account, code)] = observed[(account, code)].ref if (account, code) in observed else ""

    def _update_listings(
        self,
        session: Session,
        state: BatchState,
        plan: Plan,
        observed: Mapping[ListingKey, Observed],
        now: datetime,
    ) -> None:
        # Only listings whose numbers or reference changed are written: most of a sweep is quiet,
        # and `last_observed_at` says when the platform's number last changed.
        plain: list[dict[str, Any]] = []
        with_expected: list[dict[str, Any]] = []
        for key, seen in observed.items():
            listing_id = state.listing_ids.get(key)
            if listing_id is None:
                continue  # observed but not adopted (bootstrap waiting)
            expected = plan.expected.get(key)
            if expected is not None and expected == state.expected.get(key):
                expected = None
            if expected is None and seen.quantity == state.last_observed.get(key) and seen.ref == state.refs.get(key):
                continue
            row = {"v_id": listing_id, "v_last_observed": seen.quantity, "v_last_observed_at": now, "v_ref": seen.ref}
            if expected is None:
                plain.append(row)
            else:
                row["v_expected"] = expected
                with_expected.append(row)
            state.refs[key] = seen.ref
        # Core executemany (the ORM's bulk update by key costs far more per row), one per shape.
        table = cast(Table, Listing.__table__)
        for rows in (plain, with_expected):
            if rows:
                values: dict[str, Any] = {key[2:]: bindparam(key) for key in rows[0] if key != "v_id"}
                session.connection().execute(update(table).where(table.c.id == bindparam("v_id")).values(values), rows)

    def _append_movements(self, session: Session, state: BatchState, plan: Plan, cycle_id: int, now: datetime) -> None:
        if not plan.movements:
            return
        session.execute(
            insert(Movement),
            [
                {
                    "sku_id": state.sku_ids[m.sku],
                    "listing_id": state.listing_ids.get((m.account, m.sku)) if m.account else None,
                    "cycle_id": cycle_id,
                    "kind": m.kind.value,
                    "quantity": m.quantity,
                    "note": m.note,
                    "flagged": m.flagged,
                    "created_at": now,
                }
                for m in plan.movements
            ],
        )

    def _plan_pushes(
        self, session: Session, state: BatchState, plan: Plan, cycle_id: int, now: datetime
    ) -> dict[ListingKey, int]:
        if not plan.pushes:
            return {}
        listing_of = {(p.account, p.sku): state.listing_ids[(p.account, p.sku)] for p in plan.pushes}
        session.execute(
            insert(Push),
            [
                {
                    "listing_id": listing_of[(p.account, p.sku)],
                    "cycle_id": cycle_id,
                    "delta": p.delta,
                    "expected_before": p.expected_before,
                    "observed": p.observed,
                    "target": p.target,
                    "state": PushState.PLANNED.value,
                    "detail": "",
                    "read_at": state.read_began,
                    "created_at": now,
                }
                for p in plan.pushes
            ],
        )
        ids = session.execute(
            select(Push.listing_id, Push.id)
            .where(Push.cycle_id == cycle_id)
            .where(Push.state == PushState.PLANNED.value)
            .where(Push.listing_id.in_(listing_of.values()))
        )
        by_listing = dict(ids.all())
        return {key: by_listing[listing_id] for key, listing_id in listing_of.items()}

    # --- sending ----------------------------------------------------------------------------

    def mark_sent(self, push_ids: Sequence[int], now: datetime) -> None:
        """Record that these pushes are about to leave: from here a crash leaves them in doubt."""
        if not push_ids:
            return
        with self.sessions.begin() as session:
            session.execute(update(Push).where(Push.id.in_(push_ids)).values(state=PushState.SENT.value, sent_at=now))

    def record_sets(self, sets: Sequence[tuple[int, int, int]]) -> None:
        """Per push (id, fresh quantity, what the set moves): an absolute set's numbers, recorded
        before it is sent so that a lost answer is judged against what was really set."""
        if not sets:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(Push),
                [
                    {"id": push_id, "fresh_quantity": fresh, "applied_delta": moves}
                    for push_id, fresh, moves in sorted(sets)
                ],
            )

    def record_outcomes(self, outcomes: Sequence[tuple[int, PushResult]], now: datetime) -> None:
        """Store each push's outcome. A confirmed one moves its listing's expected by what it moved;
        one in doubt upward too, provisionally (the hypothesis with fewer units in the pool)."""
        if not outcomes:
            return
        with self.sessions.begin() as session:
            rows: list[dict[str, Any]] = []
            for push_id, result in sorted(outcomes, key=lambda outcome: outcome[0]):
                row = {
                    "id": push_id,
                    "state": result.outcome.value,
                    "detail": result.detail[:500],
                    "answer_quantity": result.answer_quantity,
                    "settled_at": now if result.outcome is not Outcome.IN_DOUBT else None,
                }
                if result.outcome is Outcome.IN_DOUBT:
                    # The last moment the write can have left (retries after a 429 or a refusal
                    # leave later than the push was marked sent): a late landing counts from here.
                    row["sent_at"] = now
                if result.applied_delta is not None:  # else keep what was recorded before sending
                    row["applied_delta"] = result.applied_delta
                rows.append(row)
            session.execute(update(Push), rows)
            moved = [push_id for push_id, result in outcomes if result.outcome is Outcome.CONFIRMED]
            doubted = [push_id for push_id, result in outcomes if result.outcome is Outcome.IN_DOUBT]
            move_expected(session, moved, upward_only=False)
            move_expected(session, doubted, upward_only=True)


def _doubt_reads(push: Push) -> DoubtReads:
    """When a push in doubt's reads were made (None where the ledger did not record it)."""
    read = (push.read_at, push.created_at) if push.read_at is not None else None
    probe = None
    if push.probe_began_at is not None and push.probe_ended_at is not None:
        probe = (push.probe_began_at, push.probe_ended_at)
    return DoubtReads(push.id, read, probe)
