"""Reading accounts for a batch and judging their answers: the part of the engine's eyes that the
observer (`sync/observer.py`) and its confirmation reads (`sync/confirmation.py`) share.

An adapter has already set apart bad values and answers it could not believe; here the answer rules
of the judge (`sync/judge.py`) refuse what is empty or all zeros, and every bad read is counted,
noted for the ledger and logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from sync.errors import ReadProblem, SyncError
from sync.judge import Judgement, ListingKey, Prior, TrustRules, refused_answer
from sync.ledger.store import BatchState
from sync.metrics import METRICS
from sync.platforms.base import Adapter, Observed, ReadResult

log = structlog.get_logger(__name__)

BAD_ANSWERS = "bad_answers"  # the failure kind of an account none of whose answers was believed


@dataclass
class AccountRead:
    """One account's part in a batch's reading, for the cycle report."""

    observed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    bad: Counter[str] = field(default_factory=Counter)
    held: int = 0
    confirmed: int = 0
    stopped: int = 0


class Failures(Protocol):
    """Where the observer reports what it saw of each account in a cycle."""

    def failed(self, account: str) -> bool:
        """True when the account already failed this cycle (it is not read again)."""
        ...

    def fail(self, account: str, error: str, kind: str) -> None:
        """Record that the account could not be read this cycle."""
        ...

    def reading(self, account: str) -> AccountRead:
        """The account's reading figures for this cycle."""
        ...


# (account, SKUs to leave out, how many) -> SKU -> expected: listings the ledger believes stocked.
Stocked = Callable[[str, Collection[str], int], Mapping[str, int]]


