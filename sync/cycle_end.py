"""Closing a cycle: its counts and outcome, each account's health (logged when it breaks or
recovers, and when it starts or stops answering badly), and the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from sync.config import Config
from sync.errors import LedgerUnavailable
from sync.ledger.cycles import CycleCounts
from sync.ledger.judgements import JudgementStore
from sync.ledger.store import LedgerStore
from sync.metrics import METRICS
from sync.observer import Observer
from sync.platforms.base import Outcome
from sync.report import CycleReport

log = structlog.get_logger(__name__)


@dataclass
class CycleEnd:
    """Records how a cycle ended."""

    config: Config
    store: LedgerStore
    judgements: JudgementStore
    observer: Observer
    clock: Callable[[], datetime]

    def finish(self, report: CycleReport, error: str | None, *, quietly: bool = False) -> None:
        """Close the cycle's row (a dry run has none). `quietly`: the ledger just failed, and a
        second failure is logged, not raised (the next cycle to open closes the row)."""
        if report.dry_run:
            return
        try:
            self._close(report, error)
        except SQLAlchemyError as err:
            if not quietly:
                raise
            log.warning("cycle.not_recorded", cycle=report.cycle_id, error=str(LedgerUnavailable.from_database(err)))

    def _close(self, report: CycleReport, error: str | None) -> None:
        now = self.clock()
        failed = sum(1 for run in report.accounts.values() if not run.ok)
        # "partial": an account failed, answered badly, or holds listings under a safety stop;
        # "failed": no account could be synced at all.
        outcome = "crashed" if error else "stopped" if report.stopped else "ok" if report.ok else "partial"
        if outcome == "partial" and report.accounts and not any(run.ok for run in report.accounts.values()):
            outcome = "failed"
        counts = CycleCounts(
            outcome=outcome,
            listings_observed=sum(run.observed for run in report.accounts.values()),
            movements=len(report.movements),
            pushes_planned=len(report.pushes),
            pushes_confirmed=report.count(Outcome.CONFIRMED.value),
            pushes_failed=report.count(Outcome.FAILED.value),
            pushes_in_doubt=report.count(Outcome.IN_DOUBT.value),
            accounts_failed=failed,
            error=error,
        )
        assert report.cycle_id is not None
        self._note_answering(report, now)
        METRICS.cycles.labels(report.trigger, outcome).inc()
        METRICS.cycle_seconds.labels(report.trigger).observe(time.monotonic() - report.started)
        health = [(run.name, run.ok, run.error) for run in report.accounts.values()]
        for name in self.store.close_cycle(report.cycle_id, counts, now, health):
            run = report.accounts[name]
            if run.ok:
                log.info("account.recovered", account=name)
            else:
                log.error("account.broken", account=name, error=run.error, kind=run.error_kind)
        log.info(
            "cycle.end",
            cycle=report.cycle_id,
            outcome=outcome,
            movements=counts.movements,
            pushes=counts.pushes_planned,
            confirmed=counts.pushes_confirmed,
            failed=counts.pushes_failed,
            in_doubt=counts.pushes_in_doubt,
            accounts_failed=failed,
            new_orders=report.feeds.new_orders,
            fast_skus=report.fast_skus,
            oversells=len(report.oversells),
            drifting=len(report.drifting),
        )

    def _note_answering(self, report: CycleReport, now: datetime) -> None:
        """Log once when an account starts answering badly, and once when it recovers."""
        bad = {name: sum(run.bad.values()) for name, run in report.accounts.items()}
        read_ok = [name for name, run in report.accounts.items() if run.ok and run.observed]
        quiet = timedelta(seconds=self.config.sync.bad_read_quiet_seconds)
        for change in self.judgements.after_cycle(bad, read_ok, now, quiet):
            run = report.accounts[change.account]
            if change.bad:
                log.error("account.answering_badly", account=change.account, bad_reads=dict(run.bad))
                self.observer.answering_badly.add(change.account)
            else:
                log.info("account.answering_well", account=change.account, since=str(change.since))
                self.observer.answering_badly.discard(change.account)
