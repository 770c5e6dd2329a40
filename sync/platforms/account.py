"""Settings every account has, whatever its platform; each platform subclasses them with its own
credentials and location."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# C0 and C1 control characters, DEL included: no platform's read or write carries them faithfully.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# When a platform's stock read shows a sale, where its document does not say: `at_order` (the
# operator has seen it drop as the order is placed) or `unknown` (it may drop only at picking:
# stocksync holds the units back from the other platforms until a read shows them).
SaleShows = Literal["at_order", "unknown"]


class AccountSettings(BaseModel):
    """One connection to a platform, as written under `[[accounts]]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Platform defaults, overridden per platform.
    default_batch_size: ClassVar[int] = 50
    # The read that takes SKUs as one comma-separated list (a code with a comma cannot be read).
    comma_separated_read: ClassVar[str | None] = None

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    platform: str
    base_url: str
    buffer: int = Field(default=0, ge=0)
    max_quantity: int | None = Field(default=None, ge=0)
    aliases: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    concurrency: int = Field(default=4, ge=1, le=64)
    batch_size: int | None = Field(default=None, ge=1, le=1000)
    # What to do with this account's orders that an oversell leaves unfillable.
    oversell_policy: Literal["alert", "cancel"] = "alert"

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def sale_may_show_late(self) -> bool:
        """Whether this account's stock read may show a sale only once its order is picked: where
        the platform's document does not say (`sale_shows_in_read`), unless the operator does."""
        return getattr(self, "sale_shows_in_read", "at_order") == "unknown"

    @property
    def effective_batch_size(self) -> int:
        """The batch size in force: the configured one or the platform's default."""
        return self.batch_size or self.default_batch_size

    def code_for(self, sku: str) -> str:
        """The SKU as this platform spells it."""
        return self.aliases.get(sku, sku)

    @classmethod
    def unreadable_code(cls, code: str) -> str | None:
        """Why this platform cannot read a listing with this code, or None if it can."""
        if not code:
            return "the code is empty"
        if code != code.strip():
            return "the code has leading or trailing whitespace"
        if _CONTROL.search(code):
            return "the code contains a control character"
        if cls.comma_separated_read is not None and "," in code:
            return f"{cls.comma_separated_read} takes a comma-separated sku list"
        return None

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Names of the credential fields, which may also come from `${ENV}` or `<name>_file`."""
        return [name for name, info in cls.model_fields.items() if info.annotation is SecretStr]

    def secret_values(self) -> list[str]:
        """The plain credential values, so that logs can redact them."""
        return [getattr(self, name).get_secret_value() for name in self.secret_fields()]
