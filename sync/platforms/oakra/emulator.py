"""An Oakra emulator that follows `platform-docs/oakra.txt`: stock records per location, read by
repeated `sku`, changed relatively (`change/`) or absolutely (`update/`), sales cancelled with
`sales/cancel/` (Oakra documents no sales list), bearer app key plus `X-OAKRA-API-VERSION: v1` on
every call."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sync.emulation.bad_reads import ReadShape, Slot, corrupt
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.platforms.values import is_int

PREFIX = "/api/v1"
RECORDS = "/stock/stock-records/"
CANCEL_REASONS = frozenset({"out_of_stock", "customer_request", "other"})


@dataclass
class StockRecord:
    """One Oakra stock record."""

    id: int
    location_id: str
    sku: str
    quantity: int

    def as_json(self) -> dict[str, Any]:
        """The record as Oakra answers it."""
        return {"id": self.id, "location_id": self.location_id, "sku": self.sku, "quantity": self.quantity}


class OakraEmulator(EmulatedPlatform):
    """Oakra's stock API for one app key; `wrapped=True` answers reads as `{"stock_records": [...]}`."""

    new_status = "pending"
    cancelled_status = "canceled"
    cancellable = frozenset({"pending"})

    def __init__(
        self,
        app_key: str,
        location_id: str = "warehouse-1",
        *,
        faults: FaultPlan | None = None,
        wrapped: bool = False,
    ) -> None:
        super().__init__(faults)
        self.app_key = app_key
        self.location_id = location_id
        self.wrapped = wrapped
        self.records: dict[int, StockRecord] = {}
        self._by_key: dict[tuple[str, str], StockRecord] = {}  # (sku, location) -> record
        self._next_id = 122

    # --- state primitives -------------------------------------------------------------------

    def _find(self, sku: str, location_id: str | None = None) -> StockRecord | None:
        return self._by_key.get((sku, location_id or self.location_id))

    def quantity(self, code: str) -> int | None:
        """The quantity of `code` at the default location."""
        record = self._find(code)
        return record.quantity if record else None

    def set_quantity(self, code: str, quantity: int, location_id: str | None = None) -> None:
        """Create or overwrite a stock record."""
        with self.lock:
            record = self._find(code, location_id)
            if record is None:
                record = StockRecord(self._next_id, location_id or self.location_id, code, 0)
                self.records[record.id] = record
                self._by_key[(code, record.location_id)] = record
                self._next_id += 1
            record.quantity = quantity

    def codes(self) -> list[str]:
        """SKUs with a record at the default location."""
        return [r.sku for r in self.records.values() if r.location_id == self.location_id]

    # --- HTTP -------------------------------------------------------------------------------

    def is_stock_read(self, request: EmuRequest) -> bool:
        """`GET stock/stock-records/`."""
        return request.method == "GET" and request.path.removeprefix(PREFIX) == RECORDS

    def corrupt_read(self, response: EmuResponse, fault: Fault, rng: random.Random) -> EmuResponse:
        """A lying stock-record list: `quantity` per record."""
        return self.told(corrupt(response, fault, rng, READ_SHAPE))

    def route(self, request: EmuRequest) -> EmuResponse:
        """Dispatch a request that passed fault injection."""
        if request.headers.get("authorization") != f"Bearer {self.app_key}":
            return EmuResponse(401, {"detail": "Invalid token."})
        if request.headers.get("x-oakra-api-version") != "v1":
            return EmuResponse(400, {"detail": "X-OAKRA-API-VERSION header must be v1."})
        path = request.path.removeprefix(PREFIX)
        if request.method == "GET" and path == RECORDS:
            return self._list(request)
        if request.method == "POST" and path == "/stock/stock-records/change/":
            return self._write(request, "quantity_change", relative=True)
        if request.method == "POST" and path == "/stock/stock-records/update/":
            return self._write(request, "quantity", relative=False)
        if request.method == "POST" and path == "/sales/cancel/":
            return self._cancel(request)
        return EmuResponse(404, {"detail": "Not found."})

    def _cancel(self, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return EmuResponse(400, {"detail": "JSON parse error."})
        if not isinstance(body, dict) or body.get("cancel_reason") not in CANCEL_REASONS:
            return EmuResponse(400, {"cancel_reason": [f"Must be one of {', '.join(sorted(CANCEL_REASONS))}."]})
        sale = self.book.orders.get(str(body.get("sale_id")))
        if sale is None:
            return EmuResponse(404, {"detail": "Not found."})
        if not self.cancel_through_api(sale.order_id):
            return EmuResponse(400, {"detail": f"Sale is {sale.status} and cannot be cancelled."})
        return EmuResponse(200, {"id": sale.seq, "sale_id": sale.order_id, "status": sale.status})

    def _list(self, request: EmuRequest) -> EmuResponse:
        skus = request.query.get("sku") or []
        if not skus:
            return EmuResponse(400, {"sku": ["This field is required."]})
        locations = request.query.get("location_id")
        location = locations[0] if locations else None
        locations = [location] if location is not None else sorted({r.location_id for r in self.records.values()})
        found = (self._by_key.get((sku, where)) for sku in dict.fromkeys(skus) for where in locations)
        records = [r.as_json() for r in found if r is not None]
        return EmuResponse(200, {"stock_records": records} if self.wrapped else records)

    def _write(self, request: EmuRequest, field: str, *, relative: bool) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return EmuResponse(400, {"detail": "JSON parse error."})
        items = body.get("stock_records") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return EmuResponse(400, {"stock_records": ["This field is required."]})
        errors = [self._item_error(item, field) for item in items]
        if any(errors):
            # Whether the valid records were applied, the page does not say: the seed chooses.
            if self.silences.rejected_batch_applies_the_rest:
                self._apply([item for item, error in zip(items, errors, strict=True) if not error], field, relative)
            return EmuResponse(400, {"stock_records": errors})
        return EmuResponse(200, {"stock_records": self._apply(items, field, relative)})

    def _apply(self, items: list[Any], field: str, relative: bool) -> list[Any]:
        touched = []
        for item in items:
            record = self.records[item["id"]]
            record.quantity = record.quantity + item[field] if relative else item[field]
            if relative:
                self.applied.append((record.sku, item[field]))
            touched.append(record.as_json())
        return touched

    def _item_error(self, item: Any, field: str) -> dict[str, list[str]]:
        if not isinstance(item, dict):
            return {"non_field_errors": ["Expected an object."]}
        if not is_int(item.get("id")):
            return {"id": ["A valid integer is required."]}
        if item["id"] not in self.records:
            return {"id": [f'Invalid pk "{item["id"]}" - object does not exist.']}
        if not is_int(item.get(field)):
            return {field: ["A valid integer is required."]}
        return {}


def _records(body: Any) -> list[Any]:
    """The record list of a read answer, bare or wrapped."""
    records = body.get("stock_records") if isinstance(body, dict) else body
    return records if isinstance(records, list) else []


def _slots(body: Any) -> list[Slot]:
    records = _records(body)
    return [(records, record) for record in records]


def _put(record: Any, value: object) -> None:
    record["quantity"] = value


READ_SHAPE = ReadShape(
    slots=_slots,
    code=lambda record: str(record["sku"]),
    get=lambda record: record.get("quantity"),
    put=_put,
    empty=lambda body: {**body, "stock_records": []} if isinstance(body, dict) else [],
)
