"""An OTO emulator following `platform-docs/oto.txt` and the third-party OpenAPI file: refresh
tokens for short-lived bearer tokens (`expires_in` as a string), stock per SKU and location read
with `checkInventoryStock`, `updateStockQuantity` with `adjust` or `set`, one SKU per call, the
`orders` list (`minDate`/`maxDate` required, `perPage` at most 100, sorted as its `silences` say)
and `cancelOrder`."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sync.emulation.bad_reads import ReadShape, Slot, corrupt
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.orders import EmuOrder
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.platforms.oto.mapping import quantity
from sync.platforms.values import is_int

REFRESH = "/rest/v2/refreshToken"
STOCK = "/rest/v2/checkInventoryStock"
UPDATE = "/rest/v2/updateStockQuantity"
ORDERS = "/rest/v2/orders"
CANCEL = "/rest/v2/cancelOrder"
DETAILS = "/rest/v2/orderDetails"
ROUTES = (REFRESH, STOCK, UPDATE, ORDERS, DETAILS, CANCEL)


def _stamp(epoch: float) -> str:
    """OTO's date format: `YYYY-MM-DD HH:MM:SS` (UTC here)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _error(status: int, code: str, message: str) -> EmuResponse:
    return EmuResponse(status, {"success": False, "otoErrorCode": code, "otoErrorMessage": message})


