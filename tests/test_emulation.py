"""The emulators answer the same in process (httpx transport) as over loopback HTTP, so a seeded
simulator can drive them without sockets."""

from __future__ import annotations

import asyncio

import pytest

from sync.emulation.faults import Fault
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.server import as_transport
from sync.platforms import PLATFORMS, AccountSettings, build_adapter
from sync.platforms.base import Change, Outcome
from tests.fakes import account_entry


async def _scenario(settings: AccountSettings, emulator: EmulatedPlatform) -> tuple[int, Outcome, Outcome]:
    adapter = build_adapter(settings, transport=as_transport(emulator))
    try:
        seen = (await adapter.read(["mug"])).observed["mug"]
        first = (await adapter.push([Change("mug", seen.ref, -3)]))[0].outcome
        emulator.faults.inject(Fault.LOST_RESPONSE, writes_only=True)
        second = (await adapter.push([Change("mug", seen.ref, -2)]))[0].outcome
        return seen.quantity, first, second
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_in_process_transport_reads_pushes_and_loses_answers(platform: str) -> None:
    spec = PLATFORMS[platform]
    settings = spec.settings.model_validate(
        account_entry("acct", platform, "http://emulated" + spec.emulator_base_path)
    )
    emulator = spec.emulator(settings)
    emulator.set_quantity("mug", 10)
    assert asyncio.run(_scenario(settings, emulator)) == (10, Outcome.CONFIRMED, Outcome.IN_DOUBT)
    assert emulator.quantity("mug") == 5  # the lost answer's change stands
    assert emulator.applied == [("mug", -3), ("mug", -2)]
