"""The write gate: platform writes leave only while this reconciler still holds its lease.

The engine sets a gate for the duration of a cycle (a context variable, so concurrent tasks and
threads started from the cycle see it, and shards in one process each see their own); the HTTP
layer calls `before_write` before every attempt of a write, retries and Retry-After waits
included. A write refused here was never sent: nothing can have been applied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sync.errors import RetriableError


class FencedOff(RetriableError):
    """This reconciler no longer holds its lease: the write was not sent."""


_GATE: ContextVar[Callable[[], None] | None] = ContextVar("write_gate", default=None)


@contextmanager
def write_gate(check: Callable[[], None]) -> Iterator[None]:
    """Run the block with `check` (raising FencedOff to refuse) called before every platform write."""
    token = _GATE.set(check)
    try:
        yield
    finally:
        _GATE.reset(token)


def before_write() -> None:
    """Raise FencedOff when the current gate refuses a write (no gate: writes are free)."""
    gate = _GATE.get()
    if gate is not None:
        gate()
