"""OTO account settings: a refresh token and the inventory location to keep in step."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from sync.platforms.account import AccountSettings


class OtoSettings(AccountSettings):
    """`platform = "oto"`: `base_url` is `https://api.tryoto.com` (paths carry `/rest/v2`)."""

    # checkInventoryStock takes a comma-separated SKU list in the query string.
    default_batch_size: ClassVar[int] = 50

    platform: Literal["oto"]
    refresh_token: SecretStr
    location_code: str = Field(min_length=1)

    @classmethod
    def unreadable_code(cls, code: str) -> str | None:
        """Why this platform cannot read a listing with this code, or None if it can."""
        reason = super().unreadable_code(code)
        if reason is None and "," in code:
            return "OTO's checkInventoryStock takes a comma-separated sku list"
        return reason
