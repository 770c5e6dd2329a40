"""The order feeds' side of a cycle: reading the feeds (by shard 0's engine, one replica at a
time), reconciling the SKUs of new orders at once, ahead of the sweep (the fast path), and, at the
cycle's end, reading the feeds past the probes of pushes left in doubt so that their orders settle
them within the cycle."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from sync.batch_step import BatchStep
from sync.crashpoints import CrashHook
from sync.evidence import TIME_MARGIN
from sync.order_flow import FeedReport, OrderFlow
from sync.platforms.base import chunked
from sync.platforms.http import Sleep
from sync.platforms.pacing import urgent_calls
from sync.report import CycleReport
from sync.sharding import shard_of

log = structlog.get_logger(__name__)


@dataclass
class FastPath:
    """Feeds, the fast path and the settling of doubts for one shard's engine."""

    flow: OrderFlow
    step: BatchStep
    shard: int
    shards: int
    batch_size: int
    poll_seconds: float
    clock: Callable[[], datetime]
    crash: CrashHook
    sleep: Sleep
    _next_poll: float = field(default=0.0, init=False)  # time.monotonic() when the feeds are due again

    @property
    def reads_feeds(self) -> bool:
        """The order feeds are read under shard 0's lease: by one replica at a time."""
        return self.shard == 0

    async def poll(
        self,
        account_ids: Mapping[str, int],
        feeds: FeedReport,
        only: Collection[str] | None = None,
        vouch: Collection[str] = (),
    ) -> set[str]:
        """Read the feeds (or `only` those); return the SKUs of this shard to reconcile now,
        queueing the others'."""
        if only is None:
            self._next_poll = time.monotonic() + self.poll_seconds
        skus = await self.flow.poll(account_ids, feeds, self._before_feed_commit, only, vouch)
        if self.shards == 1:
            return skus
        others = {sku for sku in skus if shard_of(sku, self.shards) != self.shard}
        self.flow.store.enqueue_urgent(others, self.clock())
        return skus - others

    def claim_urgent(self) -> set[str]:
        """Take the queued SKUs of this shard (several replicas only)."""
        if self.shards == 1:
            return set()
        return set(self.flow.store.claim_urgent(self.shard, self.shards))

    async def run(self, report: CycleReport, account_ids: Mapping[str, int]) -> None:
        """When the feeds are due: read them, and reconcile the SKUs of new orders right away (with
        those other replicas queued for this shard)."""
        if not self.flow.feed_accounts:
            return
        with urgent_calls():  # a sale's calls go ahead of the sweep's under a rate limit
            await self._run(report, account_ids)

    async def _run(self, report: CycleReport, account_ids: Mapping[str, int]) -> None:
        due = self.reads_feeds and time.monotonic() >= self._next_poll
        # Pushes in doubt that other replicas' shards left waiting on a feed are read past here.
        vouch = self.flow.waiting_on_feeds(account_ids) if due else set()
        skus = (await self.poll(account_ids, report.feeds, vouch=vouch) if due else set()) | self.claim_urgent()
        if not skus:
            return
        report.fast_skus += len(skus)
        log.info("orders.fast_path", skus=len(skus), cycle=report.cycle_id)
        for batch in chunked(sorted(skus), self.batch_size):
            await self.step.run(batch, report, account_ids, verify=False)

    async def settle_doubts(self, report: CycleReport, account_ids: Mapping[str, int]) -> None:
        """Pushes in doubt on feed accounts have a probe read by now: once the feed can be read
        past it, read it (in full where only that vouches: OTO) and judge them again, so they
        settle within the cycle."""
        doubtful, self.step.doubtful = self.step.doubtful, defaultdict(set)
        probed, self.step.probed = self.step.probed, False
        if not doubtful or not self.reads_feeds:
            return  # (a replica without the feeds: the next cycle judges them)
        if probed:  # a probe read just now: the feed can be read past it only a moment later
            await self.sleep(TIME_MARGIN.total_seconds())
        ordered = await self.poll(account_ids, report.feeds, only=doubtful.keys(), vouch=doubtful.keys())
        report.fast_skus += len(ordered)  # new orders this poll found go through at once too
        skus = sorted(set().union(*doubtful.values()) | ordered)
        for batch in chunked(skus, self.batch_size):
            # Every account: what settling gives back to a pool reaches the other listings now.
            await self.step.run(batch, report, account_ids, verify=True)

    def _before_feed_commit(self, session: Session) -> None:
        """Inside a feed page's transaction (fenced on the lease by the engine's sessions): the
        crash point."""
        self.crash("before_feed_commit")
