"""Random customers buying on emulated platforms, in a background thread."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from sync.emulation.platform import EmulatedPlatform


class SalesDriver:
    """Sells one or two units at a time, at `rate` events a second across `platforms`; with
    `ship_share`, that share of the events ships an order instead, where a platform ships
    (Ankorstore: a shipment releases a reservation)."""

    def __init__(
        self,
        platforms: Sequence[EmulatedPlatform],
        rate: float,
        *,
        seed: int = 0,
        max_units: int = 2,
        ship_share: float = 0.0,
    ) -> None:
        self.platforms = list(platforms)
        self.rate = rate
        self.max_units = max_units
        self.ship_share = ship_share
        self.sales = 0
        self.shipments = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sales", daemon=True)

    def start(self) -> SalesDriver:
        """Start selling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop selling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._rng.expovariate(self.rate)):
            platform = self._rng.choice(self.platforms)
            ship = getattr(platform, "ship", None)
            with platform.lock:
                codes = platform.codes()
                if ship is not None and codes and self._rng.random() < self.ship_share:
                    if ship(self._rng.choice(codes), 1):
                        self.shipments += 1
                    continue
                sellable = [c for c in codes if (platform.quantity(c) or 0) > 0]
                if sellable and platform.sell(self._rng.choice(sellable), self._rng.randint(1, self.max_units)):
                    self.sales += 1
