"""Settling a push in doubt: which of its two hypotheses the evidence leaves standing. Pure: no I/O,
no clock; the engine gathers the evidence and the planner books what this decides.

A push of delta d whose answer was lost, made from a read that showed e: a later read showing o
means an external change of `o - e - d` if it was applied, `o - e` if not. Exactly one is true.

- **Orders decide** on a platform with an order feed. The orders placed (and cancelled) on the
  listing between the read behind the push and a later read are the external change there, unless
  something the feed does not report happened too (a hand edit, a return). When exactly one
  hypothesis fits them, it is the truth. An order whose time falls in either read's own interval
  (widened by the timestamps' precision) may or may not be in that read: it counts both ways, and
  a hypothesis fits when some choice of those explains it.
- **A quiet listing decides only where no order can land unseen**: on a platform without a feed
  (Oakra), the read right after the push showing one hypothesis with no change at all is taken,
  flagged, because a sale of exactly |d| would look the same. That window is undecidable by any
  document, and is counted as such.
- **Otherwise it waits**, and the listing's changes are still booked meanwhile (see
  `provisional_base`): nothing is frozen. Past the timeout, the documented rule decides, flagged;
  on a feed platform only once a window was judged that no later read can improve (or after
  `PATIENCE` timeouts, should the feed stay down).

While undecided, a push counts under the hypothesis that shows fewer units in the pool: an upward
push as applied, a downward one as not applied. The listing's `expected` says so, and whatever it
reads is booked from there; settling the other way books the |d| units held back (`held_back`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.domain import SettledBy

# More edge orders than this and any count could be explained: nothing is decided from them.
MAX_EDGES = 10
# On a feed platform, the rule waits this many timeouts for a window the orders can judge to the
# end (orders racing every later read) before it decides anyway.
PATIENCE = 6
# How long after it was sent a write whose answer was lost may still land (queued behind a gateway
# that gave up, or past our timeout). No document bounds it; a minute by default
# (`sync.late_landing_seconds`), and a write landing later than that shows as an outside change on
# the listing's next read.
LATE_LANDING = timedelta(seconds=60)


@dataclass(frozen=True)
class OrderFact:
    """Units an order moved on a listing (a sale negative, a cancellation positive), and the
    earliest and latest it can have happened, its timestamps' precision and skew included."""

    units: int
    earliest: datetime
    latest: datetime
    line: int | None = None  # the order line whose sale this is (None: a release or a return)


@dataclass(frozen=True)
class Window:
    """What the order feed says moved one listing between two reads."""

    certain: int = 0  # net units of the orders surely between the two reads
    edges: tuple[int, ...] = ()  # units of orders that may or may not be in the first read
    late: tuple[int, ...] = ()  # units of orders that may or may not be in the later read
    orders: int = 0
    # The order line of each uncertain order (edges, then late), where it is a sale: a verdict
    # that needs one in the window proves the later read reflects it (`Window.inside`).
    lines: tuple[int | None, ...] = ()

    @property
    def final(self) -> bool:
        """Whether a later read can tell more: not when no order sits on this read's edge (what
        stands undecided then, a change no order explains or one racing the first read, stays so)."""
        return not self.late

    def totals(self) -> set[int] | None:
        """The net units the orders can account for, one per choice of the uncertain ones (None
        past `MAX_EDGES` of them: any count could be explained)."""
        uncertain = self.edges + self.late
        if len(uncertain) > MAX_EDGES:
            return None
        sums = {self.certain}
        for units in uncertain:
            sums |= {total + units for total in sums}
        return sums

    def allows(self, external: int) -> bool:
        """Whether the orders can account for an external change of exactly `external` units."""
        totals = self.totals()
        return totals is None or external in totals

    def fits_both(self, delta: int, expected_before: int, probe: int) -> bool:
        """Whether orders on the window account for the probe under either hypothesis."""
        applied, not_applied = probe - expected_before - delta, probe - expected_before
        return bool(self.orders) and self.allows(applied) and self.allows(not_applied)

    def inside(self, external: int) -> frozenset[int]:
        """The sales on a read's edge that every way of explaining `external` counts in the
        window: the later read reflects them, whatever the orders' own times leave open. A later
        window must not count them again (an order that explained one push cannot explain the next)."""
        uncertain = self.edges + self.late
        if len(uncertain) > MAX_EDGES or len(self.lines) != len(uncertain):
            return frozenset()
        always = {i for i, line in enumerate(self.lines) if line is not None}
        for mask in range(1 << len(uncertain)):
            chosen = {i for i in range(len(uncertain)) if mask >> i & 1}
            if self.certain + sum(uncertain[i] for i in chosen) == external:
                always &= chosen
        return frozenset(line for i, line in enumerate(self.lines) if i in always and line is not None)

    def describe(self) -> str:
        """A few words for the ledger and `explain`."""
        edges = len(self.edges) + len(self.late)
        at_edges = f", {edges} at a read's edge" if edges else ""
        return f"{self.orders} order event(s) net {self.certain:+d}{at_edges}"


def window_of(facts: Iterable[OrderFact], first: tuple[datetime, datetime], last: tuple[datetime, datetime]) -> Window:
    """The window between the read `first` (began, ended) and the read `last`, from order facts."""
    certain, edges, late, orders = 0, [], [], 0
    for fact in facts:
        if fact.latest < first[0] or fact.earliest > last[1]:
            continue  # surely before the first read, or after the last one
        orders += 1
        if fact.earliest > first[1] and fact.latest < last[0]:
            certain += fact.units
        elif fact.earliest > first[1]:
            late.append(fact)
        else:
            edges.append(fact)
    uncertain = edges + late
    return Window(
        certain,
        tuple(f.units for f in edges),
        tuple(f.units for f in late),
        orders,
        tuple(f.line for f in uncertain),
    )


