"""The order contract: every platform with an order feed lists each order its customers placed,
exactly once over a whole feed read, sees status changes, and resumes from any cursor without
skipping; every platform cancels an order through its own endpoint, once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.emulation.silences import Silences
from sync.platforms import PLATFORMS
from sync.platforms.base import Adapter, OrderRecord, OrderState, Outcome
from tests.contract.test_adapter_contract import Harness
from tests.fakes import fleet

FEED_PLATFORMS = ["ankorstore", "graas", "oto"]
CANCEL_ENDPOINT = {
    "oakra": "POST /api/v1/sales/cancel/",
    "graas": "PUT /v1/orders",
    "oto": "POST /rest/v2/cancelOrder",
    "ankorstore": "POST /api/v1/orders/{id}/-actions/transition",
}


@pytest.fixture(params=sorted(PLATFORMS))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with fleet(("acct", request.param)) as running:
        yield Harness(request.param, running)


# The documents' silences on order lists (sort order and key, whether `links.next` is filled):
# every reading of each appears in one of these two.
READINGS = {
    "newest-first": Silences(lists_newest_first=True, sorted_by_change=True, fills_links=True),
    "oldest-first": Silences(lists_newest_first=False, sorted_by_change=False, fills_links=False),
}


@pytest.fixture(params=[(p, r) for p in FEED_PLATFORMS for r in READINGS], ids="-".join)
def feed(request: pytest.FixtureRequest) -> Iterator[Harness]:
    platform, reading = request.param
    with fleet(("acct", platform)) as running:
        running.platforms["acct"].silences = READINGS[reading]
        yield Harness(platform, running)


def read_feed(
    adapter: Adapter, cursor: str | None, since: datetime, ahead: float = 0.0
) -> tuple[list[OrderRecord], str, int]:
    """Read a feed to its end from `cursor` (at `ahead` seconds from now): every order seen, the
    final cursor, pages read."""

    async def go() -> tuple[list[OrderRecord], str, int]:
        seen: list[OrderRecord] = []
        pages = 0
        position = cursor
        try:
            while True:
                page = await adapter.read_orders(position, datetime.now(UTC) + timedelta(seconds=ahead), since)
                seen += page.orders
                pages += 1
                position = page.cursor
                if not page.more:
                    return seen, position, pages
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def test_only_platforms_that_document_an_order_list_have_a_feed(harness: Harness) -> None:
    assert harness.adapter().has_order_feed is (harness.platform in FEED_PLATFORMS)


def test_a_feed_lists_every_order_once_across_pages_then_only_what_changed(feed: Harness) -> None:
    codes = feed.seed(3, quantity=500)
    since = datetime.now(UTC) - timedelta(minutes=60)
    clock = [time.time() - 2400]  # the orders were placed over the last forty minutes, one in ten seconds
    feed.emulator.wall = lambda: clock[0]
    placed = []
    for i in range(230):  # several pages on every platform
        placed.append(feed.emulator.sell(codes[i % 3], 1 + i % 2))
        clock[0] += 10
    seen, cursor, pages = read_feed(feed.adapter(), None, since)
    by_id = {o.order_id: o for o in seen}
    assert set(by_id) == {o.order_id for o in placed if o}
    assert pages >= 2
    sample = placed[7]
    assert sample is not None
    assert [(line.code, line.quantity) for line in by_id[sample.order_id].lines] == [(sample.lines[0].code, 2)]
    assert by_id[sample.order_id].state is OrderState.OPEN

    clock[0] = time.time()
    assert feed.emulator.cancel(sample.order_id)
    fresh = feed.emulator.sell(codes[0], 1)
    assert fresh is not None
    again, _, _ = read_feed(feed.adapter(), cursor, since)
    again_by_id = {o.order_id: o for o in again}
    assert fresh.order_id in again_by_id
    assert len(again) < len(seen)  # only the top of the list, not the whole history again
    if feed.platform != "ankorstore":  # its list has no update order: see sync/platforms/ankorstore/orders.py
        assert again_by_id[sample.order_id].state is OrderState.CANCELLED


def test_resuming_from_a_stored_cursor_while_orders_move_never_skips_one(feed: Harness) -> None:
    codes = feed.seed(2, quantity=500)
    since = datetime.now(UTC) - timedelta(minutes=30)
    clock = [time.time() - 600]
    feed.emulator.wall = lambda: clock[0]
    placed = set()
    for i in range(250):
        order = feed.emulator.sell(codes[i % 2], 1)
        assert order is not None
        placed.add(order.order_id)
        clock[0] += 1

    async def first_page() -> tuple[set[str], str]:
        adapter = feed.adapter()
        try:
            page = await adapter.read_orders(None, datetime.now(UTC), since)
            assert page.more
            return {o.order_id for o in page.orders}, page.cursor
        finally:
            await adapter.aclose()

    first, cursor = asyncio.run(first_page())  # the first page is booked with the cursor after it
    clock[0] = time.time() + 5
    for order_id in sorted(first)[:3]:  # orders change while we page: they move in the list
        assert feed.emulator.cancel(order_id)
    newer = {o.order_id for i in range(30) if (o := feed.emulator.sell(codes[i % 2], 1))}  # arrive meanwhile
    rest, final, _ = read_feed(feed.adapter(), cursor, since, ahead=10)  # resumed after a restart
    tail, _, _ = read_feed(feed.adapter(), final, since, ahead=10)  # the next poll
    later = {o.order_id for o in rest} | {o.order_id for o in tail}
    assert placed <= first | later
    assert newer <= later


def test_a_cancel_goes_through_the_platform_endpoint_once(harness: Harness) -> None:
    codes = harness.seed(1, quantity=5)
    order = harness.emulator.sell(codes[0], 2)
    assert order is not None and harness.emulator.quantity(codes[0]) == 3
    record = OrderRecord(order.order_id, order.status, OrderState.OPEN, datetime.now(UTC), (), _handle(harness))

    async def cancel() -> Outcome:
        adapter = harness.adapter()
        try:
            return (await adapter.cancel_order(record)).outcome
        finally:
            await adapter.aclose()

    assert asyncio.run(cancel()) is Outcome.CONFIRMED
    assert harness.emulator.cancelled_by_api == [order.order_id]
    assert harness.emulator.quantity(codes[0]) == 5  # the units are back on the listing
    endpoint = CANCEL_ENDPOINT[harness.platform].replace("{id}", order.order_id)
    assert harness.emulator.calls[endpoint] == 1
    # A second attempt is refused by the platform, and reported as a failure that applied nothing.
    assert asyncio.run(cancel()) is Outcome.FAILED
    assert harness.emulator.cancelled_by_api == [order.order_id]


def _handle(harness: Harness) -> dict[str, str]:
    return {"site_name": "lazada", "site_nick_name_id": "lazada-1"} if harness.platform == "graas" else {}
