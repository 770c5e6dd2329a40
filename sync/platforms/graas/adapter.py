"""Graas adapter: zero-diff reads and relative changes, both through `quantityDiffList`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sync.errors import InDoubtError
from sync.platforms.base import (
    CancelResult,
    Change,
    OrderPage,
    OrderRecord,
    Outcome,
    PushResult,
    ReadResult,
    SetRecorder,
)
from sync.platforms.batching import push_in_batches, read_in_batches
from sync.platforms.feeds import WindowCursor
from sync.platforms.graas import mapping, orders
from sync.platforms.graas.settings import GraasSettings
from sync.platforms.http import HttpAdapter, cancel_outcome, json_body

DIFF_LIST = "/v1/productMaster/quantityDiffList"
ORDERS = "/v1/orders"
ORDER_PAGE_SIZE = 200


class GraasAdapter(HttpAdapter[GraasSettings]):
    """One Graas seller account at one warehouse."""

    platform = "graas"
    has_order_feed = True
    order_time_precision = 1.0  # whole seconds

    @property
    def sale_may_show_late(self) -> bool:
        """Unless the operator says otherwise, a sale may leave the read only at picking."""
        return self.settings.sale_may_show_late

    @staticmethod
    def auth_headers(settings: GraasSettings) -> dict[str, str]:
        """The seller's account number and the developer app key."""
        key = settings.app_key.get_secret_value()
        return {"accountNumber": settings.account_number, "appKey": key, "Content-Type": "application/json"}

    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Read quantities with zero diffs, `batch_size` SKUs per call."""
        return await read_in_batches(codes, self.settings.effective_batch_size, self._read_batch)

    async def _read_batch(self, codes: list[str]) -> ReadResult:
        body = mapping.read_body(codes, self.settings.warehouse_id)
        # A zero diff changes nothing, so it is safe to retry like any read.
        response = await self.http.request("PUT", DIFF_LIST, json=body, write=False)
        where = f"graas {self.settings.name}: PUT {DIFF_LIST}"
        answers = mapping.parse_answers(json_body(response, where), self.settings.warehouse_id)
        return mapping.to_read(answers, codes)

    async def push(self, changes: Sequence[Change], *, before_set: SetRecorder | None = None) -> list[PushResult]:
        """Send relative changes; each SKU succeeds or fails on its own."""
        return await push_in_batches(changes, self.settings.effective_batch_size, self._push_batch)

    async def _push_batch(self, changes: list[Change]) -> list[PushResult]:
        body = mapping.push_body(changes, self.settings.warehouse_id)
        response = await self.http.request("PUT", DIFF_LIST, json=body, write=True)
        try:
            answers = mapping.parse_answers(response.json(), self.settings.warehouse_id)
        except (ValueError, mapping.GraasShapeError):
            # HTTP 200 but no per-SKU verdict: each SKU may or may not have been applied.
            return [PushResult(c, Outcome.IN_DOUBT, "answer without a per-SKU result") for c in changes]
        return [self._result(change, answers.get(change.code)) for change in changes]

    @staticmethod
    def _result(change: Change, answer: mapping.SkuAnswer | None) -> PushResult:
        if answer is None:
            return PushResult(change, Outcome.IN_DOUBT, "SKU missing from the answer")
        if not answer.ok:
            # Graas reports per SKU: a failure here was not applied, the rest of the batch was.
            return PushResult(change, Outcome.FAILED, f"httpCode {answer.http_code}: {answer.message}")
        return PushResult(change, Outcome.CONFIRMED, answer_quantity=answer.quantity)

    async def read_orders(self, cursor: str | None, now: datetime, since: datetime) -> OrderPage:
        """One page of the orders updated in the cursor's time window."""
        window = WindowCursor.parse(cursor, since)
        before = window.before if window.before is not None else int(now.timestamp())
        params = {
            "updatedAfter": window.after,
            "updatedBefore": before,
            "pageNumber": window.page_to_read,
            "pageSize": ORDER_PAGE_SIZE,
        }
        response = await self.http.request("GET", ORDERS, params=params, write=False)
        found, pages = orders.parse_orders(json_body(response, f"graas {self.settings.name}: GET {ORDERS}"))
        after, more = window.after_page(before, pages)
        return OrderPage(found, after.dump(), more)

    async def cancel_order(self, order: OrderRecord) -> CancelResult:
        """`PUT /v1/orders` with `CANCELLED` and `OUT_OF_STOCK`."""

        async def call() -> str | None:
            response = await self.http.request("PUT", ORDERS, json=orders.cancel_body(order), write=True)
            try:
                return orders.cancel_refusal(response.json(), order.order_id)
            except (ValueError, mapping.GraasShapeError) as err:
                raise InDoubtError(f"graas {self.settings.name}: cancel answer unreadable: {err}") from err

        return await cancel_outcome(call)
