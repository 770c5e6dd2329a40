"""What the rest of stocksync needs to know about one platform."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.emulation.platform import EmulatedPlatform
from sync.platforms.account import AccountSettings
from sync.platforms.base import Adapter


@dataclass(frozen=True)
class PlatformSpec:
    """A platform's settings model, adapter and emulator; `emulator_base_path` is the part of
    `base_url` after the host (Oakra's `/api/v1`)."""

    name: str
    settings: type[AccountSettings]
    adapter: Callable[..., Adapter]
    emulator: Callable[[Any], EmulatedPlatform]
    emulator_base_path: str

    @property
    def has_order_feed(self) -> bool:
        """Whether the platform documents an order list the adapter reads."""
        return bool(getattr(self.adapter, "has_order_feed", False))

    @property
    def picked_statuses(self) -> frozenset[str]:
        """Statuses of an open order already picked (see `Adapter.picked_statuses`)."""
        return frozenset(getattr(self.adapter, "picked_statuses", frozenset()))

    @property
    def order_times_bound_moves(self) -> bool:
        """Whether its orders' times bound when the listing's stock moved (see `Adapter`)."""
        return getattr(self.adapter, "order_time_precision", 0.0) is not None
