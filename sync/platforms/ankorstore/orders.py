"""Pure functions between Ankorstore's order payloads and domain values.

`GET /api/v1/orders` lists orders in cursor pages (`page[after]` = `meta.page.to`), with no
"updated since" filter and no documented sort order (its example runs oldest first by
`submittedAt`), so the feed reads it from both ends down to the previous poll's mark (see
`sync.platforms.feeds.EndsCursor`). With `include=orderItems.productVariant` each order item names
its variant, and the variant its SKU. A status change on an order in the middle of the list is not
seen by these reads: open orders are also read one at a time (`GET /api/v1/orders/{id}`,
`parse_status`, see `sync.ledger.rechecks`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync.platforms.ankorstore.mapping import AnkorstoreShapeError
from sync.platforms.base import OrderLine, OrderRecord, OrderState
from sync.platforms.values import is_int

STATES = {
    "ankor_confirmed": OrderState.OPEN,
    "brand_confirmed": OrderState.OPEN,
    # "Ankorstore needs to approve this rejection. If it does, the status will move to cancelled":
    # when the reservation is released, at the rejection or at the approval, is not said.
    "rejected": OrderState.RELEASING,
    "cancelled": OrderState.CANCELLED,
}
REJECTABLE = "ankor_confirmed"


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time from an attribute, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_orders(payload: Any) -> list[OrderRecord]:
    """The orders of one page, their lines resolved through `included` items and variants."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise AnkorstoreShapeError("ankorstore: orders answer has no `data` array")
    included: list[Any] = payload["included"] if isinstance(payload.get("included"), list) else []
    by_key = {(r.get("type"), r.get("id")): r for r in included if isinstance(r, dict)}
    found = []
    for resource in payload["data"]:
        order = _order(resource, by_key)
        if order is not None:
            found.append(order)
    return found


def _order(resource: Any, by_key: dict[tuple[Any, Any], dict[str, Any]]) -> OrderRecord | None:
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        return None
    attributes: dict[str, Any] = resource["attributes"] if isinstance(resource.get("attributes"), dict) else {}
    status = attributes.get("status")
    placed = parse_time(attributes.get("submittedAt")) or parse_time(attributes.get("createdAt"))
    if not isinstance(status, str) or placed is None:
        return None
    relationships: dict[str, Any] = resource["relationships"] if isinstance(resource.get("relationships"), dict) else {}
    items = (relationships.get("orderItems") or {}).get("data") or []
    lines = []
    for ref in items:
        item = by_key.get(("order-items", ref.get("id"))) if isinstance(ref, dict) else None
        line = _line(item, by_key) if item is not None else None
        if line is not None:
            lines.append(line)
    return OrderRecord(resource["id"], status, STATES.get(status, OrderState.FULFILLED), placed, tuple(lines))


def _line(item: dict[str, Any], by_key: dict[tuple[Any, Any], dict[str, Any]]) -> OrderLine | None:
    quantity = (item.get("attributes") or {}).get("quantity")
    variant_ref = ((item.get("relationships") or {}).get("productVariant") or {}).get("data")
    if not is_int(quantity) or not isinstance(variant_ref, dict):
        return None
    variant = by_key.get(("productVariant", variant_ref.get("id"))) or by_key.get(
        ("product-variants", variant_ref.get("id"))
    )
    sku = ((variant or {}).get("attributes") or {}).get("sku")
    if not isinstance(sku, str):
        return None
    return OrderLine(str(item["id"]), sku, quantity)


def parse_status(payload: Any) -> tuple[str, OrderState]:
    """The status of the order a single-order read returned."""
    data = payload.get("data") if isinstance(payload, dict) else None
    status = (data.get("attributes") or {}).get("status") if isinstance(data, dict) else None
    if not isinstance(status, str):
        raise AnkorstoreShapeError("ankorstore: order answer has no `data.attributes.status`")
    return status, STATES.get(status, OrderState.FULFILLED)


def reject_body() -> dict[str, Any]:
    """The transition that rejects an order as out of stock."""
    return {"data": {"type": "brand-rejects", "attributes": {"rejectType": "PRODUCT_OUT_OF_STOCK"}}}
