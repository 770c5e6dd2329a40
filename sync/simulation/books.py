"""What the simulator checks: the books balance after every step, and everything converges once
the faults stop.

For a listing L with platform quantity q, expected e, and P = (deltas the platform applied) -
(deltas the ledger counts as applied), and for every SKU:

    ledger pool + sum over its listings of (q - e - P) == start + every external change since

holds after every step, whatever crashed or went in doubt (booking, confirming and applying all
preserve it). Once settled, q == e everywhere, so the pool is off from the truth by exactly the sum
of P; P is non-zero only where an in-doubt push was misjudged.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.ledger.models import Account, Cycle, Listing, Movement, Push, PushState, Sku

COUNTED = (PushState.CONFIRMED.value, PushState.APPLIED.value)
SENT = (
    PushState.SENT.value,
    PushState.CONFIRMED.value,
    PushState.FAILED.value,
    PushState.IN_DOUBT.value,
    PushState.APPLIED.value,
    PushState.NOT_APPLIED.value,
)


class InvariantViolation(AssertionError):
    """The books do not balance."""


@dataclass(frozen=True)
class PushRow:
    """A push as the checker needs it."""

    account: str
    sku: str
    delta: int
    state: str
    cycle_started: datetime
    settled_at: datetime | None
    resolution: str | None


@dataclass
class LedgerView:
    """The ledger's pools, listings and pushes at one moment."""

    pools: dict[str, int]
    expected: dict[tuple[str, str], int]
    pushes: list[PushRow]

    def counted(self) -> Counter[tuple[str, str]]:
        """Per listing, the sum of deltas the ledger counts as applied."""
        total: Counter[tuple[str, str]] = Counter()
        for push in self.pushes:
            if push.state in COUNTED:
                total[(push.account, push.sku)] += push.delta
        return total


def read_ledger(session: Session) -> LedgerView:
    """Load what the checks look at."""
    pools = dict(session.execute(select(Sku.code, func.sum(Movement.quantity)).join(Movement).group_by(Sku.code)).all())
    expected = {
        (account, code): e
        for account, code, e in session.execute(
            select(Account.name, Sku.code, Listing.expected).join(Account).join(Sku)
        ).all()
    }
    pushes = [
        PushRow(account, code, delta, state, started, settled, resolution)
        for account, code, delta, state, started, settled, resolution in session.execute(
            select(
                Account.name,
                Sku.code,
                func.coalesce(Push.applied_delta, Push.delta),  # what the platform really moved
                Push.state,
                Cycle.started_at,
                Push.settled_at,
                Push.resolution,
            )
            .join(Listing, Push.listing_id == Listing.id)
            .join(Account, Listing.account_id == Account.id)
            .join(Sku, Listing.sku_id == Sku.id)
            .join(Cycle, Push.cycle_id == Cycle.id)
        ).all()
    ]
    return LedgerView({k: int(v) for k, v in pools.items()}, expected, pushes)


def applied_by_platform(
    applied: dict[str, list[tuple[str, int]]],
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Per listing: the sum of deltas each platform applied, and how many changes it applied."""
    total: Counter[tuple[str, str]] = Counter()
    count: Counter[tuple[str, str]] = Counter()
    for account, changes in applied.items():
        for code, delta in changes:
            total[(account, code)] += delta
            count[(account, code)] += 1
    return total, count


def check_balance(
    view: LedgerView,
    quantities: dict[tuple[str, str], int],
    applied: dict[str, list[tuple[str, int]]],
    truth: dict[str, int],
) -> None:
    """The accounting identity, and no change applied more often than the ledger sent one."""
    applied_total, applied_count = applied_by_platform(applied)
    counted = view.counted()
    sent = Counter((p.account, p.sku) for p in view.pushes if p.state in SENT)
    for key, times in applied_count.items():
        if times > sent[key]:
            raise InvariantViolation(f"{key}: the platform applied {times} changes, the ledger sent {sent[key]}")
    per_sku: dict[str, int] = defaultdict(int)
    for key, e in view.expected.items():
        per_sku[key[1]] += quantities[key] - e - (applied_total[key] - counted[key])
    for sku, pool in view.pools.items():
        if pool + per_sku[sku] != truth[sku]:
            raise InvariantViolation(
                f"{sku}: ledger pool {pool} + unbooked {per_sku[sku]} != start plus external changes {truth[sku]}"
            )
    doubts = Counter((p.account, p.sku) for p in view.pushes if p.state == PushState.IN_DOUBT.value)
    for key, n in doubts.items():
        if n > 1:
            raise InvariantViolation(f"{key}: {n} pushes in doubt at once (a listing in doubt takes no new push)")


def check_outbox_closed(view: LedgerView) -> None:
    """After a cycle that completed, no push is left planned or sent."""
    open_ = [p for p in view.pushes if p.state in (PushState.PLANNED.value, PushState.SENT.value)]
    if open_:
        raise InvariantViolation(f"{len(open_)} pushes left planned or sent after a completed cycle")
