"""The reconcile planner: a pure function from ledger state and observations to a plan.

No I/O, no clock, no randomness: the same input always gives the same plan, which is what lets the
engine print a dry run, and tests check the rules on plain values. The steps are those of
`design.md`: book external change, recompute the pool, target each listing, plan relative pushes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sync.domain import MovementKind, SettledBy, Unshown
from sync.settling import (
    LATE_LANDING,
    Verdict,
    Window,
    by_orders,
    by_quiet,
    by_rule,
    could_have_landed,
    held_back,
    timed_out,
)

BOOTSTRAP_MIN = "min"

ListingKey = tuple[str, str]  # (account name, sku)


@dataclass(frozen=True)
class AccountRules:
    """An account's buffer (units held back) and cap (most units ever shown)."""

    buffer: int = 0
    max_quantity: int | None = None

    def target(self, pool: int) -> int:
        """`clamp(pool - buffer, 0, max)`: what the listing should show."""
        shown = max(0, pool - self.buffer)
        return shown if self.max_quantity is None else min(shown, self.max_quantity)


@dataclass(frozen=True)
class InDoubtPush:
    """A push whose answer was lost: what it moves if applied, the read it was made from, when it
    was sent, and the probe: the first reading booked since (on a feed account, the latest the
    order feed is to judge, kept until the feed has caught up past it)."""

    push_id: int
    delta: int
    expected_before: int
    sent_at: datetime
    probe: int | None = None
    probe_began: datetime | None = None
    # The platform answered (it rejected the batch the push was in): nothing of it is still on its
    # way, so a read need not wait for a late landing.
    answered: bool = False


@dataclass(frozen=True)
class ListingState:
    """What the ledger knows of a listing: its expected quantity and any push in doubt."""

    expected: int
    in_doubt: InDoubtPush | None = None


@dataclass(frozen=True)
class SkuState:
    """A SKU's pool (None before bootstrap) and its known listings by account."""

    sku: str
    pool: int | None
    listings: Mapping[str, ListingState] = field(default_factory=dict)
    # Left the catalogue and came back: started afresh like a new SKU, its old counts not booked.
    retired: bool = False


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner looks at."""

    skus: Sequence[SkuState]
    observations: Mapping[ListingKey, int]
    rules: Mapping[str, AccountRules]
    failed_accounts: frozenset[str] = frozenset()
    bootstrap_rule: str = BOOTSTRAP_MIN
    now: datetime | None = None
    in_doubt_timeout: timedelta = timedelta(minutes=10)
    late_landing: timedelta = LATE_LANDING
    # Listings whose reading is taken as it is, nothing booked (a new platform id, an operator's
    # reject), and listings read this time without anything believed (a bootstrap waits for them).
    adopt: frozenset[ListingKey] = frozenset()
    unread: frozenset[ListingKey] = frozenset()
    # Accounts with an order feed, and per push in doubt there, the orders between the read behind
    # it and its probe (only once the feed is read past the probe).
    feed_accounts: frozenset[str] = frozenset()
    windows: Mapping[int, Window] = field(default_factory=dict)
    # Feed accounts whose feed has not been read to its end for a while (down, see
    # `sync.evidence.DOWN_AFTER`): their pushes in doubt wait no longer than without a feed.
    feeds_behind: frozenset[str] = frozenset()
    # When the observations' read began (None: `now`): a write may have landed after it.
    read_began: datetime | None = None
    # Per listing whose read may show a sale only at picking, its sales no read may have shown
    # yet: their units are not offered on the SKU's other listings (the pool does not move).
    unshown: Mapping[ListingKey, Unshown] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedMovement:
    """A movement to append: `account` is the source listing's account (None for a bootstrap by min)."""

    sku: str
    account: str | None
    quantity: int
    kind: MovementKind
    note: str = ""
    flagged: bool = False


