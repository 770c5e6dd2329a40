"""What every platform adapter offers the engine: batched reads and batched relative changes.

An adapter speaks in platform codes (the SKU as the platform spells it, after aliases) and in the
errors of `sync.errors`. It never raises a third-party exception.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TypeVar

from sync.errors import ReadProblem, SyncError
from sync.platforms.feeds import at_rest

T = TypeVar("T")


@dataclass(frozen=True)
class Observed:
    """One listing as the platform showed it: its code, quantity and the platform's own reference."""

    code: str
    quantity: int
    ref: str


@dataclass(frozen=True)
class Refusal:
    """An answer refused whole: the codes it was asked for, and why."""

    codes: tuple[str, ...]
    problem: ReadProblem
    reason: str


@dataclass(frozen=True)
class ReadResult:
    """A batch read: the listings seen; the codes not tracked there (code -> reason, e.g. always in
    stock); the codes whose value could not be believed (code -> reason, a bad read); the answers
    refused whole; and the codes each answer was asked for.

    A code in none of these maps was not listed on the platform: unobserved, never zero.
    """

    observed: dict[str, Observed] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    answers: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """A relative change to send to one listing; `observed` is the accepted read its delta was
    computed from (an absolute-set platform checks its fresh read against it)."""

    code: str
    ref: str
    delta: int
    observed: int | None = None
    push_id: int | None = None  # the ledger's outbox row, for what an absolute set records
    alone: bool = False  # sent in a request of its own (its last batch was rejected)


# Called by an absolute-set adapter after its fresh read and before the set leaves, with each
# change's fresh quantity and what the set will really move: the ledger records them first, so a
# lost answer is judged against what was set (a clamp at zero included).
SetRecorder = Callable[[Sequence[tuple[Change, int, int]]], None]


class Outcome(str, Enum):
    """What became of one change."""

    CONFIRMED = "confirmed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True)
class PushResult:
    """The outcome of one change, with the quantity the platform answered when it said one."""

    change: Change
    outcome: Outcome
    detail: str = ""
    answer_quantity: int | None = None
    error: SyncError | None = None
    # What the platform really moved when it differs from the change's delta (an absolute set
    # clamped at zero); None means exactly the delta.
    applied_delta: int | None = None


class OrderState(str, Enum):
    """What an order means for stock, whatever the platform calls its status."""

    OPEN = "open"  # the units left the listing; the order can still be cancelled
    FULFILLED = "fulfilled"  # shipped or further: the units are gone for good
    CANCELLED = "cancelled"  # cancelled or rejected: the units went back to the listing
    # Cancelled by the seller, awaiting the platform's approval: its units may come back at any
    # moment until the platform says it is cancelled (or never, should the platform refuse).
    RELEASING = "releasing"
    RETURNED = "returned"  # returned by the buyer


@dataclass(frozen=True)
class OrderLine:
    """One line of an order: the platform code sold and how many units, and the line's own state
    where the platform gives each item one (None: the order's)."""

    line_id: str
    code: str
    quantity: int
    state: OrderState | None = None


@dataclass(frozen=True)
class OrderRecord:
    """An order as a feed reported it. `handle` holds what the platform needs to cancel it."""

    order_id: str
    status: str
    state: OrderState
    placed_at: datetime
    lines: tuple[OrderLine, ...]
    handle: Mapping[str, str] = field(default_factory=dict)
    # The latest its stock can have moved, where the platform gives a time later than `placed_at`
    # for it (Graas: when the order reached Graas, after the marketplace created it).
    moved_by: datetime | None = None


@dataclass(frozen=True)
class OrderPage:
    """One page of a feed: its orders, the cursor to store once they are booked, and whether the
    feed has more to read right now."""

    orders: list[OrderRecord]
    cursor: str
    more: bool
    # On a page that ends a poll: a time before which every order placed has been seen, where
    # the adapter knows one beyond `poll_vouches` (OTO: when its last whole-window read began,
    # however many polls that read took).
    read_through: datetime | None = None


