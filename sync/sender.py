"""Sending a committed plan's pushes: mark them sent, send each account's concurrently, record
every outcome. The outbox rows were committed with the plan, so a crash anywhere here leaves
pushes that the next cycle recovers as in doubt, never lost and never sent twice unknowingly."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError

from sync.crashpoints import CrashHook
from sync.errors import LedgerUnavailable, RetriableError
from sync.ledger.lease import LeaseLost
from sync.ledger.store import BatchState, LedgerStore
from sync.metrics import METRICS
from sync.planner import ListingKey, PlannedPush
from sync.platforms.base import Adapter, Change, Outcome, PushResult
from sync.report import CycleReport, PushReport

log = structlog.get_logger(__name__)


class Sender:
    """Sends planned pushes through the adapters and books what became of each."""

    def __init__(
        self,
        store: LedgerStore,
        adapters: Mapping[str, Adapter],
        codes: Mapping[str, Mapping[str, str]],
        clock: Callable[[], datetime],
        crash: CrashHook,
    ) -> None:
        self.store = store
        self.adapters = adapters
        self.codes = codes
        self.clock = clock
        self.crash = crash

    async def send(
        self,
        pushes: Sequence[PlannedPush],
        push_ids: Mapping[ListingKey, int],
        state: BatchState,
        report: CycleReport,
    ) -> list[ListingKey]:
        """Send the committed pushes per account; record outcomes; return the listings in doubt."""
        if not pushes:
            return []
        self.store.mark_sent(list(push_ids.values()), self.clock())
        self.crash("after_mark_sent")
        by_account: dict[str, list[PlannedPush]] = defaultdict(list)
        for push in pushes:
            by_account[push.account].append(push)
        accounts = list(by_account)
        results = await asyncio.gather(
            *(self._push(name, by_account[name], push_ids, state, report) for name in accounts)
        )
        outcomes: list[tuple[int, PushResult]] = []
        in_doubt: list[ListingKey] = []
        for name, account_results in zip(accounts, results, strict=True):
            for push, result in zip(by_account[name], account_results, strict=True):
                key = (name, push.sku)
                outcomes.append((push_ids[key], result))
                report.pushes.append(PushReport(push, result.outcome.value, result.detail))
                METRICS.pushes.labels(report.accounts[name].platform, name, result.outcome.value).inc()
                _log_outcome(push, result)
                if result.outcome is Outcome.IN_DOUBT:
                    in_doubt.append(key)
                elif (
                    result.outcome is Outcome.FAILED and result.error is not None and result.error.kind.value == "fatal"
                ):
                    report.accounts[name].fail(result.error.message, result.error.kind.value)
        self.crash("after_send")
        self.store.record_outcomes(outcomes, self.clock())
        self.crash("after_outcomes")
        return in_doubt

    async def _push(
        self,
        name: str,
        pushes: Sequence[PlannedPush],
        push_ids: Mapping[ListingKey, int],
        state: BatchState,
        report: CycleReport,
    ) -> list[PushResult]:
        changes = [
            Change(
                self.codes[name][p.sku],
                state.refs[(name, p.sku)],
                p.delta,
                p.observed,
                push_ids[(name, p.sku)],
                alone=(name, p.sku) in state.isolate,
            )
            for p in pushes
        ]
        try:
            return await self.adapters[name].push(changes, before_set=self._record_sets)
        except Exception as err:  # adapters return per-change results; anything raised is a bug
            log.exception("account.push_crashed", account=name)
            # Whether anything left is unknown: treat every change as in doubt, never as failed.
            detail = f"internal error: {type(err).__name__}: {err}"
            report.accounts[name].fail(detail, "internal")
            return [PushResult(c, Outcome.IN_DOUBT, detail) for c in changes]

    def _record_sets(self, sets: Sequence[tuple[Change, int, int]]) -> None:
        """An absolute set's fresh reads and real moves, recorded before the set leaves. If they
        cannot be (the ledger failed, the lease passed on), the set does not leave: certainly not
        applied, it fails and the next cycle plans afresh."""
        try:
            self.store.record_sets([(c.push_id, fresh, moves) for c, fresh, moves in sets if c.push_id is not None])
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"not set: {LedgerUnavailable.from_database(err)}") from None
        except LeaseLost as lost:
            raise RetriableError(f"not set: {lost}") from None


def _log_outcome(push: PlannedPush, result: PushResult) -> None:
    context = dict(sku=push.sku, account=push.account, delta=push.delta, target=push.target)
    if result.outcome is Outcome.CONFIRMED:
        log.info("push.confirmed", **context)
    elif result.outcome is Outcome.FAILED:
        log.warning("push.failed", detail=result.detail, **context)
    else:
        log.warning("push.in_doubt", detail=result.detail, **context)
