"""Graas account settings: account number, app key and the warehouse to keep in step."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from sync.platforms.account import AccountSettings, SaleShows


class GraasSettings(AccountSettings):
    """`platform = "graas"`: `base_url` is `https://HOST`, the part before `/v1/...`."""

    default_batch_size: ClassVar[int] = 50

    platform: Literal["graas"]
    account_number: str = Field(min_length=1)
    app_key: SecretStr
    warehouse_id: str = Field(min_length=1)
    # Whether the read `quantity` drops at the order or only at picking: the document does not say.
    sale_shows_in_read: SaleShows = "unknown"
