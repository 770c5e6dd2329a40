"""Pure functions between Graas order payloads (`GET /v1/orders`, `PUT /v1/orders`) and domain
values. Order items name the product by `SKU`, which we take to be the seller SKU the stock
endpoints use (`sellerSKU`), or, where an item has none, by `customSKU`. An item may carry its own
`orderStatus` (Lazada): an item cancelled while its order goes on gives its units back alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync.platforms.base import OrderLine, OrderRecord, OrderState
from sync.platforms.graas.mapping import GraasShapeError
from sync.platforms.values import is_int

STATES = {
    "INITIATED": OrderState.OPEN,
    "ACCEPTED": OrderState.OPEN,
    "PROCESSING": OrderState.OPEN,
    "CANCEL_PENDING": OrderState.OPEN,
    "CANCEL_REQUESTED": OrderState.OPEN,
    "DISPATCHED": OrderState.FULFILLED,
    "DELIVERED": OrderState.FULFILLED,
    "DELIVERY_FAILED": OrderState.FULFILLED,
    "RETURN_REQUESTED": OrderState.FULFILLED,
    "RETURN_SHIPPED": OrderState.FULFILLED,
    "RETURN_REJECTED": OrderState.FULFILLED,
    "CANCELLED": OrderState.CANCELLED,
    "RETURNED": OrderState.RETURNED,
}


def parse_orders(body: Any) -> tuple[list[OrderRecord], int]:
    """The orders of one page and the number of pages; raises GraasShapeError on another shape."""
    if not isinstance(body, dict) or not isinstance(body.get("history"), list):
        raise GraasShapeError("graas: GET /v1/orders answer has no history[]")
    pages = body.get("numberOfPages")
    if not is_int(pages):
        raise GraasShapeError("graas: GET /v1/orders answer has no numberOfPages")
    return [order for item in body["history"] if (order := _order(item)) is not None], pages


def _order(item: Any) -> OrderRecord | None:
    if not isinstance(item, dict) or not isinstance(item.get("orderID"), str):
        return None
    status = item.get("orderStatus")
    # `timeOrderCreated`: when the marketplace created it; `timeCreated`: when it reached Graas
    # (the document's examples are minutes apart). Graas's stock moves in between, at the latest
    # when the order reached it.
    times = [t for t in (item.get("timeOrderCreated"), item.get("timeCreated")) if is_int(t)]
    if status not in STATES or not times:
        return None
    lines = tuple(
        OrderLine(str(line["orderItemID"]), code, line["quantity"], _item_state(line, status))
        for line in item.get("orderItems") or []
        if isinstance(line, dict)
        and (code := _code(line)) is not None
        and is_int(line.get("quantity"))
        and line.get("orderItemID") is not None
    )
    site: dict[str, Any] = item["site"] if isinstance(item.get("site"), dict) else {}
    handle = {"site_name": str(site.get("name", "")), "site_nick_name_id": str(site.get("nickNameID", ""))}
    placed, reached = (datetime.fromtimestamp(t, UTC) for t in (min(times), max(times)))
    return OrderRecord(
        item["orderID"], status, STATES[status], placed, lines, handle, reached if reached > placed else None
    )


def _item_state(line: dict[str, Any], order_status: str) -> OrderState | None:
    """The item's own state where it gives a status ("partial order status for the item", Lazada
    only) other than its order's: one item cancelled or returned while the order goes on."""
    status = line.get("orderStatus")
    if not isinstance(status, str) or status == order_status or status not in STATES:
        return None
    return STATES[status]


def _code(line: dict[str, Any]) -> str | None:
    """The item's SKU: `SKU`, or `customSKU` where the item has no `SKU` (as in the document's
    third example)."""
    for key in ("SKU", "customSKU"):
        if isinstance(line.get(key), str) and line[key]:
            return str(line[key])
    return None


def cancel_body(order: OrderRecord) -> dict[str, Any]:
    """The body of `PUT /v1/orders` cancelling one order as out of stock."""
    return {
        "data": [
            {
                "orderID": order.order_id,
                "orderStatus": "CANCELLED",
                "site": {
                    "name": order.handle.get("site_name", ""),
                    "nickNameID": order.handle.get("site_nick_name_id", ""),
                },
                "needToUpdateOrder": True,
                "cancelDetails": {"cancelReason": "OUT_OF_STOCK"},
            }
        ]
    }


def cancel_refusal(body: Any, order_id: str) -> str | None:
    """None when Graas accepted the cancel (httpCode 2xx), else its reason; raises
    GraasShapeError when the answer says neither."""
    results = body.get("result") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise GraasShapeError("graas: PUT /v1/orders answer has no result[]")
    for result in results:
        response = result.get("response") if isinstance(result, dict) else None
        if isinstance(response, dict) and str(response.get("orderID")) == order_id and is_int(result.get("httpCode")):
            code = result["httpCode"]
            return None if 200 <= code < 300 else f"httpCode {code}: {result.get('errorMessage', '')}".strip()
    raise GraasShapeError(f"graas: PUT /v1/orders answer does not mention order {order_id}")
