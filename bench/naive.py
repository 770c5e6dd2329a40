"""The approach most tools take, written for the benchmark: poll one SKU at a time on every platform,
take the smallest quantity as the truth, and set it everywhere as an absolute value.

It uses the same HTTP layer as stocksync (auth, retries, rate limits) so that the comparison is
about the method, not the plumbing: one read request per SKU per platform, then one absolute set
per listing that differs. A sale that lands between its read and its set is overwritten, and two
platforms selling the same SKU between two polls count as one sale: both sell units that no longer
exist.
"""

from __future__ import annotations

from typing import Any

from sync.platforms.base import Adapter
from sync.platforms.http import HttpAdapter, json_body


class NaivePoller:
    """Polls a catalogue through the given adapters, one SKU and one platform at a time."""

    def __init__(self, adapters: dict[str, Adapter]) -> None:
        self.adapters = adapters

    async def round(self, skus: list[str]) -> None:
        """One pass over the catalogue."""
        for sku in skus:
            seen: dict[str, tuple[int, Any]] = {}
            for name, adapter in self.adapters.items():
                found = await _read_one(adapter, sku)
                if found is not None:
                    seen[name] = found
            if not seen:
                continue
            target = max(0, min(quantity for quantity, _ in seen.values()))
            for name, (quantity, raw) in seen.items():
                if quantity != target:
                    await _set_one(self.adapters[name], sku, target, raw)


async def _read_one(adapter: Adapter, sku: str) -> tuple[int, Any] | None:
    """(quantity, what the set needs) for one SKU, with one request."""
    assert isinstance(adapter, HttpAdapter)
    if adapter.platform == "ankorstore":
        answer = await adapter.http.request(
            "GET", "/api/v1/product-variants", params={"filter[sku]": sku, "page[limit]": 1}, write=False
        )
        data = json_body(answer, "naive")["data"]
        if not data:
            return None
        attributes = data[0]["attributes"]
        return attributes["availableQuantity"], (data[0]["id"], attributes["reservedQuantity"])
    read = await adapter.read([sku])
    observed = read.observed.get(sku)
    return None if observed is None else (observed.quantity, observed.ref)


async def _set_one(adapter: Adapter, sku: str, quantity: int, raw: Any) -> None:
    """An absolute set, with one request, through the platform's own set endpoint."""
    assert isinstance(adapter, HttpAdapter)
    settings: Any = adapter.settings
    if adapter.platform == "oakra":
        body: Any = {"stock_records": [{"id": int(raw), "quantity": quantity}]}
        await adapter.http.request("POST", "/stock/stock-records/update/", json=body, write=True)
    elif adapter.platform == "graas":
        body = {
            "data": [{"sellerSKU": sku, "quantities": [{"quantity": quantity, "warehouseID": settings.warehouse_id}]}]
        }
        await adapter.http.request("PUT", "/v1/productMaster/quantitiesList", json=body, write=True)
    elif adapter.platform == "oto":
        body = {"actionType": "set", "locationCode": settings.location_code, "sku": sku, "qty": quantity}
        await adapter.http.request("POST", "/rest/v2/updateStockQuantity", json=body, write=True)
    else:
        variant, reserved = raw
        body = {
            "data": {"type": "product-variants", "id": variant, "attributes": {"stockQuantity": quantity + reserved}}
        }
        await adapter.http.request("PATCH", f"/api/v1/product-variants/{variant}/stock", json=body, write=True)
