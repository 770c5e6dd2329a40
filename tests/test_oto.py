"""OTO's own hard parts: short-lived tokens, `success: false` under HTTP 200, quantities as strings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from sync.errors import AuthError
from sync.ledger.credentials import LedgerTokenKeeper
from sync.ledger.db import session_factory
from sync.ledger.models import Base
from sync.platforms import PLATFORMS, AccountSettings, build_adapter
from sync.platforms.base import Change, Outcome
from sync.platforms.oto.adapter import SWEEP_EVERY
from sync.platforms.oto.auth import OtoTokens
from sync.platforms.oto.emulator import OtoEmulator
from sync.platforms.oto.mapping import parse_stock
from tests.contract.test_order_contract import read_feed
from tests.fakes import Fleet, fleet


@pytest.fixture
def oto() -> Iterator[Fleet]:
    with fleet(("oto", "oto")) as running:
        running.platforms["oto"].set_quantity("mug", 10)
        yield running


def _settings(running: Fleet) -> AccountSettings:
    return PLATFORMS["oto"].settings.model_validate(running.entries[0])


def test_an_expired_token_mid_run_is_renewed_once_and_the_call_goes_through(oto: Fleet) -> None:
    emulator: OtoEmulator = oto.platforms["oto"]  # type: ignore[assignment]

    async def scenario() -> tuple[int, Outcome]:
        adapter = build_adapter(_settings(oto))
        try:
            first = (await adapter.read(["mug"])).observed["mug"].quantity
            emulator.expire_tokens()  # an hour passes mid-run
            outcome = (await adapter.push([Change("mug", "mug", -3)]))[0].outcome
            return first, outcome
        finally:
            await adapter.aclose()

    assert asyncio.run(scenario()) == (10, Outcome.CONFIRMED)
    assert emulator.quantity("mug") == 7 and emulator.applied == [("mug", -3)]
    assert emulator.token_requests == 2  # one token, then one renewal after the 401


def test_success_false_under_http_200_is_a_failed_push_not_applied(oto: Fleet) -> None:
    emulator: OtoEmulator = oto.platforms["oto"]  # type: ignore[assignment]
    emulator.refusals_in_200 = 1

    async def scenario() -> list[Outcome]:
        adapter = build_adapter(_settings(oto))
        try:
            results = await adapter.push([Change("mug", "mug", -2)])
            return [r.outcome for r in results] + [r.outcome for r in await adapter.push([Change("mug", "mug", -1)])]
        finally:
            await adapter.aclose()

    assert asyncio.run(scenario()) == [Outcome.FAILED, Outcome.CONFIRMED]
    assert emulator.quantity("mug") == 9


def test_tokens_are_renewed_before_they_expire() -> None:
    now = [0.0]
    tokens = OtoTokens("refresh", clock=lambda: now[0])
    issued: list[str] = []

    async def fake_request(_http: object) -> tuple[str, float]:
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], 3600.0

    tokens._request_token = fake_request  # type: ignore[method-assign]
    asyncio.run(tokens.headers(None))  # type: ignore[arg-type]
    now[0] = 3000.0
    asyncio.run(tokens.headers(None))  # type: ignore[arg-type]
    now[0] = 3301.0  # within five minutes of expiry
    assert asyncio.run(tokens.headers(None)) == {"Authorization": "Bearer t2"}  # type: ignore[arg-type]
    assert issued == ["t1", "t2"]


def test_quantities_as_strings_rows_without_location_and_negatives() -> None:
    payload = {
        "success": True,
        "stock": {
            "a": [{"pickupLocationCode": "DMW", "sku": "a", "quantityOnHand": "7"}, {"sku": "a", "quantityOnHand": -7}],
            "b": [{"pickupLocationCode": "DMW", "sku": "b", "quantityOnHand": 3.5}],
            "c": [{"pickupLocationCode": "OTHER", "sku": "c", "quantityOnHand": 4}],
            "d": [{"pickupLocationCode": "DMW", "sku": "d", "quantityOnHand": "-2"}],
            "e": [{"pickupLocationCode": "DMW", "sku": "e", "quantityOnHand": "100000000000000000000"}],
        },
    }
    result = parse_stock(payload, "DMW", {"a", "b", "c", "d", "e"})
    assert {k: v.quantity for k, v in result.observed.items()} == {"a": 7, "d": -2}
    # A negative quantity on hand is plausible on OTO (an adjust has no floor): believed, not skipped.
    assert set(result.bad) == {"b", "e"} and not result.skipped
    assert "not an integer" in result.bad["e"]


def test_a_rotated_refresh_token_is_kept_across_restarts_until_another_is_configured(oto: Fleet) -> None:
    emulator: OtoEmulator = oto.platforms["oto"]  # type: ignore[assignment]
    emulator.silences.rotates_refresh_token = True  # each refresh replaces it; the old one is dead
    db = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(db)
    keeper = LedgerTokenKeeper(session_factory(db))

    def read(settings: AccountSettings, kept: LedgerTokenKeeper | None) -> int:
        async def go() -> int:
            adapter = build_adapter(settings, keeper=kept)
            try:
                return (await adapter.read(["mug"])).observed["mug"].quantity
            finally:
                await adapter.aclose()

        return asyncio.run(go())

    settings = _settings(oto)
    assert read(settings, keeper) == 10  # the configured token, traded and replaced
    assert read(settings, keeper) == 10  # a restart: the replacement, from the ledger
    with pytest.raises(AuthError):
        read(settings, None)  # what a restart did before: the configured token, long dead
    # The operator configures a new token: it wins over the one the ledger kept for the old.
    emulator.refresh_token = "configured-anew"
    assert read(settings.model_copy(update={"refresh_token": SecretStr("configured-anew")}), keeper) == 10


def test_two_processes_on_one_ledger_follow_each_others_rotated_token(oto: Fleet) -> None:
    # From the outside review: replicas each hold the refresh token in memory; one trades it and
    # the other's copy dies. The other reads the replacement from the ledger and goes on.
    emulator: OtoEmulator = oto.platforms["oto"]  # type: ignore[assignment]
    emulator.silences.rotates_refresh_token = True
    db = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(db)
    keeper = LedgerTokenKeeper(session_factory(db))

    async def scenario() -> tuple[int, int, int]:
        first, second = (build_adapter(_settings(oto), keeper=keeper) for _ in range(2))
        try:
            a = (await first.read(["mug"])).observed["mug"].quantity
            b = (await second.read(["mug"])).observed["mug"].quantity  # trades the token again
            emulator.expire_tokens()  # the first must renew, with a token the second replaced
            return a, b, (await first.read(["mug"])).observed["mug"].quantity
        finally:
            await first.aclose()
            await second.aclose()

    assert asyncio.run(scenario()) == (10, 10, 10)


def test_an_order_dated_back_by_its_creator_is_found_by_the_next_whole_window_read(oto: Fleet) -> None:
    # From the outside review: `orderDate` is its creator's. In a list sorted by it, an order made
    # now but dated half an hour back sits in the middle, where neither end's read finds it; the
    # whole window, read every SWEEP_EVERY, does.
    emulator: OtoEmulator = oto.platforms["oto"]  # type: ignore[assignment]
    emulator.silences.rotates_refresh_token = False
    emulator.silences.lists_newest_first, emulator.silences.sorted_by_change = True, False
    since = datetime.now(UTC) - timedelta(hours=2)
    clock = [time.time() - 3600]
    emulator.wall = lambda: clock[0]
    emulator.set_quantity("mug", 1000)
    for _ in range(300):  # an hour of orders, three pages
        assert emulator.sell("mug", 1)
        clock[0] += 12
    seen, cursor, _ = read_feed(build_adapter(_settings(oto)), None, since)
    assert len({o.order_id for o in seen}) == 300
    clock[0] = time.time()
    late = emulator.sell("mug", 1)
    assert late is not None
    late.placed = time.time() - 1800  # dated back by whoever made it
    again, cursor, _ = read_feed(build_adapter(_settings(oto)), cursor, since)
    assert late.order_id not in {o.order_id for o in again}  # in the middle: not at an end
    later, _, _ = read_feed(build_adapter(_settings(oto)), cursor, since, ahead=SWEEP_EVERY.total_seconds() + 1)
    assert late.order_id in {o.order_id for o in later}
