"""Trust no read, end to end against loopback emulators: a number that cannot be believed is never
booked nor written back, one bad listing never stops the others, a real sell-out is booked once a
second read agrees, mass drops stop only the listings concerned, and identity changes are adopted
rather than booked."""

from __future__ import annotations

from typing import Any

import pytest

from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.ledger.models import Account, Movement, ReadEvent, SafetyStop
from sync.platforms.ankorstore.emulator import AnkorstoreEmulator
from tests.fakes import Fleet, fleet
from tests.test_orders import cycle, pools, rows, stock

ALL = (("oak", "oakra"), ("gra", "graas"), ("oto", "oto"), ("ank", "ankorstore"))


def seeded(running: Fleet, skus: list[str], quantity: int) -> None:
    for platform in running.platforms.values():
        for sku in skus:
            platform.set_quantity(sku, quantity)


def kinds(config: Any) -> list[tuple[str, str]]:
    """(kind, account) of every read event, in order."""
    names = {account.id: account.name for account in rows(config, Account)}
    return [(e.kind, names[e.account_id]) for e in rows(config, ReadEvent)]


def answer_badly(platform: EmulatedPlatform, sku: str, value: Any) -> None:
    """Make the platform show `value` for `sku` (Ankorstore derives available from stock and
    reservations, so its answers are rewritten instead)."""
    if not isinstance(platform, AnkorstoreEmulator):
        platform.set_quantity(sku, value)
        return
    route = platform.route

    def lying(request: EmuRequest) -> EmuResponse:
        response = route(request)
        data = response.body.get("data") if isinstance(response.body, dict) else None
        for resource in data if isinstance(data, list) else []:
            if resource.get("attributes", {}).get("sku") == sku:
                resource["attributes"]["availableQuantity"] = value
        return response

    platform.route = lying  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("account", "bad"),
    [(account, bad) for account in ("oak", "gra", "oto", "ank") for bad in (10**20, "seven", None, 2.5)]
    + [("ank", -3)],  # negative only where no write can take a listing below zero
)
def test_one_listing_answering_nonsense_never_stops_the_others(db_url: str, account: str, bad: Any) -> None:
    skus = ["bad", "good"]
    with fleet(*ALL) as running:
        seeded(running, skus, 6)
        config = running.config(db_url, skus)
        cycle(config)
        answer_badly(running.platforms[account], "bad", bad)
        running.platforms["gra" if account != "gra" else "oto"].sell("good", 2)
        report = cycle(config)
        assert report.accounts[account].bad == {"bad_value": 1}
        assert report.accounts[account].ok  # the account still synced everything else
        assert set(stock(running, "good").values()) == {4}
        assert pools(config) == {"bad": 6, "good": 4}
        assert ("bad_value", account) in kinds(config)
        # Nothing about the bad listing was pushed: its number is unknown, never guessed.
        assert all(p.push.sku == "good" for p in report.pushes)


def test_a_sell_out_on_a_platform_without_a_feed_is_booked_once_a_second_read_agrees(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, ["mug", "cup"], 3)
        config = running.config(db_url, ["mug", "cup"])
        cycle(config)
        running.platforms["oak"].set_quantity("mug", 0)  # sold out on Oakra, which lists no orders
        running.platforms["oak"].calls.clear()
        report = cycle(config)
        assert pools(config)["mug"] == 0 and stock(running, "mug") == {"oak": 0, "gra": 0}
        assert running.platforms["oak"].calls["GET /api/v1/stock/stock-records/"] == 2  # read, then confirmed
        assert report.accounts["oak"].held == 1 and report.accounts["oak"].confirmed == 1
        assert [k for k in kinds(config) if k[1] == "oak"] == [("held", "oak"), ("confirmed", "oak")]


def test_a_zero_that_the_second_read_contradicts_is_not_booked(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, ["mug", "cup"], 3)
        config = running.config(db_url, ["mug", "cup"])
        cycle(config)
        oakra = running.platforms["oak"]
        oakra.set_quantity("mug", 0)  # the first read says 0 ...

        def restore(request: EmuRequest) -> None:
            if request.method == "GET":
                oakra.set_quantity("mug", 3)  # ... and the truth is back for the next one
                oakra.after_request = None

        oakra.after_request = restore
        report = cycle(config)
        assert pools(config)["mug"] == 3 and stock(running, "mug") == {"oak": 3, "gra": 3}
        assert report.movements == [] and report.pushes == []
        assert report.accounts["oak"].bad == {"disagreed": 1}
        assert not report.ok  # a reconcile that met a bad read says so (exit 1)


def test_a_drop_orders_explain_is_booked_at_once_and_one_they_do_not_is_confirmed(db_url: str) -> None:
    with fleet(("gra", "graas"), ("oak", "oakra")) as running:
        seeded(running, ["mug", "cup"], 5)
        config = running.config(db_url, ["mug", "cup"])
        cycle(config)
        running.platforms["gra"].sell("mug", 5)  # an order: the feed explains the sell-out
        running.platforms["gra"].set_quantity("cup", 4)  # a hand edit: no order explains it
        report = cycle(config)
        assert pools(config) == {"mug": 0, "cup": 4}
        events = [k for k in kinds(config) if k[1] == "gra"]
        assert events == [("held", "gra"), ("confirmed", "gra")]  # the cup only
        assert report.accounts["gra"].confirmed == 1


