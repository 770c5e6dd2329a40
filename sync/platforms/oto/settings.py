"""OTO account settings: a refresh token and the inventory location to keep in step."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from sync.platforms.account import AccountSettings, SaleShows


class OtoSettings(AccountSettings):
    """`platform = "oto"`: `base_url` is `https://api.tryoto.com` (paths carry `/rest/v2`)."""

    # checkInventoryStock takes a comma-separated SKU list in the query string.
    default_batch_size: ClassVar[int] = 50
    comma_separated_read: ClassVar[str | None] = "OTO's checkInventoryStock"

    platform: Literal["oto"]
    refresh_token: SecretStr
    location_code: str = Field(min_length=1)
    # Whether `quantityOnHand` drops at the order or only at picking: the document does not say.
    sale_shows_in_read: SaleShows = "unknown"
