"""How the Ankorstore emulator shows orders: the JSON:API order resource, its order items and
their variants (`include=orderItems.productVariant`), and the reasons a brand may reject with."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sync.emulation.orders import EmuOrder

REJECT_TYPES = frozenset(
    {
        "BRAND_ALREADY_HAS_CUSTOMER_IN_THE_AREA",
        "BRAND_CANNOT_DELIVER_TO_THE_AREA",
        "BRAND_HAS_EXCLUSIVE_DISTRIBUTOR_IN_THE_REGION",
        "BUYER_NOT_A_RETAILER",
        "ORDER_ITEMS_PRICES_INCORRECT",
        "PAYMENT_ISSUES_WITH_RETAILER",
        "PREPARATION_TIME_TOO_HIGH",
        "PRODUCT_OUT_OF_STOCK",
        "PURCHASE_NOT_FOR_RESALE",
        "RETAILER_AGREED_TO_DO_CHANGES_TO_ORDER",
        "RETAILER_NOT_GOOD_FIT_FOR_BRAND",
        "RETAILER_VAT_NUMBER_MISSING",
        "OTHER",
    }
)


def _iso(epoch: float) -> str:
    # Whole seconds, as every example in Ankorstore's OpenAPI file gives them.
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def _line_uuid(line_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"order-item:{line_id}"))


def order_resource(order: EmuOrder) -> dict[str, Any]:
    """An order as `GET /api/v1/orders` lists it."""
    return {
        "type": "orders",
        "id": order.order_id,
        "attributes": {
            "status": order.status,
            "reference": 3000000 + order.seq,
            "submittedAt": _iso(order.placed),
            "createdAt": _iso(order.placed),
            "updatedAt": _iso(order.modified),
        },
        "relationships": {
            "orderItems": {"data": [{"type": "order-items", "id": _line_uuid(line.line_id)} for line in order.lines]}
        },
    }


def included_resources(
    orders: Sequence[EmuOrder], variant_of: Callable[[str], Any], *, with_variants: bool
) -> list[dict[str, Any]]:
    """The order items of `orders` (and their variants, `variant_of` a SKU, when asked)."""
    included: list[dict[str, Any]] = []
    variants: dict[str, Any] = {}
    for order in orders:
        for line in order.lines:
            variant = variant_of(line.code)
            item: dict[str, Any] = {
                "type": "order-items",
                "id": _line_uuid(line.line_id),
                "attributes": {"quantity": line.quantity, "multipliedQuantity": line.quantity},
            }
            if variant is not None:
                item["relationships"] = {"productVariant": {"data": {"type": "productVariant", "id": variant.id}}}
                variants[variant.id] = variant
            included.append(item)
    if with_variants:
        included.extend(v.resource() for v in variants.values())
    return included
