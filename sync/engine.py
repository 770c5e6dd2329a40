"""The reconcile engine: all the I/O around the pure planner.

For each batch of SKUs: observe every account concurrently, plan, commit the plan (movements,
listings, and the pushes as an outbox) in one transaction, mark the pushes sent, send them, then
record each outcome. A listing whose push went in doubt is read again at once and, when the read
settles it, reconciled once more in a short verify round. After each batch, new movements are
attributed to orders and pools below zero are handed to the oversell policy.

Between batches (and on its own, from the daemon's order job) the engine reads the order feeds;
the SKUs of new orders are reconciled at once, ahead of the rest of the sweep: the fast path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from sync.config import Config
from sync.crashpoints import CrashHook, ProcessDeath, no_crash
from sync.domain import MovementKind
from sync.errors import ConfigError, LedgerUnavailable
from sync.evidence import TIME_MARGIN, FeedEvidence
from sync.holding import holding, note_lease_lost
from sync.ledger.cycles import CycleCounts
from sync.ledger.judgements import JudgementStore
from sync.ledger.lease import LeaseLost, ReconcileLease
from sync.ledger.orders import OrderStore
from sync.ledger.shards import check_shards
from sync.ledger.store import LedgerStore
from sync.metrics import METRICS
from sync.observer import Observer
from sync.order_flow import FeedReport, OrderFlow
from sync.planner import AccountRules, Plan, PlanInput, plan
from sync.platforms.base import Adapter, Outcome, chunked
from sync.platforms.http import Sleep
from sync.report import AccountRun, CycleReport, PushReport
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
        self.sleep = sleep
        # Listings on feed accounts left in doubt this cycle: judged again at its end (`_settle_doubts`).
        self._doubtful: dict[str, set[str]] = defaultdict(set)
        self.rules = {a.name: AccountRules(a.buffer, a.max_quantity) for a in config.accounts}
        self._codes = {a.name: {sku: a.code_for(sku) for sku in config.skus} for a in config.accounts}
        self._account_ids: dict[str, int] = {}
        self.flow = OrderFlow(config, OrderStore(self.store.sessions), adapters, clock, crash)
        self.judgements = JudgementStore(self.store.sessions)
        self.evidence = FeedEvidence(self.flow.store, self.flow.feed_accounts)
        rules = config.sync.trust_rules()
        platforms = {a.name: a.platform for a in config.accounts}
        self.sender = Sender(self.store, adapters, self._codes, clock, crash)
        self.observer = Observer(
            adapters, self._codes, platforms, self.flow.feed_accounts, rules, self.judgements.stocked_listings
        )
        self._next_poll = 0.0  # time.monotonic() at which the order feeds are due again
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
        async with holding(self.lease, 0.0, self.stop):
            try:
                if not self._account_ids:
                    accounts = ((a.name, a.platform) for a in self.config.accounts)
                    self._account_ids = self.store.ensure_accounts(accounts)
                feeds = FeedReport()
                skus = await self._poll_feeds(feeds) if self.reads_feeds else set()
                skus |= self._claim_urgent()
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
        return self.shard == 0

    async def _poll_feeds(self, feeds: FeedReport) -> set[str]:
        """Read the feeds; return the SKUs of this shard to reconcile now, queueing the others'."""
        self._next_poll = time.monotonic() + self.config.orders.poll_seconds
        skus = await self.flow.poll(self._account_ids, feeds, self._before_feed_commit)
        if self.shards == 1:
            return skus
        others = {sku for sku in skus if shard_of(sku, self.shards) != self.shard}
        self.flow.store.enqueue_urgent(others, self.clock())
        return skus - others

    def _claim_urgent(self) -> set[str]:
        """Take the queued SKUs of this shard (several replicas only)."""
        if self.shards == 1:
            return set()
        return set(self.flow.store.claim_urgent(self.shard, self.shards))

    def _before_feed_commit(self, session: Session) -> None:
        """Inside a feed page's transaction (fenced on the lease by the engine's sessions): the
        crash point."""
        self.crash("before_feed_commit")

    async def _fast_path(self, report: CycleReport) -> None:
        """When the feeds are due: read them, and reconcile the SKUs of new orders right away (with
        those other replicas queued for this shard)."""
        if not self.flow.feed_accounts:
            return
        due = self.reads_feeds and time.monotonic() >= self._next_poll
        skus = (await self._poll_feeds(report.feeds) if due else set()) | self._claim_urgent()
        if not skus:
            return
        report.fast_skus += len(skus)
        log.info("orders.fast_path", skus=len(skus), cycle=report.cycle_id)
        for batch in chunked(sorted(skus), self.config.sync.batch_size):
            await self._reconcile(batch, report, verify=False)

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
                    await self._fast_path(report)
                await self._reconcile(batch, report, verify=False)
                report.skus_done += len(batch)
                if progress:
                    progress(report.skus_done, len(skus))
            if not dry_run and not report.stopped:
                await self._settle_doubts(report)
        except (ProcessDeath, LeaseLost, ConfigError):
            raise  # ConfigError: the ledger's shard count changed under us (the daemon stops)
        except OperationalError as err:  # the database, not our code: no traceback, try again
            failed = LedgerUnavailable.from_database(err)
            log.error("cycle.ledger_failed", cycle=report.cycle_id, error=str(failed))
            self._finish_unless_dry(report, str(failed), quietly=True)
            raise failed from None
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            log.exception("cycle.crashed", cycle=report.cycle_id)
            self._finish_unless_dry(report, error)
            raise
        if only_skus is None and not dry_run and not report.stopped:
            report.drifting = self.flow.drifting(alert=True)
            METRICS.drifting.set(len(report.drifting))
        self._finish_unless_dry(report, None)
        return report

    def _finish_unless_dry(self, report: CycleReport, error: str | None, *, quietly: bool = False) -> None:
        if report.dry_run:
            return
        try:
            self._finish(report, error)
        except SQLAlchemyError as err:
            if not quietly:
                raise
            # Still failing: the cycle row stays open, and the next cycle to open closes it.
            log.warning("cycle.not_recorded", cycle=report.cycle_id, error=str(LedgerUnavailable.from_database(err)))

    def _finish(self, report: CycleReport, error: str | None) -> None:
        now = self.clock()
        failed = sum(1 for run in report.accounts.values() if not run.ok)
        # "partial": an account failed, answered badly, or holds listings under a safety stop.
        outcome = "crashed" if error else "stopped" if report.stopped else "ok" if report.ok else "partial"
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

    async def _reconcile(
        self,
        skus: Sequence[str],
        report: CycleReport,
        *,
        verify: bool,
        only: Mapping[str, set[str]] | None = None,
    ) -> None:
        """Observe, plan, commit, send and record for `skus` (restricted to `only` when given)."""
        state = self.store.load_batch(skus)
        accounts = list(only) if only is not None else [a.name for a in self.config.accounts]
        wanted = {name: sorted(only[name]) if only is not None else list(skus) for name in accounts}
        ids = {name: self._account_ids[name] for name in accounts if name in self._account_ids}
        explained = self.flow.unbooked_sales(state.sku_ids, ids)
        state.read_began = self.clock()
        observed, judgement = await self.observer.observe(state, wanted, explained, report, judge_stops=not verify)
        state.read_ended = self.clock()
        failed = frozenset(name for name, run in report.accounts.items() if not run.ok)
        the_plan = plan(
            PlanInput(
                skus=state.skus,
                observations={key: seen.quantity for key, seen in observed.items()},
                rules=self.rules,
                failed_accounts=failed,
                bootstrap_rule=self.config.bootstrap.rule,
                now=self.clock(),
                in_doubt_timeout=timedelta(seconds=self.config.sync.in_doubt_timeout_seconds),
                adopt=frozenset(judgement.adopt),
                unread=frozenset(judgement.unread),
                feed_accounts=self.evidence.feed_accounts,
                windows=self.evidence.windows(state, self._account_ids),
            )
        )
        report.movements.extend(the_plan.movements)
        report.settled += len(the_plan.settlements)
        if not verify:
            report.waiting.extend(the_plan.waiting)
        self._log_plan(the_plan, report)
        if report.dry_run:
            report.pushes.extend(PushReport(p) for p in the_plan.pushes)
            if not verify:
                report.oversells += await self.flow.oversells(the_plan.pools, state.sku_ids, dry_run=True)
            return
        push_ids = self.store.apply_plan(
            report.cycle_id or 0,
            the_plan,
            state,
            observed,
            self._account_ids,
            self.clock(),
            self._before_commit,
            judgement,
        )
        self.crash("after_plan_commit")
        in_doubt = await self.sender.send(the_plan.pushes, push_ids, state, report)
        if not verify:
            external = {
                (self._account_ids[m.account], state.sku_ids[m.sku])
                for m in the_plan.movements
                if m.kind is MovementKind.EXTERNAL and m.account is not None
            }
            report.feeds.attributed_units += self.flow.attribute(external)
            report.oversells += await self.flow.oversells(the_plan.pools, state.sku_ids, dry_run=False)
        if in_doubt and not verify:
            # Read the doubtful listings again at once: without a feed, the shorter the gap the
            # likelier a quiet listing tells the truth (the documented rule); with one, this read
            # is the probe the feed's orders judge at the cycle's end.
            doubtful: dict[str, set[str]] = defaultdict(set)
            for account, sku in in_doubt:
                doubtful[account].add(sku)
            await self._reconcile(sorted({sku for _, sku in in_doubt}), report, verify=True, only=doubtful)
        for (account, sku), doubt in state.doubts.items():
            if doubt.push_id in the_plan.probes:  # a new probe: judge it at the cycle's end
                self._doubtful[account].add(sku)

    async def _settle_doubts(self, report: CycleReport) -> None:
        """Pushes left in doubt on feed accounts this cycle have a probe read by now: once the feed
        can be read past it, read it and judge them again, so they settle within the cycle."""
        doubtful, self._doubtful = self._doubtful, defaultdict(set)
        if not doubtful or not self.reads_feeds:
            return  # (a replica without the feeds: the next cycle judges them)
        await self.sleep(TIME_MARGIN.total_seconds())
        await self._poll_feeds(report.feeds)
        skus = sorted(set().union(*doubtful.values()))
        for batch in chunked(skus, self.config.sync.batch_size):
            # Every account: what settling gives back to a pool reaches the other listings now.
            await self._reconcile(batch, report, verify=True)

    def _before_commit(self, session: Session) -> None:
        """Inside the plan transaction (fenced on the lease by the engine's sessions): the crash
        point before commit."""
        self.crash("before_plan_commit")

    def _log_plan(self, the_plan: Plan, report: CycleReport) -> None:
        for m in the_plan.movements:
            log.info(
                "movement.booked",
                sku=m.sku,
                account=m.account,
                quantity=m.quantity,
                kind=m.kind.value,
                note=m.note,
                flagged=m.flagged,
                dry_run=report.dry_run,
            )
        for s in the_plan.settlements:
            event = "push.settled_flagged" if s.flagged else "push.settled"
            (log.warning if s.flagged else log.info)(
                event, push=s.push_id, sku=s.sku, account=s.account, applied=s.applied, by=s.by.value, note=s.note
            )
