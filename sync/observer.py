"""The engine's eyes: read every account for a batch, and believe only what the judge lets through.

For each account: the adapter's read (bad values and unbelievable answers already set apart), then
the answer rules, then each listing's change. A suspicious drop is read again at once, with a few
listings that were just believed alongside it (so that an answer zeroing everything is caught);
it is booked only when the second read agrees, or, for an account whose answers have lately been
bad, when two more reads agree. When most of an account's listings in a batch drop suspiciously at
once, those listings are held under a safety stop instead: nothing of theirs is booked until
orders explain the drops, the reads come back, or an operator accepts or rejects them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from sync.errors import ReadProblem, SyncError
from sync.judge import (
    Check,
    Judgement,
    ListingKey,
    Prior,
    TrustRules,
    canaries,
    confirm,
    refused_answer,
    stop_reason,
    suspicious_drop,
)
from sync.ledger.store import BatchState
from sync.metrics import METRICS
from sync.platforms.base import Adapter, Observed, ReadResult

log = structlog.get_logger(__name__)

CONFIRM_ROUNDS = 3  # reads of a held drop before it is left for the next cycle
CANARIES = 2  # believed listings read alongside a confirmation
BAD_ANSWERS = "bad_answers"  # the failure kind of an account none of whose answers was believed
HELD_OUTCOMES = frozenset({"confirmed", "unconfirmed", "stopped", "released", "accepted", "rejected"})


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


class Observer:
    """Reads accounts through their adapters and judges the answers."""

    def __init__(
        self,
        adapters: Mapping[str, Adapter],
        codes: Mapping[str, Mapping[str, str]],
        platforms: Mapping[str, str],
        feed_accounts: Collection[str],
        rules: TrustRules,
    ) -> None:
        self.adapters = adapters
        self.codes = codes
        self.platforms = platforms
        self.feed_accounts = frozenset(feed_accounts)
        self.rules = rules
        # Accounts whose answers have lately been bad: their drops need two agreeing reads.
        self.answering_badly: set[str] = set()
        # Priors of the listings seen for the first time in the batch being observed.
        self._first: dict[ListingKey, Prior] = {}

    async def observe(
        self,
        state: BatchState,
        wanted: Mapping[str, Sequence[str]],
        explained: Mapping[ListingKey, int],
        report: Failures,
        *,
        judge_stops: bool,
    ) -> tuple[dict[ListingKey, Observed], Judgement]:
        """Read `wanted` (account -> SKUs) and return the believed observations, with the
        judgement (held, refused, stopped, adopted listings and read events) for the ledger."""
        names = list(wanted)
        reads = await asyncio.gather(*(self._read(name, wanted[name], report) for name in names))
        self._first = self._first_priors(names, reads, wanted, state)
        self._zeroed: dict[ListingKey, Observed] = {}
        judgement = Judgement()
        believed: dict[ListingKey, Observed] = {}
        held: dict[ListingKey, tuple[Observed, str]] = {}
        for name, read in zip(names, reads, strict=True):
            if read is not None:
                run = report.reading(name)
                run.observed += len(read.observed)
                seen, refused = self._judge_answers(name, read, wanted[name], state, explained, run, judgement)
                answers = len(read.refusals) + len(read.answers)
                if answers and refused == answers:
                    # Every answer of this batch refused: say so (health, exit status); the account
                    # is still read in the cycle's other batches.
                    first = next((n.reason for n in reversed(judgement.notes) if n.account == name), "")
                    report.fail(name, f"no answer could be believed: {first}", BAD_ANSWERS)
                self._judge_changes(name, seen, state, explained, report, judgement, believed, held, judge_stops)
        if held:
            await self._confirm(held, believed, state, explained, report, judgement)
        if self._zeroed and judge_stops:
            await self._recheck_zeros(believed, state, explained, report, judgement)
        for note in judgement.notes:
            if note.kind in HELD_OUTCOMES:
                METRICS.held_drops.labels(note.account, note.kind).inc()
        return believed, judgement

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
            self._bad(name, run, refusal.problem, f"{len(refusal.codes)} listings: {refusal.reason}", None, out)
            out.unread.update((name, by_code[code]) for code in refusal.codes if code in by_code)
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
                self._bad(name, run, problem, reason, None, out)
                if problem is ReadProblem.ALL_ZEROS:
                    self._zeroed.update(((name, sku), seen[sku]) for sku in asked if sku in seen and sku in priors)
                for sku in asked:
                    seen.pop(sku, None)
                    out.unread.add((name, sku))
        for code in read.bad:
            if code in by_code:
                out.unread.add((name, by_code[code]))
        return seen, refused_answers

    def _judge_changes(
        self,
        name: str,
        seen: Mapping[str, Observed],
        state: BatchState,
        explained: Mapping[ListingKey, int],
        report: Failures,
        out: Judgement,
        believed: dict[ListingKey, Observed],
        held: dict[ListingKey, tuple[Observed, str]],
        judge_stops: bool,
    ) -> None:
        """Believe, hold or stop each listing's reading."""
        run = report.reading(name)
        priors = self._priors(name, list(seen), state, explained)
        has_feed = name in self.feed_accounts
        suspicious: dict[str, tuple[Observed, str]] = {}
        judged = 0
        for sku, seen_now in seen.items():
            key = (name, sku)
            prior = priors.get(sku)
            if prior is None:
                believed[key] = seen_now  # a listing seen for the first time: adopted, not booked
                continue
            if key in self._first:
                # Seen for the first time: only a zero where other accounts show stock is suspect,
                # and it is confirmed (a stop holds only listings the ledger knows).
                if seen_now.quantity == 0:
                    why = f"reads 0 where other accounts show {prior.expected}"
                    held[key] = (seen_now, why)
                    out.note(name, sku, "held", 0, None, why)
                    run.held += 1
                else:
                    believed[key] = seen_now
                continue
            stored_ref = state.refs.get(key)
            if stored_ref and seen_now.ref != stored_ref:
                # Deleted and created again on the platform: a new listing, its count not a movement.
                believed[key] = seen_now
                out.adopt.add(key)
                why = f"new platform id {seen_now.ref} (was {stored_ref})"
                out.note(name, sku, "adopted", seen_now.quantity, prior.expected, why)
                continue
            hold = state.holds.get(key)
            if hold is not None:
                self._under_stop(key, seen_now, prior, hold.decision, has_feed, out, believed, run)
                continue
            judged += 1
            drop = suspicious_drop(seen_now.quantity, prior, has_feed=has_feed, rules=self.rules)
            if drop is None:
                believed[key] = seen_now
            else:
                suspicious[sku] = (seen_now, drop)
        if not suspicious:
            return
        reason = stop_reason(len(suspicious), judged, self.rules) if judge_stops else None
        if reason is not None:
            out.new_stops[name] = reason
            for sku, (seen_now, why) in suspicious.items():
                out.held[(name, sku)] = seen_now.quantity
                out.unread.add((name, sku))
                out.note(name, sku, "stopped", seen_now.quantity, priors[sku].expected, why)
            run.stopped += len(suspicious)
            log.error(
                "account.safety_stop",
                account=name,
                reason=reason,
                listings=sorted(suspicious)[:20],
                hint=f"stocksync accept {name} --dry-run shows what would be booked",
            )
            return
        for sku, (seen_now, why) in suspicious.items():
            held[(name, sku)] = (seen_now, why)
            out.note(name, sku, "held", seen_now.quantity, priors[sku].expected, why)
            run.held += 1

    def _under_stop(
        self,
        key: ListingKey,
        seen_now: Observed,
        prior: Prior,
        decision: str | None,
        has_feed: bool,
        out: Judgement,
        believed: dict[ListingKey, Observed],
        run: AccountRead,
    ) -> None:
        """A listing held by a safety stop: released when an operator decided, when its reading
        is back, or when orders explain the drop; otherwise it stays held."""
        name, sku = key
        quantity = seen_now.quantity
        if decision in ("accept", "reject"):
            believed[key] = seen_now
            out.decided.add(key)
            if decision == "reject":
                out.adopt.add(key)  # the platform is put back to the pool's target, nothing booked
            out.released[key] = f"{decision}ed by an operator"
            out.note(name, sku, f"{decision}ed", quantity, prior.expected, "operator's decision")
        elif suspicious_drop(quantity, prior, has_feed=has_feed, rules=self.rules) is None:
            believed[key] = seen_now
            why = "read back as expected" if quantity >= prior.low else "orders explain the drop"
            out.released[key] = why
            out.note(name, sku, "released", quantity, prior.expected, why)
        else:
            out.held[key] = quantity
            out.unread.add(key)
            run.stopped += 1

    # --- confirmation -------------------------------------------------------------------------

    async def _confirm(
        self,
        held: dict[ListingKey, tuple[Observed, str]],
        believed: dict[ListingKey, Observed],
        state: BatchState,
        explained: Mapping[ListingKey, int],
        report: Failures,
        out: Judgement,
    ) -> None:
        """Read held drops again until each is confirmed, contradicted, or out of rounds."""
        candidates = {key: seen for key, (seen, _) in held.items()}
        agreed: Counter[ListingKey] = Counter()
        for _ in range(CONFIRM_ROUNDS):
            if not candidates:
                break
            by_account: dict[str, list[str]] = {}
            for name, sku in candidates:
                by_account.setdefault(name, []).append(sku)
            names = list(by_account)
            extra = {
                name: canaries(
                    {sku: o.quantity for (a, sku), o in believed.items() if a == name},
                    self._priors(name, [sku for (a, sku) in believed if a == name], state, {}),
                    by_account[name],
                    CANARIES,
                )
                for name in names
            }
            reads = await asyncio.gather(
                *(self._read(name, extra[name] + by_account[name], report) for name in names)
            )
            for name, read in zip(names, reads, strict=True):
                if read is None:
                    continue
                run = report.reading(name)
                just_read = {sku: believed[(name, sku)].quantity for sku in extra[name]}
                canary_priors = {sku: Prior(quantity, quantity) for sku, quantity in just_read.items()}
                seen, _ = self._judge_answers(name, read, extra[name] + by_account[name], state, explained, run, out)
                if self._canary_fell(name, seen, canary_priors):
                    why = "a confirming read dropped listings just read"
                    self._bad(name, run, ReadProblem.DISAGREED, why, None, out)
                    continue
                priors = self._priors(name, by_account[name], state, explained)
                for sku in by_account[name]:
                    key, again = (name, sku), seen.get(sku)
                    self._settle_candidate(key, again, priors[sku], candidates, agreed, believed, out, run)
        for (name, sku), seen_now in candidates.items():
            out.unread.add((name, sku))
            expected = _expected(self._priors(name, [sku], state, {}), sku)
            out.note(name, sku, "unconfirmed", seen_now.quantity, expected, "no read agreed; nothing booked")

    def _settle_candidate(
        self,
        key: ListingKey,
        again: Observed | None,
        prior: Prior,
        candidates: dict[ListingKey, Observed],
        agreed: Counter[ListingKey],
        believed: dict[ListingKey, Observed],
        out: Judgement,
        run: AccountRead,
    ) -> None:
        """Judge one held drop against its confirming read; believe it, hold another, or wait."""
        name, sku = key
        held_now = candidates[key]
        result = confirm(
            held_now.quantity,
            None if again is None else again.quantity,
            prior,
            has_feed=name in self.feed_accounts,
            rules=self.rules,
        )
        if result.check is Check.UNCONFIRMED:
            return
        assert again is not None
        if result.disagreed:
            why = f"read {again.quantity} after {held_now.quantity}"
            self._bad(name, run, ReadProblem.DISAGREED, why, sku, out, expected=prior.expected)
        if result.check is Check.AGAIN:
            candidates[key] = again
            agreed[key] = 0
            return
        if result.check is Check.CONFIRMED:
            agreed[key] += 1
            if agreed[key] < (2 if name in self.answering_badly else 1):
                return
            out.note(name, sku, "confirmed", again.quantity, prior.expected, f"{agreed[key] + 1} reads agree")
            run.confirmed += 1
        believed[key] = again
        del candidates[key]

    async def _recheck_zeros(
        self,
        believed: Mapping[ListingKey, Observed],
        state: BatchState,
        explained: Mapping[ListingKey, int],
        report: Failures,
        out: Judgement,
    ) -> None:
        """An answer of all zeros is refused; read those listings once more. If they are all still
        zero, it may be a real sell-out (a small account, no orders to explain it): hold them under
        a safety stop, so that it shows and an operator can accept it, rather than refusing it at
        every cycle in silence."""
        by_account: dict[str, list[str]] = {}
        for name, sku in self._zeroed:
            by_account.setdefault(name, []).append(sku)
        for name, skus in by_account.items():
            extra = canaries(
                {sku: o.quantity for (a, sku), o in believed.items() if a == name},
                self._priors(name, [sku for (a, sku) in believed if a == name], state, {}),
                skus,
                CANARIES,
            )
            read = await self._read(name, extra + skus, report)
            if read is None:
                continue
            by_code = {self.codes[name][sku]: sku for sku in extra + skus}
            seen = {by_code[code]: o for code, o in read.observed.items() if code in by_code}
            if read.refusals or any(sku not in seen or seen[sku].quantity != 0 for sku in skus):
                continue  # the zeros did not hold: a bad answer, already counted
            just_read = {sku: believed[(name, sku)].quantity for sku in extra}
            if self._canary_fell(name, seen, {sku: Prior(q, q) for sku, q in just_read.items()}):
                continue
            priors = self._priors(name, skus, state, explained)
            reason = f"answered all {len(skus)} listings at zero twice, with nothing to explain it"
            out.new_stops[name] = reason
            for sku in skus:
                out.held[(name, sku)] = 0
                out.note(name, sku, "stopped", 0, priors[sku].expected, reason)
            report.reading(name).stopped += len(skus)
            log.error("account.safety_stop", account=name, reason=reason, listings=sorted(skus)[:20])

    def _canary_fell(self, name: str, seen: Mapping[str, Observed], priors: Mapping[str, Prior]) -> bool:
        """True when a listing believed a moment ago reads a suspicious drop in the confirming
        answer: that answer cannot confirm anything."""
        return any(
            sku in seen and suspicious_drop(seen[sku].quantity, prior, has_feed=False, rules=self.rules) is not None
            for sku, prior in priors.items()
        )

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
            low = listing.expected
            if listing.in_doubt is not None:
                before = listing.in_doubt.expected_before
                low = min(before, before + listing.in_doubt.delta)
            priors[sku] = Prior(listing.expected, low, explained.get((name, sku), 0))
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
    ) -> None:
        """Count, note and log a bad read."""
        run.bad[problem.value] += 1
        METRICS.bad_reads.labels(self.platforms[name], name, problem.value).inc()
        out.note(name, sku, problem.value, None, expected, reason)
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
