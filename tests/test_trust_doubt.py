"""Reads that would settle a push in doubt, and canaries of confirming reads, as an outside review
broke them: a push left in doubt by a crash never stops an account (its lower outcome is confirmed,
not counted as a mass drop), and canaries that really sold out never block each other's sell-out."""

from __future__ import annotations

import pytest

from sync.crashpoints import ProcessDeath
from sync.domain import SettledBy
from sync.ledger.models import Push, PushState, SafetyStop
from tests.fakes import fleet
from tests.test_orders import cycle, in_engine, pools, rows, stock
from tests.test_trust import seeded

SKUS = [f"sku-{i:02d}" for i in range(12)]


def crash_at(where: str):  # type: ignore[no-untyped-def]
    def crash(point: str) -> None:
        if point == where:
            raise ProcessDeath(point)

    return crash


@pytest.mark.parametrize("before", [0, 2])
def test_a_restock_left_in_doubt_before_it_left_stops_nothing(db_url: str, before: int) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, before)
        config = running.config(db_url, SKUS)
        cycle(config)
        for sku in SKUS:
            running.platforms["gra"].set_quantity(sku, 10)  # a restock on Graas, for all 12
        with pytest.raises(ProcessDeath):  # marked sent, never sent: Oakra's pushes are in doubt
            in_engine(config, lambda engine: engine.run_cycle("manual"), crash=crash_at("after_mark_sent"))
        assert stock(running, SKUS[0])["oak"] == before
        report = in_engine(config, lambda engine: engine.run_cycle("manual"), holder="p2")
        assert rows(config, SafetyStop) == []  # the lower outcome of 12 pushes is no mass drop
        assert report.accounts["oak"].stopped == 0 and report.accounts["oak"].confirmed == len(SKUS)
        assert stock(running, SKUS[0]) == {"oak": 10, "gra": 10}
        assert pools(config) == dict.fromkeys(SKUS, 10)


def test_sales_pushed_in_doubt_on_a_feed_platform_settle_and_later_orders_flow(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 10)
        config = running.config(db_url, SKUS)
        cycle(config)
        for sku in SKUS:
            running.platforms["oak"].set_quantity(sku, 8)  # sold 2 each on Oakra (no feed)
        with pytest.raises(ProcessDeath):  # Graas applied the -2 pushes; the answers were lost
            in_engine(config, lambda engine: engine.run_cycle("manual"), crash=crash_at("after_send"))
        assert stock(running, SKUS[0]) == {"oak": 8, "gra": 8}
        # Graas's readings of 8 count at first as its -2 not applied and 2 sold (the hypothesis
        # with fewer units); at the cycle's end the feed, read past them, shows no order: applied.
        in_engine(config, lambda engine: engine.run_cycle("manual"), holder="p2")
        assert rows(config, SafetyStop) == []
        settled = {p.settled_by for p in rows(config, Push) if p.state == PushState.APPLIED.value}
        assert settled == {SettledBy.ORDERS.value}
        assert stock(running, SKUS[0]) == {"oak": 8, "gra": 8}
        running.platforms["gra"].sell(SKUS[0], 3)  # a real order afterwards reaches Oakra
        in_engine(config, lambda engine: engine.run_cycle("manual"), holder="p2")
        assert stock(running, SKUS[0]) == {"oak": 5, "gra": 5}
        assert pools(config)[SKUS[0]] == 5


def test_two_real_sell_outs_that_are_each_others_canaries_are_both_booked(db_url: str) -> None:
    # Oakra (no feed) lists only "a" and "b", in different batches: in each batch the other is
    # the only canary the ledger can offer, and it has really sold out too.
    skus = ["a", "m1", "m2", "b"]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for sku in skus:
            running.platforms["gra"].set_quantity(sku, 5)
        for sku in ("a", "b"):
            running.platforms["oak"].set_quantity(sku, 5)
        config = running.config(db_url, skus, sync={"batch_size": 2})
        cycle(config)
        for sku in ("a", "b"):
            running.platforms["oak"].set_quantity(sku, 0)
        cycle(config)
        assert pools(config)["a"] == 0 and pools(config)["b"] == 0
        assert stock(running, "a") == {"oak": 0, "gra": 0} and stock(running, "b") == {"oak": 0, "gra": 0}
