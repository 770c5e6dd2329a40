"""How the Ankorstore emulator keeps and shows orders: what a sale, a shipment, an acceptance and
a rejection do to stock (`OrderLife`), the JSON:API order resource, its order items and their
variants (`include=orderItems.productVariant`), and the reasons a brand may reject with.

A rejection moves the order to `rejected`; "Ankorstore needs to approve this rejection. If it does,
the status will move to cancelled." When the reservation is released, at the rejection or at the
approval, the document does not say: the emulator follows its silences (`released_at_rejection`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sync.emulation.orders import EmuOrder, OrderBook
from sync.emulation.silences import Silences
from sync.platforms.ankorstore.emulated_stock import Variant

# How long Ankorstore takes to approve a brand's rejection (wall-clock seconds of the emulator).
APPROVAL_SECONDS = 30.0

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


class OrderLife:
    """What orders do to an emulated Ankorstore account's stock (mixed into the emulator)."""

    lock: Any
    book: OrderBook
    wall: Callable[[], float]
    silences: Silences
    shipped: dict[str, int]
    new_status = "ankor_confirmed"
    cancelled_status = "cancelled"
    cancellable = frozenset({"ankor_confirmed"})
    open_statuses = ("ankor_confirmed", "brand_confirmed")

    def variant(self, sku: str) -> Variant | None:
        """The live variant with this SKU (the emulator's)."""
        raise NotImplementedError

    def order_id(self, seq: int) -> str:
        """Orders are identified by uuid, in the order they were placed (so cursor pages sort)."""
        return str(uuid.UUID(int=(0x1EC << 116) | seq))

    def take(self, code: str, units: int) -> None:
        """A retailer orders: the units are reserved (available down, reserved up)."""
        found = self.variant(code)
        assert found is not None
        found.reserved += units

    def give_back(self, code: str, units: int) -> None:
        """A cancelled order releases its reservation."""
        found = self.variant(code)
        if found is not None:
            found.reserved -= units

    def cancel(self, order_id: str) -> bool:
        """The brand rejects an order awaiting its decision: `rejected` until Ankorstore approves
        (`approve_rejections`); its units come back now or then, as the silences say."""
        with self.lock:
            order = self.book.orders.get(order_id)
            if order is None or order.status not in self.cancellable:
                return False
            if self.silences.released_at_rejection:
                self._release(order)
            order.move_to("rejected", self.wall())
            return True

    def approve_rejections(self) -> None:
        """Ankorstore approves the rejections at least `APPROVAL_SECONDS` old: `cancelled`, and the
        units back where they were not yet."""
        with self.lock:
            due = self.wall() - APPROVAL_SECONDS
            for order in self.book.orders.values():
                if order.status == "rejected" and order.modified <= due:
                    if not self.silences.released_at_rejection:
                        self._release(order)
                    order.move_to(self.cancelled_status, self.wall())

    def _release(self, order: EmuOrder) -> None:
        for line in order.lines:
            self.give_back(line.code, line.quantity)

    def ship(self, code: str, units: int = 1, *, newest: bool = False) -> bool:
        """The oldest (or newest) open order for `code` ships: its reservation is released (stock
        and reserved both down). `units` is ignored: an order ships whole."""
        with self.lock:
            order = self.book.oldest(code, self.open_statuses, newest=newest)
            found = self.variant(code)
            if order is None or found is None:
                return False
            for line in order.lines:
                variant = self.variant(line.code)
                if variant is not None:
                    variant.reserved -= line.quantity
                    variant.stock -= line.quantity
                    self.shipped[line.code] = self.shipped.get(line.code, 0) + line.quantity
            order.move_to("shipped", self.wall())
            return True

    def accept(self, order_id: str) -> bool:
        """The brand accepts the order in Ankorstore's own pages (it can no longer be rejected)."""
        with self.lock:
            order = self.book.orders.get(order_id)
            if order is None or order.status != "ankor_confirmed":
                return False
            order.move_to("brand_confirmed", self.wall())
            return True


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
            cases = variant.unit_multiplier if variant is not None else 1
            item: dict[str, Any] = {
                "type": "order-items",
                "id": _line_uuid(line.line_id),
                "attributes": {"quantity": line.quantity, "multipliedQuantity": line.quantity * cases},
            }
            if variant is not None:
                item["relationships"] = {"productVariant": {"data": {"type": "productVariant", "id": variant.id}}}
                variants[variant.id] = variant
            included.append(item)
    if with_variants:
        included.extend(v.resource() for v in variants.values())
    return included
