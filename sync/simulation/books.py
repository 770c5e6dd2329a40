"""What the simulator checks: the books balance after every step, and everything converges once
the faults stop.

For a listing L with platform quantity q, expected e, and P = (deltas the platform applied) -
(deltas the ledger counts as applied), and for every SKU:

    ledger pool + sum over its listings of (q - e - P) == start + every external change since

holds after every step, whatever crashed or went in doubt (booking, confirming and applying all
preserve it). Once settled, q == e everywhere, so the pool is off from the truth by exactly the sum
of P; P is non-zero only where an in-doubt push was misjudged.

The undershoot invariant (`check_undershoot`): no listing shows fewer units than the truth allows.
The truth falls only through sales and downward hand edits, so `low = start + (negative external
deltas since the start)` is the lowest pool it allows. An engine that books only what really
happened has `pool = start + (every change it booked) + (misjudged in-doubt pushes)`, and what it
booked of each listing is every change there up to some read, which is at least that listing's
negative changes up to now; so `pool >= low + sum P_settled`. A listing of account A then shows at
least `target_A(low + slack)`, where the slack is, over the SKU's listings, `min(0, P - U)` with U
the units of the listing's still-open upward pushes (sent or in doubt): P also counts an open push
the platform applied and the ledger does not count yet, which the pool does not hold, so an open
upward push must not tighten the bound (`min(0, P)` alone would let it cancel a misjudgement).

The lawful transients, one by one:
- a sale or downward edit on A itself. A relative write made from a read at which A showed q
  leaves A at `target(pool) + d`, with d what outside changes did to A since that read: a sale
  between the read and a decrease can take A below zero (the platform applies the decrease all
  the same, and the next read puts it back). Those drops before the plan were not booked yet, so
  the pool exceeded `low` by them; those after it lowered `low` as much as A. With
  `max(0, y - b) + d >= max(d, y + d - b)`, A shows at least `max(d_A, low + slack - buffer)`,
  d_A being the units outside changes took off A since the start of the cycle whose write last
  changed A (the read behind that write came after the cycle started; a later plan that left A
  alone only makes d_A more negative than needed). Where the truth allows 0 units, A may thus
  show less than 0 only by what was sold on it since our last write; elsewhere the bound is
  `target(low + slack)` exactly, except
- under a cap: A at its cap of 12 with a pool of 20 sells 3 and shows 9, while `target(17)` is 12
  (the next cycle puts it back). So the capped part of the bound is refined, not dropped: A must
  also show at least `cap + d_A` (its own sales since its last write are the only way below the
  cap while the truth allows more);
- an in-flight push: the simulator checks between cycles, so nothing is half-sent; a cycle that
  crashed after sending leaves its pushes sent (P counts what they applied, U what they might);
- a crash between plan and send: planned pushes were never sent, the platforms show what they did;
- an Ankorstore absolute set: it is computed from a fresh read that keeps every change before it,
  and a reservation in the read-to-set window is kept too (available = set stock - reserved); only
  a hand edit or return in that window is overwritten, which the platform's applied delta shows as
  P (an erased drop is positive: A shows more; an erased rise negative: the slack allows it);
- a push in doubt: while undecided it counts under the hypothesis with fewer units (an upward
  one as applied, a downward one not), so the pool may sit lower by its units; where that is
  the wrong hypothesis, P says so. Once settled, P no longer does, but a listing written from the
  lower pool shows it until its next write: the units settlements gave back since the listing's
  last write lower its floor (`given_back_since`). A settlement that misjudged it is P.
One transient is left uncovered on purpose: two misjudgements of opposite signs on one listing
cancel in P while a listing planned between them still shows the lower pool (until the next cycle).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sync.domain import SettledBy
from sync.ledger.models import Account, Cycle, Listing, Movement, Order, OrderEvent, OrderLine, Push, PushState, Sku
from sync.planner import AccountRules
from sync.platforms.base import OrderState
from sync.settling import held_back

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
    read_at: datetime | None  # when the read it was made from began
    planned_at: datetime
    settled_by: str | None


ListingKey = tuple[str, str]  # (account, sku)


@dataclass
class LedgerView:
    """The ledger's pools, listings and pushes at one moment: per listing and push state, how many
    pushes and the units they moved (all, and upward only); each push itself only when asked."""

    pools: dict[str, int]
    expected: dict[ListingKey, int]
    by_state: dict[tuple[str, str, str], tuple[int, int, int]]  # (account, sku, state) -> n, units, up
    pushes: list[PushRow] = field(default_factory=list)
    # Units settlements gave back to pools (what a push in doubt's provisional hypothesis held
    # back): (sku, when booked, units).
    given_back: list[tuple[str, datetime, int]] = field(default_factory=list)
    # When we first saw each order line on a listing: (account, sku, first seen). Asked with rows.
    orders_seen: list[tuple[str, str, datetime]] = field(default_factory=list)
    # When we first saw each order line's order leave the open states: (account, sku, then).
    orders_closed: list[tuple[str, str, datetime]] = field(default_factory=list)

    def first_seen_between(self, account: str, sku: str, start: datetime, end: datetime) -> bool:
        """Whether we first saw an order on the listing between `start` and `end`."""
        return any(a == account and s == sku and start <= at <= end for a, s, at in self.orders_seen)

    def closed_before(self, account: str, sku: str, when: datetime) -> int:
        """How many orders on the listing we had seen leave the open states before `when`."""
        return sum(1 for a, s, at in self.orders_closed if a == account and s == sku and at < when)

    def given_back_since(self, sku: str, since: datetime) -> int:
        """Units settlements gave back to `sku`'s pool since `since`."""
        return sum(units for code, at, units in self.given_back if code == sku and at >= since)

    def _total(self, states: Collection[str], column: int) -> Counter[ListingKey]:
        total: Counter[ListingKey] = Counter()
        for (account, sku, state), figures in self.by_state.items():
            if state in states:
                total[(account, sku)] += figures[column]
        return total

    def counted(self) -> Counter[ListingKey]:
        """Per listing, the sum of deltas the ledger counts as applied: confirmed and settled ones,
        and, provisionally, upward ones in doubt (the hypothesis with fewer units in the pool)."""
        counted = self._total(COUNTED, 1)
        counted.update(self._total((PushState.IN_DOUBT.value,), 2))
        return counted

    def number(self, states: Collection[str]) -> Counter[ListingKey]:
        """Per listing, how many pushes are in one of `states`."""
        return self._total(states, 0)

    def upward(self, states: Collection[str]) -> Counter[ListingKey]:
        """Per listing, the units of the upward pushes in one of `states`."""
        return self._total(states, 2)


