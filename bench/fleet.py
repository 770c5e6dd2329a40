"""Emulated accounts for the benchmarks: stocked, serving on loopback, with their config entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sync.emulation.platform import EmulatedPlatform
from sync.emulation.server import EmulatorServer
from sync.platforms import PLATFORMS


def start_fleet(
    accounts: Sequence[dict[str, Any]], skus: Sequence[str], stock: int, latency: float = 0.0
) -> tuple[dict[str, EmulatedPlatform], list[EmulatorServer], list[dict[str, Any]]]:
    """One emulator per account entry, every SKU stocked at `stock`: the emulators by account name,
    their servers (stop them after), and the entries pointing at them."""
    platforms: dict[str, EmulatedPlatform] = {}
    servers: list[EmulatorServer] = []
    entries: list[dict[str, Any]] = []
    for entry in accounts:
        spec = PLATFORMS[entry["platform"]]
        emulator = spec.emulator(spec.settings.model_validate({**entry, "base_url": "http://127.0.0.1:1"}))
        emulator.faults.latency = latency
        for sku in skus:
            emulator.set_quantity(sku, stock)
        server = EmulatorServer(emulator).start()
        platforms[entry["name"]] = emulator
        servers.append(server)
        entries.append({**entry, "base_url": server.url + spec.emulator_base_path})
    return platforms, servers, entries
