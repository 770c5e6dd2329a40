"""The engine's order side: read the feeds, book them, attribute movements, and act on oversells.

The engine calls it around its stock cycle, always under the reconcile lease:
- `poll` reads every feed from its stored cursor to its end and returns the SKUs that new orders
  (and cancellations) touched, for the engine to reconcile at once: the fast path;
- `attribute` links new movements to order lines;
- `oversells` compares each pool to zero after a batch, picks the newest orders that cannot be
  filled, and alerts or cancels them by each account's policy, never cancelling an order twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

import structlog
from sqlalchemy.orm import Session

from sync.config import Config
from sync.crashpoints import CrashHook
from sync.domain import Unshown
from sync.errors import SyncError
from sync.evidence import TIME_MARGIN
from sync.ledger.models import ActionState
from sync.ledger.orders import OrderStore
from sync.ledger.oversells import Drift, PlannedAction
from sync.ledger.rechecks import OrderRechecks, Rechecked, StatusRead
from sync.metrics import METRICS
from sync.orders.oversell import orders_to_act_on
from sync.platforms.base import Adapter, Outcome

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
ListingKey = tuple[str, str]  # (account name, sku)


@dataclass
class OrderAct:
    """One order an oversell falls on, and what was (or, in a dry run, would be) done."""

    account: str
    order: str
    units: int
    kind: str
    outcome: str


@dataclass
class OversellReport:
    """A SKU whose pool went below zero in this cycle."""

    sku: str
    shortfall: int
    acts: list[OrderAct] = field(default_factory=list)


@dataclass
class FeedReport:
    """What the order feeds brought in a cycle."""

    pages: int = 0
    new_orders: int = 0
    status_changes: int = 0
    attributed_units: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class OrderFlow:
    """Feeds, attribution and oversells for one configuration's accounts."""

    def __init__(
        self,
        config: Config,
        store: OrderStore,
        adapters: Mapping[str, Adapter],
        clock: Clock,
        crash: CrashHook,
    ) -> None:
        self.config = config
        self.store = store
        self.adapters = adapters
        self.clock = clock
        self.crash = crash
        self.feed_accounts = [a.name for a in config.accounts if adapters[a.name].has_order_feed]
        self._sku_of = {a.name: {a.code_for(sku): sku for sku in config.skus} for a in config.accounts}
        self._catalogue = set(config.skus)
        self._policy = {a.name: a.oversell_policy for a in config.accounts}
        self._feed_broken: set[str] = set()
        self.rechecks = OrderRechecks(store.sessions)

    # --- feeds ----------------------------------------------------------------------------------

    async def poll(
        self,
        account_ids: Mapping[str, int],
        report: FeedReport,
        before_commit: Callable[[Session], None],
        only: Collection[str] | None = None,
        vouch: Collection[str] = (),
    ) -> set[str]:
        """Read every feed (or `only` those) to its end (or the page limit); return the catalogue
        SKUs to reconcile now. `vouch`: feeds pushes in doubt wait on, whose poll should vouch for
        every order placed before it began (see `Adapter.vouching_cursor`)."""
        names = [name for name in self.feed_accounts if only is None or name in only]
        results = await asyncio.gather(
            *(self._poll_one(name, account_ids[name], report, before_commit, name in vouch) for name in names)
        )
        return set().union(*results) if results else set()

    async def _poll_one(
        self, name: str, account_id: int, report: FeedReport, before_commit: Callable[[Session], None], vouch: bool
    ) -> set[str]:
        touched: set[str] = set()
        listings: set[tuple[int, int]] = set()
        settings = self.config.orders
        adapter = self.adapters[name]
        began = self.clock()
        start = self.store.cursor(account_id)
        instead = adapter.vouching_cursor(start, began) if vouch else None
        # A resumed scan vouches for nothing placed since it began (nor, on OTO, one that does not
        # read the whole window: see OtoAdapter.poll_vouches).
        fresh = adapter.poll_vouches(instead or start, began)
        try:
            for _ in range(settings.max_pages_per_poll):
                now = self.clock()
                # Ledger calls stay on the loop's thread, like the engine's: one connection at a
                # time (SQLite), and a run that replays exactly (the simulator).
                cursor, instead = instead or self.store.cursor(account_id), None
                since = now - timedelta(minutes=settings.lookback_minutes)
                page = await adapter.read_orders(cursor, now, since)
                through = began if fresh and not page.more else None
                if not page.more and page.read_through is not None:
                    through = max(through or page.read_through, page.read_through)
                booked = self.store.book_page(
                    account_id, page, self._sku_of[name], self.clock(), before_commit, read_through=through
                )
                self.crash("after_feed_page")
                report.pages += 1
                report.new_orders += booked.new_orders
                METRICS.orders_booked.labels(name).inc(booked.new_orders)
                report.status_changes += booked.status_changes
                touched |= booked.new_skus | booked.returned_skus
                listings |= booked.listings
                if not page.more:
                    break
        except SyncError as err:
            report.failed[name] = err.message
            if name not in self._feed_broken:
                self._feed_broken.add(name)
                log.warning("orders.feed_failed", account=name, kind=err.kind.value, error=err.message)
        else:
            if name in self._feed_broken:
                self._feed_broken.discard(name)
                log.info("orders.feed_recovered", account=name)
            rechecked = await self._recheck(name, account_id, before_commit)
            report.status_changes += rechecked.changes
            touched |= rechecked.returned_skus
            listings |= rechecked.listings
        if listings:
            report.attributed_units += self.store.attribute(listings, self.clock())
        return touched & self._catalogue

    def waiting_on_feeds(self, account_ids: Mapping[str, int]) -> set[str]:
        """Feed accounts with a push in doubt whose probe the feed has not been read past yet."""
        ids = {account_ids[name]: name for name in self.feed_accounts if name in account_ids}
        return {ids[account_id] for account_id in self.store.waiting_on_feeds(ids, TIME_MARGIN)}

    async def _recheck(self, name: str, account_id: int, before_commit: Callable[[Session], None]) -> Rechecked:
        """Read a few open orders on their own, where the feed reads only the list's ends."""
        settings = self.config.orders
        adapter = self.adapters[name]
        if not adapter.rechecks_orders or not settings.rechecks_per_poll:
            return Rechecked()
        every = timedelta(minutes=settings.recheck_minutes)
        # While the platform's limit runs low, one a poll: the sweep and the sales need the calls
        # more, and the due orders still get through, a little later.
        most = 1 if adapter.running_low else settings.rechecks_per_poll
        found: list[tuple[int, StatusRead]] = []
        for order_id, external_id in self.rechecks.due(account_id, self.clock(), every, most):
            try:
                found.append((order_id, await adapter.read_order_status(external_id)))
            except SyncError as err:  # the next poll tries again; the feed itself was read
                log.info("orders.recheck_failed", account=name, order=external_id, error=err.message)
                break
        return self.rechecks.book(account_id, found, self.clock(), before_commit)

    def unbooked_sales(self, sku_ids: Mapping[str, int], account_ids: Mapping[str, int]) -> dict[tuple[str, str], int]:
        """Per listing (account, SKU) of feed accounts: sold units no booked drop accounts for yet."""
        return self._per_listing(self.store.unbooked_sales, self.feed_accounts, sku_ids, account_ids)

    def unshown_sales(self, sku_ids: Mapping[str, int], account_ids: Mapping[str, int]) -> dict[ListingKey, Unshown]:
        """Per listing (account, SKU) of accounts whose read may show a sale only at picking: the
        sales a read may not show yet (`Unshown`)."""
        late, picked = self._late_reads(account_ids)
        return self._per_listing(partial(self.store.unshown_sales, picked=picked), late, sku_ids, account_ids)

    def less_unbooked_sales(
        self, pools: Mapping[str, int], sku_ids: Mapping[str, int], account_ids: Mapping[str, int]
    ) -> dict[str, int]:
        """Each pool less the units sold on accounts whose read may show a sale only at picking
        that no booked drop accounts for yet (`unbooked_new_sales`): what an oversell is judged
        against, so that one is seen when the sale is, not days later at picking. Asked after the
        batch's drops are attributed (a drop booked this batch is not counted twice)."""
        late, picked = self._late_reads(account_ids)
        unbooked = self._per_listing(partial(self.store.unbooked_new_sales, picked=picked), late, sku_ids, account_ids)
        less = dict(pools)
        for (_, sku), units in unbooked.items():
            if sku in less:
                less[sku] -= units
        return less

    def _late_reads(self, account_ids: Mapping[str, int]) -> tuple[set[str], dict[int, frozenset[str]]]:
        """The feed accounts whose read may show a sale only at picking, and per account id the
        statuses of an open order already picked."""
        late = {name for name in self.feed_accounts if self.adapters[name].sale_may_show_late}
        return late, {account_ids[n]: self.adapters[n].picked_statuses for n in late if n in account_ids}

    def _per_listing(
        self,
        query: Callable[[Collection[int], Collection[int], datetime], dict[tuple[int, int], T]],
        accounts: Collection[str],
        sku_ids: Mapping[str, int],
        account_ids: Mapping[str, int],
    ) -> dict[tuple[str, str], T]:
        names = {account_id: name for name, account_id in account_ids.items() if name in accounts}
        units = query(names, sku_ids.values(), self.clock()) if names and sku_ids else {}
        sku_of = {sku_id: sku for sku, sku_id in sku_ids.items()}
        return {(names[account_id], sku_of[sku_id]): n for (account_id, sku_id), n in units.items()}

    def attribute(self, listings: Collection[tuple[int, int]]) -> int:
        """Link the new movements of these listings (account id, SKU id) to order lines."""
        return self.store.attribute(listings, self.clock()) if self.feed_accounts and listings else 0

    # --- oversells ------------------------------------------------------------------------------

    async def oversells(
        self, pools: Mapping[str, int], sku_ids: Mapping[str, int], *, dry_run: bool
    ) -> list[OversellReport]:
        """Close the oversells of pools back at zero; for pools below zero, act on the newest
        orders not yet covered. A dry run only reports what it would do."""
        ids = {sku: sku_ids[sku] for sku in pools if sku in sku_ids}
        opened = self.store.open_oversells(ids.values())
        if not dry_run:
            self.store.close_oversells([ids[s] for s in ids if pools[s] >= 0 and ids[s] in opened], self.clock())
        reports: list[OversellReport] = []
        to_send: list[PlannedAction] = []
        for sku, sku_id in ids.items():
            shortfall = -pools[sku]
            if shortfall <= 0:
                continue
            existing = opened.get(sku_id)
            chosen = orders_to_act_on(
                shortfall,
                existing.covered if existing else 0,
                self.store.candidates(sku_id, existing.acted if existing else ()),
            )
            if existing is not None and not chosen and shortfall <= existing.shortfall:
                to_send += [] if dry_run else self.store.pending_cancels([existing.id])
                continue  # known, and covered as far as orders allow
            report = OversellReport(sku, shortfall)
            reports.append(report)
            plan = [(c, self._policy.get(c.account, "alert")) for c in chosen]
            if dry_run:
                report.acts = [OrderAct(c.account, c.external_id, c.units, kind, "planned") for c, kind in plan]
                continue
            written = self.store.record_oversell(sku_id, sku, shortfall, existing, plan, self.clock())
            METRICS.oversells.inc()
            for action in written:
                if action.kind == "alert":
                    METRICS.order_actions.labels("alert", "done").inc()
            report.acts = [OrderAct(a.account, a.order.order_id, a.units, a.kind, "alerted") for a in written]
            log.error(
                "oversell.detected",
                sku=sku,
                shortfall=shortfall,
                orders=[f"{a.account}:{a.order.order_id}({a.kind})" for a in written],
                unmatched=max(0, shortfall - (existing.covered if existing else 0) - sum(a.units for a in written)),
            )
            to_send += [a for a in written if a.kind == "cancel"]
            if existing is not None:
                to_send += self.store.pending_cancels([existing.id])
        if to_send:
            outcomes = await self._cancel(to_send)
            by_order = {(a.account, a.order.order_id): outcome for a, outcome in zip(to_send, outcomes, strict=True)}
            for report in reports:
                for act in report.acts:
                    act.outcome = by_order.get((act.account, act.order), act.outcome)
        return reports

    async def _cancel(self, actions: Sequence[PlannedAction]) -> list[str]:
        """Send planned cancels (marked sent first, so a crash leaves them in doubt, never resent)."""
        unique = list({a.action_id: a for a in actions}.values())
        self.store.mark_actions([a.action_id for a in unique], ActionState.SENT, self.clock())
        self.crash("after_cancel_marked")
        results = await asyncio.gather(*(self.adapters[a.account].cancel_order(a.order) for a in unique))
        outcome_of: dict[int, str] = {}
        for action, result in zip(unique, results, strict=True):
            if result.outcome is Outcome.CONFIRMED:
                state = ActionState.DONE
            elif result.outcome is Outcome.IN_DOUBT:
                state = ActionState.IN_DOUBT
            else:
                state = ActionState.PLANNED if result.retry else ActionState.FAILED
            self.store.mark_actions([action.action_id], state, self.clock(), result.detail)
            METRICS.order_actions.labels("cancel", state.value).inc()
            outcome_of[action.action_id] = "cancelled" if state is ActionState.DONE else state.value
            event = "order.cancelled" if state is ActionState.DONE else "order.cancel_failed"
            (log.warning if state is ActionState.DONE else log.error)(
                event,
                account=action.account,
                order=action.order.order_id,
                sku=action.sku,
                units=action.units,
                state=state.value,
                detail=result.detail,
            )
        return [outcome_of[a.action_id] for a in actions]

    def recover(self, mine: Callable[[str], bool]) -> int:
        """Cancels a dead reconciler marked sent (for SKUs that are `mine`) have an unknown outcome:
        in doubt, never resent."""
        doubted = self.store.recover_actions(mine)
        if doubted:
            log.warning("orders.cancels_in_doubt", count=doubted)
        return doubted

    # --- drift ----------------------------------------------------------------------------------

    def drifting(self, *, alert: bool = False) -> list[Drift]:
        """Listings whose changes keep going unexplained by any order; `alert` logs each one."""
        found = find_drift(self.store, self.config, self.feed_accounts, self.clock())
        for drift in found if alert else ():
            log.warning(
                "listing.drifting",
                account=drift.account,
                sku=drift.sku,
                unexplained_movements=drift.movements,
                units=drift.units,
            )
        return found


def find_drift(store: OrderStore, config: Config, feed_accounts: Collection[str], now: datetime) -> list[Drift]:
    """Listings on accounts with a feed drifting by the `[orders]` drift settings, as of `now`."""
    settings = config.orders
    return store.drifting(
        feed_accounts,
        now,
        timedelta(minutes=settings.drift_window_minutes),
        timedelta(seconds=settings.drift_grace_seconds),
        settings.drift_threshold,
    )
