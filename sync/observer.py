"""The engine's eyes: read every account for a batch, and believe only what the judge lets through.

For each account: the adapter's read (bad values and unbelievable answers already set apart), then
the answer rules, then each listing's change. A suspicious drop is read again at once, with a few
listings that were just believed alongside it (so that an answer zeroing everything is caught);
it is booked only when the second read agrees, or, for an account whose answers have lately been
bad, when two more reads agree. When most of an account's listings in a batch drop suspiciously at
once, those listings are held under a safety stop instead: nothing of theirs is booked until
orders explain the drops, the reads come back, or an operator accepts or rejects them.

The reading and the answer rules are in `sync/reading.py`, the confirmation reads in
`sync/confirmation.py`; this module judges each listing's change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import structlog

from sync.confirmation import Confirmations
from sync.judge import Judgement, ListingKey, Prior, stop_reason, suspicious_drop, unsettling_read
from sync.ledger.store import BatchState
from sync.metrics import METRICS
from sync.platforms.base import Observed
from sync.reading import BAD_ANSWERS, AccountRead, Failures

log = structlog.get_logger(__name__)

HELD_OUTCOMES = frozenset({"confirmed", "unconfirmed", "stopped", "released", "accepted", "rejected"})


class Observer(Confirmations):
    """Reads accounts through their adapters and believes only what the judge lets through."""

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
        self._zeroed = {}
        judgement = Judgement()
        believed: dict[ListingKey, Observed] = {}
        held: dict[ListingKey, tuple[Observed, str]] = {}
        all_refused: dict[str, str] = {}  # accounts none of whose answers was believed, and why
        for name, read in zip(names, reads, strict=True):
            if read is not None:
                run = report.reading(name)
                run.observed += len(read.observed)
                seen, refused = self._judge_answers(name, read, wanted[name], state, explained, run, judgement)
                answers = len(read.refusals) + len(read.answers)
                if answers and refused == answers:
                    first = next((n.reason for n in reversed(judgement.notes) if n.account == name), "")
                    all_refused[name] = first
                self._judge_changes(name, seen, state, explained, report, judgement, believed, held, judge_stops)
        self.doubted.difference_update(believed)  # read and believed: the ledger's count holds again
        if held:
            await self._confirm(held, believed, state, explained, report, judgement)
        if self._zeroed and judge_stops:
            await self._recheck_zeros(believed, state, explained, report, judgement)
        for name, why in all_refused.items():
            if not any(account == name for account, _ in believed):
                # Nothing of this batch believed: say so (health, exit status); the account is
                # still read in the cycle's other batches.
                report.fail(name, f"no answer could be believed: {why}", BAD_ANSWERS)
        for note in judgement.notes:
            if note.kind in HELD_OUTCOMES:
                METRICS.held_drops.labels(note.account, note.kind).inc()
        return believed, judgement

    # --- one account's changes ----------------------------------------------------------------

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
            if drop is not None:
                suspicious[sku] = (seen_now, drop)
            elif (
                unsettling := unsettling_read(seen_now.quantity, prior, has_feed=has_feed, rules=self.rules)
            ) is not None:
                # It would settle a push in doubt: confirmed first, but no sign of a broken account.
                held[key] = (seen_now, unsettling)
                out.note(name, sku, "held", seen_now.quantity, prior.expected, unsettling)
                run.held += 1
            else:
                believed[key] = seen_now
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