def read_ledger(session: Session, *, rows: bool = False) -> LedgerView:
    """Load what the checks look at (every push as a row too when `rows`: the final checks)."""
    pools = dict(session.execute(select(Sku.code, func.sum(Movement.quantity)).join(Movement).group_by(Sku.code)).all())
    expected = {
        (account, code): e
        for account, code, e in session.execute(
            select(Account.name, Sku.code, Listing.expected).join(Account).join(Sku)
        ).all()
    }
    moved = func.coalesce(Push.applied_delta, Push.delta)  # what the platform really moved
    by_state = {
        (account, code, state): (int(n), int(units), int(up))
        for account, code, state, n, units, up in session.execute(
            select(
                Account.name,
                Sku.code,
                Push.state,
                func.count(),
                func.sum(moved),
                func.sum(case((moved > 0, moved), else_=0)),
            )
            .join(Listing, Push.listing_id == Listing.id)
            .join(Account, Listing.account_id == Account.id)
            .join(Sku, Listing.sku_id == Sku.id)
            .group_by(Account.name, Sku.code, Push.state)
        ).all()
    }
    # What each settlement gave back to its pool: the units its push's provisional hypothesis held
    # back, whether booked alone or inside the reading's observed change. An adoption gives back
    # only what a reading booked since the push went in doubt held (its probe), a SKU back in the
    # catalogue nothing.
    given_back = [
        (code, at, held)
        for code, delta, state, at, by, probe, resolution in session.execute(
            select(Sku.code, moved, Push.state, Push.settled_at, Push.settled_by, Push.probe_quantity, Push.resolution)
            .join(Listing, Push.listing_id == Listing.id)
            .join(Sku, Listing.sku_id == Sku.id)
            .where(Push.state.in_((PushState.APPLIED.value, PushState.NOT_APPLIED.value)))
        ).all()
        if at is not None
        and (held := held_back(int(delta), state == PushState.APPLIED.value))
        and not (by == SettledBy.ADOPTED.value and (probe is None or (resolution or "").startswith("SKU back")))
    ]
    view = LedgerView({k: int(v) for k, v in pools.items()}, expected, by_state, given_back=given_back)
    if rows:
        view.pushes = [
            PushRow(account, code, delta, state, started, settled, resolution, read_at, planned_at, settled_by)
            for account, code, delta, state, started, settled, resolution, read_at, planned_at, settled_by in session.execute(  # noqa: E501
                select(
                    Account.name,
                    Sku.code,
                    moved,
                    Push.state,
                    Cycle.started_at,
                    Push.settled_at,
                    Push.resolution,
                    Push.read_at,
                    Push.created_at,
                    Push.settled_by,
                )
                .join(Listing, Push.listing_id == Listing.id)
                .join(Account, Listing.account_id == Account.id)
                .join(Sku, Listing.sku_id == Sku.id)
                .join(Cycle, Push.cycle_id == Cycle.id)
            ).all()
        ]
        view.orders_seen = [
            (account, code, seen)
            for account, code, seen in session.execute(
                select(Account.name, Sku.code, Order.first_seen_at)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .join(Account, Order.account_id == Account.id)
                .join(Sku, OrderLine.sku_id == Sku.id)
            ).all()
        ]
        view.orders_closed = [
            (account, code, at)
            for account, code, at in session.execute(
                select(Account.name, Sku.code, func.min(OrderEvent.seen_at))
                .join(OrderLine, OrderLine.order_id == OrderEvent.order_id)
                .join(Order, Order.id == OrderEvent.order_id)
                .join(Account, Order.account_id == Account.id)
                .join(Sku, OrderLine.sku_id == Sku.id)
                .where(OrderEvent.state != OrderState.OPEN.value)
                .group_by(Account.name, Sku.code, OrderEvent.order_id)
            ).all()
        ]
    return view


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
    sent = view.number(SENT)
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
    doubts = view.number((PushState.IN_DOUBT.value,))
    for key, n in doubts.items():
        if n > 1:
            raise InvariantViolation(f"{key}: {n} pushes in doubt at once (a listing in doubt takes no new push)")


