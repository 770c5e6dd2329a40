"""Pure functions between OTO payloads and domain values."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sync.errors import RejectedError, RetriableError
from sync.platforms.base import Change, Observed, ReadResult
from sync.platforms.http import is_int


class OtoShapeError(RetriableError):
    """An OTO answer that does not follow the document's shape."""


def refused(payload: Any) -> str | None:
    """The error an answer carries (`success: false`, even under HTTP 200), or None."""
    if isinstance(payload, dict) and payload.get("success") is False:
        code = payload.get("otoErrorCode") or "no code"
        return f"{code}: {payload.get('otoErrorMessage') or payload.get('message') or 'refused'}"
    return None


def quantity(value: Any) -> int | None:
    """`qty`/`quantityOnHand` as an integer: a JSON integer or a string of digits; else None."""
    if is_int(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def parse_stock(payload: Any, location_code: str, wanted: Collection[str]) -> ReadResult:
    """Observations at our location from a checkInventoryStock answer. Rows without a
    `pickupLocationCode` belong to no location we keep and are ignored."""
    problem = refused(payload)
    if problem is not None:  # under HTTP 200 too; a batch split finds the SKU it objects to
        raise RejectedError(f"oto: checkInventoryStock refused: {problem}")
    if not isinstance(payload, dict) or not isinstance(payload.get("stock"), dict):
        raise OtoShapeError("oto: answer has no `stock` object")
    result = ReadResult()
    for sku, rows in payload["stock"].items():
        if sku not in wanted or not isinstance(rows, list):
            continue
        here = [r for r in rows if isinstance(r, dict) and r.get("pickupLocationCode") == location_code]
        if not here:
            continue  # not stocked at our location: unobserved
        if len(here) > 1:
            result.skipped[sku] = f"{len(here)} rows for location {location_code}"
            continue
        on_hand = quantity(here[0].get("quantityOnHand"))
        if on_hand is None:
            result.skipped[sku] = f"quantityOnHand {here[0].get('quantityOnHand')!r} is not an integer"
        else:
            result.observed[sku] = Observed(sku, on_hand, sku)
    return result


def adjust_body(change: Change, location_code: str) -> dict[str, Any]:
    """The body of `updateStockQuantity` for a relative change (qty sent as an integer)."""
    return {"actionType": "adjust", "locationCode": location_code, "sku": change.code, "qty": change.delta}
