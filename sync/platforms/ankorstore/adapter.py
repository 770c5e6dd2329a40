"""Ankorstore adapter. Ankorstore accepts only absolute stock values, so a relative change is made
safe here: read the variant fresh, set `stockQuantity = available + delta + reserved` from that
read (reservations stay intact), and take the operations answer as the read-back. A sale between
the engine's read and this fresh read is kept; what remains is the few milliseconds between the
fresh read and the set (docs/ankorstore.md measures it)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync.errors import ConflictError, NotFoundError, RejectedError, RetriableError
from sync.judge import Prior, TrustRules, suspicious_drop
from sync.platforms.ankorstore import mapping, orders
from sync.platforms.ankorstore.auth import AnkorstoreTokens
from sync.platforms.ankorstore.settings import AnkorstoreSettings
from sync.platforms.base import (
    CancelResult,
    Change,
    Observed,
    OrderPage,
    OrderRecord,
    OrderState,
    Outcome,
    PushResult,
    ReadResult,
    SetRecorder,
)
from sync.platforms.batching import push_in_batches, read_in_batches
from sync.platforms.feeds import HEAD, TAIL, EndsCursor
from sync.platforms.http import HttpAdapter, TokenKeeper, cancel_outcome, json_body

JSON_API = "application/vnd.api+json"
VARIANTS = "/api/v1/product-variants"
PRODUCTS = "/api/v1/products"
OPERATIONS = "/api/v1/operations"
ORDERS = "/api/v1/orders"
PAGE_LIMIT = 50
# How often the products list is read for `unitMultiplier` (a product put in cases is left alone).
CASES_EVERY = 3600.0


class AnkorstoreAdapter(HttpAdapter[AnkorstoreSettings]):
    """One Ankorstore brand account."""

    platform = "ankorstore"
    records_before_set = True  # `push` records each fresh read (before_set) before its set leaves
    has_order_feed = True
    rechecks_orders = True  # the feed reads the list's ends: an order in the middle is read alone
    order_time_precision = 1.0  # whole seconds in every example of the OpenAPI file
    # The OpenAPI file's three limits for authenticated calls; `X-RateLimit-Limit` says which one
    # its `Remaining` counts ("the current window").
    rate_windows = {600: 60.0, 24_000: 3600.0, 288_000: 86400.0}

    def __init__(self, settings: AnkorstoreSettings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._cases = _Cases()

    @staticmethod
    def token_auth(settings: AnkorstoreSettings, keeper: TokenKeeper | None) -> AnkorstoreTokens:
        """OAuth2 client-credentials tokens."""
        return AnkorstoreTokens(settings.client_id, settings.client_secret.get_secret_value())

    @staticmethod
    def auth_headers(settings: AnkorstoreSettings) -> dict[str, str]:
        """JSON:API media types (406 and 415 otherwise); the bearer token comes call by call."""
        return {"Accept": JSON_API, "Content-Type": JSON_API}

    # --- reads ------------------------------------------------------------------------------

    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Available quantities by `filter[sku]`, `batch_size` SKUs per call, following cursor pages."""
        return await read_in_batches(codes, min(self.settings.effective_batch_size, PAGE_LIMIT), self._read_batch)

    async def _read_batch(self, codes: list[str]) -> ReadResult:
        cases = await self._cases_by_variant()
        found = mapping.collect(await self._list({"filter[sku]": ",".join(codes)}), set(codes), cases)
        result = ReadResult(skipped=dict(found.skipped), bad=dict(found.bad))
        for sku, variant in found.variants.items():
            result.observed[sku] = Observed(sku, variant.available, variant.id)
        return result

    async def _cases_by_variant(self) -> dict[str, int]:
        """Variant id -> `unitMultiplier` of the variants sold in cases, from the products list,
        read again every `CASES_EVERY` seconds (the variant list does not carry it). Batches read
        side by side wait for one read of it."""
        cases = self._cases
        loop = asyncio.get_running_loop()
        if cases.loop is not loop:  # a lock belongs to one event loop
            cases.loop, cases.lock = loop, asyncio.Lock()
        async with cases.lock:
            now = self.clock()
            if cases.read_at is None or now - cases.read_at >= CASES_EVERY:
                cases.by_variant = mapping.cases(await self._list({}, PRODUCTS))
                cases.read_at = now
        return cases.by_variant

    async def _list(self, params: dict[str, str] | list[tuple[str, str]], path: str = VARIANTS) -> list[Any]:
        """Every resource of a listing (the variants', unless `path` says), page after page
        (`page[after]` = `meta.page.to`)."""
        resources: list[Any] = []
        after: str | None = None
        pairs = list(params.items() if isinstance(params, dict) else params)
        while True:
            query: list[tuple[str, Any]] = [*pairs, ("page[limit]", PAGE_LIMIT)]
            if after is not None:
                query.append(("page[after]", after))
            response = await self.http.request("GET", path, params=query, write=False)
            data, after = mapping.page(json_body(response, f"ankorstore {self.settings.name}: GET {path}"))
            resources.extend(data)
            if after is None:
                return resources

    async def read_orders(self, cursor: str | None, now: datetime, since: datetime) -> OrderPage:
        """One page of the orders list, read from both ends (see `EndsCursor`): the head from the
        first page down to the mark, then the tail onwards from where the list ended last time."""
        ends = EndsCursor.parse(cursor, since)
        after = ends.position if ends.phase == HEAD else ends.tail
        try:
            payload = await self._orders_page(after)
        except (RejectedError, NotFoundError):
            if ends.phase != TAIL or ends.tail is None:
                raise
            # The order the tail stopped at is gone from the list (refused as a cursor, or not
            # found: the document says neither): walk the list again.
            return OrderPage([], ends.restart_tail().dump(), True)
        found = orders.parse_orders(payload)
        data, following = mapping.page(payload)
        times, end = [o.placed_at for o in found], mapping.last_id(data)
        if ends.phase == HEAD:
            moved, more = ends.after_head(times, following, end=end)
        else:
            moved, more = ends.after_tail(times, following, end=end)
        return OrderPage(found, moved.dump(), more)

    async def read_order_status(self, order_id: str) -> tuple[str, OrderState] | None:
        """`GET /api/v1/orders/{id}`: the order's status now (None: the platform knows it no more)."""
        path = f"{ORDERS}/{order_id}"
        try:
            response = await self.http.request("GET", path, write=False)
        except NotFoundError:
            return None
        return orders.parse_status(json_body(response, f"ankorstore {self.settings.name}: GET {path}"))

    async def _orders_page(self, after: str | None) -> Any:
        params: dict[str, Any] = {"include": "orderItems.productVariant", "page[limit]": PAGE_LIMIT}
        if after is not None:
            params["page[after]"] = after
        response = await self.http.request("GET", ORDERS, params=params, write=False)
        return json_body(response, f"ankorstore {self.settings.name}: GET {ORDERS}")

    async def cancel_order(self, order: OrderRecord) -> CancelResult:
        """Reject the order (`brand-rejects`, `PRODUCT_OUT_OF_STOCK`): possible while it awaits
        the brand's decision (`ankor_confirmed`)."""
        path = f"{ORDERS}/{order.order_id}/-actions/transition"

        async def call() -> str | None:
            try:
                await self.http.request("POST", path, json=orders.reject_body(), write=True)
            except (RejectedError, ConflictError) as err:
                # 400/422, or 409 ORDER_ACTION_TRANSITION_FAILED: the order's state no longer
                # allows a rejection. Refused for good: sending it again would be refused again.
                return err.message
            return None

        return await cancel_outcome(call)

    # --- pushes -----------------------------------------------------------------------------

    async def push(self, changes: Sequence[Change], *, before_set: SetRecorder | None = None) -> list[PushResult]:
        """Safe sets through `/api/v1/operations`, at most 50 per request; each batch's fresh reads
        and the moves they make go to `before_set` before the set leaves."""

        async def send(batch: list[Change]) -> list[PushResult]:
            return await self._push_batch(batch, before_set)

        return await push_in_batches(changes, min(self.settings.effective_batch_size, PAGE_LIMIT), send)

    async def _push_batch(self, changes: list[Change], before_set: SetRecorder | None) -> list[PushResult]:
        # Fresh read just before the set: the absolute value is computed from it, not from the
        # engine's older read, so a sale made in between is kept. It is judged like any read: a set
        # computed from a number that cannot be believed is not sent.
        fresh = mapping.by_id(await self._list([("filter[id][]", c.ref) for c in changes]))
        refused = _refused_fresh_read(changes, fresh)
        cases = await self._cases_by_variant()  # put in cases since the engine read it: left alone
        sendable, results = [], {}
        for change in changes:
            variant = fresh.get(change.ref)
            in_cases = mapping.sold_in_cases(cases[change.ref]) if change.ref in cases else None
            problem = refused or in_cases or _unusable(change, variant, self.trust)
            if problem is not None or not isinstance(variant, mapping.Variant):
                error = RetriableError(f"ankorstore {self.settings.name}: {change.code}: {problem}; not set")
                results[change.ref] = PushResult(change, Outcome.FAILED, error.message, error=error)
            else:
                sendable.append((change, variant))
        if sendable:
            meant = [(c, v, max(0, v.available + c.delta)) for c, v in sendable]
            if before_set is not None:
                before_set([(c, v.available, value - v.available) for c, v, value in meant])
            body = mapping.set_stock_operations([(v.id, value + v.reserved) for _, v, value in meant])
            response = await self.http.request("POST", OPERATIONS, json=body, write=True)
            try:
                after = mapping.operation_results(response.json())
            except ValueError:
                after = {}
            for change, variant in sendable:
                results[change.ref] = _outcome(change, variant, after.get(variant.id))
        return [results[c.ref] for c in changes]


