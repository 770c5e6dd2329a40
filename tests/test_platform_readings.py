"""How the documents' examples and silences are read, one platform at a time: the shapes an order
list may take, and what each status means for stock (see docs/platforms.md)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.platforms.base import OrderState
from sync.platforms.graas import orders as graas_orders
from sync.platforms.oto import orders as oto_orders


def _graas_order(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "numberOfPages": 1,
        "history": [
            {
                "orderID": "7446703243474",
                "orderStatus": "DELIVERED",
                "timeOrderCreated": 1540015389,
                "site": {"name": "lazada", "nickNameID": "lazada-1"},
                "orderItems": list(items),
            }
        ],
    }


def test_a_graas_item_without_sku_is_named_by_its_custom_sku() -> None:
    # The document's third example: items carry `customSKU` and no `SKU`.
    body = _graas_order(
        {"orderItemID": "7446703643474", "customSKU": "553256", "quantity": 1},
        {"orderItemID": "7446704343474", "SKU": "AIL0000755", "customSKU": "248HT-970S", "quantity": 2},
        {"orderItemID": "7446704343475", "quantity": 1},  # names nothing: no listing to touch
    )
    (order,), pages = graas_orders.parse_orders(body)
    assert pages == 1
    assert [(line.line_id, line.code, line.quantity) for line in order.lines] == [
        ("7446703643474", "553256", 1),
        ("7446704343474", "AIL0000755", 2),
    ]


def test_a_graas_item_status_other_than_its_orders_is_the_items_own_state() -> None:
    # The document's third example: a DELIVERED order with one item RETURNED (Lazada only).
    body = _graas_order(
        {"orderItemID": "7446703643474", "customSKU": "553256", "quantity": 1, "orderStatus": "RETURNED"},
        {"orderItemID": "7446704343474", "customSKU": "553228", "quantity": 1, "orderStatus": "DELIVERED"},
        {"orderItemID": "7446704343475", "customSKU": "553229", "quantity": 1},  # not Lazada: the order's
    )
    (order,), _ = graas_orders.parse_orders(body)
    assert order.state is OrderState.FULFILLED
    assert [line.state for line in order.lines] == [OrderState.RETURNED, None, None]


@pytest.mark.parametrize("status", ["new", "missingData", "paymentConfirmed", "waitingAddressConfirmation"])
def test_oto_order_management_statuses_are_open_orders_not_fulfilled_ones(status: str) -> None:
    # Before a shipment exists the order can still be cancelled: it is open.
    assert oto_orders.state_of(status) is OrderState.OPEN


def test_oto_statuses_after_pickup_cancellation_and_return() -> None:
    assert oto_orders.state_of("delivered") is OrderState.FULFILLED
    assert oto_orders.state_of("canceled") is OrderState.CANCELLED
    assert oto_orders.state_of("returned") is OrderState.RETURNED
