"""The daemon against two Oakra accounts and one Graas account on loopback emulators, with random
sales landing concurrently with its cycles (between reads and pushes too), then left to settle."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from sync.bootstrap import Wiring, open_ledger
from sync.config import Config
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.sales import SalesDriver
from sync.emulation.wire import EmuRequest
from sync.ledger.models import Account, Listing, Movement, MovementKind, Push, PushState, Sku
from sync.ledger.snapshot import skus as sku_views
from sync.planner import AccountRules
from sync.report import CycleReport
from sync.scheduler import run_daemon
from tests.fakes import Fleet, fleet

pytestmark = pytest.mark.slow

SKUS = [f"sku-{i}" for i in range(8)]
ACCOUNTS = (
    ("oakra-a", "oakra"),
    ("oakra-b", "oakra", {"buffer": 2}),
    ("graas-c", "graas", {"max_quantity": 15}),
)


@dataclass
class Run:
    """What a daemon run saw, and the ledger it left."""

    start: dict[str, int]
    sales: int
    cycles: list[CycleReport] = field(default_factory=list)
    views: dict[str, Any] = field(default_factory=dict)
    pushes: list[Any] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)
    applied: dict[str, Counter[tuple[str, int]]] = field(default_factory=dict)
    sku_ids: dict[str, int] = field(default_factory=dict)

    def ledger_applied(self, account: str) -> Counter[tuple[str, int]]:
        """The changes the ledger holds as applied on `account`."""
        return Counter(
            (code, delta)
            for name, code, delta, state, *_ in self.pushes
            if name == account and state in (PushState.CONFIRMED.value, PushState.APPLIED.value)
        )


def seed_stock(running: Fleet, seed: int) -> dict[str, int]:
    """Random starting stock per listing; returns each SKU's pool by the `min` rule."""
    rng = random.Random(seed)
    start = {}
    for sku in SKUS:
        quantities = [rng.randint(15, 40) for _ in running.platforms]
        for platform, quantity in zip(running.platforms.values(), quantities, strict=True):
            platform.set_quantity(sku, quantity)
        start[sku] = min(quantities)
    return start


def sell_after_reads(platform: EmulatedPlatform, seed: int) -> Callable[[EmuRequest], None]:
    """After every fifth read, sell one unit there: a sale between stocksync's read and its push."""
    rng = random.Random(seed)
    reads = Counter[str]()

    def maybe_sell(request: EmuRequest) -> None:
        if not platform.changes_stock(request):
            reads["n"] += 1
            if reads["n"] % 5 == 0:
                with platform.lock:
                    codes = [c for c in platform.codes() if (platform.quantity(c) or 0) > 0]
                    if codes:
                        platform.sell(rng.choice(codes))

    return maybe_sell


