"""OTO's access tokens: `POST /rest/v2/refreshToken` with the refresh token; `expires_in` arrives
as a string, and the answer may carry a new refresh token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from sync.errors import AuthError, RetriableError, SyncError
from sync.platforms.http import PlatformHTTP, TokenKeeper, json_body
from sync.platforms.oto.mapping import quantity, refused
from sync.platforms.tokens import BearerTokens

REFRESH = "/rest/v2/refreshToken"
log = structlog.get_logger(__name__)


class OtoTokens(BearerTokens):
    """Holds the refresh token (it may rotate: `keeper` keeps the new one across restarts) and
    the current access token."""

    def __init__(
        self, refresh_token: str, keeper: TokenKeeper | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(clock)
        self.configured = refresh_token
        self.refresh_token = refresh_token
        self._keeper = keeper
        self._recalled = keeper is None

    async def _request_token(self, http: PlatformHTTP) -> tuple[str, float]:
        where = f"oto {http.account}: POST {REFRESH}"
        self._recall(http.account)
        try:
            response = await self._refresh(http)
        except AuthError:
            # Another process on this ledger (a replica, a one-off reconcile) may have traded the
            # token and kept its replacement: that one, once, before giving up.
            if not self._recall(http.account, again=True):
                raise
            response = await self._refresh(http)
        payload = json_body(response, where)
        problem = refused(payload)
        if problem is not None:
            raise AuthError(f"{where}: refresh token refused ({problem}); check refresh_token")
        token = payload.get("access_token") if isinstance(payload, dict) else None
        lifetime = quantity(payload.get("expires_in")) if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token or lifetime is None:
            raise RetriableError(f"{where}: answer without access_token and expires_in")
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and new_refresh != self.refresh_token:
            self.refresh_token = new_refresh
            self._keep(http.account)
        return token, float(lifetime)

    async def _refresh(self, http: PlatformHTTP) -> Any:
        return await http.request(
            "POST", REFRESH, json={"refresh_token": self.refresh_token}, write=False, anonymous=True
        )

    def _recall(self, account: str, *, again: bool = False) -> bool:
        """The refresh token that replaced the configured one, if the ledger kept one: once, or
        `again`. Returns whether it differs from the one held."""
        if (self._recalled and not again) or self._keeper is None:
            return False
        self._recalled = True
        kept = self._keeper.load(account, self.configured)
        if not kept or kept == self.refresh_token:
            return False
        self.refresh_token = kept
        return True

    def _keep(self, account: str) -> None:
        if self._keeper is None:
            return
        try:
            self._keeper.save(account, self.configured, self.refresh_token)
        except SyncError as err:
            # The token works now; after a restart the configured one may not. Say so loudly.
            log.error("oto.refresh_token_not_kept", account=account, error=err.message)
