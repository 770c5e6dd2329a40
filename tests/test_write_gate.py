"""The write gate: a platform write leaves only while the reconciler still holds its lease, checked
the moment before it is sent (after any wait for a concurrency slot or a rate-limit pause), and a
refused write is never retried; reads are never gated."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sync.fencing import FencedOff, write_gate
from sync.platforms.http import PlatformHTTP


def platform(handler) -> PlatformHTTP:  # type: ignore[no-untyped-def]
    return PlatformHTTP(
        platform="oto",
        account="a",
        base_url="http://platform.test",
        headers={},
        timeout=5,
        concurrency=1,
        transport=httpx.MockTransport(handler),
    )


def test_a_write_queued_for_a_slot_is_refused_once_the_lease_may_be_lost() -> None:
    sent: list[str] = []
    held = {"lease": True}

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        await asyncio.sleep(0.3)  # the platform holds its answer back: /w2 waits for the slot
        return httpx.Response(200, json={"success": True})

    def gate() -> None:
        if not held["lease"]:
            raise FencedOff("lease lost")

    async def main() -> list[object]:
        http = platform(handler)

        async def lose_lease() -> None:
            await asyncio.sleep(0.1)
            held["lease"] = False

        with write_gate(gate):
            results = await asyncio.gather(
                http.request("POST", "/w1", write=True),
                http.request("POST", "/w2", write=True),
                http.request("GET", "/r", write=False),
                lose_lease(),
                return_exceptions=True,
            )
        await http.aclose()
        return results

    results = asyncio.run(main())
    assert sent == ["/w1", "/r"]  # /w2 never left; the read is not a write
    assert isinstance(results[1], FencedOff)


def test_a_refused_write_is_not_retried() -> None:
    calls: list[str] = []

    def gate() -> None:
        calls.append("gate")
        raise FencedOff("lease lost")

    async def main() -> None:
        http = platform(lambda request: httpx.Response(200))
        try:
            with write_gate(gate), pytest.raises(FencedOff):
                await http.request("POST", "/w", write=True)
        finally:
            await http.aclose()

    asyncio.run(main())
    assert calls == ["gate"]
