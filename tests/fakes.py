"""Test helpers: emulated accounts on loopback, configurations pointing at them, a fresh ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sync.config import Config
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.server import EmulatorServer
from sync.platforms import PLATFORMS

CREDENTIALS: dict[str, dict[str, str]] = {
    "oakra": {"app_key": "oakra-secret-key-0001", "location_id": "warehouse-1"},
    "graas": {
        "account_number": "5dd3dad95c11180004117c4d1",
        "app_key": "graas-secret-key-0002",
        "warehouse_id": "MyStock-1",
    },
    "oto": {"refresh_token": "AMf-oto-refresh-token-0003", "location_code": "DMW"},
    "ankorstore": {"client_id": "ankorstore-client-0004", "client_secret": "ankorstore-secret-0005"},
}


def account_entry(name: str, platform: str, base_url: str, **extra: Any) -> dict[str, Any]:
    """An `[[accounts]]` entry for an emulator at `base_url`, with the test credentials."""
    creds = dict(CREDENTIALS[platform])
    if platform == "oakra":
        creds["app_key"] = f"{creds['app_key']}-{name}"
    return {"name": name, "platform": platform, "base_url": base_url, **creds, **extra}


@dataclass
class Fleet:
    """Running emulators, one per account, and the config entries that reach them."""

    platforms: dict[str, EmulatedPlatform] = field(default_factory=dict)
    servers: dict[str, EmulatorServer] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def config(self, db_url: str, skus: list[str], **sections: Any) -> Config:
        """A validated Config for these accounts and `skus`."""
        return Config.model_validate(
            {"database": {"url": db_url}, "accounts": self.entries, "skus": tuple(skus), **sections}
        )

    def toml(self, db_url: str, skus: list[str], extra: str = "") -> str:
        """The same configuration as TOML text, for CLI tests."""
        lines = [f'[database]\nurl = "{db_url}"\n', f"[catalog]\nskus = {skus!r}\n".replace("'", '"'), extra]
        for entry in self.entries:
            lines.append("[[accounts]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@contextmanager
def fleet(*accounts: tuple[str, str] | tuple[str, str, dict[str, Any]]) -> Iterator[Fleet]:
    """Start one emulator per (name, platform[, extra settings]) on loopback; stop them after."""
    result = Fleet()
    try:
        for item in accounts:
            name, platform = item[0], item[1]
            extra = item[2] if len(item) > 2 else {}  # type: ignore[misc]
            spec = PLATFORMS[platform]
            if "sale_shows_in_read" in spec.settings.model_fields:  # as the emulator below does
                extra = {"sale_shows_in_read": "at_order", **extra}
            probe = account_entry(name, platform, "http://127.0.0.1:1")
            emulator = spec.emulator(spec.settings.model_validate(probe))
            # A read shows a sale at the order here, and the account says so; tests/test_picking.py
            # and the simulator run the other reading too (a test about it sets both).
            emulator.silences.reflects_sale_at_order = True
            server = EmulatorServer(emulator).start()
            result.platforms[name] = emulator
            result.servers[name] = server
            result.entries.append(account_entry(name, platform, server.url + spec.emulator_base_path, **extra))
        yield result
    finally:
        for server in result.servers.values():
            server.stop()


class MemoryKeeper:
    """A TokenKeeper holding rotated tokens in memory, as the ledger does across restarts: the
    adapters a test builds one after another share it."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[str, str]] = {}

    def load(self, account: str, configured: str) -> str | None:
        """The token that replaced `configured`, if one did."""
        found = self.kept.get(account)
        return found[1] if found is not None and found[0] == configured else None

    def save(self, account: str, configured: str, current: str) -> None:
        """Keep `current` as the replacement of `configured`."""
        self.kept[account] = (configured, current)
