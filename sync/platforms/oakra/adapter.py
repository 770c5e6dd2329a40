"""Oakra adapter: batched reads by repeated `sku` parameters, batched `change/` arrays, and
`sales/cancel/`. Oakra documents no list of sales, so it has no order feed: its sales reach the
pool through stock reads alone, and stocksync never learns a sale id to cancel on its own."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from sync.errors import InDoubtError, RejectedError, SkippableError
from sync.platforms.base import CancelResult, Change, OrderRecord, Outcome, PushResult, ReadResult, SetRecorder
from sync.platforms.batching import chunked_by_length, push_in_batches, read_in_batches
from sync.platforms.http import HttpAdapter, cancel_outcome, json_body
from sync.platforms.oakra import mapping
from sync.platforms.oakra.settings import OakraSettings

RECORDS = "/stock/stock-records/"
CHANGE = "/stock/stock-records/change/"
CANCEL = "/sales/cancel/"
# Characters of `&sku=...` per read: with the path and location, URLs stay under 4 KiB, which
# every proxy and server accepts (8 KiB is a common limit, 4 KiB the safe one).
QUERY_BUDGET = 3500


class OakraAdapter(HttpAdapter[OakraSettings]):
    """One Oakra account at one location."""

    platform = "oakra"

    @staticmethod
    def auth_headers(settings: OakraSettings) -> dict[str, str]:
        """Bearer app key and the API version, on every request."""
        key = settings.app_key.get_secret_value()
        return {"Authorization": f"Bearer {key}", "X-OAKRA-API-VERSION": "v1", "Accept": "application/json"}

    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Read stock records at our location, `batch_size` SKUs per call and no more than
        QUERY_BUDGET characters of query string (100 SKUs of 80 characters make an 8.5 kB URL)."""
        size = self.settings.effective_batch_size
        batches = chunked_by_length(codes, size, QUERY_BUDGET, lambda code: len(quote(code, safe="")) + 5)
        return await read_in_batches(codes, size, self._read_batch, batches)

    async def _read_batch(self, codes: list[str]) -> ReadResult:
        params = [("location_id", self.settings.location_id)] + [("sku", code) for code in codes]
        response = await self.http.request("GET", RECORDS, params=params, write=False)
        payload = json_body(response, f"oakra {self.settings.name}: GET {RECORDS}")
        return mapping.parse_read(payload, self.settings.location_id, set(codes))

    async def push(self, changes: Sequence[Change], *, before_set: SetRecorder | None = None) -> list[PushResult]:
        """Send relative changes through `change/`, `batch_size` records per call."""
        sendable = [c for c in changes if c.ref.isdigit()]
        sent = iter(await push_in_batches(sendable, self.settings.effective_batch_size, self._push_batch))
        # A change without a stock record id cannot be sent; it fails alone.
        return [next(sent) if c.ref.isdigit() else _unsendable(c) for c in changes]

    async def _push_batch(self, changes: list[Change]) -> list[PushResult]:
        response = await self.http.request("POST", CHANGE, json=mapping.change_body(changes), write=True)
        # A 2xx applies the whole array; the answer's quantities are kept only as evidence.
        try:
            quantities = mapping.answered_quantities(response.json())
        except ValueError:
            quantities = {}
        return [PushResult(c, Outcome.CONFIRMED, answer_quantity=quantities.get(c.ref)) for c in changes]

    async def cancel_order(self, order: OrderRecord) -> CancelResult:
        """`sales/cancel/` with `out_of_stock`; Oakra cancels the sale on its channel too."""

        async def call() -> str | None:
            body = {"sale_id": order.order_id, "cancel_reason": "out_of_stock"}
            try:
                response = await self.http.request("POST", CANCEL, json=body, write=True)
            except RejectedError as err:
                return err.message
            try:
                answer = response.json()
            except ValueError as err:
                raise InDoubtError(f"oakra {self.settings.name}: cancel answer is not JSON") from err
            status = answer.get("status") if isinstance(answer, dict) else None
            return None if status in ("canceled", "cancelled") else f"sale status after cancel: {status!r}"

        return await cancel_outcome(call)


def _unsendable(change: Change) -> PushResult:
    error = SkippableError(f"oakra: no stock record id for {change.code}")
    return PushResult(change, Outcome.FAILED, error.message, error=error)
