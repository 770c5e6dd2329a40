"""Faults an emulator injects on demand: queued one-shots for exact tests, or random rates.

Each fault says whether the request's effect stands:
- RATE_LIMIT and SERVER_ERROR refuse the request before it is applied;
- SERVER_ERROR_AFTER, LOST_RESPONSE and BAD_SHAPE apply it, then answer 500, drop the connection,
  or answer 200 with a body that breaks the document's shape.
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


@dataclass
class FaultPlan:
    """What to inject: queued faults first, then each fault kind at its rate."""

    rates: dict[Fault, float] = field(default_factory=dict)
    latency: float = 0.0
    retry_after: int = 1
    seed: int = 0
    injected: Counter[Fault] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queue: deque[tuple[Fault, bool]] = deque()
        self._lock = threading.Lock()

    def inject(self, fault: Fault, times: int = 1, *, writes_only: bool = False) -> None:
        """Queue `fault` for the next `times` requests (only requests that change stock, if asked)."""
        with self._lock:
            self._queue.extend([(fault, writes_only)] * times)

    def clear(self) -> None:
        """Drop queued faults and random rates."""
        with self._lock:
            self._queue.clear()
            self.rates = {}

    def draw(self, is_write: bool) -> Fault | None:
        """The fault for this request, if any."""
        with self._lock:
            for index, (fault, writes_only) in enumerate(self._queue):
                if is_write or not writes_only:
                    del self._queue[index]
                    self.injected[fault] += 1
                    return fault
            for fault, rate in self.rates.items():
                if rate > 0 and self._rng.random() < rate:
                    self.injected[fault] += 1
                    return fault
        return None
