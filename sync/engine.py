"""The reconcile engine: a cycle over one shard's SKUs, under that shard's lease.

A cycle opens (recovering what a dead reconciler left open), then sweeps its SKUs batch by batch
through the batch step (`sync.batch_step`: observe, judge, plan, commit, send, record). Between
batches, and on its own from the daemon's order job, the feeds are read and the SKUs of new orders
reconciled at once; at the end, pushes left in doubt are judged against the feeds' orders
(`sync.fast_path`). The cycle then closes (`sync.cycle_end`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import OperationalError

from sync.batch_step import BatchStep
from sync.config import Config
from sync.crashpoints import CrashHook, ProcessDeath, no_crash
from sync.cycle_end import CycleEnd
from sync.errors import ConfigError, LedgerUnavailable
from sync.evidence import FeedEvidence
from sync.fast_path import FastPath
from sync.holding import holding, note_lease_lost
from sync.ledger.judgements import JudgementStore
from sync.ledger.lease import LeaseLost, ReconcileLease
from sync.ledger.orders import OrderStore
from sync.ledger.shards import check_shards
from sync.ledger.store import LedgerStore
from sync.metrics import METRICS
from sync.observer import Observer
from sync.order_flow import FeedReport, OrderFlow
from sync.platforms.base import Adapter, chunked
from sync.platforms.http import Sleep
from sync.platforms.pacing import urgent_calls
from sync.report import AccountRun, CycleReport
from sync.sender import Sender
from sync.sharding import lease_name, shard_of, split

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Engine:
    """Runs reconcile cycles for a configuration, a ledger and one adapter per account."""

    def __init__(
        self,
        config: Config,
        store: LedgerStore,
        adapters: Mapping[str, Adapter],
        *,
        clock: Clock = utcnow,
        stop: threading.Event | None = None,
        lease: ReconcileLease | None = None,
        lock_wait: float = 30.0,
        crash: CrashHook = no_crash,
        shard: int = 0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.clock = clock
        self.stop = stop or threading.Event()
        self.shard, self.shards = shard, config.sync.shards
        self.skus = split(config.skus, self.shards)[shard]
        self.lease = lease or ReconcileLease(store.sessions, ttl=timedelta(seconds=config.sync.lease_seconds))
        self.lease.name = lease_name(shard, self.shards)
        # Replicas with another shard count take other leases for the same SKUs: every commit
        # checks the ledger's count too (a `stocksync db shards` stops this one at once).
        self.lease.also_check = lambda session: check_shards(session, self.shards)
        # Every write this engine makes commits only while it holds its lease (same transaction).
        self.store = type(store)(self.lease.fenced(store.sessions))
        self.lock_wait = lock_wait
        self.crash = crash
        self._codes = {a.name: {sku: a.code_for(sku) for sku in config.skus} for a in config.accounts}
        self._account_ids: dict[str, int] = {}
        self.flow = OrderFlow(config, OrderStore(self.store.sessions), adapters, clock, crash)
        self.judgements = JudgementStore(self.store.sessions)
        rules = config.sync.trust_rules()
        platforms = {a.name: a.platform for a in config.accounts}
        self.sender = Sender(self.store, adapters, self._codes, clock, crash)
        self.observer = Observer(
            adapters, self._codes, platforms, self.flow.feed_accounts, rules, self.judgements.stocked_listings
        )
        precision = {name: adapters[name].order_time_precision for name in self.flow.feed_accounts}
        late_sales = [name for name in self.flow.feed_accounts if adapters[name].sale_may_show_late]
        evidence = FeedEvidence(self.flow.store, precision, late_sales)
        self.step = BatchStep(config, self.store, self.observer, self.flow, evidence, self.sender, clock, crash)
        self.feeds = FastPath(
            self.flow,
            self.step,
            shard,
            self.shards,
            config.sync.batch_size,
            config.orders.poll_seconds,
            clock,
            crash,
            sleep,
        )
        self.end = CycleEnd(config, self.store, self.judgements, self.observer, clock)
        self._retired = False  # SKUs that left the catalogue are marked once per engine

    async def run_cycle(
        self, trigger: str = "manual", *, dry_run: bool = False, progress: Progress | None = None
    ) -> CycleReport:
        """One cycle over the whole catalogue; `dry_run` plans without writing or sending anything.

        Raises LeaseBusy when another reconciler holds the ledger for longer than `lock_wait`."""
        if dry_run:
            return await self._cycle(trigger, dry_run=True, progress=progress)
        async with holding(self.lease, self.lock_wait, self.stop):
            return await self._cycle(trigger, dry_run=False, progress=progress)

    async def run_orders(self) -> CycleReport | None:
        """Read the order feeds now; when orders arrived, reconcile just their SKUs in a cycle of
        their own and return it (None when nothing was new).

        Raises LeaseBusy at once when another reconciler holds the ledger: it reads the feeds itself."""
        if not self.flow.feed_accounts:
            return None
        if not self.reads_feeds and not self.flow.store.urgent(self.shard, self.shards):
            return None  # nothing queued for this shard: leave its lease alone
        with urgent_calls():  # a sale's calls go ahead of the sweep's under a rate limit
            return await self._orders_cycle()

    async def _orders_cycle(self) -> CycleReport | None:
        async with holding(self.lease, 0.0, self.stop):
            try:
                if not self._account_ids:
                    accounts = ((a.name, a.platform) for a in self.config.accounts)
                    self._account_ids = self.store.ensure_accounts(accounts)
                feeds = FeedReport()
                skus = await self.feeds.poll(self._account_ids, feeds) if self.reads_feeds else set()
                skus |= self.feeds.claim_urgent()
            except LeaseLost as lost:
                note_lease_lost("orders.lease_lost", self.lease, lost)
                return None
            if not skus:
                return None
            report = await self._cycle("orders", dry_run=False, progress=None, only_skus=sorted(skus))
            report.feeds = feeds
            report.fast_skus = len(skus)
            return report

    @property
    def account_ids(self) -> dict[str, int]:
        """The ledger's id of each account (known once a cycle has opened)."""
        return dict(self._account_ids)

    @property
    def reads_feeds(self) -> bool:
        """The order feeds are read under shard 0's lease: by one replica at a time."""
        return self.feeds.reads_feeds

    async def _cycle(
        self, trigger: str, *, dry_run: bool, progress: Progress | None, only_skus: Sequence[str] | None = None
    ) -> CycleReport:
        report = CycleReport(trigger=trigger, dry_run=dry_run)
        report.accounts = {a.name: AccountRun(name=a.name, platform=a.platform) for a in self.config.accounts}
        try:
            return await self._cycle_body(report, dry_run=dry_run, progress=progress, only_skus=only_skus)
        except LeaseLost as lost:
            # Another reconciler holds the ledger now: stop here; nothing more of ours committed,
            # and what we sent stays `sent` for it to settle as in doubt.
            report.lease_lost = str(lost)
            note_lease_lost("cycle.lease_lost", self.lease, lost, cycle=report.cycle_id)
            return report

    async def _cycle_body(
        self, report: CycleReport, *, dry_run: bool, progress: Progress | None, only_skus: Sequence[str] | None
    ) -> CycleReport:
        trigger = report.trigger
        skus = list(self.skus) if only_skus is None else list(only_skus)
        if not dry_run:
            # Under the lease: pushes left open are from a reconciler that died, never a live one.
            opened = self.store.open_cycle(
                trigger,
                self.clock(),
                self.lease.holder,
                ((a.name, a.platform) for a in self.config.accounts),
                shard=None if self.shards == 1 else self.shard,
                shard_count=self.shards,
                records_before_set=[name for name, adapter in self.adapters.items() if adapter.records_before_set],
            )
            if opened.cancelled or opened.doubted:
                log.warning("outbox.recovered", cancelled=opened.cancelled, in_doubt=opened.doubted)
            self._account_ids = opened.account_ids
            report.cycle_id = opened.cycle_id
            self.flow.recover(lambda sku: shard_of(sku, self.shards) == self.shard)
            catalogue = None if self._retired else self.config.skus
            accounts = [a.name for a in self.config.accounts]
            self.observer.answering_badly = self.judgements.prepare(catalogue, accounts, self.clock())
            self._retired = True
        else:
            # A dry run judges like a real run (orders explain drops; accounts answering badly need
            # two reads) and writes nothing.
            self._account_ids = self.store.account_ids()
            self.observer.answering_badly = self.judgements.answering_badly()
        log.info("cycle.start", cycle=report.cycle_id, trigger=trigger, skus=len(skus), dry_run=dry_run)
        error: str | None = None
        try:
            for batch in chunked(skus, self.config.sync.batch_size):
                if self.stop.is_set():
                    report.stopped = True
                    break
                if not dry_run:
                    self.lease.check()
                    await self.feeds.run(report, self._account_ids)
                await self.step.run(batch, report, self._account_ids, verify=False)
                report.skus_done += len(batch)
                if progress:
                    progress(report.skus_done, len(skus))
            if not dry_run and not report.stopped:
                await self.feeds.settle_doubts(report, self._account_ids)
        except (ProcessDeath, LeaseLost, ConfigError):
            raise  # ConfigError: the ledger's shard count changed under us (the daemon stops)
        except OperationalError as err:  # the database, not our code: no traceback, try again
            failed = LedgerUnavailable.from_database(err)
            log.error("cycle.ledger_failed", cycle=report.cycle_id, error=str(failed))
            self.end.finish(report, str(failed), quietly=True)
            raise failed from None
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            log.exception("cycle.crashed", cycle=report.cycle_id)
            self.end.finish(report, error)
            raise
        if only_skus is None and not dry_run and not report.stopped:
            report.drifting = self.flow.drifting(alert=True)
            METRICS.drifting.set(len(report.drifting))
        self.end.finish(report, None)
        return report
