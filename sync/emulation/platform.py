"""The part every emulated platform shares: a lock around its state, fault injection around its
routes (lying stock reads included), a sales ledger for checking results, call counts, and the
orders its customers place."""

from __future__ import annotations

import abc
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from sync.emulation.bad_reads import BadRead
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.orders import EmuOrder, OrderBook
from sync.emulation.silences import Silences
from sync.emulation.wire import EmuRequest, EmuResponse, LostResponse


class EmulatedPlatform(abc.ABC):
    """A platform's state and routes; subclasses implement `route` and the stock primitives."""

    def __init__(self, faults: FaultPlan | None = None, silences: Silences | None = None) -> None:
        self.faults = faults or FaultPlan()
        # Where the document is silent, the reading this emulator follows (each seed its own).
        self.silences = silences or Silences.drawn(self.faults.seed)
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.sold: Counter[str] = Counter()
        # Every relative change applied through the API, as (code, delta): what tests compare
        # against the ledger's confirmed pushes to prove no change was applied twice.
        self.applied: list[tuple[str, int]] = []
        # Called after each answered request, outside the lock: lets a test land a sale exactly
        # between stocksync's read and its push.
        self.after_request: Callable[[EmuRequest], None] | None = None
        # Wall-clock time for order timestamps (tests may move it).
        self.wall: Callable[[], float] = time.time
        self.book = OrderBook(lambda: self.wall(), self.order_id)
        self.cancelled_by_api: list[str] = []  # order ids cancelled through the API, in order
        self.lies: list[BadRead] = []  # every stock read that lied, in order
        # Units sold and not yet picked, where the stock read shows a sale only once its order is
        # picked (`picks_before_it_shows`): the platform's count still holds them.
        self.unpicked: Counter[str] = Counter()

    def handle(self, request: EmuRequest) -> EmuResponse:
        """Answer one request with faults applied around the route."""
        if self.faults.latency:
            time.sleep(self.faults.latency)
        # Token requests are left unfaulted so that a queued fault meets the call it is meant for.
        fault = (
            None
            if request.path in self.auth_paths
            else self.faults.draw(self.changes_stock(request), self.is_stock_read(request))
        )
        with self.lock:
            self.calls[f"{request.method} {request.path}"] += 1
            if fault is Fault.RATE_LIMIT:
                return self.rate_limited()
            if fault is Fault.SERVER_ERROR:
                return EmuResponse(500, {"message": "Internal Server Error"})
            response = self.route(request)
        if self.faults.write_answer_delay and self.changes_stock(request) and request.path not in self.auth_paths:
            time.sleep(self.faults.write_answer_delay)  # applied already; the answer is slow
        if fault is Fault.LOST_RESPONSE:
            raise LostResponse()
        if fault is Fault.SERVER_ERROR_AFTER:
            return EmuResponse(502, raw=b"<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})
        if fault is Fault.BAD_SHAPE and response.status < 300:
            return EmuResponse(200, {"unexpected": "shape"})
        if fault is not None and fault.is_bad_read and response.status < 300:
            response = self.corrupt_read(response, fault, self.faults.rng)
        if self.after_request is not None:
            self.after_request(request)
        return response

    def rate_limited(self) -> EmuResponse:
        """A 429 answer with `Retry-After`."""
        return EmuResponse(429, {"message": "Too Many Requests"}, {"Retry-After": str(self.faults.retry_after)})

    def changes_stock(self, request: EmuRequest) -> bool:
        """True for a request that may change a quantity (the ones whose lost answer matters)."""
        return request.method != "GET"

    def is_stock_read(self, request: EmuRequest) -> bool:
        """True for a request that reads stock quantities (the only kind a bad-read fault meets)."""
        return False

    def corrupt_read(self, response: EmuResponse, fault: Fault, rng: random.Random) -> EmuResponse:
        """The stock-read answer `response` made to lie as `fault` says (see `bad_reads`)."""
        raise NotImplementedError(f"{type(self).__name__} does not emulate bad reads")

    def told(self, lie: tuple[EmuResponse, BadRead]) -> EmuResponse:
        """Record a lying answer (`lies`) and return it."""
        response, record = lie
        with self.lock:
            self.lies.append(record)
        return response

    @abc.abstractmethod
    def route(self, request: EmuRequest) -> EmuResponse:
        """Answer a request that no fault intercepted (called under the lock)."""

    @abc.abstractmethod
    def quantity(self, code: str) -> int | None:
        """The listing's quantity, or None when the platform does not list the code."""

    @abc.abstractmethod
    def set_quantity(self, code: str, quantity: int) -> None:
        """Create or overwrite a listing, as a seller editing it by hand would."""

    @abc.abstractmethod
    def codes(self) -> list[str]:
        """Every code the platform lists."""

    # The platform's words for an order's status.
    new_status = "new"
    cancelled_status = "cancelled"
    cancellable: frozenset[str] = frozenset({"new"})
    shipped_status = "shipped"
    # Where the platform documents an open status a picked order waits in (OTO's example: picked
    # while `assignedToWarehouse`, then `searchingDriver` for days), picking moves it there.
    picked_status: str | None = None
    # Whether the document leaves open when a sale leaves the stock read: at the order, or only
    # once the order is picked (OTO's `quantityOnHand`, Graas's `quantity`). Where it does, the
    # emulator follows its silences (`reflects_sale_at_order`).
    sale_reading_unsaid = False

    @property
    def picks_before_it_shows(self) -> bool:
        """Whether a sale stays in the stock read until its order is picked (this emulator's reading)."""
        return self.sale_reading_unsaid and not self.silences.reflects_sale_at_order

    def available(self, code: str) -> int | None:
        """What a customer can buy: the count less the units sold and not yet picked."""
        current = self.quantity(code)
        return None if current is None else current - self.unpicked[code]

    def order_id(self, seq: int) -> str:
        """The platform's id for the `seq`-th order."""
        return str(100000000 + seq)

    def sell(self, code: str, units: int = 1) -> EmuOrder | None:
        """A customer buys `units` if the platform shows them: the stock drops and an order is
        placed. Returns the order, or None when the units were not there."""
        return self.sell_together({code: units})

    def sells_past_zero(self, code: str) -> bool:
        """Whether the listing takes orders for units it does not show (none does by default)."""
        return False

    def sell_together(self, items: dict[str, int]) -> EmuOrder | None:
        """A customer buys several codes in one order, if the platform shows every one of them."""
        with self.lock:
            for code, units in items.items():
                current = self.available(code)
                if current is None or (current < units and not self.sells_past_zero(code)):
                    return None
            for code, units in items.items():
                self.take(code, units)
                self.sold[code] += units
            return self.book.place_lines(items.items(), self.new_status)

    def take(self, code: str, units: int) -> None:
        """What a sale does to stock: the listing shows `units` fewer (at picking, where the
        emulator's reading says so: until then they are only set aside)."""
        if self.picks_before_it_shows:
            self.unpicked[code] += units
            return
        current = self.quantity(code) or 0
        self.set_quantity(code, current - units)

    def give_back(self, code: str, units: int) -> None:
        """What a cancellation before picking does to stock: the units show again (or, where the
        sale never showed, are no longer set aside)."""
        if self.picks_before_it_shows:
            self.unpicked[code] -= units
            return
        self.set_quantity(code, (self.quantity(code) or 0) + units)

    def ship(self, code: str, units: int = 1, *, newest: bool = False) -> bool:
        """The oldest (or newest) order for `code` not yet picked is picked and shipped (whole:
        `units` is ignored; no document says a warehouse picks in turn). Where the stock read
        shows a sale only at picking, its units leave it now."""
        with self.lock:
            order = self.book.oldest(code, self.cancellable, newest=newest)
            if order is None:
                return False
            for line in order.lines:
                if order.item_status.get(line.line_id) == self.cancelled_status:
                    continue
                if self.picks_before_it_shows:
                    self.unpicked[line.code] -= line.quantity
                    self.set_quantity(line.code, (self.quantity(line.code) or 0) - line.quantity)
            order.move_to(self.picked_status or self.shipped_status, self.wall())
            return True

    def cancel(self, order_id: str) -> bool:
        """Cancel an order that is still cancellable, giving its units back; False otherwise."""
        with self.lock:
            order = self.book.orders.get(order_id)
            if order is None or order.status not in self.cancellable:
                return False
            for line in order.lines:
                if order.item_status.get(line.line_id) != self.cancelled_status:  # not given back already
                    self.give_back(line.code, line.quantity)
            order.move_to(self.cancelled_status, self.wall())
            return True

    def cancel_through_api(self, order_id: str) -> bool:
        """`cancel`, recorded as done by a client (what tests count)."""
        done = self.cancel(order_id)
        if done:
            self.cancelled_by_api.append(order_id)
        return done

    # Paths that only fetch credentials (a token endpoint): not counted as API calls.
    auth_paths: frozenset[str] = frozenset()
    catalogue_paths: frozenset[str] = frozenset()  # reads of catalogue facts, not of stock

    def api_calls(self, *, catalogue: bool = True) -> int:
        """How many requests reached the routes (faulted ones included), token requests aside, and
        the reads of catalogue facts too unless `catalogue` is False (Ankorstore's products list)."""
        left_out = self.auth_paths if catalogue else self.auth_paths | self.catalogue_paths
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1] not in left_out)
