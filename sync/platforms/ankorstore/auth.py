"""Ankorstore's OAuth2 client credentials: `POST /oauth/token`, a bearer token valid an hour. The
token endpoint allows 60 requests an hour, so the token is cached and renewed early."""

from __future__ import annotations

from sync.errors import RetriableError
from sync.platforms.http import PlatformHTTP, json_body
from sync.platforms.tokens import BearerTokens
from sync.platforms.values import is_int

TOKEN = "/oauth/token"


class AnkorstoreTokens(BearerTokens):
    """Client-credentials tokens for one account."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret

    async def _request_token(self, http: PlatformHTTP) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "*",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        response = await http.request("POST", TOKEN, data=form, headers=headers, write=False, anonymous=True)
        payload = json_body(response, f"ankorstore {http.account}: POST {TOKEN}")
        token = payload.get("access_token") if isinstance(payload, dict) else None
        lifetime = payload.get("expires_in") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token or not is_int(lifetime):
            raise RetriableError(f"ankorstore {http.account}: POST {TOKEN}: answer without access_token and expires_in")
        return token, float(lifetime)