def test_mass_drops_explained_by_orders_are_booked_without_an_operator(db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(12)]
    with fleet(("gra", "graas"), ("oto", "oto"), ("oak", "oakra")) as running:
        seeded(running, skus, 4)
        config = running.config(db_url, skus)
        cycle(config)
        for sku in skus[:10]:  # a sell-out of most of the catalogue while the daemon was stopped
            running.platforms["oto"].sell(sku, 4)
        report = cycle(config)
        assert report.ok and rows(config, SafetyStop) == []
        assert all(pools(config)[sku] == 0 for sku in skus[:10])
        assert all(set(stock(running, sku).values()) == {0} for sku in skus[:10])


def test_mass_unexplained_drops_stop_only_those_listings_until_the_reads_recover(db_url: str) -> None:
    skus = [f"sku-{i:02d}" for i in range(12)]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, skus, 8)
        config = running.config(db_url, skus)
        cycle(config)
        for sku in skus[:10]:
            running.platforms["oak"].set_quantity(sku, 1)  # 10 of 12 listings lose most of their stock
        running.platforms["gra"].sell(skus[11], 3)  # and a real sale elsewhere meanwhile
        report = cycle(config)
        assert not report.ok and report.accounts["oak"].stopped == 10
        (stop,) = rows(config, SafetyStop)
        assert stop.closed_at is None and "10 of 12 listings dropped" in stop.reason
        assert all(pools(config)[sku] == 8 for sku in skus[:10])  # nothing of theirs booked
        assert stock(running, skus[0]) == {"oak": 1, "gra": 8}  # nor pushed
        assert stock(running, skus[11]) == {"oak": 5, "gra": 5}  # the rest of the account syncs
        again = cycle(config)  # the stop holds: still nothing booked, and it says so
        assert again.accounts["oak"].stopped == 10 and all(pools(config)[sku] == 8 for sku in skus[:10])
        for sku in skus[:10]:
            running.platforms["oak"].set_quantity(sku, 8)  # the numbers come back
        back = cycle(config)
        assert back.ok and back.accounts["oak"].stopped == 0
        (stop,) = rows(config, SafetyStop)
        assert stop.closed_at is not None and stop.resolution == "lifted: 10 read back as expected"
        assert all(pools(config)[sku] == 8 for sku in skus[:10])
        assert [m.quantity for m in rows(config, Movement) if m.kind == "external"] == [-3]  # the real sale only


def test_a_listing_created_again_with_a_new_id_is_adopted_not_booked(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, ["mug"], 5)
        config = running.config(db_url, ["mug"])
        cycle(config)
        oakra: Any = running.platforms["oak"]
        old = oakra._find("mug")
        del oakra.records[old.id], oakra._by_key[("mug", old.location_id)]
        oakra.set_quantity("mug", 40)  # deleted and created again: a new stock record id
        report = cycle(config)
        assert report.movements == [] and pools(config) == {"mug": 5}
        assert stock(running, "mug") == {"oak": 5, "gra": 5}  # put back to the pool's target
        assert ("adopted", "oak") in kinds(config)


def test_a_sku_back_in_the_catalogue_starts_afresh(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, ["mug", "cup"], 5)
        cycle(running.config(db_url, ["mug", "cup"]))
        cycle(running.config(db_url, ["cup"]))  # the mug leaves the catalogue ...
        running.platforms["oak"].set_quantity("mug", 30)  # ... and is restocked by hand meanwhile
        running.platforms["gra"].set_quantity("mug", 2)
        config = running.config(db_url, ["mug", "cup"])
        report = cycle(config)  # back: bootstrapped from what the platforms show now
        (start,) = [m for m in report.movements if m.sku == "mug"]
        assert start.kind.value == "bootstrap" and start.quantity == 2 - 5 and "back in the catalogue" in start.note
        assert pools(config)["mug"] == 2 and stock(running, "mug") == {"oak": 2, "gra": 2}


def test_oakra_reads_are_cut_by_url_length_as_well_as_by_count(db_url: str) -> None:
    from sync.platforms.batching import chunked_by_length

    long = [f"{i:03d}-" + "x" * 76 for i in range(100)]  # 100 SKUs of 80 characters: an 8.5 kB URL in one read
    assert [len(b) for b in chunked_by_length(long, 100, 3500, lambda code: len(code) + 5)] == [41, 41, 18]
    with fleet(("oak", "oakra")) as running:
        seeded(running, long, 3)
        sizes: list[int] = []
        running.platforms["oak"].after_request = lambda request: sizes.append(len(request.query.get("sku", [])))
        report = cycle(running.config(db_url, long))
        assert report.ok and report.accounts["oak"].observed == 100
        assert sizes == [41, 41, 18] or sorted(sizes) == [18, 41, 41]


def test_an_account_answering_badly_is_logged_once_and_its_recovery_once(db_url: str) -> None:
    from structlog.testing import capture_logs

    from sync.logs import configure_logging

    configure_logging("info", "json")  # the recovery is good news: logged at info
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, ["mug", "cup"], 3)
        config = running.config(db_url, ["mug", "cup"], sync={"bad_read_quiet_seconds": 0})
        cycle(config)
        with capture_logs() as logs:
            for _ in range(2):
                running.platforms["gra"].set_quantity("mug", "three")  # type: ignore[arg-type]
                cycle(config)
            running.platforms["gra"].set_quantity("mug", 3)
            cycle(config)
            cycle(config)
        events = [e["event"] for e in logs if e["event"].startswith("account.answering")]
        assert events == ["account.answering_badly", "account.answering_well"]