@dataclass(frozen=True)
class PlannedPush:
    """A relative change for one listing, with the numbers that justify it."""

    sku: str
    account: str
    delta: int
    expected_before: int
    observed: int
    target: int


@dataclass(frozen=True)
class Settlement:
    """How an in-doubt push was settled (the verdict: applied or not, what decided it, a note)."""

    push_id: int
    sku: str
    account: str
    verdict: Verdict

    @property
    def applied(self) -> bool:
        """Whether the push counts as applied from now on."""
        return self.verdict.applied

    @property
    def by(self) -> SettledBy:
        """What decided it."""
        return self.verdict.by

    @property
    def note(self) -> str:
        """Why, for the ledger and `explain`."""
        return self.verdict.note

    @property
    def flagged(self) -> bool:
        """Not decided by evidence (a quiet listing without a feed, or the timeout rule)."""
        return self.verdict.flagged


@dataclass
class Plan:
    """The planner's output, applied by the engine in one transaction."""

    movements: list[PlannedMovement] = field(default_factory=list)
    expected: dict[ListingKey, int] = field(default_factory=dict)
    adopted: set[ListingKey] = field(default_factory=set)
    pushes: list[PlannedPush] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    waiting: list[tuple[str, str | None, str]] = field(default_factory=list)
    pools: dict[str, int] = field(default_factory=dict)
    readopted: set[str] = field(default_factory=set)  # retired SKUs started afresh
    probes: dict[int, int] = field(default_factory=dict)  # push in doubt -> its new probe reading
    # Per SKU, the units its pushes still in doubt hold back from the pool (the pool under the
    # hypothesis with more units is pools + held: what an oversell is judged against).
    held: dict[str, int] = field(default_factory=dict)

    def pools_at_most(self) -> dict[str, int]:
        """Each pool as the pushes still in doubt may have it at most: no order is cancelled for
        an oversell that only the provisional hypothesis makes."""
        return {sku: pool + self.held.get(sku, 0) for sku, pool in self.pools.items()}

    @property
    def is_empty(self) -> bool:
        """True when the plan changes nothing."""
        return not (self.movements or self.pushes or self.settlements or self.adopted)


def plan(given: PlanInput) -> Plan:
    """Book external change, settle in-doubt pushes, recompute pools and plan pushes."""
    result = Plan()
    by_sku: dict[str, dict[str, int]] = {}
    for (account, sku), quantity in given.observations.items():  # grouped once: linear in the batch
        by_sku.setdefault(sku, {})[account] = quantity
    unread = frozenset(sku for _, sku in given.unread)
    for state in given.skus:
        _plan_sku(state, by_sku.get(state.sku, {}), given, result, unread)
    return result


