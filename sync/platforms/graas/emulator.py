"""A Graas emulator that follows `platform-docs/graas.txt`: product masters with quantities per
warehouse, bulk absolute (`quantitiesList`) and relative (`quantityDiffList`) updates answering
`result[]` per SKU with `httpCode`, and `accountNumber` + `appKey` headers."""

from __future__ import annotations

from typing import Any

from sync.emulation.faults import FaultPlan
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.platforms.http import is_int

DIFF_LIST = "/v1/productMaster/quantityDiffList"
QUANTITIES_LIST = "/v1/productMaster/quantitiesList"


class GraasEmulator(EmulatedPlatform):
    """One Graas seller account; `warehouses` are the warehouse IDs linked to it."""

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

    def route(self, request: EmuRequest) -> EmuResponse:
        """Dispatch a request that passed fault injection."""
        if request.headers.get("appkey") != self.app_key or request.headers.get("accountnumber") != self.account_number:
            return EmuResponse(401, {"errorMessage": "Unauthorized"})
        if request.method == "PUT" and request.path == DIFF_LIST:
            return self._bulk(request, "quantityDiffs", "quantityDiff", relative=True)
        if request.method == "PUT" and request.path == QUANTITIES_LIST:
            return self._bulk(request, "quantities", "quantity", relative=False)
        return EmuResponse(404, {"errorMessage": "Record Not Found"})

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
            product[warehouse] = current + row[value_key] if relative else row[value_key]
            if relative and row[value_key]:
                self.applied.append((sku, row[value_key]))
            updated.append({"warehouseID": warehouse, "quantity": product[warehouse]})
        return {"sellerSKU": sku, "status": "success", "updatedQuantity": updated, "httpCode": 200}


def _failure(sku: str, code: int, message: str) -> dict[str, Any]:
    return {"sellerSKU": sku, "status": "failure", "httpCode": code, "errorMessage": message}
