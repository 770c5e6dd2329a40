"""Orders end to end against loopback emulators: the fast path, attribution, oversells under both
policies, drift, and a feed cursor that survives a crash mid-feed."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from sync.bootstrap import Wiring, open_ledger, running_engine
from sync.config import Config
from sync.crashpoints import ProcessDeath, no_crash
from sync.emulation.faults import Fault
from sync.emulation.orders import EmuOrder
from sync.engine import Engine
from sync.ledger.lease import ReconcileLease
from sync.ledger.models import (
    Attribution,
    Movement,
    Order,
    OrderAction,
    OrderEvent,
    OrderLine,
    Oversell,
)
from sync.ledger.snapshot import skus as sku_views
from sync.platforms.ankorstore.emulator import AnkorstoreEmulator
from sync.platforms.graas.emulator import GraasEmulator
from sync.report import CycleReport
from tests.fakes import Fleet, fleet

T = TypeVar("T")


def in_engine(
    config: Config,
    act: Callable[[Engine], Awaitable[T]],
    *,
    crash: Callable[[str], None] = no_crash,
    holder: str = "p1",
    at: datetime | None = None,
) -> T:
    """Run `act` with an engine on the configured ledger, as one process named `holder` (its
    clock set to `at` when given)."""
    ledger = open_ledger(config)

    def lease(store: Any, clock: Any) -> ReconcileLease:
        # Earlier "processes" of the test are dead: their lease is taken over at once.
        ttl = timedelta(seconds=config.sync.lease_seconds)
        return ReconcileLease(store.sessions, ttl, holder=holder, is_dead=lambda other: other != holder)

    async def go() -> T:
        shift = (at - datetime.now(UTC)) if at is not None else timedelta(0)
        wiring = Wiring(crash=crash, lease=lease, clock=lambda: datetime.now(UTC) + shift)
        async with running_engine(config, ledger, wiring) as engine:
            return await act(engine)

    try:
        return asyncio.run(go())
    finally:
        ledger.close()


def cycle(config: Config, **kwargs: Any) -> CycleReport:
    """One full reconcile cycle."""
    return in_engine(config, lambda engine: engine.run_cycle("manual"), **kwargs)


def rows(config: Config, model: Any) -> list[Any]:
    """Every row of a ledger table."""
    ledger = open_ledger(config)
    try:
        with ledger.store.sessions() as session:
            return list(session.scalars(select(model)))
    finally:
        ledger.close()


def pools(config: Config) -> dict[str, int]:
    ledger = open_ledger(config)
    try:
        with ledger.store.sessions() as session:
            return {view.sku: view.pool for view in sku_views(session)}
    finally:
        ledger.close()


def stock(running: Fleet, sku: str) -> dict[str, int | None]:
    return {name: p.quantity(sku) for name, p in running.platforms.items()}


# --- the fast path ------------------------------------------------------------------------------


def test_a_new_order_reconciles_its_skus_at_once_without_a_sweep(db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(30)]
    with fleet(("gra", "graas"), ("oto", "oto"), ("ank", "ankorstore"), ("oak", "oakra")) as running:
        for platform in running.platforms.values():
            for sku in skus:
                platform.set_quantity(sku, 9)
        config = running.config(db_url, skus)
        cycle(config)
        running.platforms["gra"].sell("sku-7", 2)
        running.platforms["ank"].sell("sku-8", 1)
        for platform in running.platforms.values():
            platform.calls.clear()
        report = in_engine(config, lambda engine: engine.run_orders())
        assert report is not None and report.trigger == "orders"
        assert report.fast_skus == 2 and report.feeds.new_orders == 2
        assert stock(running, "sku-7") == {"gra": 7, "oto": 7, "ank": 7, "oak": 7}
        assert stock(running, "sku-8") == {"gra": 8, "oto": 8, "ank": 8, "oak": 8}
        # Just those SKUs were read: one read call per account, not the whole catalogue.
        assert running.platforms["oak"].calls["GET /api/v1/stock/stock-records/"] == 1
        # Nothing new: a poll reads the feeds and opens no cycle.
        assert in_engine(config, lambda engine: engine.run_orders()) is None


def test_the_daemon_carries_a_sale_to_every_platform_within_seconds(db_url: str) -> None:
    from sync.scheduler import run_daemon

    skus = [f"sku-{i}" for i in range(20)]
    with fleet(("gra", "graas"), ("oto", "oto"), ("oak", "oakra")) as running:
        for platform in running.platforms.values():
            for sku in skus:
                platform.set_quantity(sku, 5)
        config = running.config(db_url, skus, sync={"interval_seconds": 3600}, orders={"poll_seconds": 0.3})
        cycle(config)
        wiring = Wiring()
        cycles: list[CycleReport] = []

        def on_cycle(report: CycleReport) -> None:
            cycles.append(report)

        import threading

        daemon = threading.Thread(
            target=run_daemon, args=(config, open_ledger(config), wiring), kwargs={"on_cycle": on_cycle}
        )
        daemon.start()
        try:
            deadline = time.monotonic() + 20
            while not any(c.trigger == "scheduled" for c in cycles) and time.monotonic() < deadline:
                time.sleep(0.05)  # the first sweep runs at start
            sold_at = time.monotonic()
            running.platforms["oto"].sell("sku-3", 1)
            while stock(running, "sku-3") != {"gra": 4, "oto": 4, "oak": 4} and time.monotonic() < deadline:
                time.sleep(0.05)
            seen_after = time.monotonic() - sold_at
        finally:
            wiring.stop.set()
            daemon.join(timeout=30)
        assert stock(running, "sku-3") == {"gra": 4, "oto": 4, "oak": 4}
        assert seen_after < 5  # the sweep interval is an hour: only the fast path could do it
        assert any(c.trigger == "orders" for c in cycles)


# --- attribution and drift ----------------------------------------------------------------------


def test_movements_are_attributed_to_orders_and_the_rest_marked_unexplained(any_db_url: str) -> None:
    db_url = any_db_url
    with fleet(("gra", "graas"), ("oak", "oakra")) as running:
        for platform in running.platforms.values():
            platform.set_quantity("mug", 20)
        config = running.config(db_url, ["mug"], orders={"drift_grace_seconds": 0, "drift_threshold": 3})
        cycle(config)
        sale = running.platforms["gra"].sell("mug", 2)
        running.platforms["oak"].sell("mug", 1)  # Oakra has no feed: nothing can explain it
        assert sale is not None
        cycle(config)
        movements = {m.quantity: m for m in rows(config, Movement) if m.kind == "external"}
        assert movements[-2].explained == 2 and movements[-1].explained == 0
        (link,) = rows(config, Attribution)
        assert (link.movement_id, link.quantity) == (movements[-2].id, -2)
        (line,) = rows(config, OrderLine)
        (order,) = rows(config, Order)
        assert (order.external_id, line.code, line.quantity, line.sale_explained) == (sale.order_id, "mug", 2, 2)

        # A cancellation puts the units back: the rise is explained by it, and the status recorded.
        assert running.platforms["gra"].cancel(sale.order_id)
        cycle(config)
        rise = next(m for m in rows(config, Movement) if m.kind == "external" and m.quantity == 2)
        assert rise.explained == 2
        assert [e.status for e in rows(config, OrderEvent)] == ["INITIATED", "CANCELLED"]

        # Hand edits on Graas that no order explains: after three, the listing is drifting.
        drifting = []
        for _ in range(3):
            running.platforms["gra"].set_quantity("mug", (running.platforms["gra"].quantity("mug") or 0) - 1)
            drifting = cycle(config).drifting
        assert [(d.account, d.sku, d.movements) for d in drifting] == [("gra", "mug", 3)]


def test_a_graas_item_cancelled_while_its_order_goes_on_gives_its_units_back_alone(db_url: str) -> None:
    # Graas's item-level `orderStatus` ("partial order status for the item", Lazada): one item
    # cancelled, the order and its other item going on.
    with fleet(("gra", "graas"), ("oak", "oakra")) as running:
        config = running.config(db_url, ["mug", "cup"])
        for platform in running.platforms.values():
            for code in ("mug", "cup"):
                platform.set_quantity(code, 10)
        cycle(config)
        gra = running.platforms["gra"]
        assert isinstance(gra, GraasEmulator)
        order = gra.sell_together({"mug": 2, "cup": 1})
        assert order is not None
        cycle(config)
        assert pools(config) == {"mug": 8, "cup": 9}
        assert gra.cancel_item(order.order_id, order.lines[0].line_id)  # the mugs
        cycle(config)
        assert pools(config) == {"mug": 10, "cup": 9} and stock(running, "mug") == {"gra": 10, "oak": 10}
        rise = next(m for m in rows(config, Movement) if m.kind == "external" and m.quantity == 2)
        assert rise.explained == 2  # by the item's cancellation, not an unexplained rise
        (booked,) = rows(config, Order)
        assert (booked.status, booked.state) == ("INITIATED", "open")
        assert {line.code: line.state for line in rows(config, OrderLine)} == {"mug": "cancelled", "cup": None}


# --- oversells ----------------------------------------------------------------------------------


def _last_unit_sold_twice(running: Fleet, config: Config) -> tuple[str, str]:
    """Pool 1; Graas and OTO both sell it in the same second. Returns both order ids."""
    for platform in running.platforms.values():
        platform.set_quantity("lamp", 1)
    cycle(config)
    same_second = time.time()
    for platform in running.platforms.values():
        platform.wall = lambda: same_second
    first, second = running.platforms["gra"].sell("lamp", 1), running.platforms["oto"].sell("lamp", 1)
    assert first is not None and second is not None
    return first.order_id, second.order_id


@pytest.mark.parametrize("policy", ["cancel", "alert"])
def test_two_platforms_sell_the_last_unit_in_the_same_second(any_db_url: str, policy: str, tmp_path: Any) -> None:
    db_url = any_db_url
    accounts = [
        ("gra", "graas", {"oversell_policy": policy}),
        ("oto", "oto", {"oversell_policy": policy}),
        ("oak", "oakra"),
    ]
    with fleet(*accounts) as running:
        config = running.config(db_url, ["lamp"])
        gra_order, oto_order = _last_unit_sold_twice(running, config)
        with capture_logs() as logs:
            report = cycle(config)
        (oversell,) = report.oversells
        assert oversell.shortfall == 1
        (act,) = oversell.acts  # one unit short: one order, the newest (ties: the larger id)
        assert (act.account, act.order) == ("oto", oto_order)
        assert any(e["event"] == "oversell.detected" and e["sku"] == "lamp" for e in logs)
        cycle(config)  # the cancel (if any) put the unit back on OTO: the pool is whole again
        cycle(config)
        cancels = {name: p.cancelled_by_api for name, p in running.platforms.items()}
        calls = Counter(
            key
            for p in running.platforms.values()
            for key in p.calls
            if key in ("PUT /v1/orders", "POST /rest/v2/cancelOrder")
        )
        actions = rows(config, OrderAction)
        (episode,) = rows(config, Oversell)
        if policy == "cancel":
            assert act.kind == "cancel" and act.outcome == "cancelled"
            assert cancels == {"gra": [], "oto": [oto_order], "oak": []}
            assert calls == Counter({"POST /rest/v2/cancelOrder": 1})
            assert [(a.kind, a.state) for a in actions] == [("cancel", "done")]
            assert pools(config) == {"lamp": 0}
            assert episode.closed_at is not None
        else:
            assert act.kind == "alert"
            assert cancels == {"gra": [], "oto": [], "oak": []} and not calls
            assert [(a.kind, a.state) for a in actions] == [("alert", "done")]
            assert pools(config) == {"lamp": -1}  # stays short until the seller acts
            assert episode.closed_at is None
            from tests.test_cli import invoke

            path = tmp_path / "stocksync.toml"
            path.write_text(running.toml(db_url, ["lamp"]))
            path.chmod(0o600)
            status = invoke("status", "--config", path).output
            assert "OVERSOLD lamp: 1 unit(s) short since" in status and f"alert oto:{oto_order} done" in status
        assert stock(running, "lamp") == {"gra": 0, "oto": 0, "oak": 0}
        assert gra_order not in cancels["gra"]


def test_an_oversell_in_a_dry_run_is_reported_and_nothing_is_written_or_sent(db_url: str) -> None:
    accounts = [("gra", "graas", {"oversell_policy": "cancel"}), ("oto", "oto", {"oversell_policy": "cancel"})]
    with fleet(*accounts) as running:
        config = running.config(db_url, ["lamp"])
        _, oto_order = _last_unit_sold_twice(running, config)
        in_engine(config, lambda engine: engine.run_cycle("manual", dry_run=True))
        # Dry runs book no orders: put them in the ledger the way a poll would, then dry-run again.
        in_engine(config, lambda engine: _poll_only(engine))
        report = in_engine(config, lambda engine: engine.run_cycle("manual", dry_run=True))
        (oversell,) = report.oversells
        assert [(a.account, a.order, a.kind, a.outcome) for a in oversell.acts] == [
            ("oto", oto_order, "cancel", "planned")
        ]
        assert rows(config, OrderAction) == [] and rows(config, Oversell) == []
        assert all(p.cancelled_by_api == [] for p in running.platforms.values())


async def _poll_only(engine: Engine) -> None:
    from sync.order_flow import FeedReport

    engine.lease.acquire(0)  # every write of the engine's is fenced on its lease
    try:
        engine._account_ids = engine.store.ensure_accounts((a.name, a.platform) for a in engine.config.accounts)
        await engine.flow.poll(engine._account_ids, FeedReport(), lambda _session: None)
    finally:
        engine.lease.release()


def test_the_same_order_is_never_cancelled_twice(db_url: str) -> None:
    accounts = [("gra", "graas", {"oversell_policy": "cancel"}), ("oto", "oto", {"oversell_policy": "cancel"})]
    with fleet(*accounts) as running:
        config = running.config(db_url, ["lamp"])
        _, oto_order = _last_unit_sold_twice(running, config)
        # The cancel's answer is lost: the order may or may not be cancelled. It is never resent.
        running.platforms["oto"].faults.inject(Fault.LOST_RESPONSE, writes_only=True)
        report = cycle(config)
        assert [a.outcome for a in report.oversells[0].acts] in (["in_doubt"], ["cancelled"])
        for _ in range(3):
            cycle(config)
        assert running.platforms["oto"].calls["POST /rest/v2/cancelOrder"] == 1
        assert [a.state for a in rows(config, OrderAction)] == ["done"]  # the feed showed it cancelled


def test_an_ankorstore_order_accepted_meanwhile_is_refused_once_and_never_sent_again(db_url: str) -> None:
    accounts = [("gra", "graas", {"oversell_policy": "cancel"}), ("ank", "ankorstore", {"oversell_policy": "cancel"})]
    with fleet(*accounts) as running:
        config = running.config(db_url, ["lamp"])
        for platform in running.platforms.values():
            platform.set_quantity("lamp", 1)
        cycle(config)
        assert running.platforms["gra"].sell("lamp", 1) is not None
        order = running.platforms["ank"].sell("lamp", 1)  # the newer order: the one the oversell falls on
        assert order is not None
        assert isinstance(ank := running.platforms["ank"], AnkorstoreEmulator) and ank.accept(order.order_id)
        report = cycle(config)
        (act,) = report.oversells[0].acts
        assert (act.account, act.order, act.kind, act.outcome) == ("ank", order.order_id, "cancel", "failed")
        for _ in range(3):
            cycle(config)
        transition = f"POST /api/v1/orders/{order.order_id}/-actions/transition"
        assert ank.calls[transition] == 1  # 409 ORDER_ACTION_TRANSITION_FAILED: refused for good
        assert ank.cancelled_by_api == []
        # The shortfall stands, so the next round falls on the next order that can still go.
        actions = [(a.order_id, a.kind, a.state) for a in rows(config, OrderAction)]
        assert [(kind, state) for _, kind, state in actions] == [("cancel", "failed"), ("cancel", "done")]
        assert running.platforms["gra"].cancelled_by_api != []


@contextmanager
def ankorstore_rejects_the_last_lamp(
    db_url: str, *, at_rejection: bool, **orders: float
) -> Iterator[tuple[Fleet, AnkorstoreEmulator, Config, EmuOrder, list[float]]]:
    """Graas and Ankorstore sell the last lamp; the oversell falls on Ankorstore's (newer) order,
    which is rejected (`cancel` policy) and awaits Ankorstore's approval; its units come back at
    the rejection or at the approval as `at_rejection` says. Yields the fleet, Ankorstore, the
    config, the order and Ankorstore's clock (approval comes once it moves on)."""
    with fleet(("gra", "graas"), ("ank", "ankorstore", {"oversell_policy": "cancel"})) as running:
        ank = running.platforms["ank"]
        assert isinstance(ank, AnkorstoreEmulator)
        ank.silences.released_at_rejection = at_rejection
        clock = [time.time()]
        ank.wall = lambda: clock[0]
        config = running.config(db_url, ["lamp"], orders=orders)
        for platform in running.platforms.values():
            platform.set_quantity("lamp", 1)
        cycle(config)
        assert running.platforms["gra"].sell("lamp", 1) is not None
        order = ank.sell("lamp", 1)  # the newer order: the one the oversell falls on
        assert order is not None
        (act,) = cycle(config).oversells[0].acts
        assert (act.order, act.kind, act.outcome) == (order.order_id, "cancel", "cancelled")
        yield running, ank, config, order, clock


