"""Short-lived bearer tokens shared by the platforms that use them (OTO, Ankorstore): fetched on
demand, renewed before they expire, dropped after a 401 so the next call fetches a new one (a
403 keeps it: the platform refuses the call, not the token)."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable, Mapping

from sync.platforms.http import PlatformHTTP

RENEW_EARLY = 300.0  # seconds before expiry


class BearerTokens(abc.ABC):
    """The TokenAuth of one account; a platform says how to ask for a token."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._access: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, http: PlatformHTTP) -> dict[str, str]:
        """`Authorization: Bearer ...`, fetching a token when there is none or it is about to expire."""
        async with self._lock:
            if self._access is None or self._clock() >= self._renew_at:
                token, lifetime = await self._request_token(http)
                self._access = token
                # Renew early: 5 minutes before expiry, or at 90% of a shorter lifetime.
                self._renew_at = self._clock() + lifetime - min(RENEW_EARLY, lifetime * 0.1)
            return {"Authorization": f"Bearer {self._access}"}

    def invalidate(self, refused: Mapping[str, str]) -> None:
        """Drop the access token these headers carried, unless another call already replaced
        it; the next call fetches a new one."""
        if refused.get("Authorization") == f"Bearer {self._access}":
            self._access = None

    @abc.abstractmethod
    async def _request_token(self, http: PlatformHTTP) -> tuple[str, float]:
        """Ask the platform for a token (an anonymous call); return it and its lifetime in seconds."""
