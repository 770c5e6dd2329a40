"""The simulated world: a virtual clock, emulated accounts with seeded stock, and the external
events (sales, returns, hand edits) whose running total is the truth the ledger must match."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.emulation.platform import EmulatedPlatform
from sync.emulation.silences import Silences
from sync.platforms import PLATFORMS, AccountSettings

START = datetime(2026, 1, 1, tzinfo=UTC)

# Every platform, and the shapes that matter: two Oakra (one with a buffer), Graas with a cap, OTO,
# and Ankorstore (absolute sets) with a buffer.
ACCOUNTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("oakra-a", "oakra", {"app_key": "sim-oakra-a", "location_id": "warehouse-1"}),
    ("oakra-b", "oakra", {"app_key": "sim-oakra-b", "location_id": "warehouse-2", "buffer": 1}),
    (
        "graas-c",
        "graas",
        {"account_number": "sim-acct", "app_key": "sim-graas", "warehouse_id": "MyStock-1", "max_quantity": 12},
    ),
    ("oto-d", "oto", {"refresh_token": "sim-oto-refresh", "location_code": "DMW"}),
    ("ankorstore-e", "ankorstore", {"client_id": "sim-client", "client_secret": "sim-secret", "buffer": 1}),
)
ABSOLUTE = frozenset({"ankorstore"})  # platforms written with absolute sets
FEEDS = frozenset({"graas", "oto", "ankorstore"})  # platforms with an order feed
FEED_REPORTED = frozenset({"sale", "shipment"})  # the external events an order feed shows


class VirtualClock:
    """Time that moves only when the simulation says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """An asyncio.sleep that costs no real time."""
        self.advance(seconds)


@dataclass(frozen=True)
class Event:
    """An external change on one listing: what a customer or the seller did, and when."""

    time: datetime
    account: str
    sku: str
    delta: int
    kind: str