def _plan_sku(state: SkuState, observed: dict[str, int], given: PlanInput, out: Plan, unread: frozenset[str]) -> None:
    sku = state.sku
    if not observed:
        if state.pool is None and not given.failed_accounts:
            out.waiting.append((sku, None, "not listed on any account"))
        return
    movements: list[PlannedMovement] = []
    frozen: set[str] = set()
    first_settlement = len(out.settlements)

    if state.pool is None or state.retired:
        start = _bootstrap(sku, observed, given, out, unread)
        if start is None:
            return
        if state.retired:
            # Back in the catalogue: a fresh start, whatever moved while it was out. A push left in
            # doubt from its old life no longer matters: settled, nothing booked from it.
            note = f"back in the catalogue; {start.note}"
            start = replace(start, quantity=start.quantity - (state.pool or 0), note=note)
            out.readopted.add(sku)
            for account, old in sorted(state.listings.items()):
                if old.in_doubt is not None:
                    why = "SKU back in the catalogue: started afresh"
                    push_id = old.in_doubt.push_id
                    out.settlements.append(Settlement(push_id, sku, account, Verdict(False, SettledBy.ADOPTED, why)))
        movements.append(start)
        for account, quantity in observed.items():
            out.expected[(account, sku)] = quantity
            out.adopted.add((account, sku))
    else:
        for account, quantity in sorted(observed.items()):
            listing = state.listings.get(account)
            if listing is None:
                # A listing seen for the first time: its count is not a pool change, adopt it.
                out.expected[(account, sku)] = quantity
                out.adopted.add((account, sku))
                continue
            if (account, sku) in given.adopt:
                # Taken as it is: the pool does not move; a push in doubt on it no longer matters,
                # and counts as not applied: what its provisional booking held back comes back,
                # if it held any: only a reading booked since it went in doubt (its probe) did.
                if listing.in_doubt is not None:
                    why = "listing adopted afresh (new platform id or an operator's reject)"
                    verdict = Verdict(False, SettledBy.ADOPTED, why)
                    if listing.in_doubt.probe is not None:
                        movements.extend(_book_settlement(listing, verdict, listing.expected, sku, account, out))
                    else:
                        out.settlements.append(Settlement(listing.in_doubt.push_id, sku, account, verdict))
                out.expected[(account, sku)] = quantity
                continue
            if listing.in_doubt is not None:
                # Its changes are booked all the same (see sync.settling); only pushes wait.
                settled = _settle_in_doubt(listing.in_doubt, quantity, account, given)
                if settled is not None:
                    movements.extend(_book_settlement(listing, settled, quantity, sku, account, out))
                    continue
                frozen.add(account)
                out.waiting.append((sku, account, f"push {listing.in_doubt.push_id} in doubt"))
                push = listing.in_doubt
                # The first reading booked since it went in doubt (from then on the provisional
                # hypothesis holds units back); on a feed account, each next one the feed judges.
                judged_by_feed = account in given.feed_accounts and account not in given.feeds_behind
                early = push.probe is not None and not _could_show(push, push.probe_began, given)
                if (
                    push.probe is None
                    or (account in given.feed_accounts and push.push_id in given.windows)
                    or (early and not judged_by_feed)  # the rule weighs at a probe that could show the write
                ):
                    out.probes[push.push_id] = quantity
            external = quantity - listing.expected
            if external:
                movements.append(PlannedMovement(sku, account, external, MovementKind.EXTERNAL, "observed change"))
                out.expected[(account, sku)] = quantity

    pool = (state.pool or 0) + sum(m.quantity for m in movements)
    out.movements.extend(movements)
    out.pools[sku] = pool
    decided = {s.push_id for s in out.settlements[first_settlement:]}
    doubts = (listing.in_doubt for listing in state.listings.values())
    held = sum(abs(push.delta) for push in doubts if push is not None and push.push_id not in decided)
    if held and not state.retired:
        out.held[sku] = held
    unshown = {
        account: sales.held(read_now=account in observed)
        for account in state.listings
        if (sales := given.unshown.get((account, sku))) is not None
    }
    for account, quantity in sorted(observed.items()):
        if account in frozen:
            continue
        # A listing's own unshown sales are in its count already (it takes them off at picking).
        offered = pool - sum(units for other, units in unshown.items() if other != account)
        target = given.rules.get(account, AccountRules()).target(offered)
        if target != quantity:
            out.pushes.append(PlannedPush(sku, account, target - quantity, quantity, quantity, target))


def _bootstrap(
    sku: str, observed: Mapping[str, int], given: PlanInput, out: Plan, unread: frozenset[str]
) -> PlannedMovement | None:
    """The first pool of a SKU by the configured rule, or None (noted as waiting) when not yet known."""
    rule = given.bootstrap_rule
    if rule == BOOTSTRAP_MIN:
        if given.failed_accounts or sku in unread:
            out.waiting.append((sku, None, "bootstrap by min waits for every account to be read"))
            return None
        start = max(0, min(observed.values()))
        note = "min over " + ", ".join(f"{a}={q}" for a, q in sorted(observed.items()))
        return PlannedMovement(sku, None, start, MovementKind.BOOTSTRAP, note)
    if rule not in observed:
        out.waiting.append((sku, None, f"bootstrap waits for source account {rule}"))
        return None
    return PlannedMovement(sku, rule, max(0, observed[rule]), MovementKind.BOOTSTRAP, f"from {rule}")


