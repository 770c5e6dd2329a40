"""Batch fan-out shared by adapters: split, run concurrently, and keep one bad item from failing
its batch.

A platform that rejects a whole batch as invalid (400/422) applied none of it, so the batch is
split in halves until the bad item stands alone; every other item still goes through. Any other
failure (auth, a wrong URL, an outage) belongs to the whole account and is not split.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sync.errors import InDoubtError, RejectedError, SyncError
from sync.platforms.base import Change, PushResult, ReadResult, chunked, failed_all, in_doubt_all

SendBatch = Callable[[list[Change]], Awaitable[list[PushResult]]]
ReadBatch = Callable[[list[str]], Awaitable[ReadResult]]


async def push_in_batches(changes: Sequence[Change], size: int, send: SendBatch) -> list[PushResult]:
    """Send `changes` in batches of `size`; one result per change, in the order given."""

    async def run(batch: list[Change]) -> list[PushResult]:
        try:
            return await send(batch)
        except InDoubtError as err:
            return in_doubt_all(batch, err)
        except RejectedError as err:
            if len(batch) == 1:
                return failed_all(batch, err)
            half = len(batch) // 2
            left, right = await asyncio.gather(run(batch[:half]), run(batch[half:]))
            return left + right
        except SyncError as err:
            return failed_all(batch, err)

    parts = await asyncio.gather(*(run(batch) for batch in chunked(changes, size)))
    return [result for part in parts for result in part]


async def read_in_batches(codes: Sequence[str], size: int, read: ReadBatch) -> ReadResult:
    """Read `codes` in batches of `size`; a whole-account failure (auth, outage) raises."""

    async def run(batch: list[str]) -> ReadResult:
        try:
            return await read(batch)
        except RejectedError as err:
            if len(batch) == 1:
                return ReadResult(skipped={batch[0]: err.message})
            half = len(batch) // 2
            left, right = await asyncio.gather(run(batch[:half]), run(batch[half:]))
            return merge_reads([left, right])

    return merge_reads(await asyncio.gather(*(run(batch) for batch in chunked(codes, size))))


def merge_reads(parts: Sequence[ReadResult]) -> ReadResult:
    """One ReadResult holding every part's observations and skips."""
    merged = ReadResult()
    for part in parts:
        merged.observed.update(part.observed)
        merged.skipped.update(part.skipped)
    return merged