@dataclass(frozen=True)
class CancelResult:
    """What became of a request to cancel (or reject) an order; `retry` marks a failure that
    certainly reached nothing (safe to send again later)."""

    outcome: Outcome
    detail: str = ""
    retry: bool = False


class Adapter(abc.ABC):
    """One account on one platform."""

    platform: str = ""
    # Whether the platform documents an order list this adapter reads (Oakra does not).
    has_order_feed: bool = False
    # Seconds an order's timestamp may fall short of when it happened (whole seconds: 1.0); None
    # where its times do not bound when the listing's stock moved (OTO: set by whoever created the
    # order, in no documented time zone), so only when we first saw the order does.
    order_time_precision: float | None = 0.0
    # Whether this adapter writes absolute values, recording each set's fresh read (`before_set`)
    # before the set leaves: a push marked sent with no fresh read recorded never left.
    records_before_set: bool = False
    # Statuses of an order still open (cancellable, not shipped) whose units the warehouse has
    # picked: out of a stock read that shows a sale only at picking (OTO's `searchingDriver`).
    picked_statuses: frozenset[str] = frozenset()

    @property
    def sale_may_show_late(self) -> bool:
        """Whether this account's stock read may show a sale only once its order is picked, not
        at the order (its document does not say, and the account's settings do not either)."""
        return False

    @abc.abstractmethod
    async def read(self, codes: Sequence[str]) -> ReadResult:
        """Read the quantity of every code, in as few calls as the platform allows.

        Raises a `SyncError` when the account cannot be read at all.
        """

    @abc.abstractmethod
    async def push(self, changes: Sequence[Change], *, before_set: SetRecorder | None = None) -> list[PushResult]:
        """Send relative changes; one result per change, in order. Never raises for one bad change.
        An adapter that writes absolute values calls `before_set` before each set leaves."""

    async def read_orders(self, cursor: str | None, now: datetime, since: datetime) -> OrderPage:
        """Read the next page of the order feed after `cursor` (None: start at `since`).

        Raises a `SyncError` when the feed cannot be read."""
        raise NotImplementedError(f"{self.platform} has no order feed")

    def poll_vouches(self, cursor: str | None, now: datetime) -> bool:
        """Whether a poll starting from `cursor` at `now` and read to its end will have seen every
        order placed before it began: one that starts a new scan or window (`at_rest`)."""
        return at_rest(cursor)

    def vouching_cursor(self, cursor: str | None, now: datetime) -> str | None:
        """A cursor to start from instead of `cursor` so that the poll vouches (`poll_vouches`),
        asked when pushes in doubt wait on the feed; None to keep `cursor`."""
        return None

    # Whether `read_order_status` reads one order (platforms whose feed cannot see every status
    # change: the feed reads only the ends of a list with no "updated since" filter).
    rechecks_orders: bool = False

    @property
    def running_low(self) -> bool:
        """Whether the platform's rate limit runs low now: calls that can wait (rechecks) should."""
        return False

    async def read_order_status(self, order_id: str) -> tuple[str, OrderState] | None:
        """The status of one order by its id, from the platform's single-order read; None when
        the platform no longer knows the order. Raises a `SyncError` when it cannot be read."""
        raise NotImplementedError(f"{self.platform} has no single-order read")

    async def cancel_order(self, order: OrderRecord) -> CancelResult:
        """Cancel or reject an order that cannot be filled, with the platform's out-of-stock reason."""
        raise NotImplementedError(f"{self.platform} cannot cancel orders")

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the connections."""


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Split a sequence into lists of at most `size` items."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def failed_all(changes: Sequence[Change], error: SyncError) -> list[PushResult]:
    """Results for a batch the platform certainly did not apply."""
    return [PushResult(c, Outcome.FAILED, error.message, error=error) for c in changes]


def in_doubt_all(changes: Sequence[Change], error: SyncError) -> list[PushResult]:
    """Results for a batch whose answer was lost: each change may or may not have been applied."""
    return [PushResult(c, Outcome.IN_DOUBT, error.message, error=error) for c in changes]