def _refused_fresh_read(changes: Sequence[Change], fresh: dict[str, mapping.Variant | str]) -> str | None:
    """Why the fresh read as a whole cannot be believed (the answer rules), or None."""
    variants = [fresh.get(c.ref) for c in changes]
    if not any(variants):
        return "the fresh read listed none of the variants"
    pairs = zip(changes, variants, strict=True)
    numbers = [(v.available, c.observed) for c, v in pairs if isinstance(v, mapping.Variant)]
    stocked = sum(1 for _, before in numbers if before)
    if len(numbers) >= 2 and stocked >= 2 and all(available == 0 for available, _ in numbers):
        return f"the fresh read showed all {len(numbers)} variants at zero"
    return None


def _unusable(change: Change, variant: mapping.Variant | str | None, rules: TrustRules) -> str | None:
    """Why one variant's fresh read cannot carry a set, or None."""
    if variant is None:
        return "variant not in the fresh read"
    if isinstance(variant, str):
        return f"fresh read unusable: {variant}"
    if variant.always_in_stock:
        return "always in stock: left alone"
    if change.observed is not None:
        # Judged like the engine's reads, without orders: a drop to zero or past the configured
        # share since the engine read it is not set from; the next cycle reads and judges it.
        drop = suspicious_drop(variant.available, Prior(change.observed, change.observed), has_feed=False, rules=rules)
        if drop is not None:
            return f"fresh read {drop} since the engine's read: not confirmed"
    return None


def _outcome(change: Change, before: mapping.Variant, after: mapping.Variant | None) -> PushResult:
    """Confirmed (the operations answer is 2xx, atomic); the answer's available quantity is the
    read-back. A value other than the one set means something moved in the window: the next read
    books it as an external change, nothing here overwrites it."""
    meant = max(0, before.available + change.delta)
    detail, applied = "", None
    if meant != before.available + change.delta:
        # Never below zero: the set moved less than asked, and the ledger must know by how much.
        applied = meant - before.available
        detail = f"clamped at 0: only {before.available} available at the fresh read"
    if after is not None and after.available != meant:
        detail = f"read back {after.available}, set {meant}: booked as an external change next read"
    answer = after.available if after else None
    return PushResult(change, Outcome.CONFIRMED, detail, answer_quantity=answer, applied_delta=applied)


@dataclass
class _Cases:
    """What the products list last said of cases, and when."""

    by_variant: dict[str, int] = field(default_factory=dict)
    read_at: float | None = None
    loop: asyncio.AbstractEventLoop | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
