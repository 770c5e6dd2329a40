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
from dataclasses import dataclass
from typing import Any

from sync.emulation.bad_reads import ReadShape, Slot
from sync.platforms.values import is_int

STAMP = "2024-01-03T11:22:02.000000Z"


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
            "relationships": {
                "product": {"data": {"type": "product", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.sku))}}
            },
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
