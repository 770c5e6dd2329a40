"""Ankorstore: wholesale marketplace (Europe). Absolute stock only: made safe by the adapter."""

from sync.platforms.ankorstore.adapter import AnkorstoreAdapter
from sync.platforms.ankorstore.emulator import AnkorstoreEmulator
from sync.platforms.ankorstore.settings import AnkorstoreSettings
from sync.platforms.spec import PlatformSpec

SPEC = PlatformSpec(
    name="ankorstore",
    settings=AnkorstoreSettings,
    adapter=AnkorstoreAdapter,
    emulator=lambda s: AnkorstoreEmulator(s.client_id, s.client_secret.get_secret_value()),
    emulator_base_path="",
)

__all__ = ["SPEC", "AnkorstoreAdapter", "AnkorstoreEmulator", "AnkorstoreSettings"]
