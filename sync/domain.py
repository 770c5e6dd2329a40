"""Domain values shared by the pure planner and the ledger that stores them: why a pool moved, and
the life of a push. No I/O and no ORM here, so the planner can import them."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Unshown:
    """On an account whose read may show a sale only at picking (`sale_shows_in_read` unknown), a
    listing's orders: units of those still open and not picked (however old), and units of those
    picked or fulfilled since its feed caught up that no booked drop accounts for yet."""

    open_units: int = 0
    picked_unexplained: int = 0

    def held(self, read_now: bool) -> int:
        """The units to keep off the SKU's other listings. An open order's may be in this
        platform's count still (under "at picking"): held until it is picked or leaves the open
        states, even where a drop was linked to it (a hand edit or another order's picking looks
        the same). A picked or fulfilled order's units leave the read by the time we see it so: a
        listing read now shows them (or never will: a hand edit hid the drop); one not read may
        not yet."""
        return self.open_units + (0 if read_now else self.picked_unexplained)