@dataclass
class World:
    """Emulators, truth and randomness for one seed."""

    seed: int
    skus: list[str]
    event_rate: float = 0.08  # chance of an external event at each I/O boundary
    rng: random.Random = field(init=False)
    clock: VirtualClock = field(default_factory=VirtualClock)
    settings: dict[str, AccountSettings] = field(default_factory=dict)
    platforms: dict[str, EmulatedPlatform] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    events_on: bool = False
    event_kinds: Counter[str] = field(default_factory=Counter)
    lowered: Counter[str] = field(default_factory=Counter)  # per SKU, the sum of negative events

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for name, platform, extra in ACCOUNTS:
            spec = PLATFORMS[platform]
            silences = Silences.drawn(f"{self.seed}-{name}")  # each seed its own readings
            if "sale_shows_in_read" in spec.settings.model_fields:
                extra = {**extra, "sale_shows_in_read": _sale_shows(f"{self.seed}-{name}", silences)}
            settings = spec.settings.model_validate(
                {"name": name, "platform": platform, "base_url": f"http://{name}.sim{spec.emulator_base_path}", **extra}
            )
            self.settings[name] = settings
            emulator = spec.emulator(settings)
            if hasattr(emulator, "clock"):  # token expiry and rate limits run on virtual time
                emulator.clock = lambda: self.clock.now.timestamp()
            emulator.wall = lambda: self.clock.now.timestamp()  # and order timestamps
            emulator.silences = silences
            for sku in self.skus:
                emulator.set_quantity(sku, self.rng.randint(0, 20))
            self.platforms[name] = emulator

    def boundary(self) -> None:
        """An I/O boundary: a little time passes, and maybe something happens on a platform."""
        self.clock.advance(0.01)
        if self.events_on and self.rng.random() < self.event_rate:
            self.external_event()

    def external_event(self) -> None:
        """A sale, a return or a hand edit on a random listing."""
        account = self.rng.choice(sorted(self.platforms))
        sku = self.rng.choice(self.skus)
        platform = self.platforms[account]
        current = platform.quantity(sku) or 0
        roll = self.rng.random()
        if roll < 0.7:
            units = min(current, self.rng.randint(1, 3))
            # Nothing to sell where the listing shows nothing (or less: a decrease that raced a sale).
            if units <= 0 or not platform.sell(sku, units):  # Ankorstore: a reservation
                return
            # Where the read shows a sale only at picking, the count moves then; the truth now.
            shown = 0 if platform.picks_before_it_shows else -units
            self._record(account, sku, shown, "sale", lowers=-units)
            return
        if roll < 0.8:
            # A warehouse picks in its own order where the read shows a sale only at picking.
            newest = {"newest": self.rng.random() < 0.3} if platform.sale_reading_unsaid else {}
            if platform.ship(sku, 1, **newest):  # Ankorstore: releases a reservation, available stays
                self._record(account, sku, (platform.quantity(sku) or 0) - current, "shipment", lowers=0)
            return
        if roll < 0.9:
            kind, delta = "return", self.rng.randint(1, 2)
        else:
            kind, delta = "hand_edit", self.rng.randint(0, 25) - current
            if delta == 0:
                return
        platform.set_quantity(sku, current + delta)
        self._record(account, sku, delta, kind)

    def _record(self, account: str, sku: str, delta: int, kind: str, lowers: int | None = None) -> None:
        """An external event: `delta` is what it did to the listing's count (what reads see),
        `lowers` what it took off the truth (by default, any fall of the count)."""
        self.events.append(Event(self.clock.now, account, sku, delta, kind))
        self.event_kinds[kind] += 1
        self.lowered[sku] += min(0, delta) if lowers is None else lowers

    def ship_everything(self) -> None:
        """Every order still to pick is picked and shipped (before the end's checks: a sale the
        read shows only at picking is then shown, and nothing is held back for it)."""
        for account, platform in sorted(self.platforms.items()):
            for sku in self.skus:
                before = platform.quantity(sku) or 0
                while platform.ship(sku, 1):
                    after = platform.quantity(sku) or 0
                    self._record(account, sku, after - before, "shipment", lowers=0)
                    before = after

    def external_total(self, sku: str) -> int:
        """Units that external events added to `sku` (negative for net sales)."""
        return sum(e.delta for e in self.events if e.sku == sku)

    def own_drops(self, since: dict[tuple[str, str], datetime]) -> Counter[tuple[str, str]]:
        """Per listing (account, sku), the units external events took off it since its time in
        `since` (since the start where it has none), as a negative number."""
        drops: Counter[tuple[str, str]] = Counter()
        for event in self.events:
            if event.delta < 0 and event.time >= since.get((event.account, event.sku), START):
                drops[(event.account, event.sku)] += event.delta
        return drops

    def held_elsewhere(self, since: dict[tuple[str, str], datetime]) -> Counter[tuple[str, str]]:
        """Per listing (account, sku): the units stocksync may lawfully keep off it for orders
        open on other accounts whose read may show a sale only at picking (`unknown`): orders open
        now, or open when the listing was last written (changed since its time in `since`)."""
        held: Counter[tuple[str, str]] = Counter()
        for other, platform in self.platforms.items():
            if getattr(self.settings[other], "sale_shows_in_read", None) != "unknown":
                continue
            for order in platform.book.orders.values():
                still = order.status in platform.cancellable
                for line in order.lines:
                    if order.item_status.get(line.line_id) == platform.cancelled_status:
                        continue
                    for account in self.platforms:
                        written = since.get((account, line.code), START).timestamp()
                        if account != other and (still or order.modified >= written):
                            held[(account, line.code)] += line.quantity
        return held

    def sales_by(self, account: str, sku: str, end: datetime) -> int:
        """How many orders were placed on the listing by `end` (one a sale event)."""
        return sum(
            1 for e in self.events if e.account == account and e.sku == sku and e.kind == "sale" and e.time <= end
        )

    def touched(self, account: str, sku: str, start: datetime, end: datetime) -> bool:
        """Whether an external event hit the listing between `start` and `end`."""
        return bool(self.kinds(account, sku, start, end))

    def kinds(self, account: str, sku: str, start: datetime, end: datetime) -> set[str]:
        """The kinds of external event that hit the listing between `start` and `end`."""
        return {e.kind for e in self.events if e.account == account and e.sku == sku and start <= e.time <= end}


def _sale_shows(key: str, silences: Silences) -> str:
    """The account's `sale_shows_in_read`: never `at_order` where the emulator shows a sale only
    at picking (that would be a wrong setting, not a silence); otherwise either, by the seed."""
    if not silences.reflects_sale_at_order:
        return "unknown"
    return "at_order" if random.Random(f"sale-shows-{key}").random() < 0.5 else "unknown"
