"""How the Ankorstore emulator shows stock: the variant resource, and where a lying read of it
puts its numbers.

A lie is told in `availableQuantity`, the number stocksync keeps in step. A numeric lie keeps the
resource's arithmetic (`stockQuantity = availableQuantity + reservedQuantity`: the reservations
stay, the stock follows), as an answer computed from a wrong count would: no adapter can see through
it by adding up, only the read judge can. A value that is not a number (WRONG_TYPES) replaces
`availableQuantity` alone and leaves the other two as they were, as a serializer bug would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sync.emulation.bad_reads import ReadShape, Slot
from sync.emulation.wire import EmuResponse
from sync.platforms.values import is_int

STAMP = "2024-01-03T11:22:02.000000Z"
JSON_API = "application/vnd.api+json"


def errors(status: int, title: str, detail: str, pointer: str | None = None) -> EmuResponse:
    """A JSON:API error answer."""
    error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    return EmuResponse(status, {"errors": [error]}, {"Content-Type": JSON_API})


@dataclass
class Variant:
    """One product variant's stock."""

    id: str
    sku: str
    stock: int
    reserved: int = 0
    always_in_stock: bool = False
    archived: bool = False
    inventory_policy: str = "deny"  # "continue": orders are taken past zero
    unit_multiplier: int = 1  # its product's: sold in cases of this many (an order's quantity counts cases)

    @property
    def product_id(self) -> str:
        """Its product (one per SKU here)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.sku))

    @property
    def available(self) -> int:
        """Units that can still be ordered."""
        return self.stock - self.reserved

    def resource(self, type_: str = "productVariant") -> dict[str, Any]:
        """The JSON:API resource object."""
        return {
            "type": type_,
            "id": self.id,
            "attributes": {
                "name": f"Variant {self.sku}",
                "sku": self.sku,
                "ian": None,
                "createdAt": STAMP,
                "updatedAt": STAMP,
                "archivedAt": STAMP if self.archived else None,
                "retailPrice": 800,
                "wholesalePrice": 500,
                "originalWholesalePrice": 500,
                "availableQuantity": self.available,
                "reservedQuantity": self.reserved,
                "stockQuantity": self.stock,
                "isAlwaysInStock": self.always_in_stock,
                "inventoryPolicy": self.inventory_policy,
            },
            "relationships": {"product": {"data": {"type": "product", "id": self.product_id}}},
        }


def product_resource(variants: list[Variant]) -> dict[str, Any]:
    """A product of the products list: its name, `unitMultiplier` and its variants."""
    first = variants[0]
    return {
        "type": "products",
        "id": first.product_id,
        "attributes": {"name": f"Product {first.sku}", "unitMultiplier": first.unit_multiplier},
        "relationships": {"productVariant": {"data": [{"type": "productVariant", "id": v.id} for v in variants]}},
    }


def _slots(body: Any) -> list[Slot]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [(data, r) for r in data if isinstance(r, dict) and isinstance(r.get("attributes"), dict)]


def _put(resource: Any, value: object) -> None:
    attributes = resource["attributes"]
    attributes["availableQuantity"] = value
    if is_int(value) and is_int(attributes.get("reservedQuantity")):
        attributes["stockQuantity"] = value + attributes["reservedQuantity"]


def _empty(body: Any) -> Any:
    page = {**body.get("meta", {}).get("page", {}), "from": None, "to": None, "hasMore": False}
    return {**body, "meta": {**body.get("meta", {}), "page": page}, "links": {}, "data": []}


READ_SHAPE = ReadShape(
    slots=_slots,
    code=lambda resource: str(resource["attributes"].get("sku")),
    get=lambda resource: resource["attributes"].get("availableQuantity"),
    put=_put,
    empty=_empty,
)


def cursor_page(
    query: dict[str, list[str]],
    path: str,
    chosen: Sequence[tuple[str, Callable[[], dict[str, Any]]]],
    fills_links: bool,
) -> EmuResponse:
    """One cursor page of a list sorted by id (`page[limit]` up to 50, `page[after]` an id), each
    resource made only when on the page; `links.next` only where the seed fills links."""
    limit_text = (query.get("page[limit]") or ["15"])[0]
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 50:
        return errors(400, "Bad Request", "page[limit] must be between 1 and 50", "page[limit]")
    limit = int(limit_text)
    afters = query.get("page[after]")
    if afters:
        chosen = [(key, make) for key, make in chosen if key > afters[0]]
    page, more = chosen[:limit], len(chosen) > limit
    ends = {"from": page[0][0] if page else None, "to": page[-1][0] if page else None}
    meta = {"page": {**ends, "hasMore": more, "perPage": limit}}
    links: dict[str, str] = {}
    if more and fills_links:
        others = [(k, v) for k, vs in query.items() if k != "page[after]" for v in vs]
        encoded = "&".join(f"{k}={v}" for k, v in [*others, ("page[after]", page[-1][0])])
        links["next"] = f"https://www.ankorstore.com{path}?{encoded}"
    body = {"meta": meta, "jsonapi": {"version": "1.0"}, "links": links, "data": [make() for _, make in page]}
    return EmuResponse(200, body, {"Content-Type": JSON_API})