def _settle_in_doubt(push: InDoubtPush, observed: int, account: str, given: PlanInput) -> Verdict | None:
    """Orders on a feed platform, a quiet listing elsewhere, then past the timeout the rule."""
    verdict: Verdict | None = None
    read_began: datetime | None = None
    on_feed = account in given.feed_accounts
    window = given.windows.get(push.push_id) if on_feed and push.probe is not None else None
    if window is not None and push.probe is not None:
        verdict = by_orders(push.delta, push.expected_before, push.probe, window)
        read_began = push.probe_began
    elif not on_feed:
        verdict = by_quiet(push.delta, push.expected_before, observed)
        read_began = given.read_began or given.now
    if verdict is None:
        verdict = _by_rule(push, observed, on_feed and account not in given.feeds_behind, window, given)
        read_began = given.read_began or given.now
    # The write may land yet: a read this soon may say "applied", never "not applied"; a later
    # one decides (nor does the rule guess meanwhile: the evidence is on its way).
    landed = _could_show(push, read_began, given)
    return None if verdict is not None and not verdict.applied and not landed else verdict


def _by_rule(
    push: InDoubtPush, observed: int, patient: bool, window: Window | None, given: PlanInput
) -> Verdict | None:
    """The timeout rule, once the evidence had its time. It weighs the hypotheses at the probe,
    where one could have shown the write (a read begun a late landing after it left): sales
    since, which the feed explains, would make both look like sales and tip "the smaller
    change" to the side with more units. A window judged at an earlier probe where the orders
    do not fit both waits for the next one (the probe moves with each judged window)."""
    seen = push.probe is not None and _could_show(push, push.probe_began, given)
    # Whether the orders fit both is a question about the probe they were judged against.
    both = (
        window is not None and push.probe is not None and window.fits_both(push.delta, push.expected_before, push.probe)
    )
    if not (window is None or seen or both):
        return None
    if not timed_out(push.sent_at, given.now, given.in_doubt_timeout, on_feed=patient, window=window):
        return None
    judged = push.probe if seen and push.probe is not None else observed
    timeout = given.in_doubt_timeout
    return by_rule(
        push.delta, push.expected_before, judged, timeout, orders_fit_both=both, window=window if seen else None
    )


def _could_show(push: InDoubtPush, read_began: datetime | None, given: PlanInput) -> bool:
    """Whether a read begun then could show the write: its answer came, or it began a late
    landing after the write left."""
    return push.answered or could_have_landed(push.sent_at, read_began, given.late_landing)


def _book_settlement(
    listing: ListingState, verdict: Verdict, observed: int, sku: str, account: str, out: Plan
) -> list[PlannedMovement]:
    """Record the settlement, and book in one movement this reading's change with the units the
    provisional hypothesis held back, if any (a quiet listing's settlement books nothing)."""
    push = listing.in_doubt
    assert push is not None
    out.settlements.append(Settlement(push.push_id, sku, account, verdict))
    change = observed - listing.expected
    if change:
        out.expected[(account, sku)] = observed
    units = change + held_back(push.delta, verdict.applied)
    if not units:
        return []
    # With a change read, an observed movement (attribution links only those to their orders,
    # and an order left unlinked could explain a later drop), flagged where a guess settled it.
    kind = MovementKind.EXTERNAL if change else MovementKind.CORRECTION if verdict.flagged else MovementKind.SETTLEMENT
    outcome = "applied" if verdict.applied else "not applied"
    seen = "observed change; " if change else ""
    note = f"{seen}push {push.push_id} settled {outcome} ({verdict.note})"
    return [PlannedMovement(sku, account, units, kind, note, verdict.flagged)]
