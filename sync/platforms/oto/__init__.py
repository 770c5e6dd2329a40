"""OTO: fulfilment (Middle East). Relative changes through `updateStockQuantity` with `adjust`."""

from sync.platforms.oto.adapter import OtoAdapter
from sync.platforms.oto.emulator import OtoEmulator
from sync.platforms.oto.settings import OtoSettings
from sync.platforms.spec import PlatformSpec

SPEC = PlatformSpec(
    name="oto",
    settings=OtoSettings,
    adapter=OtoAdapter,
    emulator=lambda s: OtoEmulator(s.refresh_token.get_secret_value(), s.location_code),
    emulator_base_path="",
)

__all__ = ["SPEC", "OtoAdapter", "OtoEmulator", "OtoSettings"]