@pytest.mark.parametrize("at_rejection", [True, False])
def test_an_ankorstore_rejection_gives_its_units_back_once_whenever_they_come(db_url: str, at_rejection: bool) -> None:
    # "Ankorstore needs to approve this rejection. If it does, the status will move to cancelled":
    # the units come back at the rejection or at the approval (the document does not say which).
    with ankorstore_rejects_the_last_lamp(db_url, at_rejection=at_rejection, recheck_minutes=1) as ready:
        running, ank, config, order, clock = ready
        later = datetime.now(UTC) + timedelta(minutes=2)  # past recheck_minutes: the order is read alone
        for _ in range(2):
            cycle(config, at=later)
        (booked,) = [o for o in rows(config, Order) if o.external_id == order.order_id]
        assert (booked.status, booked.state) == ("rejected", "releasing")
        # Two sales of a pool of one, the later order rejected: short one until its unit is back.
        assert pools(config) == {"lamp": 0 if at_rejection else -1}
        assert stock(running, "lamp") == {"gra": 0, "ank": 0}

        clock[0] += 60  # Ankorstore approves the rejection
        for _ in range(3):
            cycle(config, at=later + timedelta(minutes=2))
        (booked,) = [o for o in rows(config, Order) if o.external_id == order.order_id]
        assert (booked.status, booked.state) == ("cancelled", "cancelled")
        # Its unit came back once, and is booked once, whenever it came.
        assert pools(config) == {"lamp": 0} and stock(running, "lamp") == {"gra": 0, "ank": 0}
        assert ank.cancelled_by_api == [order.order_id]


