"""OTO's access tokens: `POST /rest/v2/refreshToken` with the refresh token; `expires_in` arrives
as a string, and the answer may carry a new refresh token."""

from __future__ import annotations

import time
from collections.abc import Callable

from sync.errors import AuthError, RetriableError
from sync.platforms.http import PlatformHTTP, json_body
from sync.platforms.oto.mapping import quantity, refused
from sync.platforms.tokens import BearerTokens

REFRESH = "/rest/v2/refreshToken"


class OtoTokens(BearerTokens):
    """Holds the refresh token (it may rotate) and the current access token."""

    def __init__(self, refresh_token: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.refresh_token = refresh_token

    async def _request_token(self, http: PlatformHTTP) -> tuple[str, float]:
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
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            self.refresh_token = new_refresh
        return token, float(lifetime)
