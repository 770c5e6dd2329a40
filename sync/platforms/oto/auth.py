"""OTO's short-lived access tokens: fetched from a refresh token, renewed before they expire and
once after a 401 (`{"message": "Jwt is expired"}`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sync.errors import AuthError, RetriableError
from sync.platforms.http import PlatformHTTP, json_body
from sync.platforms.oto.mapping import quantity, refused

REFRESH = "/rest/v2/refreshToken"
RENEW_EARLY = 300.0  # seconds before expiry


class OtoTokens:
    """Holds the refresh token and the current access token for one account."""

    def __init__(self, refresh_token: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_token = refresh_token
        self._clock = clock
        self._access: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0

    async def headers(self, http: PlatformHTTP) -> dict[str, str]:
        """`Authorization: Bearer ...`, fetching a token when there is none or it is about to expire."""
        async with self._lock:
            if self._access is None or self._clock() >= self._renew_at:
                await self._fetch(http)
            return {"Authorization": f"Bearer {self._access}"}

    def invalidate(self) -> None:
        """Drop the access token; the next call fetches a new one."""
        self._access = None

    async def _fetch(self, http: PlatformHTTP) -> None:
        where = f"oto {http.account}: POST {REFRESH}"
        response = await http.request(
            "POST", REFRESH, json={"refresh_token": self.refresh_token}, write=False, anonymous=True
        )
        payload = json_body(response, where)
        problem = refused(payload)
        if problem is not None:
            raise AuthError(f"{where}: refresh token refused ({problem}); check refresh_token")
        token = payload.get("access_token") if isinstance(payload, dict) else None
        lifetime = quantity(payload.get("expires_in")) if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token or lifetime is None:
            raise RetriableError(f"{where}: answer without access_token and expires_in")
        self._access = token
        # Renew early: 5 minutes before expiry, or at 90% of a shorter lifetime.
        self._renew_at = self._clock() + lifetime - min(RENEW_EARLY, lifetime * 0.1)
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            self.refresh_token = new_refresh  # OTO may rotate it
        self.fetched += 1
