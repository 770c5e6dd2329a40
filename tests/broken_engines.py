"""Deliberately broken engines: the simulator must catch each one (tests/test_simulation.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sync.engine import Engine
from sync.judge import Judgement, Prior
from sync.ledger.models import Listing, Push, PushState
from sync.ledger.store import BatchState, LedgerStore
from sync.observer import Observer
from sync.planner import ListingKey, Plan, PlannedPush
from sync.platforms.base import Observed, Outcome, PushResult
from sync.report import CycleReport
from sync.sender import Sender


class _ResendingSender(Sender):
    async def _push(
        self,
        name: str,
        pushes: Sequence[PlannedPush],
        push_ids: Mapping[ListingKey, int],
        state: BatchState,
        report: CycleReport,
    ) -> list[PushResult]:
        results = await super()._push(name, pushes, push_ids, state, report)
        again = [r.change for r in results if r.outcome is Outcome.IN_DOUBT]
        if not again:
            return results
        retried = iter(await self.adapters[name].push(again))
        return [next(retried) if r.outcome is Outcome.IN_DOUBT else r for r in results]


class ResendsInDoubt(Engine):
    """Sends an in-doubt push again at once, as if a lost answer meant "not applied"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sender = _ResendingSender(self.store, self.adapters, self._codes, self.clock, self.crash)
        self.step.sender = self.sender


class _CopyAnswerStore(LedgerStore):
    def record_outcomes(self, outcomes: Sequence[tuple[int, PushResult]], now: datetime) -> None:
        super().record_outcomes(outcomes, now)
        with self.sessions.begin() as session:
            for push_id, result in outcomes:
                if result.outcome is Outcome.CONFIRMED and result.answer_quantity is not None:
                    listing = session.scalar(select(Push.listing_id).where(Push.id == push_id))
                    session.execute(
                        update(Listing).where(Listing.id == listing).values(expected=result.answer_quantity)
                    )


class CopiesTheAnswer(Engine):
    """Sets `expected` to the platform's answer: a sale folded into that answer vanishes."""

    def __init__(self, config: Any, store: LedgerStore, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, _CopyAnswerStore(store.sessions), *args, **kwargs)


class _NoOutboxStore(LedgerStore):
    """Writes pushes only once their answers are in: nothing records a push in flight."""

    def __init__(self, sessions: Any) -> None:
        super().__init__(sessions)
        self._pending: dict[int, tuple[int, int | None, PlannedPush]] = {}

    def apply_plan(
        self,
        cycle_id: int,
        plan: Plan,
        state: BatchState,
        observed: Mapping[ListingKey, Observed],
        account_ids: Mapping[str, int],
        now: datetime,
        before_commit: Any = lambda _session: None,
        judgement: Judgement | None = None,
    ) -> dict[ListingKey, int]:
        pushes, plan.pushes = plan.pushes, []
        super().apply_plan(cycle_id, plan, state, observed, account_ids, now, before_commit, judgement)
        plan.pushes = pushes
        ids = {}
        for index, push in enumerate(pushes, 1):
            fake = -(len(self._pending) + index)
            self._pending[fake] = (state.listing_ids[(push.account, push.sku)], cycle_id, push)
            ids[(push.account, push.sku)] = fake
        return ids

    def mark_sent(self, push_ids: Sequence[int], now: datetime) -> None:
        return None

    def record_outcomes(self, outcomes: Sequence[tuple[int, PushResult]], now: datetime) -> None:
        real = []
        with self.sessions.begin() as session:
            for fake, result in outcomes:
                listing, cycle, push = self._pending.pop(fake)
                real.append((self._insert(session, listing, cycle, push, now), result))
        super().record_outcomes(real, now)

    @staticmethod
    def _insert(session: Session, listing: int, cycle: int | None, push: PlannedPush, now: datetime) -> int:
        values = dict(
            listing_id=listing,
            cycle_id=cycle,
            delta=push.delta,
            expected_before=push.expected_before,
            observed=push.observed,
            target=push.target,
            state=PushState.SENT.value,
            detail="",
            created_at=now,
            sent_at=now,
        )
        return int(session.execute(insert(Push).values(**values).returning(Push.id)).scalar_one())


class SkipsTheOutbox(Engine):
    """Sends pushes before writing them down."""

    def __init__(self, config: Any, store: LedgerStore, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, _NoOutboxStore(store.sessions), *args, **kwargs)


class _Credulous(Observer):
    """Knows nothing of what the ledger believes, so it judges nothing: no answer is refused as
    empty or all zeros, every reading is taken as seen (a lying answer's zeros included), no drop
    is held for a second read, no account is stopped."""

    def _priors(self, *args: Any, **kwargs: Any) -> dict[str, Prior]:
        return {}


class BooksUnconfirmedDrops(Engine):
    """Books every reading at once, a lying answer's zeros included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observer.__class__ = _Credulous


class OffersUnpickedSales(Engine):
    """Holds nothing back for sales a read does not show yet: where the stock read drops only at
    picking, a unit sold on one platform is still offered on the others until it is picked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flow.unshown_sales = lambda *_args, **_kwargs: {}  # type: ignore[method-assign]
