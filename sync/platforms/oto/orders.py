"""Pure functions between OTO's `orders` list and `cancelOrder` payloads and domain values.

The list takes `minDate`/`maxDate` (`yyyy-mm-dd`, required per the error it documents), `perPage`
(at most 100) and `page`, and says nothing of its sort order: we read it from both ends down to
the previous poll's mark (see `sync.platforms.feeds.EndsCursor`), by last-change time. Dates are
`YYYY-MM-DD HH:MM:SS`, taken as UTC. An order whose `pickupLocationCode` is another location's
does not touch our listing and is left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync.platforms.base import OrderLine, OrderRecord, OrderState
from sync.platforms.oto.mapping import OtoShapeError, quantity, refused

# Before pickup: the order management stage (the document's list of statuses names `new`,
# `missingData`, `paymentConfirmed` and `waitingAddressConfirmation`) and the warehouse's.
OPEN = frozenset(
    {
        "new",
        "missingData",
        "paymentConfirmed",
        "waitingAddressConfirmation",
        "assignedToWarehouse",
        "searchingDriver",
        "pendingPickup",
        "onHold",
    }
)
# Open, and picked: the document's example order is picked while `assignedToWarehouse`, then waits
# for a courier in `searchingDriver` (days, in the example); `pendingPickup` comes after that.
PICKED = frozenset({"searchingDriver", "pendingPickup"})
CANCELLED = frozenset({"canceled", "cancelled"})
RETURNED = frozenset({"returned"})


def state_of(status: str) -> OrderState:
    """What an OTO status means for stock; anything past picking counts as fulfilled."""
    if status in OPEN:
        return OrderState.OPEN
    if status in CANCELLED:
        return OrderState.CANCELLED
    if status in RETURNED:
        return OrderState.RETURNED
    return OrderState.FULFILLED


def parse_time(value: Any) -> datetime | None:
    """An OTO date-time, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_orders(body: Any, location_code: str) -> tuple[list[tuple[OrderRecord, datetime]], int]:
    """The orders of one page with their last-change times, and the number of pages."""
    problem = refused(body)
    if problem is not None:
        raise OtoShapeError(f"oto: orders refused: {problem}")
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        raise OtoShapeError("oto: orders answer has no orders[]")
    pages = quantity(body.get("totalPage"))
    if pages is None:
        raise OtoShapeError("oto: orders answer has no totalPage")
    found = []
    for item in body["orders"]:
        parsed = _order(item, location_code)
        if parsed is not None:
            found.append(parsed)
    return found, pages


def _order(item: Any, location_code: str) -> tuple[OrderRecord, datetime] | None:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("orderId"), str)
        or not isinstance(item.get("status"), str)
    ):
        return None
    placed = parse_time(item.get("orderDate"))
    modified = parse_time(item.get("modifiedDate")) or placed
    if placed is None or modified is None:
        return None
    where = item.get("pickupLocationCode")
    lines: tuple[OrderLine, ...] = ()
    if not where or where == location_code:
        lines = tuple(
            OrderLine(f"{item['orderId']}:{index}", line["sku"], qty)
            for index, line in enumerate(item.get("items") or [])
            if isinstance(line, dict)
            and isinstance(line.get("sku"), str)
            and (qty := quantity(line.get("quantity"))) is not None
            and qty > 0
        )
    status = item["status"]
    return OrderRecord(item["orderId"], status, state_of(status), placed, lines), modified


def parse_status(body: Any) -> tuple[str, OrderState]:
    """The status an `orderDetails` answer gives."""
    problem = refused(body)
    if problem is not None:
        raise OtoShapeError(f"oto: orderDetails refused: {problem}")
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, str):
        raise OtoShapeError("oto: orderDetails answer has no status")
    return status, state_of(status)


def cancel_refusal(body: Any) -> str | None:
    """None when OTO confirmed the cancel, else its reason (OTO refuses some under HTTP 200)."""
    problem = refused(body)
    if problem is not None:
        return problem
    if isinstance(body, dict) and body.get("success") is True:
        return None
    raise OtoShapeError("oto: cancelOrder answer has no success flag")
