"""Platforms, one folder each. Adding a platform means one folder and one line in `PLATFORMS`."""

from __future__ import annotations

from sync.platforms import ankorstore, graas, oakra, oto
from sync.platforms.account import AccountSettings
from sync.platforms.base import Adapter
from sync.platforms.spec import PlatformSpec

PLATFORMS: dict[str, PlatformSpec] = {spec.name: spec for spec in (oakra.SPEC, graas.SPEC, oto.SPEC, ankorstore.SPEC)}


def build_adapter(settings: AccountSettings, **kwargs: object) -> Adapter:
    """The adapter for one configured account."""
    return PLATFORMS[settings.platform].adapter(settings, **kwargs)


__all__ = ["PLATFORMS", "PlatformSpec", "build_adapter", "AccountSettings", "Adapter"]