@pytest.mark.parametrize("platform", ["oto", "ankorstore"])
def test_a_status_change_in_the_middle_of_a_list_is_seen_by_reading_the_order_alone(db_url: str, platform: str) -> None:
    # The list is read at its ends only; an order in its middle is cancelled. Once it is due (a
    # minute unread), a poll reads open orders on their own and books the cancellation (before
    # OTO's whole-window read, every ten minutes, would).
    with fleet(("feed", platform), ("oak", "oakra")) as running:
        feed = running.platforms["feed"]
        feed.silences.lists_newest_first, feed.silences.sorted_by_change = True, False
        config = running.config(db_url, ["mug"], orders={"recheck_minutes": 1, "rechecks_per_poll": 300})
        off = running.config(db_url, ["mug"], orders={"rechecks_per_poll": 0})
        for platform_ in running.platforms.values():
            platform_.set_quantity("mug", 1000)
        cycle(config)
        clock = [time.time() - 3000]
        feed.wall = lambda: clock[0]
        placed = []
        for _ in range(250):  # several pages, ten seconds apart
            placed.append(feed.sell("mug", 1))
            clock[0] += 10
        in_engine(config, lambda engine: engine.run_orders())
        middle = placed[120]
        assert middle is not None and feed.cancel(middle.order_id)  # moves nowhere in the list

        def state() -> str:
            (order,) = [o for o in rows(config, Order) if o.external_id == middle.order_id]
            return str(order.state)

        later = datetime.now(UTC) + timedelta(minutes=2)
        in_engine(off, lambda engine: engine.run_orders(), at=later)
        assert state() == "open"  # the ends of the list do not show it
        assert feed.calls["GET /rest/v2/orderDetails"] + feed.calls[f"GET /api/v1/orders/{middle.order_id}"] == 0
        in_engine(config, lambda engine: engine.run_orders(), at=later)
        # Ankorstore's rejection awaits its approval: releasing (see the test above).
        assert state() == ("releasing" if platform == "ankorstore" else "cancelled")


