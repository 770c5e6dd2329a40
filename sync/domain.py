"""Domain values shared by the pure planner and the ledger that stores them: why a pool moved, and
the life of a push. No I/O and no ORM here, so the planner can import them."""

from __future__ import annotations

from enum import Enum


class MovementKind(str, Enum):
    """Why a pool changed."""

    BOOTSTRAP = "bootstrap"
    EXTERNAL = "external"  # a change observed on a listing: sale, return, hand edit
    ADJUSTMENT = "adjustment"  # an operator's deliberate change
    CORRECTION = "correction"  # a residual booked by a rule, flagged for the operator
    # A push in doubt settled the other way than it was provisionally booked: the units held back.
    SETTLEMENT = "settlement"


class PushState(str, Enum):
    """A push's life: planned -> sent -> confirmed | failed | in_doubt (-> applied | not_applied)."""

    PLANNED = "planned"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    APPLIED = "applied"  # was in doubt, settled as applied
    NOT_APPLIED = "not_applied"  # was in doubt, settled as not applied
    CANCELLED = "cancelled"  # planned but never sent (stopped before sending)


class SettledBy(str, Enum):
    """What decided a push in doubt."""

    ORDERS = "orders"  # the order feed: exactly one hypothesis fits the orders in the window
    QUIET = "quiet"  # no feed: the listing did not move under one hypothesis (undecidable, flagged)
    RULE = "rule"  # nothing decided within the timeout: the documented rule (flagged)
    ADOPTED = "adopted"  # the listing was adopted afresh: the push no longer matters


# A push whose effect on its listing is not settled yet.
OPEN_PUSH_STATES = (PushState.PLANNED.value, PushState.SENT.value, PushState.IN_DOUBT.value)
