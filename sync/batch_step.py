"""One batch of SKUs through the cycle's step: observe every account concurrently, judge the reads,
plan (pure), commit the plan (movements, listings, settlements and the pushes as an outbox) in one
transaction, mark the pushes sent, send them, record each outcome. A listing whose push went in
doubt is read again at once (the probe, or on a platform without a feed the quiet-listing read);
after a batch, new movements are attributed to orders and pools below zero go to the oversell
policy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from sync.config import Config
from sync.crashpoints import CrashHook
from sync.domain import MovementKind
from sync.evidence import FeedEvidence
from sync.ledger.store import LedgerStore
from sync.metrics import METRICS
from sync.observer import Observer
from sync.order_flow import OrderFlow
from sync.planner import AccountRules, Plan, PlanInput, plan
from sync.report import CycleReport, PushReport
from sync.sender import Sender

log = structlog.get_logger(__name__)


@dataclass
class BatchStep:
    """The cycle's step for one batch, and the listings on feed accounts it left in doubt
    (`doubtful`: judged again at the cycle's end; `probed`: some took a new probe)."""

    config: Config
    store: LedgerStore
    observer: Observer
    flow: OrderFlow
    evidence: FeedEvidence
    sender: Sender
    clock: Callable[[], datetime]
    crash: CrashHook
    rules: dict[str, AccountRules] = field(init=False)
    doubtful: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    probed: bool = False

    def __post_init__(self) -> None:
        self.rules = {a.name: AccountRules(a.buffer, a.max_quantity) for a in self.config.accounts}

    async def run(
        self,
        skus: Sequence[str],
        report: CycleReport,
        account_ids: Mapping[str, int],
        *,
        verify: bool,
        only: Mapping[str, set[str]] | None = None,
    ) -> None:
        """Observe, plan, commit, send and record for `skus` (restricted to `only` when given)."""
        state = self.store.load_batch(skus)
        accounts = list(only) if only is not None else [a.name for a in self.config.accounts]
        wanted = {name: sorted(only[name]) if only is not None else list(skus) for name in accounts}
        ids = {name: account_ids[name] for name in accounts if name in account_ids}
        explained = self.flow.unbooked_sales(state.sku_ids, ids)
        # Before the read (held units of every account): a fulfilled order's units show in a read
        # begun after we saw it so.
        unshown = self.flow.unshown_sales(state.sku_ids, account_ids)
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
                late_landing=timedelta(seconds=self.config.sync.late_landing_seconds),
                adopt=frozenset(judgement.adopt),
                unread=frozenset(judgement.unread),
                feed_accounts=self.evidence.feed_accounts,
                windows=self.evidence.windows(state, account_ids),
                read_began=state.read_began,
                unshown=unshown,
                feeds_behind=self.evidence.behind(account_ids, self.clock(), self.config.sync.in_doubt_timeout_seconds),
            )
        )
        report.movements.extend(the_plan.movements)
        report.settled += len(the_plan.settlements)
        if not verify:
            report.waiting.extend(the_plan.waiting)
        _log_plan(the_plan, report)
        if report.dry_run:
            report.pushes.extend(PushReport(p) for p in the_plan.pushes)
            if not verify:
                report.oversells += await self.flow.oversells(the_plan.pools_at_most(), state.sku_ids, dry_run=True)
            return
        push_ids = self.store.apply_plan(
            report.cycle_id or 0, the_plan, state, observed, account_ids, self.clock(), self._before_commit, judgement
        )
        self.crash("after_plan_commit")
        in_doubt = await self.sender.send(the_plan.pushes, push_ids, state, report)
        external = {
            (account_ids[m.account], state.sku_ids[m.sku])
            for m in the_plan.movements
            if m.kind is MovementKind.EXTERNAL and m.account is not None
        }
        # Verify runs too: a drop left unlinked would keep its order from explaining the next one.
        report.feeds.attributed_units += self.flow.attribute(external)
        if not verify:
            pools = self.flow.less_unbooked_sales(the_plan.pools_at_most(), state.sku_ids, account_ids)
            report.oversells += await self.flow.oversells(pools, state.sku_ids, dry_run=False)
        if in_doubt and not verify:
            # Read the doubtful listings again at once: without a feed, the shorter the gap the
            # likelier a quiet listing tells the truth (the documented rule); with one, this read
            # is the probe the feed's orders judge at the cycle's end.
            doubtful: dict[str, set[str]] = defaultdict(set)
            for account, sku in in_doubt:
                doubtful[account].add(sku)
            await self.run(sorted({sku for _, sku in in_doubt}), report, account_ids, verify=True, only=doubtful)
        settled = {s.push_id for s in the_plan.settlements}
        for (account, sku), doubt in state.doubts.items():
            if account in self.evidence.feed_accounts and doubt.push_id not in settled:
                self.doubtful[account].add(sku)  # waiting on the feed: judged again at the cycle's end
                self.probed |= doubt.push_id in the_plan.probes

    def _before_commit(self, session: Session) -> None:
        """Inside the plan transaction (fenced on the lease by the engine's sessions): the crash
        point before commit."""
        self.crash("before_plan_commit")


def _log_plan(the_plan: Plan, report: CycleReport) -> None:
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
        if not report.dry_run:
            platform = report.accounts[s.account].platform
            METRICS.in_doubt_settled.labels(platform, s.account, s.by.value, str(s.applied).lower()).inc()
        event = "push.settled_flagged" if s.flagged else "push.settled"
        (log.warning if s.flagged else log.info)(
            event, push=s.push_id, sku=s.sku, account=s.account, applied=s.applied, by=s.by.value, note=s.note
        )
