"""Oakra: order management (Thailand). Relative changes through `stock-records/change/`."""

from sync.platforms.oakra.adapter import OakraAdapter
from sync.platforms.oakra.emulator import OakraEmulator
from sync.platforms.oakra.settings import OakraSettings
from sync.platforms.spec import PlatformSpec

SPEC = PlatformSpec(
    name="oakra",
    settings=OakraSettings,
    adapter=OakraAdapter,
    emulator=lambda s: OakraEmulator(s.app_key.get_secret_value(), s.location_id),
    emulator_base_path="/api/v1",
)

__all__ = ["SPEC", "OakraAdapter", "OakraEmulator", "OakraSettings"]
