"""Graas adapter: zero-diff reads and relative changes, both through `quantityDiffList`."""

from __future__ import annotations

from collections.abc import Sequence

from sync.platforms.base import Change, Outcome, PushResult, ReadResult
from sync.platforms.batching import push_in_batches, read_in_batches
from sync.platforms.graas import mapping
from sync.platforms.graas.settings import GraasSettings
from sync.platforms.http import HttpAdapter, json_body

DIFF_LIST = "/v1/productMaster/quantityDiffList"


class GraasAdapter(HttpAdapter[GraasSettings]):
    """One Graas seller account at one warehouse."""

    platform = "graas"

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

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
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
