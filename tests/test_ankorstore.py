"""Ankorstore's own hard parts: absolute stock made safe, JSON:API validated against the platform's
OpenAPI file, cursor pages, always-in-stock variants, rate limits and token expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import sync.platforms.ankorstore.adapter as adapter_module
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.errors import ForbiddenError, RetriableError
from sync.judge import TrustRules
from sync.metrics import METRICS
from sync.platforms import PLATFORMS, AccountSettings, build_adapter
from sync.platforms.ankorstore.emulated_orders import included_resources
from sync.platforms.ankorstore.emulator import AnkorstoreEmulator
from sync.platforms.base import Adapter, Change, Outcome
from tests.fakes import Fleet, fleet
from tests.openapi_check import Checked, validate_traffic


@pytest.fixture
def ankorstore() -> Iterator[tuple[Fleet, AnkorstoreEmulator, Checked]]:
    with fleet(("ank", "ankorstore")) as running:
        emulator: AnkorstoreEmulator = running.platforms["ank"]  # type: ignore[assignment]
        checked = validate_traffic(emulator)
        yield running, emulator, checked


def settings_of(running: Fleet) -> AccountSettings:
    return PLATFORMS["ankorstore"].settings.model_validate(running.entries[0])


async def _closing(adapter: Adapter, work):  # type: ignore[no-untyped-def]
    try:
        return await work(adapter)
    finally:
        await adapter.aclose()


def test_reads_follow_cursor_pages_and_every_request_and_answer_fits_the_spec(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, emulator, checked = ankorstore
    codes = [f"sku-{i:03d}" for i in range(50)]
    for i, code in enumerate(codes):
        emulator.set_quantity(code, i)
    monkeypatch.setattr(adapter_module, "PAGE_LIMIT", 20)  # 50 SKUs -> pages of 20, 20 and 10
    result = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.read(codes)))
    assert {c: o.quantity for c, o in result.observed.items()} == {c: i for i, c in enumerate(codes)}
    # Three pages of variants, and three of products (read once for their unitMultiplier).
    assert emulator.api_calls() == 6 and emulator.calls["GET /api/v1/products"] == 3
    assert checked.requests == 6 and checked.responses == 6


def test_a_sale_between_the_read_and_the_push_is_kept_and_reservations_stay(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    running, emulator, checked = ankorstore
    emulator.set_quantity("mug", 10)
    assert emulator.sell("mug", 2)  # an open order holds 2: available 8, reserved 2, stock 10

    async def scenario(adapter: Adapter) -> Outcome:
        seen = (await adapter.read(["mug"])).observed["mug"]  # available 8
        emulator.sell("mug", 1)  # a retailer orders one more before our push: available 7
        result = (await adapter.push([Change("mug", seen.ref, +4)]))[0]  # the engine wants 8 -> 12
        return result.outcome

    assert asyncio.run(_closing(build_adapter(settings_of(running)), scenario)) is Outcome.CONFIRMED
    variant = emulator.variant("mug")
    assert variant is not None
    assert (variant.available, variant.reserved, variant.stock) == (11, 3, 14)  # the order's unit is kept
    assert checked.requests >= 3 and checked.responses == checked.requests


def test_a_product_sold_in_cases_is_left_alone_and_said_so(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    # `unitMultiplier` 6: an order's quantity counts cases of six. Whether availableQuantity counts
    # cases or bottles the document does not say, so no number pushed there could be trusted.
    running, emulator, checked = ankorstore
    for code in ("wine", "mug"):
        emulator.set_quantity(code, 10)
    emulator.sold_in_cases("wine", 6)
    wine = emulator.variant("wine")
    assert wine is not None

    async def scenario(adapter: Adapter) -> tuple[dict[str, int], dict[str, str], Outcome]:
        read = await adapter.read(["wine", "mug"])
        (pushed,) = await adapter.push([Change("wine", wine.id, -1, observed=10)])
        return {c: o.quantity for c, o in read.observed.items()}, read.skipped, pushed.outcome

    observed, skipped, outcome = asyncio.run(_closing(build_adapter(settings_of(running)), scenario))
    assert observed == {"mug": 10} and "sold in cases of 6" in skipped["wine"]
    assert outcome is Outcome.FAILED and emulator.quantity("wine") == 10  # not set
    order = emulator.sell("wine", 2)  # two cases
    assert order is not None
    (item,) = included_resources([order], emulator.variant, with_variants=False)
    assert (item["attributes"]["quantity"], item["attributes"]["multipliedQuantity"]) == (2, 12)
    assert checked.responses == checked.requests  # the products list fits the OpenAPI file


@pytest.mark.parametrize(("share", "sent"), [(0.5, False), (0.7, True)])
def test_a_fresh_read_is_judged_with_the_configured_drop_share(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked], share: float, sent: bool
) -> None:
    running, emulator, _ = ankorstore
    emulator.set_quantity("mug", 10)

    async def scenario(adapter: Adapter) -> Outcome:
        seen = (await adapter.read(["mug"])).observed["mug"]
        emulator.sell("mug", 6)  # 10 -> 4 between the engine's read and the set: a drop of 60%
        return (await adapter.push([Change("mug", seen.ref, +1, observed=seen.quantity)]))[0].outcome

    adapter = build_adapter(settings_of(running), trust=TrustRules(confirm_drop_share=share))
    outcome = asyncio.run(_closing(adapter, scenario))
    assert (outcome is Outcome.CONFIRMED) is sent
    assert bool(emulator.applied) is sent  # past the share: no set from an unconfirmed number
    variant = emulator.variant("mug")
    assert variant is not None and variant.available == (5 if sent else 4)


def test_always_in_stock_variants_are_reported_and_left_alone(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    running, emulator, _ = ankorstore
    emulator.set_quantity("mug", 5)
    emulator.set_quantity("poster", 5)
    variant = emulator.variant("poster")
    assert variant is not None
    variant.always_in_stock = True
    result = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.read(["mug", "poster"])))
    assert set(result.observed) == {"mug"}
    assert "isAlwaysInStock" in result.skipped["poster"]
    pushed = asyncio.run(
        _closing(build_adapter(settings_of(running)), lambda a: a.push([Change("poster", variant.id, -5)]))
    )
    assert pushed[0].outcome is Outcome.FAILED and emulator.applied == []


def test_an_archived_variant_is_ignored_beside_the_live_one_that_took_its_sku(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    running, emulator, checked = ankorstore
    for code in ("mug", "poster"):
        emulator.set_quantity(code, 5)
        emulator.archive(code)
    emulator.set_quantity("mug", 7)  # a new variant under the archived one's SKU
    live = emulator.variant("mug")
    assert live is not None
    result = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.read(["mug", "poster"])))
    assert {c: (o.quantity, o.ref) for c, o in result.observed.items()} == {"mug": (7, live.id)}
    assert "archived" in result.skipped["poster"] and not result.bad
    pushed = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.push([Change("mug", live.id, -2)])))
    assert pushed[0].outcome is Outcome.CONFIRMED and live.available == 5
    assert checked.responses == checked.requests


@pytest.mark.parametrize("policy", ["deny", "continue"])
def test_below_zero_is_believed_only_where_the_variant_takes_orders_past_zero(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked], policy: str
) -> None:
    running, emulator, checked = ankorstore
    emulator.set_quantity("mug", 1)
    variant = emulator.variant("mug")
    assert variant is not None
    variant.inventory_policy = policy
    sold = emulator.sell("mug", 2)
    assert (sold is not None) is (policy == "continue")  # `deny` refuses what it does not show
    variant.reserved = 2  # as a sale past zero leaves it; under `deny` no sale could
    result = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.read(["mug"])))
    if policy == "continue":
        assert result.observed["mug"].quantity == -1 and not result.bad
    else:
        assert "negative" in result.bad["mug"] and not result.observed
    assert checked.responses == checked.requests


def test_a_429_with_retry_after_is_waited_out(ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked]) -> None:
    running, emulator, _ = ankorstore
    now = [1_000_000.0]
    emulator.clock = lambda: now[0]
    emulator.rate_limit = 2
    emulator.set_quantity("mug", 5)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def three_reads(adapter: Adapter) -> int:
        for _ in range(3):
            seen = await adapter.read(["mug"])
        return seen.observed["mug"].quantity

    def waits() -> float:
        labels = {"platform": "ankorstore", "account": "ank"}
        return METRICS.registry.get_sample_value("stocksync_rate_limit_waits_total", labels) or 0.0

    before = waits()
    adapter = build_adapter(settings_of(running), sleep=sleep, clock=lambda: now[0])
    assert asyncio.run(_closing(adapter, three_reads)) == 5
    assert slept and slept[-1] >= 1  # it waited what Retry-After said, then read again
    assert waits() > before  # and /metrics counts the wait


def test_an_expired_token_mid_run_is_renewed_once(ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked]) -> None:
    running, emulator, _ = ankorstore
    emulator.set_quantity("mug", 5)

    async def scenario(adapter: Adapter) -> Outcome:
        seen = (await adapter.read(["mug"])).observed["mug"]
        emulator.expire_tokens()
        return (await adapter.push([Change("mug", seen.ref, -2)]))[0].outcome

    assert asyncio.run(_closing(build_adapter(settings_of(running)), scenario)) is Outcome.CONFIRMED
    assert emulator.quantity("mug") == 3
    assert emulator.calls["POST /oauth/token"] == 2


def test_a_403_is_a_refusal_that_no_new_token_changes(ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked]) -> None:
    running, emulator, _ = ankorstore
    codes = [f"sku-{i:03d}" for i in range(500)]
    for code in codes:
        emulator.set_quantity(code, 3)
    emulator.forbidden = True
    with pytest.raises(ForbiddenError, match="403"):
        asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.read(codes)))
    assert emulator.calls["POST /oauth/token"] == 1  # ten batches refused, one token asked for


def test_a_failing_token_endpoint_is_asked_no_more_than_its_own_retries(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    # The token is fetched once a call's slot has come, inside the call's try: its failure, retried
    # already as the token's own call, must not be retried again by the call that needed it (the
    # endpoint allows 60 an hour).
    running, emulator, _ = ankorstore
    emulator.set_quantity("mug", 3)
    route = emulator.route

    def token_down(request: EmuRequest) -> EmuResponse:
        if request.path == "/oauth/token":
            return EmuResponse(503, {"error": "unavailable"})
        return route(request)

    emulator.route = token_down  # type: ignore[method-assign]

    async def no_wait(_seconds: float) -> None:
        return None

    settings = settings_of(running).model_copy(update={"concurrency": 1})
    with pytest.raises(RetriableError):
        asyncio.run(_closing(build_adapter(settings, sleep=no_wait), lambda a: a.read(["mug"])))
    assert emulator.calls["POST /oauth/token"] == 4  # the token call's own four attempts, once


def test_the_token_endpoint_allows_sixty_requests_an_hour(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    _, emulator, _ = ankorstore
    now = [1_000_000.0]
    emulator.clock = lambda: now[0]
    form = b"grant_type=client_credentials&client_id=" + emulator.client_id.encode()
    form += b"&client_secret=" + emulator.client_secret.encode() + b"&scope=*"
    ask = lambda: emulator.route(EmuRequest.build("POST", "/oauth/token", {}, form))  # noqa: E731
    assert [ask().status for _ in range(60)] == [200] * 60
    refused = ask()
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    now[0] += 3601
    assert ask().status == 200


def _paced_sweep(
    running: Fleet, emulator: AnkorstoreEmulator, skus: int, **settings: int
) -> tuple[dict[str, int], float, float, float]:
    """Read `skus` listings on a fake clock (the emulator's too); return what was read, the 200s and
    429s it took, and the seconds it took."""
    now = [1_000_000.0]
    emulator.clock = lambda: now[0]
    codes = [f"sku-{i:03d}" for i in range(skus)]
    for code in codes:
        emulator.set_quantity(code, 3)

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    def answers(status: str) -> float:
        labels = {"platform": "ankorstore", "account": "ank", "status": status}
        return METRICS.registry.get_sample_value("stocksync_api_calls_total", labels) or 0.0

    ok, limited, started = answers("200"), answers("429"), now[0]
    adapter = build_adapter(settings_of(running).model_copy(update=settings), sleep=sleep, clock=lambda: now[0])
    result = asyncio.run(_closing(adapter, lambda a: a.read(codes)))
    read = {sku: seen.quantity for sku, seen in result.observed.items()}
    return read, answers("200") - ok, answers("429") - limited, now[0] - started


def test_a_sweep_paced_by_the_remaining_count_meets_no_429(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked],
) -> None:
    running, emulator, _ = ankorstore
    emulator.rate_limit = 20  # a minute's worth of calls, far fewer than the sweep needs
    read, ok, limited, _ = _paced_sweep(running, emulator, 100, batch_size=2)
    assert read == {f"sku-{i:03d}": 3 for i in range(100)}
    assert ok >= 50  # fifty reads, over two and a half minutes of the limit
    assert limited == 0


def test_a_sweep_paced_by_the_hour_s_remaining_count_meets_no_429(
    ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hour's limit binds: X-RateLimit-Limit names it, and what remains must last the hour, not
    # a minute (scaled down: 60 calls an hour, the minute's 600 never near). Slots minutes apart
    # take several capped waits each, and a token fetched before such a wait would be stale.
    running, emulator, _ = ankorstore
    emulator.limits.limits[3600] = 60
    monkeypatch.setattr(adapter_module.AnkorstoreAdapter, "rate_windows", {600: 60.0, 60: 3600.0})
    # One call at a time: the fake sleep adds up the waits of calls made side by side, which real
    # time does not (a token would look an hour old the moment it came).
    read, ok, limited, took = _paced_sweep(running, emulator, 160, batch_size=2, concurrency=1)
    assert read == {f"sku-{i:03d}": 3 for i in range(160)}
    assert ok >= 80 and limited == 0
    assert took >= 3600  # eighty-odd calls against sixty an hour: into the next hour


def test_the_emulator_refuses_what_ankorstore_refuses(ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked]) -> None:
    _, emulator, _ = ankorstore
    emulator.tokens["t"] = 1e12
    plain = EmuRequest.build("GET", "/api/v1/product-variants?filter[sku]=a", {"Authorization": "Bearer t"}, b"")
    assert emulator.route(plain).status == 406
    headers = {"Authorization": "Bearer t", "Accept": "application/vnd.api+json", "Content-Type": "application/json"}
    body = b'{"atomic:operations": []}'
    assert emulator.route(EmuRequest.build("POST", "/api/v1/operations", headers, body)).status == 415


def test_the_order_feed_and_a_rejection_fit_the_spec(ankorstore: tuple[Fleet, AnkorstoreEmulator, Checked]) -> None:
    from datetime import UTC, datetime, timedelta

    from sync.platforms.base import OrderRecord, OrderState

    running, emulator, checked = ankorstore
    emulator.set_quantity("mug", 100)
    placed = [emulator.sell("mug", 1 + i % 2) for i in range(60)]  # two pages of 50
    since = datetime.now(UTC) - timedelta(hours=1)

    async def feed(adapter: Adapter) -> list[OrderRecord]:
        seen, cursor = [], None
        while True:
            page = await adapter.read_orders(cursor, datetime.now(UTC), since)
            seen += page.orders
            cursor = page.cursor
            if not page.more:
                return seen

    seen = asyncio.run(_closing(build_adapter(settings_of(running)), feed))
    assert sorted(o.order_id for o in seen) == sorted(o.order_id for o in placed if o)
    assert {(line.code, line.quantity) for o in seen for line in o.lines} == {("mug", 1), ("mug", 2)}
    newest = seen[0]
    assert newest.state is OrderState.OPEN and newest.status == "ankor_confirmed"
    result = asyncio.run(_closing(build_adapter(settings_of(running)), lambda a: a.cancel_order(newest)))
    assert result.outcome is Outcome.CONFIRMED
    assert emulator.book.orders[newest.order_id].status == "rejected"  # until Ankorstore approves
    assert checked.requests == checked.responses == 3  # two order pages and the transition
