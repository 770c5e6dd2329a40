"""The read judge: what a platform's answer must show before anything is booked from it.

Pure rules, no I/O (the engine's observer does the reading around them). A read is judged at three
levels, in this order:

- per listing, by the adapters: a value that is not an integer, out of range or negative is a bad
  value, skipped with a reason (`sync.platforms.values`);
- per answer, here: no listings where the ledger knows some, or every quantity zero where several
  listings had stock, refuses the whole answer (a truncated, non-JSON or self-contradicting body
  is refused by the adapter already);
- per change, here: a drop that nothing explains is held for confirmation by a second,
  independent read before it is booked. On a platform with an order feed, a drop the feed's
  unbooked sales do not cover; on any platform, a drop to zero or by more than a share of the
  listing. When most of an account's listings in a batch drop that way at once, the account is
  stopped for those listings instead, and an operator (or orders) decides.

Every drop is measured from the lowest count our own pushes can explain: `expected`, or with a
push in doubt, the lower of its two outcomes. A reading that would settle a push in doubt at its
lower outcome is judged from the higher one too: a lying 0 that happens to equal the lower outcome
would otherwise settle the push wrongly (a push sent twice, or one believed that never landed).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from sync.errors import ReadProblem


@dataclass(frozen=True)
class Prior:
    """What the ledger believes of a listing before a read: `expected`, the fewest units our own
    pushes can explain (`low`), and units of sales the order feed shows that are not booked yet."""

    expected: int
    low: int
    explained: int = 0
    high: int | None = None  # with a push in doubt, the higher of its two outcomes

    @property
    def in_doubt(self) -> bool:
        """Whether a push in doubt leaves two counts our own pushes can explain."""
        return self.high is not None and self.high > self.low


@dataclass(frozen=True)
class TrustRules:
    """How suspicious a drop must be to be confirmed, and how many at once stop an account."""

    confirm_drop_share: float = 0.5
    stop_min_listings: int = 10
    stop_drop_share: float = 0.5


def refused_answer(
    asked: Sequence[str], present: Collection[str], seen: Mapping[str, int], priors: Mapping[str, Prior]
) -> tuple[ReadProblem, str] | None:
    """Why one answer must be refused whole, or None. `asked` are the keys it was asked for,
    `present` those it mentioned at all (observed, skipped or bad), `seen` their quantities."""
    known = [key for key in asked if key in priors]
    if known and not any(key in present for key in asked):
        return ReadProblem.EMPTY, f"reported none of its {len(known)} known listings"
    got = [key for key in asked if key in seen]
    # Stock that orders do not account for: a sell-out the feed shows is no sign of a broken answer.
    stocked = sum(1 for key in got if key in priors and priors[key].low > priors[key].explained)
    if len(got) >= 2 and stocked >= 2 and all(seen[key] == 0 for key in got):
        return ReadProblem.ALL_ZEROS, f"reported all {len(got)} listings at zero ({stocked} had stock)"
    return None


def suspicious_drop(quantity: int, prior: Prior, *, has_feed: bool, rules: TrustRules) -> str | None:
    """Why this reading is a drop that must be confirmed before it is booked, or None: measured
    from the fewest units our own pushes can explain (these drops count towards a safety stop)."""
    return _drop_from(prior.low, quantity, prior.explained, has_feed=has_feed, rules=rules)


def unsettling_read(quantity: int, prior: Prior, *, has_feed: bool, rules: TrustRules) -> str | None:
    """Why this reading, no suspicious drop from the lower outcome of a push in doubt, must still
    be confirmed before it settles that push: it is one from the higher outcome. Held for a
    confirming read, but never counted towards a stop (the push itself may explain it)."""
    if suspicious_drop(quantity, prior, has_feed=has_feed, rules=rules) is not None:
        return None
    if not prior.in_doubt or prior.high is None or quantity >= prior.high:
        return None
    why = _drop_from(prior.high, quantity, prior.explained, has_feed=has_feed, rules=rules)
    return None if why is None else f"{why} (a push in doubt)"


def needs_confirmation(quantity: int, prior: Prior, *, has_feed: bool, rules: TrustRules) -> str | None:
    """Why this reading must be confirmed before it is booked, or None (either rule above)."""
    return suspicious_drop(quantity, prior, has_feed=has_feed, rules=rules) or unsettling_read(
        quantity, prior, has_feed=has_feed, rules=rules
    )


def _drop_from(base: int, quantity: int, explained: int, *, has_feed: bool, rules: TrustRules) -> str | None:
    drop = base - quantity
    if drop <= 0:
        return None
    if has_feed:
        if drop - explained <= 0:
            return None  # the feed's sales account for it: real, booked at once
        return f"dropped {drop} from {base}, orders explain {explained}"
    if quantity == 0:
        return f"dropped to 0 from {base}"
    if drop > rules.confirm_drop_share * base:
        return f"dropped {drop} of {base} (over {rules.confirm_drop_share:.0%})"
    return None


def stop_reason(suspicious: int, judged: int, rules: TrustRules) -> str | None:
    """Why this many suspicious drops among `judged` known listings of one account's batch stop
    the account for those listings (rather than confirm each), or None."""
    if judged < rules.stop_min_listings or suspicious / judged <= rules.stop_drop_share:
        return None
    limit = f"{rules.stop_drop_share:.0%}"
    return f"{suspicious} of {judged} listings dropped at once with nothing to explain it (limit {limit})"


class Check(str, Enum):
    """What a confirming read made of a held drop."""

    CONFIRMED = "confirmed"  # it shows the same number: book it
    NOT_A_DROP = "not_a_drop"  # it shows no suspicious drop: book this read instead
    AGAIN = "again"  # it shows another drop: hold that one and read again
    UNCONFIRMED = "unconfirmed"  # it did not say (refused, missing): nothing is booked


@dataclass(frozen=True)
class Confirmation:
    """The outcome of one confirming read for one held drop; `disagreed` when it contradicts the
    held reading (a bad read, counted)."""

    check: Check
    quantity: int | None
    disagreed: bool


def confirm(held: int, again: int | None, prior: Prior, *, has_feed: bool, rules: TrustRules) -> Confirmation:
    """Judge a held drop `held` against the confirming read `again` (None: no usable value)."""
    if again is None:
        return Confirmation(Check.UNCONFIRMED, None, False)
    if again == held:
        return Confirmation(Check.CONFIRMED, held, False)
    if needs_confirmation(again, prior, has_feed=has_feed, rules=rules) is None:
        return Confirmation(Check.NOT_A_DROP, again, True)
    # Another suspicious number: lower than the held one (a sale in between, or a second bad
    # answer) or higher (the held one was wrong). Neither is believed until it repeats.
    return Confirmation(Check.AGAIN, again, True)


def canaries(accepted: Mapping[str, int], priors: Mapping[str, Prior], held: Collection[str], count: int) -> list[str]:
    """Listings read alongside a confirmation so that an answer zeroing everything is caught: ones
    just accepted with stock, known to the ledger with stock too, not held themselves."""
    chosen = [
        key
        for key, quantity in sorted(accepted.items(), key=lambda item: -item[1])
        if quantity > 0 and key in priors and priors[key].expected > 0 and key not in held
    ]
    return chosen[:count]


ListingKey = tuple[str, str]  # (account name, sku)


@dataclass(frozen=True)
class ReadNote:
    """A read that was not simply believed, for the ledger's read events: a ReadProblem value, or
    what became of a held drop ("held", "confirmed", "unconfirmed", "stopped", "released",
    "accepted", "rejected", "adopted"). `sku` is None for a whole answer."""

    account: str
    sku: str | None
    kind: str
    quantity: int | None = None
    expected: int | None = None
    reason: str = ""
    skus: tuple[str, ...] = ()  # for a whole answer: the SKUs it was asked for


@dataclass
class Judgement:
    """What was decided about one batch's reads, written with the plan in one transaction."""

    notes: list[ReadNote] = field(default_factory=list)
    new_stops: dict[str, str] = field(default_factory=dict)  # account -> why it stopped now
    held: dict[ListingKey, int] = field(default_factory=dict)  # under a stop, with the reading held
    released: dict[ListingKey, str] = field(default_factory=dict)  # leaving their stop, and why
    decided: set[ListingKey] = field(default_factory=set)  # an operator's decision used up
    adopt: set[ListingKey] = field(default_factory=set)  # taken as they are, nothing booked
    unread: set[ListingKey] = field(default_factory=set)  # read, but nothing believed this time

    def note(
        self,
        account: str,
        sku: str | None,
        kind: str,
        quantity: int | None = None,
        expected: int | None = None,
        reason: str = "",
        skus: Sequence[str] = (),
    ) -> None:
        """Add a read event."""
        self.notes.append(ReadNote(account, sku, kind, quantity, expected, reason, tuple(skus)))
