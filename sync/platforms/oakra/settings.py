"""Oakra account settings: an app key and the stock location to keep in step."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from sync.platforms.account import AccountSettings


class OakraSettings(AccountSettings):
    """`platform = "oakra"`: `base_url` is `https://app.oakra.com/api/v1` in production."""

    # Repeated `sku` query parameters: 100 keeps a URL well under common 8 KiB limits.
    default_batch_size: ClassVar[int] = 100

    platform: Literal["oakra"]
    app_key: SecretStr
    location_id: str = Field(min_length=1)
