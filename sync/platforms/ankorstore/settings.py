"""Ankorstore account settings: OAuth2 client credentials."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import SecretStr

from sync.platforms.account import AccountSettings


class AnkorstoreSettings(AccountSettings):
    """`platform = "ankorstore"`: `base_url` is `https://www.ankorstore.com`."""

    # /api/v1/operations takes at most 50 operations; pages hold at most 50 variants.
    default_batch_size: ClassVar[int] = 50
    comma_separated_read: ClassVar[str | None] = "Ankorstore's filter[sku]"

    platform: Literal["ankorstore"]
    client_id: str
    client_secret: SecretStr
