"""Lying stock reads, shared by every emulator: what each bad-read kind does to an answer.

An emulator describes where its read answer keeps its quantities (a `ReadShape`); `corrupt`
applies one bad-read kind to a copy of the answer and says what it changed (a `BadRead`), so a
test can tell the lies from the truth. The platform's state is never touched: only the answer lies.

Numbers a lie writes are kept consistent with the fields derived from them (a platform whose
answer says 0 available says so everywhere); values that are not numbers (WRONG_TYPES) replace the
quantity field alone, as a serializer bug would.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync.emulation.faults import Fault
from sync.emulation.wire import EmuResponse

Slot = tuple[list[Any], Any]  # (the list holding an entry, the entry)


@dataclass(frozen=True)
class ReadShape:
    """Where one platform's stock-read answer keeps its quantities.

    `slots(body)` lists every entry that carries a quantity with the list holding it; `code`,
    `get` and `put` read an entry's code and read or write its quantity; `empty(body)` is the same
    answer listing nothing."""

    slots: Callable[[Any], list[Slot]]
    code: Callable[[Any], str]
    get: Callable[[Any], object]
    put: Callable[[Any, object], None]
    empty: Callable[[Any], Any]


@dataclass
class BadRead:
    """What one lie did: the kind, each touched code's lying value, and the codes it dropped."""

    fault: Fault
    told: dict[str, object] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def some(count: int, rng: random.Random) -> list[int]:
    """A random non-empty subset of `range(count)`, about half of it (empty only when count is 0)."""
    if count <= 0:
        return []
    return sorted(rng.sample(range(count), max(1, (count + 1) // 2)))


def wrong_value(true: object, rng: random.Random) -> object:
    """A quantity no adapter may believe as a different number: the true one as a string (a form
    only some documents allow), null, a fraction, a number past any stock, or a negative one."""
    choice = rng.randrange(5)
    if choice == 0:
        return str(true) if isinstance(true, int) and not isinstance(true, bool) else "12"
    return (None, 3.5, 10**20, -rng.randint(1, 5))[choice - 1]


def other_quantity(true: object, rng: random.Random) -> int:
    """A believable quantity that differs from `true`."""
    base = true if isinstance(true, int) and not isinstance(true, bool) else 0
    step = rng.randint(1, 5)
    return base - step if base - step >= 0 and rng.random() < 0.5 else base + step


def truncate(response: EmuResponse, rng: random.Random) -> EmuResponse:
    """The same answer with its body cut somewhere in the middle (never valid JSON)."""
    payload, content_type = response.encoded()
    cut = rng.randint(max(1, len(payload) // 4), max(1, 3 * len(payload) // 4))
    headers = {**response.headers, "Content-Type": content_type}
    return EmuResponse(response.status, raw=payload[: min(cut, max(0, len(payload) - 1))], headers=headers)


def corrupt(response: EmuResponse, fault: Fault, rng: random.Random, shape: ReadShape) -> tuple[EmuResponse, BadRead]:
    """Apply the bad-read `fault` to a copy of `response`; return the lying answer and the lie."""
    lie = BadRead(fault)
    if fault is Fault.TRUNCATED:
        return truncate(response, rng), lie
    if response.raw is not None:
        return response, lie
    body = copy.deepcopy(response.body)
    slots = shape.slots(body)
    if fault is Fault.EMPTY_READ:
        lie.dropped = [shape.code(item) for _, item in slots]
        body = shape.empty(body)
    elif fault is Fault.ZERO_READ:
        for _, item in slots:
            _tell(shape, item, 0, lie)
    elif fault is Fault.SOME_ZEROS:
        for index in some(len(slots), rng):
            holder, item = slots[index]
            if rng.random() < 0.5:
                _tell(shape, item, 0, lie)
            else:
                _remove(holder, item)
                lie.dropped.append(shape.code(item))
    elif fault is Fault.WRONG_TYPES:
        for index in some(len(slots), rng):
            item = slots[index][1]
            _tell(shape, item, wrong_value(shape.get(item), rng), lie)
    elif fault is Fault.DUPLICATE_SKU and slots:
        holder, item = slots[rng.randrange(len(slots))]
        twin = copy.deepcopy(item)
        shape.put(twin, other_quantity(shape.get(item), rng))
        holder.insert(_index(holder, item) + 1, twin)
        lie.told[shape.code(item)] = shape.get(twin)
    return EmuResponse(response.status, body, dict(response.headers)), lie


def _tell(shape: ReadShape, item: Any, value: object, lie: BadRead) -> None:
    shape.put(item, value)
    lie.told[shape.code(item)] = value


def _index(holder: list[Any], item: Any) -> int:
    return next(i for i, candidate in enumerate(holder) if candidate is item)


def _remove(holder: list[Any], item: Any) -> None:
    del holder[_index(holder, item)]
