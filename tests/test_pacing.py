"""Pacing by Ankorstore's published limit: calls spaced once it runs low, a sale's calls (urgent)
ahead of the sweep's, and everything held at 0 remaining until the reset."""

from __future__ import annotations

import asyncio

import httpx

from sync.emulation.rate_limits import RateWindows
from sync.platforms.pacing import Pacer, urgent_calls


def limit_answer(remaining: int, limit: int = 600, reset: float | None = None) -> httpx.Response:
    headers = {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Limit": str(limit)}
    if reset is not None:
        headers["X-RateLimit-Reset"] = str(reset)
    return httpx.Response(200, headers=headers)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.waits: list[float] = []

    async def wait(self, seconds: float, _paced: bool) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds


def calls(pacer: Pacer, clock: Clock, urgent: list[bool]) -> list[float]:
    """Make the calls one after another; return when each left, from the first."""

    async def run() -> list[float]:
        left = []
        for flag in urgent:
            with urgent_calls(flag):
                await pacer.before_call()
            left.append(round(clock.now - start, 3))
        return left

    start = clock.now
    return asyncio.run(run())


def test_a_sale_s_calls_skip_the_spacing_a_low_limit_puts_on_the_sweep() -> None:
    clock = Clock()
    pacer = Pacer(lambda: clock.now, clock.wait)
    pacer.note(limit_answer(remaining=300))
    assert not pacer.running_low and calls(pacer, clock, [False, False]) == [0, 0]  # plenty left
    pacer.note(limit_answer(remaining=30))  # under a quarter: 30 calls to last the minute
    assert pacer.running_low
    assert calls(pacer, clock, [False, False, False]) == [0, 2, 4]
    # A sale's calls go at once, between the sweep's, and take none of its slots: the sweep's
    # next call keeps its slot 2 s after its last, and the one after 2 s later still.
    assert calls(pacer, clock, [True, True, False, True, False]) == [0, 0, 2, 2, 4]


def test_at_zero_remaining_urgent_calls_wait_for_the_reset_too() -> None:
    clock = Clock()
    pacer = Pacer(lambda: clock.now, clock.wait)
    pacer.note(limit_answer(remaining=0, reset=clock.now + 20))
    assert calls(pacer, clock, [True]) == [20]  # a 429 would cost more than the wait


def test_the_limit_s_own_window_sets_the_pace_where_no_reset_is_given() -> None:
    # Ankorstore's `X-RateLimit-Limit` names the window its `Remaining` counts: 24,000 is the
    # hour's, so 6,000 calls left last until the hour ends, not a minute.
    clock = Clock()
    pacer = Pacer(lambda: clock.now, clock.wait, {600: 60.0, 24_000: 3600.0})
    pacer.note(limit_answer(remaining=5_000, limit=24_000))
    assert calls(pacer, clock, [False, False]) == [0, 0.72]
    pacer.note(limit_answer(remaining=100, limit=600))
    assert calls(pacer, clock, [False, False]) == [0.72, 1.32]  # the last slot, then 60 / 100


def test_ankorstore_s_three_windows_refuse_in_turn_and_say_which_binds() -> None:
    windows = RateWindows({60: 600, 3600: 24_000, 86400: 288_000})
    now = 1_000_000.0
    for minute in range(40):  # 600 a minute for 40 minutes: the hour's 24,000
        for i in range(600):
            assert windows.take(now + minute * 60 + i * 0.09) is None
    assert windows.headers(now + 2399) == {"X-RateLimit-Limit": "24000", "X-RateLimit-Remaining": "0"}
    refused = windows.take(now + 2400)  # a fresh minute, but the hour is spent
    assert refused is not None and refused["X-RateLimit-Limit"] == "24000"
    assert int(refused["X-RateLimit-Reset"]) == int(now + 3600) + 1
    assert windows.take(now + 3600.5) is None  # the first minute's calls left the hour
    assert "X-RateLimit-Reset" not in windows.headers(now + 3600.5)  # documented with a 429 only
