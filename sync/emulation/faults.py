"""Faults an emulator injects on demand: queued one-shots for exact tests, or random rates.

Each fault says whether the request's effect stands:
- RATE_LIMIT and SERVER_ERROR refuse the request before it is applied;
- SERVER_ERROR_AFTER, LOST_RESPONSE and BAD_SHAPE apply it, then answer 500, drop the connection,
  or answer 200 with a body that breaks the document's shape.

The bad-read kinds (BAD_READS) meet stock reads only: the platform answers as usual and then the
answer lies, in the platform's own shape (`sync.emulation.bad_reads`); its state never changes. A
queued bad-read fault waits for the next stock read, as a `writes_only` one waits for a write.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum


class Fault(str, Enum):
    """One kind of injected failure."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    SERVER_ERROR_AFTER = "server_error_after"
    LOST_RESPONSE = "lost_response"
    BAD_SHAPE = "bad_shape"
    # Bad reads: a stock read's answer lies.
    EMPTY_READ = "empty_read"  # no listings at all
    ZERO_READ = "zero_read"  # every quantity 0
    SOME_ZEROS = "some_zeros"  # about half the entries read 0 or go missing
    WRONG_TYPES = "wrong_types"  # some quantities a string, null, a float, huge or negative
    TRUNCATED = "truncated"  # the body cut in the middle: not JSON
    DUPLICATE_SKU = "duplicate_sku"  # one entry twice, with a different quantity

    @property
    def is_bad_read(self) -> bool:
        """True for the kinds that corrupt a stock read's answer."""
        return self in BAD_READS


BAD_READS: tuple[Fault, ...] = (
    Fault.EMPTY_READ,
    Fault.ZERO_READ,
    Fault.SOME_ZEROS,
    Fault.WRONG_TYPES,
    Fault.TRUNCATED,
    Fault.DUPLICATE_SKU,
)


class Scope(str, Enum):
    """Which requests a queued fault may meet."""

    ANY = "any"
    WRITES = "writes"  # requests that change stock
    READS = "reads"  # stock reads


@dataclass
class FaultPlan:
    """What to inject: queued faults first, then each fault kind at its rate (bad-read kinds are
    drawn for stock reads only)."""

    rates: dict[Fault, float] = field(default_factory=dict)
    latency: float = 0.0
    # Seconds a change's answer is held back after the change was applied (a slow platform).
    write_answer_delay: float = 0.0
    retry_after: int = 1
    seed: int = 0
    injected: Counter[Fault] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queue: deque[tuple[Fault, Scope]] = deque()
        self._lock = threading.Lock()

    @property
    def rng(self) -> random.Random:
        """The plan's seeded randomness (bad reads choose their victims with it)."""
        return self._rng

    def inject(self, fault: Fault, times: int = 1, *, writes_only: bool = False, reads_only: bool = False) -> None:
        """Queue `fault` for the next `times` requests (only requests that change stock, or only
        stock reads, if asked; a bad-read fault always waits for a stock read)."""
        scope = Scope.READS if reads_only or fault.is_bad_read else Scope.WRITES if writes_only else Scope.ANY
        with self._lock:
            self._queue.extend([(fault, scope)] * times)

    def bad_reads(self, share: float = 0.15) -> None:
        """Make `share` of stock reads lie, spread evenly over the six bad-read kinds (each kind's
        rate is set so that one of them meets a read with probability `share`)."""
        each = 1 - (1 - share) ** (1 / len(BAD_READS))
        with self._lock:
            self.rates.update(dict.fromkeys(BAD_READS, each))

    def clear(self) -> None:
        """Drop queued faults and random rates."""
        with self._lock:
            self._queue.clear()
            self.rates = {}

    def draw(self, is_write: bool, is_read: bool = False) -> Fault | None:
        """The fault for this request, if any; `is_read` marks a stock read."""
        with self._lock:
            for index, (fault, scope) in enumerate(self._queue):
                if scope is Scope.ANY or (scope is Scope.WRITES and is_write) or (scope is Scope.READS and is_read):
                    del self._queue[index]
                    self.injected[fault] += 1
                    return fault
            for fault, rate in self.rates.items():
                if fault.is_bad_read and not is_read:
                    continue
                if rate > 0 and self._rng.random() < rate:
                    self.injected[fault] += 1
                    return fault
        return None