def check_outbox_closed(view: LedgerView) -> None:
    """After a cycle that completed, no push is left planned or sent."""
    open_ = sum(view.number((PushState.PLANNED.value, PushState.SENT.value)).values())
    if open_:
        raise InvariantViolation(f"{open_} pushes left planned or sent after a completed cycle")


def undershoot_floor(rules: AccountRules, low: int, own_drops: int) -> int:
    """The fewest units a listing with these rules may lawfully show when the truth allows `low`
    (slack included) and outside changes took `own_drops` (<= 0) off it since its last write."""
    uncapped = max(own_drops, low - rules.buffer)
    if rules.max_quantity is None:
        return uncapped
    return min(uncapped, rules.max_quantity + own_drops)


def check_undershoot(
    view: LedgerView,
    quantities: dict[tuple[str, str], int],
    applied: dict[str, list[tuple[str, int]]],
    low: dict[str, int],
    rules: dict[str, AccountRules],
    own_drops: Counter[tuple[str, str]],
    last_write: dict[tuple[str, str], datetime],
    held_elsewhere: Counter[tuple[str, str]] | None = None,
) -> None:
    """No listing shows fewer units than the truth allows (see the module's docstring)."""
    applied_total, _ = applied_by_platform(applied)
    counted = view.counted()
    open_up = view.upward((PushState.SENT.value,))  # one in doubt is counted already
    slack: dict[str, int] = defaultdict(int)
    for key in {*applied_total, *counted, *open_up}:
        slack[key[1]] += min(0, applied_total[key] - counted[key] - open_up[key])
    for (account, sku), shown in sorted(quantities.items()):
        if sku not in low:
            continue
        # Written while a push in doubt held units back, and not written since it settled.
        held = view.given_back_since(sku, last_write[(account, sku)]) if (account, sku) in last_write else 0
        # Units of open orders on an account whose read may show them only at picking: kept off
        # the other listings on purpose (never offered twice), until the order leaves the open states.
        held += (held_elsewhere or Counter())[(account, sku)]
        floor = undershoot_floor(rules[account], low[sku] + slack[sku] - held, own_drops[(account, sku)])
        if shown < floor:
            raise InvariantViolation(
                f"{account}/{sku} shows {shown}, below the {floor} the truth allows "
                f"(lowest pool {low[sku]}, slack {slack[sku]}, own drops {own_drops[(account, sku)]})"
            )