# --- a crash mid-feed ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["graas", "oto", "ankorstore"])
@pytest.mark.parametrize("point", ["before_feed_commit", "after_feed_page"])
@pytest.mark.parametrize("passage", [1, 2, 3])
def test_a_crash_mid_feed_neither_skips_nor_double_books_an_order(
    db_url: str, platform: str, point: str, passage: int
) -> None:
    with fleet(("feed", platform), ("oak", "oakra")) as running:
        for emulator in running.platforms.values():
            emulator.set_quantity("mug", 10_000)
        config = running.config(db_url, ["mug"])
        cycle(config, holder="p0")
        # 450 orders over the next 450 seconds (several pages on every feed), read 10 minutes
        # later: the crash is mid-feed, far from the window overlap that would hide a skipped page.
        feed = running.platforms["feed"]
        clock = [time.time() + 1]
        feed.wall = lambda: clock[0]
        placed = []
        for i in range(450):
            order = feed.sell("mug", 1 + i % 3)
            assert order is not None
            placed.append(order.order_id)
            clock[0] += 1
        later = Wiring().clock() + timedelta(minutes=10)
        passed = Counter[str]()

        def crash(name: str) -> None:
            if name == point:
                passed[name] += 1
                if passed[name] == passage:
                    raise ProcessDeath(name)

        with pytest.raises(ProcessDeath):
            in_engine(config, lambda engine: engine.run_cycle("scheduled"), crash=crash, holder="p1", at=later)
        in_engine(config, lambda engine: engine.run_cycle("scheduled"), holder="p2", at=later)  # restarted
        in_engine(config, lambda engine: engine.run_cycle("scheduled"), holder="p3", at=later)

        orders = rows(config, Order)
        assert sorted(o.external_id for o in orders) == sorted(placed)  # each exactly once
        assert len(rows(config, OrderLine)) == 450
        assert len(rows(config, OrderEvent)) == 450  # one status each: nothing recorded twice
        # Every sold unit is in the pool exactly once, explained by exactly its order.
        sold = sum(feed.sold.values())
        assert pools(config) == {"mug": 10_000 - sold}
        assert sum(-link.quantity for link in rows(config, Attribution)) == sold


