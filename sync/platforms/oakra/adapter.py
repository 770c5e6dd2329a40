"""Oakra adapter: batched reads by repeated `sku` parameters, batched `change/` arrays."""

from __future__ import annotations

from collections.abc import Sequence

from sync.errors import SkippableError
from sync.platforms.base import Change, Outcome, PushResult, ReadResult
from sync.platforms.batching import push_in_batches, read_in_batches
from sync.platforms.http import HttpAdapter, json_body
from sync.platforms.oakra import mapping
from sync.platforms.oakra.settings import OakraSettings

RECORDS = "/stock/stock-records/"
CHANGE = "/stock/stock-records/change/"


class OakraAdapter(HttpAdapter[OakraSettings]):
    """One Oakra account at one location."""

    platform = "oakra"

    @staticmethod
    def auth_headers(settings: OakraSettings) -> dict[str, str]:
        """Bearer app key and the API version, on every request."""
        key = settings.app_key.get_secret_value()
        return {"Authorization": f"Bearer {key}", "X-OAKRA-API-VERSION": "v1", "Accept": "application/json"}

    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Read stock records at our location, `batch_size` SKUs per call."""
        return await read_in_batches(codes, self.settings.effective_batch_size, self._read_batch)

    async def _read_batch(self, codes: list[str]) -> ReadResult:
        params = [("location_id", self.settings.location_id)] + [("sku", code) for code in codes]
        response = await self.http.request("GET", RECORDS, params=params, write=False)
        payload = json_body(response, f"oakra {self.settings.name}: GET {RECORDS}")
        return mapping.parse_read(payload, self.settings.location_id, set(codes))

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
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


def _unsendable(change: Change) -> PushResult:
    error = SkippableError(f"oakra: no stock record id for {change.code}")
    return PushResult(change, Outcome.FAILED, error.message, error=error)
