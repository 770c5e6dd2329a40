"""Graas: multichannel commerce (South-East Asia). Relative changes through `quantityDiffList`."""

from sync.platforms.graas.adapter import GraasAdapter
from sync.platforms.graas.emulator import GraasEmulator
from sync.platforms.graas.settings import GraasSettings
from sync.platforms.spec import PlatformSpec

SPEC = PlatformSpec(
    name="graas",
    settings=GraasSettings,
    adapter=GraasAdapter,
    emulator=lambda s: GraasEmulator(s.account_number, s.app_key.get_secret_value(), s.warehouse_id),
    emulator_base_path="",
)

__all__ = ["SPEC", "GraasAdapter", "GraasEmulator", "GraasSettings"]