# --- what an operator sees ----------------------------------------------------------------------


def test_explain_and_status_show_orders_oversells_and_what_nothing_explains(tmp_path: Any, db_url: str) -> None:
    from tests.test_cli import invoke

    accounts = [
        ("gra", "graas", {"oversell_policy": "cancel"}),
        ("oto", "oto", {"oversell_policy": "alert"}),
        ("oak", "oakra"),
    ]
    with fleet(*accounts) as running:
        config_path = tmp_path / "stocksync.toml"
        config_path.write_text(running.toml(db_url, ["lamp"]))
        config_path.chmod(0o600)
        for platform in running.platforms.values():
            platform.set_quantity("lamp", 2)
        assert invoke("reconcile", "--config", config_path).exit_code == 0
        same_second = time.time()
        for platform in running.platforms.values():
            platform.wall = lambda: same_second
        gra = running.platforms["gra"].sell("lamp", 2)
        oto = running.platforms["oto"].sell("lamp", 1)
        running.platforms["oak"].sell("lamp", 1)
        assert gra is not None and oto is not None
        reconcile = invoke("reconcile", "--config", config_path)
        # pool 2 - 2 - 1 - 1 = -2: the newest orders first; OTO's is newer (ties go to the larger id),
        # then Graas's; OTO alerts, Graas cancels.
        assert "OVERSOLD lamp: 2 unit(s) short" in reconcile.output
        assert f"alert oto:{oto.order_id} (1) alerted" in reconcile.output
        assert f"cancel gra:{gra.order_id} (2) cancelled" in reconcile.output

        explained = invoke("explain", "lamp", "--config", config_path).output
        assert f"order {gra.order_id} (-2, INITIATED)" in explained
        assert f"order {oto.order_id} (-1, new)" in explained
        assert "oakra has no order feed" in explained
        assert "oversell: 2 unit(s) short" in explained
        data = json.loads(invoke("explain", "lamp", "--config", config_path, "--json").output)
        (oak_move,) = [m for m in data["movements"] if m["source"] == "oak" and m["kind"] == "external"]
        assert oak_move["orders"] == [] and oak_move["explained"] == 0

        status = json.loads(invoke("status", "--config", config_path, "--json").output)
        assert status["order_actions"] == {"alert.done": 1, "cancel.done": 1}
        # Graas's cancelled order gave its 2 units back, and the same cycle read them: pool 0, closed.
        assert status["open_oversells"] == []
        assert "closed" in explained
        assert {f["account"] for f in status["feeds"]} == {"gra", "oto"}
        text = invoke("status", "--config", config_path).output
        assert "open oversells: none" in text and "order actions: alert.done 1, cancel.done 1" in text


def test_many_orders_at_once_are_not_mistaken_for_an_outage(db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(40)]
    with fleet(("gra", "graas"), ("oak", "oakra")) as running:
        for platform in running.platforms.values():
            for sku in skus:
                platform.set_quantity(sku, 9)
        config = running.config(db_url, skus)
        cycle(config)
        for sku in skus[:15]:  # fifteen orders in one poll: every listing the fast path reads dropped
            running.platforms["gra"].sell(sku, 1)
        report = in_engine(config, lambda engine: engine.run_orders())
        assert report is not None and report.accounts["gra"].ok, report.accounts["gra"].error
        assert {sku: running.platforms["oak"].quantity(sku) for sku in skus[:15]} == {sku: 8 for sku in skus[:15]}
