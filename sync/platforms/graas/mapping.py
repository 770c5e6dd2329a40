"""Pure functions between Graas `quantityDiffList` payloads and domain values.

Graas documents no endpoint that reads a quantity. Both bulk quantity endpoints answer with
`updatedQuantity` per warehouse, so a `quantityDiffList` call whose every `quantityDiff` is 0 reads
quantities without changing them. That is an assumption about the real service, and it lives only
in `read_body` and the adapter's `_read_batch`: replace those two if Graas ever publishes a read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sync.errors import BadAnswerError, ReadProblem
from sync.platforms.base import Change, Observed, ReadResult
from sync.platforms.values import is_int, quantity_or_reason

NOT_FOUND = 404
# quantityDiff has no documented floor: a decrease racing a sale can take a listing below zero, so a
# negative quantity is a plausible reading here, not a bad value.
NEGATIVE_OK = True


class GraasShapeError(BadAnswerError):
    """A Graas answer that does not follow the document's shape."""


@dataclass(frozen=True)
class SkuAnswer:
    """One `result[]` entry: success (with our warehouse's quantity when given) or failure."""

    sku: str
    ok: bool
    http_code: int | None
    quantity: int | None
    message: str
    bad: bool = False  # answered with a quantity that cannot be believed


def diff_body(diffs: Sequence[tuple[str, int]], warehouse_id: str) -> dict[str, Any]:
    """The body of `PUT /v1/productMaster/quantityDiffList` for (sellerSKU, quantityDiff) pairs."""
    return {
        "data": [
            {"sellerSKU": sku, "quantityDiffs": [{"quantityDiff": diff, "warehouseID": warehouse_id}]}
            for sku, diff in diffs
        ]
    }


def read_body(codes: Sequence[str], warehouse_id: str) -> dict[str, Any]:
    """A zero-diff body: reads quantities without changing them."""
    return diff_body([(code, 0) for code in codes], warehouse_id)


def push_body(changes: Sequence[Change], warehouse_id: str) -> dict[str, Any]:
    """The body that applies relative changes."""
    return diff_body([(c.code, c.delta) for c in changes], warehouse_id)


def parse_answers(payload: Any, warehouse_id: str) -> dict[str, SkuAnswer]:
    """sellerSKU -> its answer; raises GraasShapeError when `result` is missing or holds one SKU
    twice with different answers."""
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
        raise GraasShapeError("graas: answer has no `result` array")
    answers: dict[str, SkuAnswer] = {}
    for entry in payload["result"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("sellerSKU"), str):
            continue
        answer = _answer(entry, warehouse_id)
        if answers.setdefault(answer.sku, answer) != answer:
            raise GraasShapeError(f"graas: {answer.sku} answered twice with different results", ReadProblem.DUPLICATE)
    return answers


def _answer(entry: dict[str, Any], warehouse_id: str) -> SkuAnswer:
    sku = entry["sellerSKU"]
    code = entry.get("httpCode")
    http_code = code if is_int(code) else None
    message = str(entry.get("errorMessage") or entry.get("status") or "")
    failed = entry.get("status") == "failure" or (http_code is not None and http_code >= 300)
    if failed:
        return SkuAnswer(sku, False, http_code, None, message or "failure")
    rows = entry.get("updatedQuantity")
    values = [
        row.get("quantity")
        for row in (rows if isinstance(rows, list) else [])
        if isinstance(row, dict) and row.get("warehouseID") == warehouse_id
    ]
    if not values:
        return SkuAnswer(sku, True, http_code, None, f"no quantity for warehouse {warehouse_id}")
    quantity = quantity_or_reason(values[0], negative_ok=NEGATIVE_OK)
    if len(set(map(repr, values))) > 1:
        quantity = f"{len(values)} different quantities for warehouse {warehouse_id}"
    if isinstance(quantity, str):
        # Applied (or read), but the number cannot be believed: it is not an observation.
        return SkuAnswer(sku, True, http_code, None, quantity, bad=True)
    return SkuAnswer(sku, True, http_code, quantity, message)


def to_read(answers: dict[str, SkuAnswer], wanted: Collection[str]) -> ReadResult:
    """A ReadResult for the wanted codes; a 404 means not listed there (unobserved, not zero)."""
    result = ReadResult()
    for code in wanted:
        answer = answers.get(code)
        if answer is None or answer.http_code == NOT_FOUND:
            continue
        if answer.ok and answer.quantity is not None:
            result.observed[code] = Observed(code, answer.quantity, code)
        elif answer.bad:
            result.bad[code] = answer.message
        else:
            result.skipped[code] = answer.message
    return result
