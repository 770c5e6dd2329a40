"""A platform's published rate limit as rolling windows (Ankorstore documents three for one limit:
600 calls a minute, 24,000 an hour, 288,000 a day), and the headers it answers with."""

from __future__ import annotations

from collections import deque


class RateWindows:
    """Calls counted in rolling windows, each with its limit: a call is refused while any window is
    full. `X-RateLimit-Limit` and `-Remaining` speak of the window closest to its limit (the
    document says only "the current window"); `X-RateLimit-Reset` comes with a refusal only, as
    documented, in seconds since the epoch."""

    def __init__(self, limits: dict[float, int]) -> None:
        self.limits = dict(limits)  # window seconds -> calls allowed in it
        self._calls: dict[float, deque[float]] = {seconds: deque() for seconds in limits}

    def take(self, now: float) -> dict[str, str] | None:
        """Count a call at `now`; None when allowed, else the 429's headers."""
        self._expire(now)
        full = [seconds for seconds in self.limits if len(self._calls[seconds]) >= self.limits[seconds]]
        if full:
            reset = max(int(self._calls[seconds][0] + seconds) + 1 for seconds in full)
            binding = max(full)
            return {
                "Retry-After": str(max(1, int(reset - now))),
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Limit": str(self.limits[binding]),
                "X-RateLimit-Remaining": "0",
            }
        for calls in self._calls.values():
            calls.append(now)
        return None

    def headers(self, now: float) -> dict[str, str]:
        """The limit and what remains of it, in the window closest to its limit (the longer on a tie:
        its reset is the later)."""
        self._expire(now)
        binding = min(self.limits, key=lambda seconds: (self.limits[seconds] - len(self._calls[seconds]), -seconds))
        remaining = max(0, self.limits[binding] - len(self._calls[binding]))
        return {"X-RateLimit-Limit": str(self.limits[binding]), "X-RateLimit-Remaining": str(remaining)}

    def _expire(self, now: float) -> None:
        for seconds, calls in self._calls.items():
            while calls and calls[0] <= now - seconds:
                calls.popleft()