class OtoEmulator(EmulatedPlatform):
    """One OTO account with inventory at one or more locations."""

    auth_paths = frozenset({REFRESH})
    new_status = "new"
    cancelled_status = "canceled"
    cancellable = frozenset({"new", "assignedToWarehouse"})
    picked_status = "searchingDriver"  # the document's example: picked, then waiting for a courier
    sale_reading_unsaid = True  # `quantityOnHand`: "the actual available stock at the location"

    def order_id(self, seq: int) -> str:
        """OTO order ids as the examples spell them."""
        return f"OID-{seq}"

    def __init__(
        self,
        refresh_token: str,
        location_code: str = "DMW",
        *,
        faults: FaultPlan | None = None,
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(faults)
        self.refresh_token = refresh_token
        self.location_code = location_code
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.tokens: dict[str, float] = {}  # access token -> expiry
        self.stock: dict[str, dict[str, int]] = {}  # sku -> location -> quantity on hand
        self.refusals_in_200 = 0  # the next N updates answer success: false under HTTP 200
        self.token_requests = 0

    # --- state primitives -------------------------------------------------------------------

    def quantity(self, code: str) -> int | None:
        """Quantity on hand at the default location."""
        return self.stock.get(code, {}).get(self.location_code)

    def set_quantity(self, code: str, quantity: int, location_code: str | None = None) -> None:
        """Create or overwrite the SKU's stock at a location."""
        with self.lock:
            self.stock.setdefault(code, {})[location_code or self.location_code] = quantity

    def codes(self) -> list[str]:
        """SKUs stocked at the default location."""
        return [sku for sku, where in self.stock.items() if self.location_code in where]

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (as an hour passing would)."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    # --- HTTP -------------------------------------------------------------------------------

    def changes_stock(self, request: EmuRequest) -> bool:
        """updateStockQuantity changes stock, and so does a cancelled order."""
        return request.path in (UPDATE, CANCEL)

    def is_stock_read(self, request: EmuRequest) -> bool:
        """`GET checkInventoryStock`."""
        return request.method == "GET" and request.path == STOCK

    def corrupt_read(self, response: EmuResponse, fault: Fault, rng: random.Random) -> EmuResponse:
        """A lying stock answer: `stock[sku][].quantityOnHand` of the rows with a location."""
        return self.told(corrupt(response, fault, rng, READ_SHAPE))

    def route(self, request: EmuRequest) -> EmuResponse:
        """Dispatch a request that passed fault injection."""
        if request.path not in ROUTES:
            return EmuResponse(404, {"message": "Not Found"})
        if request.method == "POST" and request.path == REFRESH:
            return self._refresh(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return EmuResponse(401, {"message": "Invalid token", "code": 401})
        if self.tokens[token] <= self.clock():
            return EmuResponse(401, {"message": "Jwt is expired", "code": 401})
        if request.method == "GET" and request.path == STOCK:
            return self._check_stock(request)
        if request.method == "POST" and request.path == UPDATE:
            return self._update(request)
        if request.method == "GET" and request.path == ORDERS:
            return self._orders(request)
        if request.method == "GET" and request.path == DETAILS:
            return self._details(request)
        if request.method == "POST" and request.path == CANCEL:
            return self._cancel(request)
        return EmuResponse(404, {"message": "Not Found"})

    def _orders(self, request: EmuRequest) -> EmuResponse:
        query = {k: v[0] for k, v in request.query.items()}
        try:
            first = date.fromisoformat(query["minDate"])
            last = date.fromisoformat(query["maxDate"])
        except (KeyError, ValueError):
            return _error(400, "OTO1107", "minDate or maxDate is missing or invalid")
        per_page = int(query.get("perPage", "10")) if query.get("perPage", "10").isdigit() else 0
        page = int(query.get("page", "1")) if query.get("page", "1").isdigit() else 0
        if not 1 <= per_page <= 100 or page < 1:
            return _error(400, "OTO1108", "perPage must be 1 to 100 and page at least 1")
        # The document gives no sort order: newest or oldest first, by last change or by order
        # date, as this emulator's silences say.
        key = (lambda o: o.modified) if self.silences.sorted_by_change else (lambda o: o.placed)
        chosen = [o for o in self.book.by_newest(key) if first <= datetime.fromtimestamp(o.placed, UTC).date() <= last]
        if not self.silences.lists_newest_first:
            chosen.reverse()
        total_pages = max(1, -(-len(chosen) // per_page))
        rows = chosen[(page - 1) * per_page : page * per_page]
        return EmuResponse(
            200,
            {
                "success": True,
                "perPage": per_page,
                "currentPage": page,
                "totalPage": total_pages,
                "totalCount": len(chosen),
                "orders": [self._order(o) for o in rows],
            },
        )

    def _order(self, order: EmuOrder) -> dict[str, Any]:
        return {
            "orderId": order.order_id,
            "id": str(30000000 + order.seq),
            "status": order.status,
            "pickupLocationCode": self.location_code,
            "orderDate": _stamp(order.placed),
            "modifiedDate": _stamp(order.modified),
            "items": [{"sku": line.code, "quantity": line.quantity, "name": line.code} for line in order.lines],
        }

    def _details(self, request: EmuRequest) -> EmuResponse:
        order = self.book.orders.get((request.query.get("orderId") or [""])[0])
        if order is None:
            return _error(404, "OTO1009", "Order not found")
        return EmuResponse(200, {"success": True, **self._order(order)})

    def _cancel(self, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "OTO1000", "Malformed JSON")
        order_id = body.get("orderId") if isinstance(body, dict) else None
        order = self.book.orders.get(str(order_id))
        if order is None:
            return _error(400, "OTO1009", f"Order {order_id} not found")
        if not self.cancel_through_api(order.order_id):
            # Refusals arrive with HTTP 200, as OTO does for some errors.
            return _error(200, "OTO1133", f"Order status {order.status} is not allowed for cancel")
        return EmuResponse(200, {"success": True})

    def _refresh(self, request: EmuRequest) -> EmuResponse:
        self.token_requests += 1
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("refresh_token") != self.refresh_token:
            return _error(401, "OTO1001", "Invalid refresh token")
        token = "ey" + secrets.token_hex(24)
        self.tokens[token] = self.clock() + self.token_lifetime
        if self.silences.rotates_refresh_token:  # a new refresh token; the old one stops working
            self.refresh_token = "rt-" + secrets.token_hex(16)
        return EmuResponse(
            200,
            {
                "access_token": token,
                "refresh_token": self.refresh_token,
                "success": True,
                "token_type": "Bearer",
                "expires_in": str(self.token_lifetime),
            },
        )

    def _check_stock(self, request: EmuRequest) -> EmuResponse:
        wanted = [s for s in ",".join(request.query.get("sku", [])).split(",") if s]
        stock: dict[str, list[dict[str, Any]]] = {}
        for sku in wanted:
            where = self.stock.get(sku)
            if where is None:
                continue
            # Forecasted: on hand less what is sold and not yet picked (here, at our location).
            rows: list[dict[str, Any]] = [
                {
                    "pickupLocationCode": code,
                    "sku": sku,
                    "quantityForecasted": qty - self.unpicked[sku]
                    if code == self.location_code and isinstance(qty, int)
                    else qty,
                    "quantityOnHand": qty,
                }
                for code, qty in where.items()
            ]
            # Real answers carry an extra row with no location and odd (negative) numbers.
            rows.append({"sku": sku, "quantityForecasted": -3, "quantityOnHand": -2})
            stock[sku] = rows
        return EmuResponse(200, {"success": True, "stock": stock})

    def _update(self, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "OTO1000", "Malformed JSON")
        if not isinstance(body, dict) or body.get("actionType") not in ("adjust", "set"):
            return _error(400, "OTO1130", "actionType must be set or adjust")
        qty = quantity(body.get("qty"))
        if qty is None:
            return _error(400, "OTO1132", "Quantity is missing or invalid")
        sku, location = str(body.get("sku")), str(body.get("locationCode"))
        if location != self.location_code and not any(location in w for w in self.stock.values()):
            return _error(400, "OTO1140", f"Location {location} could not be found")
        if sku not in self.stock:
            return _error(400, "OTO1133", f"SKU {sku} could not be found")
        if self.refusals_in_200:
            self.refusals_in_200 -= 1
            return _error(200, "OTO1199", "Inventory is locked for stock count")
        where = self.stock[sku]
        if body["actionType"] == "adjust":
            where[location] = where.get(location, 0) + qty
            self.applied.append((sku, qty))
        else:
            where[location] = qty
        return EmuResponse(
            200,
            {
                "success": True,
                "warnings": [f"Inventory quantity {body['actionType']} done"],
                "transactionID": 591611 + len(self.applied),
            },
        )


def _slots(body: Any) -> list[Slot]:
    """Every row with a location (the rows without one carry no stock of ours)."""
    stock = body.get("stock") if isinstance(body, dict) else None
    if not isinstance(stock, dict):
        return []
    return [
        (rows, row)
        for rows in stock.values()
        if isinstance(rows, list)
        for row in rows
        if isinstance(row, dict) and "pickupLocationCode" in row
    ]


def _put(row: Any, value: object) -> None:
    row["quantityOnHand"] = value
    if is_int(value):
        row["quantityForecasted"] = value


READ_SHAPE = ReadShape(
    slots=_slots,
    code=lambda row: str(row["sku"]),
    get=lambda row: row.get("quantityOnHand"),
    put=_put,
    empty=lambda body: {**body, "stock": {}},
)