def run_daemon_with_sales(
    config: Config,
    running: Fleet,
    *,
    seed: int,
    seconds: float,
    rate: float,
    faults: dict[Fault, float] | None = None,
    ship_share: float = 0.0,
    race_reads: bool = True,
) -> Run:
    """Start the daemon, sell for `seconds` (with `faults`; with `race_reads`, a sale right after
    every fifth read too), then clear faults and wait until a cycle finds nothing to do."""
    start = seed_stock(running, seed)
    ledger = open_ledger(config)
    wiring = Wiring()
    result = Run(start, 0)
    first, settled, selling_done = threading.Event(), threading.Event(), threading.Event()

    quiet_in_a_row = Counter[str]()

    def on_cycle(report: CycleReport) -> None:
        result.cycles.append(report)
        first.set()
        quiet = report.ok and not report.movements and not report.pushes and not report.waiting
        quiet_in_a_row["n"] = quiet_in_a_row["n"] + 1 if quiet and selling_done.is_set() else 0
        # Two in a row: the second one started after the selling stopped, so it saw every sale.
        if quiet_in_a_row["n"] >= 2:
            settled.set()

    daemon = threading.Thread(target=run_daemon, args=(config, ledger, wiring), kwargs={"on_cycle": on_cycle})
    daemon.start()
    try:
        assert first.wait(20), "the first cycle never finished"
        for index, platform in enumerate(running.platforms.values()):
            platform.faults = FaultPlan(dict(faults or {}), latency=0.005, retry_after=0, seed=seed + index)
            for fault in faults or {}:
                platform.faults.inject(fault)  # every kind at least once on every platform,
                platform.faults.inject(fault, writes_only=True)  # on a read and on a write
            platform.after_request = sell_after_reads(platform, seed + index) if race_reads else None
        sales = SalesDriver(list(running.platforms.values()), rate, seed=seed, ship_share=ship_share).start()
        time.sleep(seconds)
        sales.stop()
        result.sales = sales.sales
        for platform in running.platforms.values():
            platform.faults.clear()
            platform.after_request = None
        selling_done.set()
        assert settled.wait(60), f"stocksync did not settle: last cycle {result.cycles[-1] if result.cycles else None}"
    finally:
        wiring.stop.set()
        daemon.join(30)
        assert not daemon.is_alive()
    with ledger.store.sessions() as session:
        views = {view.sku: view for view in sku_views(session)}
        pushes = session.execute(
            select(
                Account.name,
                Listing.code,
                func.coalesce(Push.applied_delta, Push.delta),  # what the platform really moved
                Push.state,
                Push.target,
                Push.answer_quantity,
                Push.settled_by,
            )
            .join(Listing, Push.listing_id == Listing.id)
            .join(Account, Listing.account_id == Account.id)
        ).all()
        movements = session.scalars(select(Movement)).all()
        result.sku_ids = dict(session.execute(select(Sku.code, Sku.id)).all())

    result.views, result.pushes, result.movements = views, pushes, movements
    result.truth = {sku: start[sku] - sum(p.sold[sku] for p in running.platforms.values()) for sku in SKUS}
    # Every listing shows clamp(pool - buffer, 0, max) of the ledger's pool.
    for sku in SKUS:
        for account in config.accounts:
            expected = AccountRules(account.buffer, account.max_quantity).target(views[sku].pool)
            assert running.platforms[account.name].quantity(sku) == expected, (sku, account.name)
    # Every movement names its source.
    for movement in movements:
        if movement.kind == MovementKind.EXTERNAL.value:
            assert movement.listing_id is not None
        assert movement.note
    # No change was sent twice: no platform applied a change more often than the ledger sent it.
    # (On Ankorstore, counted per SKU: a sale landing between a set's fresh read and the set makes
    # the set move one unit less than the ledger meant, the one window absolute sets leave.)
    for name, platform in running.platforms.items():
        sent = Counter(
            (code, delta)
            for account, code, delta, state, *_ in pushes
            if account == name and state not in (PushState.FAILED.value, PushState.CANCELLED.value)
        )
        applied = Counter(platform.applied)
        if name in {a.name for a in config.accounts if a.platform == "ankorstore"}:
            per_sku = lambda changes: Counter(code for code, _ in changes.elements())  # noqa: E731
            assert not per_sku(applied) - per_sku(sent), name
        else:
            assert not applied - sent, name
        result.applied[name] = applied
    ledger.close()
    return result


def test_converges_under_concurrent_sales_with_nothing_lost(any_db_url: str) -> None:
    with fleet(*ACCOUNTS) as running:
        config = running.config(any_db_url, SKUS, sync={"interval_seconds": 0.2})
        result = run_daemon_with_sales(config, running, seed=7, seconds=4, rate=12)
    assert result.sales > 20
    # Zero units lost or counted twice: the pool is the start minus every unit sold.
    assert {sku: view.pool for sku, view in result.views.items()} == result.truth
    # What each platform applied is exactly what the ledger holds as confirmed.
    for name, applied in result.applied.items():
        assert applied == result.ledger_applied(name), name
    # Some sale landed between a read and its push (the platform answered another quantity than
    # the target), and the relative change kept it.
    assert any(answer is not None and answer != target for *_, target, answer, _by in result.pushes)


def test_converges_through_429s_and_5xx_without_sending_a_change_twice(db_url: str) -> None:
    faults = {
        Fault.RATE_LIMIT: 0.08,
        Fault.SERVER_ERROR: 0.05,
        Fault.SERVER_ERROR_AFTER: 0.04,
        Fault.LOST_RESPONSE: 0.04,
    }
    with fleet(*ACCOUNTS) as running:
        # The emulators apply a write or drop it, never queue it: no write lands late.
        sync = {"interval_seconds": 0.2, "in_doubt_timeout_seconds": 1, "late_landing_seconds": 0}
        config = running.config(db_url, SKUS, sync=sync)
        result = run_daemon_with_sales(config, running, seed=11, seconds=5, rate=8, faults=faults)
        injected = sum((p.faults.injected for p in running.platforms.values()), Counter())
    assert all(injected[fault] >= 3 for fault in faults), injected
    settled = [p for p in result.pushes if p[3] in (PushState.APPLIED.value, PushState.NOT_APPLIED.value)]
    assert settled, "no push went in doubt: the faults did not exercise settlement"
    assert not [p for p in result.pushes if p[3] == PushState.IN_DOUBT.value]
    # Every unit is accounted for. A push whose answer was lost is settled from later reads; when
    # a sale landed in the same window (this test lands one right after many reads), a read cannot
    # always tell "applied" from "not applied + a sale", and a settlement can be wrong. Such a
    # misjudged push is the only way the ledger may drift from the truth, and by exactly its delta:
    # pool - truth == sum over listings of (deltas the platform applied - deltas the ledger counted).
    in_doubt_listings = {(p[0], p[1]) for p in settled}
    for sku, view in result.views.items():
        drift = {
            name: sum(d for code, d in result.applied[name].elements() if code == sku)
            - sum(d for code, d in result.ledger_applied(name).elements() if code == sku)
            for name in result.applied
        }
        assert view.pool - result.truth[sku] == sum(drift.values()), (sku, drift)
        assert all((name, sku) in in_doubt_listings for name, d in drift.items() if d), (sku, drift)


