"""Ankorstore account settings: OAuth2 client credentials."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import SecretStr

from sync.platforms.account import AccountSettings


class AnkorstoreSettings(AccountSettings):
    """`platform = "ankorstore"`: `base_url` is `https://www.ankorstore.com`."""

    # /api/v1/operations takes at most 50 operations; pages hold at most 50 variants.
    default_batch_size: ClassVar[int] = 50

    platform: Literal["ankorstore"]
    client_id: str
    client_secret: SecretStr

    @classmethod
    def unreadable_code(cls, code: str) -> str | None:
        """Why this platform cannot read a listing with this code, or None if it can."""
        reason = super().unreadable_code(code)
        if reason is None and "," in code:
            return "Ankorstore's filter[sku] takes a comma-separated sku list"
        return reason
