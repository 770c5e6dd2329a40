"""Judging one listing's number as a platform wrote it, before anything is booked from it.

A quantity is believed only if it is an integer (a JSON integer; a string of digits where the
platform's document writes quantities as strings), within range, and not negative where the
platform cannot go below zero (Ankorstore: `stockQuantity` has a documented minimum of 0). Where
relative writes have no documented floor (Oakra, Graas, OTO), a decrease racing a sale can leave a
listing below zero, so a negative reading is plausible there and believed. Anything else is a bad
value, skipped with a reason; it never fails the rest of its answer.
"""

from __future__ import annotations

from typing import TypeGuard

# Past this no platform counts real units; it also keeps every number inside a 32-bit column and
# far from the ledger's 64-bit sums (a 10^20 once made every plan commit raise on SQLite).
MAX_QUANTITY = 2**31 - 1


def is_int(value: object) -> TypeGuard[int]:
    """True for a JSON integer (and not a boolean, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def quantity_or_reason(value: object, *, digit_strings: bool = False, negative_ok: bool = False) -> int | str:
    """The quantity `value` states, or why it cannot be believed."""
    number: int | None = None
    if is_int(value):
        number = value
    elif digit_strings and isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) <= 20:
            number = int(text)
    if number is None:
        return f"quantity {_show(value)} is not an integer"
    if abs(number) > MAX_QUANTITY:
        return f"quantity {_show(value)} is out of range"
    if number < 0 and not negative_ok:
        return f"quantity {number} is negative"
    return number


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
