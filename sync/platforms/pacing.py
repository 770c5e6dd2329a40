"""Pacing by a platform's published rate limit: `X-RateLimit-Remaining`, `X-RateLimit-Limit` and
`X-RateLimit-Reset` on each answer (Ankorstore's; the others publish none)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

# Once fewer than this share of a rate window's calls remain, calls are spaced so that what remains
# lasts until the window resets, rather than bursting into 429s.
PACE_BELOW = 0.25
RATE_WINDOW = 60.0  # seconds: the window of the one published limit (Ankorstore: 600 a minute)
MAX_WAITS = 60  # capped waits for one call's slot, or one pause: an hour of minute-long waits

Wait = Callable[[float, bool], Awaitable[None]]  # (seconds, paced): sleep, said and counted

# Calls made for a sale that just happened (the fast path): they skip the spacing, so a sweep
# paced by a limit running low never holds a sold unit back; a pause at 0 remaining holds them too.
_URGENT: ContextVar[bool] = ContextVar("stocksync_urgent_calls", default=False)


@contextmanager
def urgent_calls(urgent: bool = True) -> Iterator[None]:
    """Mark the calls made inside (in this task and the tasks it starts) as urgent, or not."""
    token = _URGENT.set(urgent)
    try:
        yield
    finally:
        _URGENT.reset(token)


class Pacer:
    """One account's pace: at 0 remaining, calls held until the reset; below `PACE_BELOW` of the
    limit, spaced so that the calls left last until the reset (or the limit's whole window where
    none is given), counting calls still on their way."""

    def __init__(self, clock: Callable[[], float], wait: Wait, windows: Mapping[int, float] | None = None) -> None:
        self._clock = clock
        self._wait = wait
        # The window each published limit counts over, where a platform documents several for one
        # header (Ankorstore: 600 a minute, 24,000 an hour, 288,000 a day); else `RATE_WINDOW`.
        self._windows = dict(windows or {})
        self._pause_until = 0.0  # no call before this time (a limit reached, until its reset)
        self._spacing = 0.0  # seconds between calls while the limit runs low
        self._next_call = 0.0
        self.in_flight = 0  # calls sent and not yet answered

    def note(self, response: httpx.Response) -> None:
        """Learn the pace from an answer's rate-limit headers."""
        remaining = _count_header(response, "X-RateLimit-Remaining")
        if remaining is None:
            return
        limit = _count_header(response, "X-RateLimit-Limit")
        reset = parse_retry_after(response.headers.get("X-RateLimit-Reset"))
        now = self._clock()
        if remaining == 0 and reset is not None:
            self._pause_until = max(self._pause_until, reset)
        left = remaining - self.in_flight  # the calls still on their way take from it too
        if limit is not None and left >= limit * PACE_BELOW:
            self._spacing = 0.0
            return
        window = self._windows.get(limit, RATE_WINDOW) if limit is not None else RATE_WINDOW
        horizon = reset - now if reset is not None and reset > now else window
        self._spacing = horizon / max(left, 1)

    @property
    def running_low(self) -> bool:
        """Whether the limit runs low: calls are spaced, or paused until it resets."""
        return self._spacing > 0 or self._clock() < self._pause_until

    async def before_call(self) -> None:
        """Wait for this call's slot (an urgent call takes none), and for any pause the limit calls for."""
        now = self._clock()
        if _URGENT.get():
            start = max(now, self._pause_until)
        else:
            start = max(now, self._pause_until, self._next_call)
            self._next_call = start + self._spacing  # a slot each: calls waiting together stay spaced
        # Each wait is capped (a minute), so a long one takes several: a slot the hour's limit
        # spaces out, or a pause, up to an hour in all.
        for _ in range(MAX_WAITS):
            now = self._clock()
            if now >= start:
                break
            await self._wait(start - now, self._spacing > 0)
        # The limit may have run out while this call waited for its slot: the pause holds it too.
        for _ in range(MAX_WAITS):
            now = self._clock()
            if now >= self._pause_until:
                break
            await self._wait(self._pause_until - now, False)


def _count_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if value.isdigit() else None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given as a number; None when absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)
