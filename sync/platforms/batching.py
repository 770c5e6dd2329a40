"""Batch fan-out shared by adapters: split, run concurrently, and keep one bad item from failing
its batch.

A platform that rejects a whole batch as invalid (400/422) may have applied the rest of it: no
document promises otherwise. So the batch is not split and sent again: its changes are in doubt,
settled from later reads, and sent alone next time (`Change.alone`), where a rejection is the bad
change's own and certain. Any other failure (auth, a wrong URL, an outage) belongs to the whole
account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from sync.errors import BadAnswerError, InDoubtError, RejectedError, SyncError
from sync.platforms.base import (
    Change,
    PushResult,
    ReadResult,
    Refusal,
    chunked,
    failed_all,
    in_doubt_all,
)

# How a push left in doubt by a rejected batch begins its detail, and one rejected on its own: the
# next send of either goes alone (a change the platform always rejects keeps its batch-mates clear).
REJECTED_BATCH = "rejected with its batch, the rest perhaps applied"
REJECTED_ALONE = "rejected on its own"

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
                return [replace(r, detail=f"{REJECTED_ALONE}: {r.detail}") for r in failed_all(batch, err)]
            doubt = InDoubtError(f"{REJECTED_BATCH}: {err.message}")
            return in_doubt_all(batch, doubt)
        except SyncError as err:
            return failed_all(batch, err)

    alone = [[change] for change in changes if change.alone]
    batches = alone + chunked([change for change in changes if not change.alone], size)
    parts = await asyncio.gather(*(run(batch) for batch in batches))
    results = {
        id(change): result
        for batch, part in zip(batches, parts, strict=True)
        for change, result in zip(batch, part, strict=True)
    }
    return [results[id(change)] for change in changes]


async def read_in_batches(
    codes: Sequence[str], size: int, read: ReadBatch, batches: Sequence[list[str]] | None = None
) -> ReadResult:
    """Read `codes` in batches of `size` (or the `batches` given); a whole-account failure (auth,
    outage) raises. An answer that cannot be believed refuses only its own batch's codes."""

    async def run(batch: list[str]) -> ReadResult:
        try:
            result = await read(batch)
        except BadAnswerError as err:
            return ReadResult(refusals=[Refusal(tuple(batch), err.problem, err.message)])
        except RejectedError as err:
            if len(batch) == 1:
                return ReadResult(skipped={batch[0]: err.message})
            half = len(batch) // 2
            left, right = await asyncio.gather(run(batch[:half]), run(batch[half:]))
            return merge_reads([left, right])
        result.answers.append(tuple(batch))
        return result

    parts = batches if batches is not None else chunked(codes, size)
    return merge_reads(await asyncio.gather(*(run(batch) for batch in parts)))


def chunked_by_length(codes: Sequence[str], size: int, budget: int, cost: Callable[[str], int]) -> list[list[str]]:
    """Split `codes` into lists of at most `size` whose summed `cost` stays within `budget` (a
    URL's query string: long SKUs fill it before the count does). A code alone over budget still
    gets a list of its own."""
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for code in codes:
        need = cost(code)
        if current and (len(current) >= size or used + need > budget):
            batches.append(current)
            current, used = [], 0
        current.append(code)
        used += need
    if current:
        batches.append(current)
    return batches


def merge_reads(parts: Sequence[ReadResult]) -> ReadResult:
    """One ReadResult holding every part's observations, skips, bad values and refusals."""
    merged = ReadResult()
    for part in parts:
        merged.observed.update(part.observed)
        merged.skipped.update(part.skipped)
        merged.bad.update(part.bad)
        merged.refusals.extend(part.refusals)
        merged.answers.extend(part.answers)
    return merged
