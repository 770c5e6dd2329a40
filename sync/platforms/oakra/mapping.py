"""Pure functions between Oakra payloads and domain values."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sync.errors import BadAnswerError, ReadProblem
from sync.platforms.base import Change, Observed, ReadResult
from sync.platforms.values import is_int, quantity_or_reason

# `quantity_change` has no documented floor: a deduction racing a sale can take a record below
# zero, so a negative quantity is a plausible reading here, not a bad value.
NEGATIVE_OK = True


class OakraShapeError(BadAnswerError):
    """An Oakra answer that does not follow the document's shape: a failed call."""


def stock_records(payload: Any) -> list[Any]:
    """The records of a stock-record answer: a bare array (the example) or `stock_records` (the table)."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("stock_records"), list):
        return payload["stock_records"]
    raise OakraShapeError("oakra: answer is neither an array nor an object with a `stock_records` array")


def parse_read(payload: Any, location_id: str, wanted: Collection[str]) -> ReadResult:
    """Observations for the wanted SKUs at our location; a record with a bad value is skipped with
    a reason; an answer holding one SKU twice with different numbers is refused whole."""
    result = ReadResult()
    records: dict[str, tuple[object, object]] = {}
    for record in stock_records(payload):
        if not isinstance(record, dict):
            continue
        sku = record.get("sku")
        if not isinstance(sku, str) or sku not in wanted:
            continue
        if record.get("location_id", location_id) != location_id:
            continue  # the location filter is optional on Oakra's side: ignore other locations
        found = (record.get("quantity"), record.get("id"))
        if records.setdefault(sku, found) != found:
            raise OakraShapeError(
                f"oakra: {sku} appears twice at location {location_id} with different records",
                ReadProblem.DUPLICATE,
            )
    for sku, (value, record_id) in records.items():
        quantity = quantity_or_reason(value, negative_ok=NEGATIVE_OK)
        if isinstance(quantity, str):
            result.bad[sku] = quantity
        elif not is_int(record_id):
            result.bad[sku] = f"stock record id {record_id!r} is not an integer"
        else:
            result.observed[sku] = Observed(sku, quantity, str(record_id))
    return result


def change_body(changes: Sequence[Change]) -> dict[str, Any]:
    """The JSON body of `stock/stock-records/change/`."""
    return {"stock_records": [{"id": int(c.ref), "quantity_change": c.delta} for c in changes]}


def answered_quantities(payload: Any) -> dict[str, int]:
    """Stock record id -> quantity from a change answer; empty when the answer has no usable shape."""
    try:
        records = stock_records(payload)
    except OakraShapeError:
        return {}
    found: dict[str, int] = {}
    for record in records:
        if not isinstance(record, dict) or not is_int(record.get("id")):
            continue
        quantity = quantity_or_reason(record.get("quantity"), negative_ok=NEGATIVE_OK)
        if isinstance(quantity, int):
            found[str(record["id"])] = quantity
    return found