@dataclass(frozen=True)
class Verdict:
    """A settlement decided: applied or not, what decided it, and a note for the ledger."""

    applied: bool
    by: SettledBy
    note: str
    # Order lines (sales) the verdict proves its probe read reflects: `sync.evidence` keeps them
    # out of any later window.
    reflected: frozenset[int] = frozenset()

    @property
    def flagged(self) -> bool:
        """Not decided by evidence: the operator should look."""
        return self.by in (SettledBy.QUIET, SettledBy.RULE)


def by_orders(delta: int, expected_before: int, probe: int, window: Window) -> Verdict | None:
    """Decide from a probe read and the orders between the push's read and it, or None."""
    if_applied, if_not = probe - expected_before - delta, probe - expected_before
    fits_applied, fits_not = window.allows(if_applied), window.allows(if_not)
    if fits_applied == fits_not:
        return None  # neither fits (a change the feed does not report) or both do (edge orders)
    outcome = "applied" if fits_applied else "not applied"
    reflected = window.inside(if_applied if fits_applied else if_not)
    return Verdict(fits_applied, SettledBy.ORDERS, f"orders decide: {window.describe()} fit {outcome} only", reflected)


def by_quiet(delta: int, expected_before: int, observed: int) -> Verdict | None:
    """On a platform without a feed: the hypothesis under which the listing did not move."""
    if observed - expected_before - delta == 0:
        return Verdict(True, SettledBy.QUIET, "quiet listing, no order feed to confirm: applied")
    if observed == expected_before:
        return Verdict(False, SettledBy.QUIET, "quiet listing, no order feed to confirm: not applied")
    return None


def by_rule(
    delta: int,
    expected_before: int,
    observed: int,
    timeout: timedelta,
    *,
    orders_fit_both: bool = False,
    window: Window | None = None,
) -> Verdict:
    """Past the timeout, undecided. Where the feed's orders fit both hypotheses (an order raced
    the reads, or OTO's undated ones), the provisional one, with fewer units in the pool (an
    upward push applied, a downward one not): a sale the feed reports is never counted back, at
    the price of the pool being |d| short should the other be true, which the note says. Where
    no order could tell (no feed, a feed down, a change no feed reports), the hypothesis that
    needs no units from nowhere (sales are far commoner than restocks), then the smaller
    external change, then "applied"."""
    if_applied, if_not = observed - expected_before - delta, observed - expected_before
    if orders_fit_both:
        applied = delta > 0
        ruled, other = ("applied", "not applied") if applied else ("not applied", "applied")
        note = (
            f"in doubt past {timeout}, orders fit both: ruled {ruled}, the side that cannot oversell; "
            f"had it been {other}, the pool is {abs(delta)} short"
        )
        return Verdict(applied, SettledBy.RULE, note)
    applied = _implausibility(_unexplained(if_applied, window)) <= _implausibility(_unexplained(if_not, window))
    residual = if_applied if applied else if_not
    note = f"in doubt past {timeout}: ruled {'applied' if applied else 'not applied'}, residual {residual:+d}"
    return Verdict(applied, SettledBy.RULE, note)


def timed_out(
    sent_at: datetime, now: datetime | None, timeout: timedelta, *, on_feed: bool = False, window: Window | None = None
) -> bool:
    """Whether the evidence had its time: the timeout, and on a feed platform a window judged
    that no later read can improve (None: the feed was not read past the latest probe yet), or
    else `PATIENCE` timeouts, in a batch with a window judged. A feed that is down counts as none
    (`on_feed` False): the listing takes no push while its push is undecided, so it waits no
    longer than the timeout."""
    if now is None or now - sent_at < timeout:
        return False
    if not on_feed or (window is not None and window.final):
        return True
    if window is None:
        # Between two judged windows (the feed not yet read past the newest probe: seconds), the
        # rule would not know whether the orders fit both; the next window does. A push whose
        # windows never come (its reads unrecorded) still settles, a little later.
        return now - sent_at >= (PATIENCE + 2) * timeout
    return now - sent_at >= PATIENCE * timeout


def could_have_landed(sent_at: datetime, read_began: datetime | None, late_landing: timedelta = LATE_LANDING) -> bool:
    """Whether a read began late enough to show the write, had it been applied: a write whose
    answer was lost may still be queued somewhere and land up to `late_landing` after it was sent,
    so a read before then cannot say it was not applied (it can say it was)."""
    return read_began is not None and read_began >= sent_at + late_landing


def provisional_base(expected_before: int, delta: int) -> int:
    """What the listing counts as showing while the push is undecided: the hypothesis with fewer
    units in the pool (the platform showing more), so no sale is held back and nothing oversold."""
    return expected_before + max(delta, 0)


def held_back(delta: int, applied: bool) -> int:
    """Units to book when the push settles: what the provisional hypothesis kept out of the pool
    (|d| when it settles the other way, else 0)."""
    return provisional_base(0, delta) - (delta if applied else 0)


def _unexplained(external: int, window: Window | None) -> int:
    """What of an external change the window's orders leave unexplained, at their likeliest."""
    if window is None:
        return external
    totals = window.totals()
    return 0 if totals is None else min((external - total for total in totals), key=_implausibility)


def _implausibility(external: int) -> tuple[bool, int]:
    """Order hypotheses: units appearing is less plausible than units sold; then by size."""
    return (external > 0, abs(external))