FOUR_PLATFORMS = (
    ("oakra-a", "oakra"),
    ("graas-b", "graas", {"max_quantity": 15}),
    ("oto-c", "oto"),
    ("ankorstore-d", "ankorstore", {"buffer": 2}),
)


def test_four_platforms_converge_and_only_ankorstores_set_window_can_move_a_unit(db_url: str) -> None:
    with fleet(*FOUR_PLATFORMS) as running:
        config = running.config(db_url, SKUS, sync={"interval_seconds": 0.2})
        result = run_daemon_with_sales(config, running, seed=5, seconds=5, rate=12, ship_share=0.3)
    assert result.sales > 20
    # Relative platforms: every change applied exactly as the ledger counts it.
    for name in ("oakra-a", "graas-b", "oto-c"):
        assert result.applied[name] == result.ledger_applied(name), name
    # Ankorstore takes absolute sets: a shipment landing between the fresh read and the set is the
    # one thing that can move a unit. The ledger differs from the truth by exactly that, no more.
    window = Counter[str]()
    for code, delta in result.applied["ankorstore-d"].elements():
        window[code] += delta
    for code, delta in result.ledger_applied("ankorstore-d").elements():
        window[code] -= delta
    for sku, view in result.views.items():
        assert view.pool - result.truth[sku] == window[sku], sku
    print(f"ankorstore set window: {sum(abs(v) for v in window.values())} units over {result.sales} sales")


FEED_PLATFORMS = (
    ("graas-b", "graas"),
    ("oto-c", "oto"),
    ("ankorstore-d", "ankorstore", {"buffer": 1}),
)


def test_heavy_faults_on_the_feed_platforms_settle_by_orders_and_lose_nothing(db_url: str) -> None:
    # Issue 13's reproduction: 8% each of 429, 5xx before applying, 5xx after applying and answers
    # lost after applying, while sales land. Pushes in doubt settle from the feeds' orders within
    # the cycle, not by the timeout; every listing is right once the faults stop, and on the
    # relative platforms every change is counted exactly as applied. Only an order that raced the
    # read a push came from (the feed's timestamp cannot say if that read saw it) leaves a window
    # to the rule: those listings alone may be off, by the push's delta.
    faults = {
        Fault.RATE_LIMIT: 0.08,
        Fault.SERVER_ERROR: 0.08,
        Fault.SERVER_ERROR_AFTER: 0.08,
        Fault.LOST_RESPONSE: 0.08,
    }
    with fleet(*FEED_PLATFORMS) as running:
        config = running.config(
            db_url,
            SKUS,
            # The emulators apply a write or drop it, never queue it: no write lands late.
            sync={"interval_seconds": 1, "in_doubt_timeout_seconds": 5, "late_landing_seconds": 0},
            orders={"poll_seconds": 1},
        )
        result = run_daemon_with_sales(config, running, seed=13, seconds=6, rate=6, faults=faults, race_reads=False)
    settled = [p for p in result.pushes if p[3] in (PushState.APPLIED.value, PushState.NOT_APPLIED.value)]
    by = Counter(p[6] for p in settled)
    assert by["orders"] >= 5 and by["orders"] > 3 * by["rule"], by  # evidence, not the timeout
    ruled = {(p[0], p[1]) for p in settled if p[6] == "rule"}
    for name in ("graas-b", "oto-c"):
        for sku in SKUS:
            if (name, sku) not in ruled:
                assert _on(result.applied[name], sku) == _on(result.ledger_applied(name), sku), (name, sku)


def _on(changes: Counter[tuple[str, int]], sku: str) -> Counter[int]:
    return Counter({delta: n for (code, delta), n in changes.items() if code == sku})