class Reading:
    """Reads accounts through their adapters and judges each answer as a whole."""

    def __init__(
        self,
        adapters: Mapping[str, Adapter],
        codes: Mapping[str, Mapping[str, str]],
        platforms: Mapping[str, str],
        feed_accounts: Collection[str],
        rules: TrustRules,
        stocked: Stocked | None = None,
    ) -> None:
        self.adapters = adapters
        # Listings outside the batch with stock, by the ledger: canaries when the batch has none.
        self.stocked: Stocked = stocked or (lambda account, exclude, count: {})
        self.codes = codes
        self.platforms = platforms
        self.feed_accounts = frozenset(feed_accounts)
        self.rules = rules
        # Accounts whose answers have lately been bad: their drops need two agreeing reads.
        self.answering_badly: set[str] = set()
        # Priors of the listings seen for the first time in the batch being observed.
        self._first: dict[ListingKey, Prior] = {}
        # Listings of the batch being observed whose answer was all zeros (read again once).
        self._zeroed: dict[ListingKey, Observed] = {}
        # Listings whose drop a confirming read left unconfirmed: the ledger's count of them is in
        # question until a reading of theirs is believed, so they are no canaries (two batches whose
        # real drops served as each other's canaries would void each other's confirmations forever).
        self.doubted: set[ListingKey] = set()

    # --- one account's answers ----------------------------------------------------------------

    def _judge_answers(
        self,
        name: str,
        read: ReadResult,
        skus: Sequence[str],
        state: BatchState,
        explained: Mapping[ListingKey, int],
        run: AccountRead,
        out: Judgement,
    ) -> tuple[dict[str, Observed], int]:
        """SKU -> observation for what survives the adapter's and the answer rules, and how many
        answers were refused whole."""
        by_code = {self.codes[name][sku]: sku for sku in skus}
        priors = self._priors(name, skus, state, explained)
        refused_answers = len(read.refusals)
        for code, reason in read.skipped.items():
            run.skipped[code] = reason
            log.warning("listing.skipped", account=name, code=code, reason=reason)
        for code, reason in read.bad.items():
            sku = by_code.get(code)
            self._bad(name, run, ReadProblem.BAD_VALUE, reason, sku, out, expected=_expected(priors, sku))
        for refusal in read.refusals:
            lost = [by_code[code] for code in refusal.codes if code in by_code]
            why = f"{len(refusal.codes)} listings: {refusal.reason}"
            self._bad(name, run, refusal.problem, why, None, out, skus=lost)
            out.unread.update((name, sku) for sku in lost)
        seen = {by_code[code]: o for code, o in read.observed.items() if code in by_code}
        present = {by_code[c] for c in (*read.observed, *read.skipped, *read.bad) if c in by_code}
        # Listings a stop holds are judged by the stop (orders, reads coming back, an operator):
        # their zeros are no sign of a broken answer.
        priors = {sku: prior for sku, prior in priors.items() if (name, sku) not in state.holds}
        for answer in read.answers:
            asked = [by_code[code] for code in answer if code in by_code]
            quantities = {sku: seen[sku].quantity for sku in asked if sku in seen}
            refused = refused_answer(asked, present, quantities, priors)
            if refused is not None:
                problem, reason = refused
                refused_answers += 1
                self._bad(name, run, problem, reason, None, out, skus=asked)
                if problem is ReadProblem.ALL_ZEROS:
                    self._zeroed.update(((name, sku), seen[sku]) for sku in asked if sku in seen and sku in priors)
                for sku in asked:
                    seen.pop(sku, None)
                    out.unread.add((name, sku))
        for code in read.bad:
            if code in by_code:
                out.unread.add((name, by_code[code]))
        return seen, refused_answers

    # --- helpers ------------------------------------------------------------------------------

    def _first_priors(
        self,
        names: Sequence[str],
        reads: Sequence[ReadResult | None],
        wanted: Mapping[str, Sequence[str]],
        state: BatchState,
    ) -> dict[ListingKey, Prior]:
        """For listings the ledger does not know yet (a bootstrap, a new listing, a SKU back in the
        catalogue): what the other accounts read of the same SKU, so that a first reading of 0, or
        an answer of zeros, is judged against it instead of believed blindly."""
        shown: dict[str, dict[str, int]] = {}
        for name, read in zip(names, reads, strict=True):
            if read is None:
                continue
            by_code = {self.codes[name][sku]: sku for sku in wanted[name]}
            for code, seen in read.observed.items():
                if code in by_code:
                    shown.setdefault(by_code[code], {})[name] = seen.quantity
        first: dict[ListingKey, Prior] = {}
        for sku, by_account in shown.items():
            for name in by_account:
                others = [q for other, q in by_account.items() if other != name]
                if state.listing(name, sku) is None and others and max(others) > 0:
                    # "1": the question a confirmation answers is only whether it is really 0.
                    first[(name, sku)] = Prior(max(others), 1)
        return first

    def _priors(
        self, name: str, skus: Sequence[str], state: BatchState, explained: Mapping[ListingKey, int]
    ) -> dict[str, Prior]:
        """What the ledger believes of each known listing: expected, and the fewest units our own
        pushes can explain (the lower outcome of a push in doubt). A listing seen for the first
        time has the prior the other accounts' readings give it, if any."""
        priors: dict[str, Prior] = {}
        for sku in skus:
            listing = state.listing(name, sku)
            if listing is None:
                if (name, sku) in self._first:
                    priors[sku] = self._first[(name, sku)]
                continue
            low = high = listing.expected
            if listing.in_doubt is not None:
                before = listing.in_doubt.expected_before
                outcomes = (before, before + listing.in_doubt.delta)
                low, high = min(outcomes), max(outcomes)
            priors[sku] = Prior(listing.expected, low, explained.get((name, sku), 0), high)
        return priors

    def _bad(
        self,
        name: str,
        run: AccountRead,
        problem: ReadProblem,
        reason: str,
        sku: str | None,
        out: Judgement,
        *,
        expected: int | None = None,
        skus: Sequence[str] = (),
    ) -> None:
        """Count, note and log a bad read (`skus`: those of a whole answer refused)."""
        run.bad[problem.value] += 1
        METRICS.bad_reads.labels(self.platforms[name], name, problem.value).inc()
        out.note(name, sku, problem.value, None, expected, reason, skus)
        log.warning("read.refused", account=name, sku=sku, problem=problem.value, reason=reason)

    async def _read(self, name: str, skus: Sequence[str], report: Failures) -> ReadResult | None:
        if report.failed(name):
            return None  # already failed this cycle: do not hammer it again
        try:
            return await self.adapters[name].read([self.codes[name][sku] for sku in skus])
        except SyncError as err:
            report.fail(name, err.message, err.kind.value)
            log.warning("account.read_failed", account=name, kind=err.kind.value, error=err.message)
        except Exception as err:  # a bug in an adapter must not stop the other accounts
            report.fail(name, f"internal error: {type(err).__name__}: {err}", "internal")
            log.exception("account.read_crashed", account=name)
        return None


def _expected(priors: Mapping[str, Prior], sku: str | None) -> int | None:
    prior = priors.get(sku) if sku is not None else None
    return None if prior is None else prior.expected
