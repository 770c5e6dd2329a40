"""A Graas emulator that follows `platform-docs/graas.txt`: product masters with quantities per
warehouse, bulk absolute (`quantitiesList`) and relative (`quantityDiffList`) updates answering
`result[]` per SKU with `httpCode`, orders listed by `updatedAfter`/`updatedBefore` in pages and
cancelled through `PUT /v1/orders`, and `accountNumber` + `appKey` headers."""

from __future__ import annotations

import random
from typing import Any

from sync.emulation.bad_reads import ReadShape, Slot, corrupt
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.orders import EmuOrder
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.platforms.values import is_int

DIFF_LIST = "/v1/productMaster/quantityDiffList"
QUANTITIES_LIST = "/v1/productMaster/quantitiesList"
ORDERS = "/v1/orders"
SITE = {"name": "lazada", "nickNameID": "lazada-1"}


class GraasEmulator(EmulatedPlatform):
    """One Graas seller account; `warehouses` are the warehouse IDs linked to it."""

    new_status = "INITIATED"
    cancelled_status = "CANCELLED"
    cancellable = frozenset({"INITIATED", "ACCEPTED", "PROCESSING"})
    shipped_status = "DISPATCHED"
    sale_reading_unsaid = True  # the `quantity` a zero diff reads back: the document does not say

    def __init__(
        self,
        account_number: str,
        app_key: str,
        warehouse_id: str = "MyStock-1",
        *,
        warehouses: tuple[str, ...] = (),
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults)
        self.account_number = account_number
        self.app_key = app_key
        self.warehouse_id = warehouse_id
        self.warehouses = {warehouse_id, *warehouses}
        self.products: dict[str, dict[str, int]] = {}

    # --- state primitives -------------------------------------------------------------------

    def quantity(self, code: str) -> int | None:
        """The quantity of `code` at the default warehouse (None when no such product)."""
        product = self.products.get(code)
        return None if product is None else product.get(self.warehouse_id, 0)

    def set_quantity(self, code: str, quantity: int, warehouse_id: str | None = None) -> None:
        """Create the product master if needed and set one warehouse's quantity."""
        with self.lock:
            self.products.setdefault(code, {})[warehouse_id or self.warehouse_id] = quantity

    def cancel_item(self, order_id: str, line_id: str) -> bool:
        """The marketplace cancels one item of an order that goes on (Lazada's partial status):
        its units come back, the order's status stays."""
        with self.lock:
            order = self.book.orders.get(order_id)
            line = next((ln for ln in order.lines if ln.line_id == line_id), None) if order else None
            if order is None or line is None or order.status not in self.cancellable:
                return False
            self.give_back(line.code, line.quantity)
            order.move_item(line_id, self.cancelled_status, self.wall())
            return True

    def codes(self) -> list[str]:
        """Every product master's sellerSKU."""
        return list(self.products)

    # --- HTTP -------------------------------------------------------------------------------

    def changes_stock(self, request: EmuRequest) -> bool:
        """Every bulk call but a `quantityDiffList` whose diffs are all zero (a read)."""
        if request.path != DIFF_LIST:
            return request.method != "GET"
        try:
            data = request.json()["data"]
            return any(row["quantityDiff"] != 0 for item in data for row in item["quantityDiffs"])
        except (ValueError, KeyError, TypeError):
            return True

    def is_stock_read(self, request: EmuRequest) -> bool:
        """A `quantityDiffList` whose diffs are all zero: Graas's only way to read quantities."""
        return request.method == "PUT" and request.path == DIFF_LIST and not self.changes_stock(request)

    def corrupt_read(self, response: EmuResponse, fault: Fault, rng: random.Random) -> EmuResponse:
        """A lying zero-diff answer: `result[].updatedQuantity[].quantity`."""
        return self.told(corrupt(response, fault, rng, READ_SHAPE))

    def route(self, request: EmuRequest) -> EmuResponse:
        """Dispatch a request that passed fault injection."""
        if request.headers.get("appkey") != self.app_key or request.headers.get("accountnumber") != self.account_number:
            return EmuResponse(401, {"errorMessage": "Unauthorized"})
        if request.method == "PUT" and request.path == DIFF_LIST:
            return self._bulk(request, "quantityDiffs", "quantityDiff", relative=True)
        if request.method == "PUT" and request.path == QUANTITIES_LIST:
            return self._bulk(request, "quantities", "quantity", relative=False)
        if request.method == "GET" and request.path == ORDERS:
            return self._orders(request)
        if request.method == "PUT" and request.path == ORDERS:
            return self._update_orders(request)
        return EmuResponse(404, {"errorMessage": "Record Not Found"})

    def _orders(self, request: EmuRequest) -> EmuResponse:
        query = {k: v[0] for k, v in request.query.items()}
        after, before = query.get("updatedAfter", ""), query.get("updatedBefore", "")
        if not (after.isdigit() and before.isdigit()):
            return EmuResponse(400, {"errorMessage": "Time Range is mandatory"})
        page = int(query["pageNumber"]) if query.get("pageNumber", "").isdigit() else 1
        size = int(query["pageSize"]) if query.get("pageSize", "").isdigit() else 200
        if not 1 <= size <= 200 or page < 1:
            return EmuResponse(400, {"errorMessage": "pageSize must be 1 to 200 and pageNumber at least 1"})
        chosen = [o for o in self.book.orders.values() if int(after) <= int(o.modified) <= int(before)]
        chosen.sort(key=lambda o: (int(o.modified), o.seq))
        pages = max(1, -(-len(chosen) // size))
        rows = chosen[(page - 1) * size : page * size]
        return EmuResponse(
            200,
            {
                "numberOfPages": pages,
                "numberOfRecords": len(chosen),
                "history": [_order(o, self._lag(o)) for o in rows],
            },
        )

    def _update_orders(self, request: EmuRequest) -> EmuResponse:
        try:
            data = request.json()["data"]
        except (ValueError, KeyError, TypeError):
            return EmuResponse(400, {"errorMessage": "data is missing"})
        if not isinstance(data, list):
            return EmuResponse(400, {"errorMessage": "data is missing"})
        return EmuResponse(200, {"result": [self._update_order(item) for item in data]})

    @property
    def order_time_lead(self) -> float:
        """The most an order's `timeOrderCreated` precedes its stock move (`timeCreated`)."""
        return 183.0 if self.silences.orders_reach_late else 0.0

    def _lag(self, order: EmuOrder) -> float:
        """How long before it reached Graas the marketplace created the order: up to the 183 s
        the document's example shows, where this emulator's silences say orders reach it late."""
        return (order.seq * 37) % 184 if self.silences.orders_reach_late else 0.0

    def _update_order(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or item.get("orderStatus") != "CANCELLED":
            return {"errorMessage": "only cancellation is emulated", "response": item, "httpCode": 400}
        order = self.book.orders.get(str(item.get("orderID")))
        if order is None:
            return {"errorMessage": "Record Not Found", "response": item, "httpCode": 404}
        reason = (item.get("cancelDetails") or {}).get("cancelReason")
        if reason != "OUT_OF_STOCK" or not self.cancel_through_api(order.order_id):
            message = "cancelReason is required" if reason is None else f"order is {order.status}"
            return {"errorMessage": message, "response": item, "httpCode": 400}
        return {"response": {**item, "orderStatus": "CANCELLED"}, "httpCode": 202}

    def _bulk(self, request: EmuRequest, list_key: str, value_key: str, *, relative: bool) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return EmuResponse(400, {"errorMessage": "Malformed JSON"})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return EmuResponse(400, {"errorMessage": "data is missing"})
        return EmuResponse(200, {"result": [self._apply(item, list_key, value_key, relative) for item in data]})

    def _apply(self, item: Any, list_key: str, value_key: str, relative: bool) -> dict[str, Any]:
        sku = item.get("sellerSKU") if isinstance(item, dict) else None
        rows = item.get(list_key) if isinstance(item, dict) else None
        if not isinstance(sku, str):
            return {"sellerSKU": sku, "status": "failure", "httpCode": 400, "errorMessage": "sellerSKU is missing"}
        product = self.products.get(sku)
        if product is None:
            return _failure(sku, 404, f"sellerSku : {sku} not found")
        if not isinstance(rows, list) or not rows:
            return _failure(sku, 400, f"{list_key} is missing")
        for row in rows:
            if not isinstance(row, dict) or not is_int(row.get(value_key)):
                return _failure(sku, 400, f"{value_key} must be an integer")
            if row.get("warehouseID") not in self.warehouses:
                return _failure(sku, 400, f"warehouseID {row.get('warehouseID')} is not linked")
        # Every row of this SKU is valid: apply them all, and answer the resulting quantities.
        updated = []
        for row in rows:
            warehouse = row["warehouseID"]
            current = product.get(warehouse, 0)
            if not relative:
                product[warehouse] = row[value_key]
            elif row[value_key]:  # a zero diff reads the quantity as it is, whatever it holds
                product[warehouse] = current + row[value_key]
            if relative and row[value_key]:
                self.applied.append((sku, row[value_key]))
            updated.append({"warehouseID": warehouse, "quantity": product[warehouse]})
        return {"sellerSKU": sku, "status": "success", "updatedQuantity": updated, "httpCode": 200}


def _order(order: EmuOrder, lag: float) -> dict[str, Any]:
    """An order as `GET /v1/orders` lists it (the fields stock needs, and a few more), created on
    the marketplace `lag` seconds before it reached Graas."""
    return {
        "site": SITE,
        "orderID": order.order_id,
        "orderNumber": order.order_id,
        "orderItems": [
            {
                "orderItemID": line.line_id,
                "SKU": line.code,
                "quantity": line.quantity,
                "orderType": "Delivery",
                "orderStatus": order.item_status.get(line.line_id, order.status),  # Lazada: per item
            }
            for line in order.lines
        ],
        "orderStatus": order.status,
        "orderStatuses": sorted(set(order.history)),
        "timeCreated": int(order.placed),  # the sale reached Graas (its stock moved) now
        "timeLastUpdated": int(order.modified),
        "timeOrderCreated": int(order.placed - lag),  # the marketplace created it earlier
    }


def _failure(sku: str, code: int, message: str) -> dict[str, Any]:
    return {"sellerSKU": sku, "status": "failure", "httpCode": code, "errorMessage": message}


def _slots(body: Any) -> list[Slot]:
    """Every successful `result[]` entry (one per SKU), whose rows carry the quantities."""
    results = body.get("result") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return []
    return [(results, entry) for entry in results if isinstance(entry, dict) and entry.get("updatedQuantity")]


def _put(entry: Any, value: object) -> None:
    for row in entry["updatedQuantity"]:
        row["quantity"] = value


READ_SHAPE = ReadShape(
    slots=_slots,
    code=lambda entry: str(entry["sellerSKU"]),
    get=lambda entry: entry["updatedQuantity"][0].get("quantity"),
    put=_put,
    empty=lambda body: {**body, "result": []},
)
