"""Pure functions between OTO payloads and domain values."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sync.errors import BadAnswerError, ReadProblem, RejectedError
from sync.platforms.base import Change, Observed, ReadResult
from sync.platforms.values import quantity_or_reason

# `adjust` has no documented floor: a deduction racing a sale can take a SKU below zero, so a
# negative quantity on hand is a plausible reading here, not a bad value.
NEGATIVE_OK = True


class OtoShapeError(BadAnswerError):
    """An OTO answer that does not follow the document's shape."""


def refused(payload: Any) -> str | None:
    """The error an answer carries (`success: false`, even under HTTP 200), or None."""
    if isinstance(payload, dict) and payload.get("success") is False:
        code = payload.get("otoErrorCode") or "no code"
        return f"{code}: {payload.get('otoErrorMessage') or payload.get('message') or 'refused'}"
    return None


def quantity(value: Any) -> int | None:
    """`qty`/`expires_in` as an integer: a JSON integer or a string of digits, in range; else None."""
    number = quantity_or_reason(value, digit_strings=True, negative_ok=True)
    return number if isinstance(number, int) else None


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
        values = {repr(r.get("quantityOnHand")) for r in here}
        if len(values) > 1:
            raise OtoShapeError(
                f"oto: {sku} has {len(here)} different rows for location {location_code}", ReadProblem.DUPLICATE
            )
        on_hand = quantity_or_reason(here[0].get("quantityOnHand"), digit_strings=True, negative_ok=NEGATIVE_OK)
        if isinstance(on_hand, str):
            result.bad[sku] = f"quantityOnHand: {on_hand}"
        else:
            result.observed[sku] = Observed(sku, on_hand, sku)
    return result


def adjust_body(change: Change, location_code: str) -> dict[str, Any]:
    """The body of `updateStockQuantity` for a relative change (qty sent as an integer)."""
    return {"actionType": "adjust", "locationCode": location_code, "sku": change.code, "qty": change.delta}
