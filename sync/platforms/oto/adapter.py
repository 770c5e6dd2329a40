"""OTO adapter: stock read per location with `checkInventoryStock`, relative changes with
`updateStockQuantity` (`actionType: adjust`), one SKU per call, concurrently within the account's
limit. OTO offers no idempotency key: an adjust whose answer was lost is in doubt, never resent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sync.errors import FatalError, InDoubtError, NotFoundError, RejectedError, SyncError
from sync.platforms.base import (
    CancelResult,
    Change,
    OrderPage,
    OrderRecord,
    OrderState,
    Outcome,
    PushResult,
    ReadResult,
    SetRecorder,
)
from sync.platforms.batching import read_in_batches
from sync.platforms.feeds import HEAD, SWEEP, TAIL, EndsCursor, at_rest
from sync.platforms.http import HttpAdapter, TokenKeeper, cancel_outcome, json_body
from sync.platforms.oto import mapping, orders
from sync.platforms.oto.auth import OtoTokens
from sync.platforms.oto.settings import OtoSettings

STOCK = "/rest/v2/checkInventoryStock"
UPDATE = "/rest/v2/updateStockQuantity"
ORDERS = "/rest/v2/orders"
CANCEL = "/rest/v2/cancelOrder"
DETAILS = "/rest/v2/orderDetails"
ORDER_PAGE_SIZE = 100
# Every this often a poll first reads the whole window back to `lookback_minutes` (see read_orders);
# pushes in doubt waiting on the feed ask for one at once (the sooner, the fewer orders race them).
SWEEP_EVERY = timedelta(minutes=10)


class OtoAdapter(HttpAdapter[OtoSettings]):
    """One OTO account at one inventory location."""

    platform = "oto"
    has_order_feed = True
    picked_statuses = orders.PICKED  # open, and out of a read that shows sales at picking
    rechecks_orders = True  # the feed reads the list's ends: an order in the middle is read alone
    order_time_precision = None  # `orderDate` is the creator's, in no documented zone

    @property
    def sale_may_show_late(self) -> bool:
        """Unless the operator says otherwise, a sale may leave the read only at picking."""
        return self.settings.sale_may_show_late

    @staticmethod
    def token_auth(settings: OtoSettings, keeper: TokenKeeper | None) -> OtoTokens:
        """Access tokens traded for the refresh token, which OTO may rotate (`keeper` keeps it)."""
        return OtoTokens(settings.refresh_token.get_secret_value(), keeper)

    @staticmethod
    def auth_headers(settings: OtoSettings) -> dict[str, str]:
        """Only the content type: the bearer token comes from OtoTokens, call by call."""
        return {"Content-Type": "application/json", "Accept": "application/json"}

    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Read quantities on hand at our location, `batch_size` SKUs per call."""
        return await read_in_batches(codes, self.settings.effective_batch_size, self._read_batch)

    async def _read_batch(self, codes: list[str]) -> ReadResult:
        response = await self.http.request("GET", STOCK, params={"sku": ",".join(codes)}, write=False)
        payload = json_body(response, f"oto {self.settings.name}: GET {STOCK}")
        return mapping.parse_stock(payload, self.settings.location_code, set(codes))

    async def push(self, changes: Sequence[Change], *, before_set: SetRecorder | None = None) -> list[PushResult]:
        """One `adjust` per change, run concurrently (the account's concurrency bounds them)."""
        return list(await asyncio.gather(*(self._adjust(change) for change in changes)))

    async def _adjust(self, change: Change) -> PushResult:
        body = mapping.adjust_body(change, self.settings.location_code)
        try:
            response = await self.http.request("POST", UPDATE, json=body, write=True)
        except InDoubtError as err:
            return PushResult(change, Outcome.IN_DOUBT, err.message, error=err)
        except SyncError as err:
            return PushResult(change, Outcome.FAILED, err.message, error=err)
        try:
            payload = response.json()
        except ValueError:
            return PushResult(change, Outcome.IN_DOUBT, "HTTP 200 with an answer that is not JSON")
        problem = mapping.refused(payload)
        if problem is not None:  # success: false under HTTP 200: refused, not applied
            error = FatalError(f"oto {self.settings.name}: updateStockQuantity refused {change.code}: {problem}")
            return PushResult(change, Outcome.FAILED, error.message, error=error)
        if not isinstance(payload, dict) or payload.get("success") is not True:
            return PushResult(change, Outcome.IN_DOUBT, "HTTP 200 without `success: true`")
        return PushResult(change, Outcome.CONFIRMED)

    async def read_orders(self, cursor: str | None, now: datetime, since: datetime) -> OrderPage:
        """One page of the orders list, read from both ends (see `EndsCursor`): the head from page
        1 down to the mark, then the tail from the last page back to it; and every `SWEEP_EVERY`
        first the whole window back to `since`, since an order's `orderDate` is its creator's and
        may place a new order anywhere in a list sorted by it."""
        ends = EndsCursor.parse(cursor, since)
        if ends.sweep_due(now, SWEEP_EVERY):
            ends = ends.begin_sweep(now)
        if ends.phase == SWEEP:
            # `orderDate` is the creator's: a new order may sit anywhere in a list sorted by it.
            page = int(ends.position or 1)
            # The window as it was when the read began, on every page of it: recomputed per poll,
            # a date turning at midnight would drop its oldest day from the top of a list sorted
            # oldest first, and move orders past pages already read.
            began = datetime.fromisoformat(ends.swept) if ends.swept else now
            found, pages = await self._orders_page((since - (now - began)).date(), now, page)
            moved, more = ends.after_sweep([m for _, m in found], str(page + 1) if page < pages else None)
            return OrderPage([order for order, _ in found], moved.dump(), more)
        page = int(ends.position or 1) if ends.phase == HEAD else int(ends.position or 0)
        # Orders placed up to a day before the mark can still change; the list filters by date.
        first = (datetime.fromisoformat(ends.mark) - timedelta(days=1)).date()
        found, pages = await self._orders_page(first, now, max(page, 1))
        if ends.phase == TAIL and (page == 0 or page > pages):  # the last page, wherever it is now
            page = pages
            found, pages = await self._orders_page(first, now, page)
        times = [modified for _, modified in found]
        if ends.phase == HEAD:
            following = str(page + 1) if page < pages else None
            moved, more = ends.after_head(times, following, tail_from=str(pages))
        else:
            downwards = str(page - 1) if page > 1 and not ends.reaches_mark(times) else None
            moved, more = ends.after_tail(times, downwards)
        return OrderPage([order for order, _ in found], moved.dump(), more, _whole_window_read(moved, more))

    def poll_vouches(self, cursor: str | None, now: datetime) -> bool:
        """Only a poll that begins with a whole-window read: a new order may sit anywhere in the
        list (its `orderDate` is its creator's), so reading both ends vouches for nothing."""
        ends = EndsCursor.parse(cursor, now)
        starting_sweep = ends.phase == SWEEP and ends.position == "1" and ends.top is None
        return starting_sweep or (at_rest(cursor) and ends.sweep_due(now, SWEEP_EVERY))

    def vouching_cursor(self, cursor: str | None, now: datetime) -> str | None:
        """A whole-window read now, unless the poll is one already (or resumes one half-read)."""
        if not at_rest(cursor) or self.poll_vouches(cursor, now):
            return None
        return EndsCursor.parse(cursor, now).begin_sweep(now).dump()

    async def _orders_page(
        self, first: date, now: datetime, page: int
    ) -> tuple[list[tuple[OrderRecord, datetime]], int]:
        params = {
            "minDate": first.isoformat(),
            "maxDate": (now + timedelta(days=1)).date().isoformat(),
            "perPage": ORDER_PAGE_SIZE,
            "page": page,
        }
        response = await self.http.request("GET", ORDERS, params=params, write=False)
        return orders.parse_orders(
            json_body(response, f"oto {self.settings.name}: GET {ORDERS}"), self.settings.location_code
        )

    async def read_order_status(self, order_id: str) -> tuple[str, OrderState] | None:
        """`orderDetails` by `orderId`: the order's status now (None: OTO knows it no more)."""
        try:
            response = await self.http.request("GET", DETAILS, params={"orderId": order_id}, write=False)
        except NotFoundError:
            return None
        return orders.parse_status(json_body(response, f"oto {self.settings.name}: GET {DETAILS}"))

    async def cancel_order(self, order: OrderRecord) -> CancelResult:
        """`cancelOrder` by `orderId`."""

        async def call() -> str | None:
            try:
                response = await self.http.request("POST", CANCEL, json={"orderId": order.order_id}, write=True)
            except RejectedError as err:
                return err.message  # a 400 with OTO's reason: nothing was cancelled
            try:
                return orders.cancel_refusal(response.json())
            except (ValueError, mapping.OtoShapeError) as err:
                raise InDoubtError(f"oto {self.settings.name}: cancel answer unreadable: {err}") from err

        return await cancel_outcome(call)


def _whole_window_read(ends: EndsCursor, more: bool) -> datetime | None:
    """At rest after a whole-window read (in one poll or several): every order placed before it
    began has been seen."""
    return datetime.fromisoformat(ends.swept) if not more and ends.swept is not None else None
