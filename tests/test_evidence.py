"""The order feed as evidence for pushes in doubt: a feed counts as read through a time only when a
poll that began then read a fresh scan to its end, and an order's time is taken no more exactly
than its platform gives it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sync.bootstrap import open_ledger
from sync.config import Config
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.evidence import DOWN_AFTER, FeedEvidence
from sync.ledger.models import Order, OrderFeed
from tests.fakes import fleet
from tests.test_orders import cycle, in_engine
from tests.test_trust import seeded


def feed_state(config: Config) -> tuple[datetime | None, set[str]]:
    ledger = open_ledger(config)
    try:
        with ledger.store.sessions() as session:
            through = session.scalar(select(OrderFeed.read_through_at))
            return through, set(session.scalars(select(Order.external_id)))
    finally:
        ledger.close()


@pytest.mark.parametrize("newest_first", [True, False])
def test_a_resumed_scan_vouches_for_nothing_placed_since_it_began(db_url: str, newest_first: bool) -> None:
    # From the outside review: a poll whose second page failed is resumed by the next poll. Orders
    # placed meanwhile may sit where the resumed poll does not look (on top, when the list runs
    # newest first): that poll must not claim the feed read through its start.
    with fleet(("ank", "ankorstore"), ("gra", "graas")) as running:
        seeded(running, ["mug"], 1000)
        config = running.config(db_url, ["mug"])
        cycle(config)
        ank = running.platforms["ank"]
        ank.silences.lists_newest_first = newest_first
        for _ in range(60):  # two pages of 50
            assert ank.sell("mug", 1)
        route, broken = ank.route, [True]

        def second_page_fails(request: EmuRequest) -> EmuResponse:
            paging = any(key.startswith("page[after]") for key in request.query)
            if broken[0] and request.method == "GET" and request.path.endswith("/orders") and paging:
                return EmuResponse(500, {"errors": [{"status": "500", "title": "Internal Server Error"}]})
            return route(request)

        ank.route = second_page_fails  # type: ignore[method-assign]
        in_engine(config, lambda engine: engine.run_orders())  # page 1 booked, page 2 failed
        before, _ = feed_state(config)
        broken[0] = False
        late = ank.sell("mug", 2)  # on top of the list, above the half-read scan
        assert late is not None
        in_engine(config, lambda engine: engine.run_orders())  # resumes the old poll to its end
        through, booked = feed_state(config)
        assert through == before  # no claim past the late order, whether or not it was read
        assert (late.order_id in booked) is not newest_first  # on top, or at the tail the poll reads
        started = datetime.now(UTC)
        in_engine(config, lambda engine: engine.run_orders())  # a fresh scan from the top
        through, booked = feed_state(config)
        assert late.order_id in booked and through is not None and through >= started


class _ReadThrough:
    """An order store that knows only when each feed was last read to its end."""

    def __init__(self, through: dict[int, datetime]) -> None:
        self.through = through

    def read_through(self, account_ids: Collection[int]) -> dict[int, datetime]:
        return {account: at for account, at in self.through.items() if account in account_ids}


def test_a_feed_is_down_only_after_three_timeouts_without_a_read_to_its_end() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    ids = {"gra": 1, "oto": 2, "ank": 3}
    through = {1: now - timedelta(seconds=2.9 * 600), 2: now - timedelta(seconds=3.1 * 600)}  # ank: never
    evidence = FeedEvidence(_ReadThrough(through), {"gra": 1.0, "oto": None, "ank": 1.0})  # type: ignore[arg-type]
    assert DOWN_AFTER == 3
    assert evidence.behind(ids, now, 600) == {"oto", "ank"}


def test_a_rejection_awaiting_approval_may_give_its_units_back_in_any_later_read(db_url: str) -> None:
    # Ankorstore's `rejected` awaits its approval: whether the units came back yet, no order time
    # says, so as evidence the release may be in any read until the order shows `cancelled`.
    from sync.ledger.models import OrderLine, Sku
    from sync.ledger.orders import OrderStore
    from sync.platforms.ankorstore.emulator import AnkorstoreEmulator

    with fleet(("ank", "ankorstore"), ("gra", "graas")) as running:
        seeded(running, ["mug"], 10)
        config = running.config(db_url, ["mug"], orders={"recheck_minutes": 1})
        cycle(config)
        ank = running.platforms["ank"]
        assert isinstance(ank, AnkorstoreEmulator)
        clock = [datetime.now(UTC).timestamp()]
        ank.wall = lambda: clock[0]
        order = ank.sell("mug", 2)
        assert order is not None
        cycle(config)
        assert ank.cancel(order.order_id)
        later = datetime.now(UTC) + timedelta(minutes=2)

        def release() -> list[tuple[int, datetime]]:
            ledger = open_ledger(config)
            try:
                with ledger.store.sessions() as session:
                    account_id, sku = session.execute(
                        select(Order.account_id, OrderLine.sku_id)
                        .join(OrderLine, OrderLine.order_id == Order.id)
                        .join(Sku, Sku.id == OrderLine.sku_id)
                        .where(Order.external_id == order.order_id)
                    ).one()
                assert sku is not None
                sku_id = int(sku)
                evidence = FeedEvidence(OrderStore(ledger.store.sessions), {"ank": 1.0})
                facts = evidence._facts(
                    [(account_id, sku_id)], later - timedelta(hours=1), {account_id: timedelta(0)}, []
                )
                return [(f.units, f.latest) for f in facts[(account_id, sku_id)] if f.units > 0]
            finally:
                ledger.close()

        in_engine(config, lambda engine: engine.run_orders(), at=later)  # read alone: rejected
        ((units, latest),) = release()
        assert units == 2 and latest == datetime.max.replace(tzinfo=UTC)
        clock[0] += 60  # Ankorstore approves: cancelled, the units back by the time we see it
        in_engine(config, lambda engine: engine.run_orders(), at=later + timedelta(minutes=2))
        ((units, latest),) = release()
        assert units == 2 and latest < later + timedelta(minutes=3)


def test_a_sale_a_settlement_proved_in_a_read_stays_before_every_later_window(db_url: str) -> None:
    # OTO's order times bound nothing: only our first sight of a sale does, and a settlement whose
    # orders needed the sale in its probe read. That read's start bounds it from then on, at the
    # earliest such read.
    from sqlalchemy import update

    from sync.domain import SettledBy
    from sync.evidence import SKEW
    from sync.ledger.models import OrderLine
    from sync.ledger.orders import OrderStore
    from sync.ledger.settlements import DoubtReads, mark_reflected
    from sync.planner import Plan, Settlement
    from sync.settling import Verdict

    with fleet(("oto", "oto"), ("gra", "graas")) as running:
        seeded(running, ["mug"], 10)
        config = running.config(db_url, ["mug"])
        cycle(config)
        assert running.platforms["oto"].sell("mug", 1)
        in_engine(config, lambda engine: engine.run_orders())
        ledger = open_ledger(config)
        try:
            with ledger.store.sessions() as session:
                line, account_id, sku_id, seen = session.execute(
                    select(OrderLine.id, Order.account_id, OrderLine.sku_id, Order.first_seen_at).join(
                        Order, OrderLine.order_id == Order.id
                    )
                ).one()
            evidence = FeedEvidence(OrderStore(ledger.store.sessions), {"oto": None})
            since = seen - timedelta(hours=1)

            def sale() -> tuple[int | None, datetime]:
                ((fact,),) = evidence._facts([(account_id, sku_id)], since, {account_id: SKEW}, [account_id]).values()
                return fact.line, fact.latest

            assert sale() == (line, seen + SKEW)  # first sight alone bounds it
            probe = (seen - timedelta(seconds=30), seen - timedelta(seconds=29))
            verdict = Verdict(True, SettledBy.ORDERS, "orders decide", frozenset({line}))
            for began in (probe, (probe[0] + timedelta(seconds=10), probe[1])):  # a later proof moves nothing
                plan = Plan(settlements=[Settlement(1, "mug", "oto", verdict)])
                with ledger.store.sessions.begin() as session:
                    mark_reflected(session, {("oto", "mug"): DoubtReads(1, (since, since), began)}, plan)
                assert sale() == (line, probe[0] - timedelta(microseconds=1))
            with ledger.store.sessions.begin() as session:
                session.execute(update(OrderLine).values(sale_in_read_at=None))
            assert sale() == (line, seen + SKEW)
        finally:
            ledger.close()
