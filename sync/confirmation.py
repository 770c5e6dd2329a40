"""Confirmation reads: a suspicious drop is read again before it is booked, and an answer of all
zeros once more before it is held for an operator.

A confirming read carries a few listings that were just believed (canaries): an answer that zeros
them too is no confirmation. A held drop is booked when the next read shows the same number (two
more reads for an account whose answers have lately been bad); a different suspicious number is
held in its place and read again, up to CONFIRM_ROUNDS reads; a read showing no suspicious drop is
booked instead, and the held one counted as a bad read.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import structlog

from sync.errors import ReadProblem
from sync.judge import Check, Judgement, ListingKey, Prior, canaries, confirm, suspicious_drop
from sync.ledger.store import BatchState
from sync.platforms.base import Observed
from sync.reading import AccountRead, Failures, Reading, _expected

log = structlog.get_logger(__name__)

CONFIRM_ROUNDS = 3  # reads of a held drop before it is left for the next cycle
CANARIES = 2  # believed listings read alongside a confirmation


class Confirmations(Reading):
    """Reading, plus the confirmation reads of held drops and refused zeros."""

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
        # Canaries that fell (or went missing) in a confirming answer: never chosen again this
        # batch, so that one really sold out cannot void every later confirmation.
        fallen: set[ListingKey] = set()
        for _ in range(CONFIRM_ROUNDS):
            if not candidates:
                break
            by_account: dict[str, list[str]] = {}
            for name, sku in candidates:
                by_account.setdefault(name, []).append(sku)
            names = list(by_account)
            extra = {name: self._canaries(name, believed, state, by_account[name], fallen) for name in names}
            asked = {name: [*extra[name], *by_account[name]] for name in names}
            reads = await asyncio.gather(*(self._read(name, asked[name], report) for name in names))
            for name, read in zip(names, reads, strict=True):
                if read is None:
                    continue
                run = report.reading(name)
                seen, _ = self._judge_answers(name, read, asked[name], state, explained, run, out)
                fell = self._fallen_canaries(seen, extra[name])
                if fell:
                    fallen.update((name, sku) for sku in fell)
                    why = f"a confirming read dropped or left out listings it carried as canaries: {', '.join(fell)}"
                    self._bad(name, run, ReadProblem.DISAGREED, why, None, out)
                    continue
                priors = self._priors(name, by_account[name], state, explained)
                for sku in by_account[name]:
                    key, again = (name, sku), seen.get(sku)
                    self._settle_candidate(key, again, priors[sku], candidates, agreed, believed, out, run)
        self.doubted.difference_update(believed)
        for (name, sku), seen_now in candidates.items():
            self.doubted.add((name, sku))
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
        believed: dict[ListingKey, Observed],
        state: BatchState,
        explained: Mapping[ListingKey, int],
        report: Failures,
        out: Judgement,
    ) -> None:
        """An answer of all zeros is refused; read those listings once more. If they are all still
        zero, it may be a real sell-out (a small account, no orders to explain it): the listings the
        ledger knows go under a safety stop, so that it shows and an operator can accept it, rather
        than being refused at every cycle in silence; first readings (a bootstrap) are confirmed by
        the second read like any first zero."""
        by_account: dict[str, list[str]] = {}
        for name, sku in self._zeroed:
            by_account.setdefault(name, []).append(sku)
        for name, skus in by_account.items():
            # Canaries vouch for first readings, which are believed from this read. Listings the
            # ledger knows go under the stop whatever they show: on a small account sold out for
            # real, the ledger's belief in the canaries is what is wrong, and their zeros would
            # void this at every cycle, in silence. A sell-out or a broken answer: an operator decides.
            first = [sku for sku in skus if (name, sku) in self._first]
            extra = self._canaries(name, believed, state, skus, set()) if first else {}
            read = await self._read(name, [*extra, *skus], report)
            if read is None:
                continue
            by_code = {self.codes[name][sku]: sku for sku in [*extra, *skus]}
            seen = {by_code[code]: o for code, o in read.observed.items() if code in by_code}
            if read.refusals or any(sku not in seen or seen[sku].quantity != 0 for sku in skus):
                continue  # the zeros did not hold: a bad answer, already counted
            priors = self._priors(name, skus, state, explained)
            run = report.reading(name)
            known = [sku for sku in skus if sku not in first]
            vouched = not self._fallen_canaries(seen, extra)
            for sku in first if vouched else []:
                believed[(name, sku)] = seen[sku]
                out.unread.discard((name, sku))
                out.note(name, sku, "confirmed", 0, None, "a first reading of 0, read twice")
                run.confirmed += 1
            if not known:
                continue
            reason = f"answered all {len(known)} listings at zero twice, with nothing to explain it"
            out.new_stops[name] = reason
            for sku in known:
                out.held[(name, sku)] = 0
                out.note(name, sku, "stopped", 0, priors[sku].expected, reason)
            run.stopped += len(known)
            log.error("account.safety_stop", account=name, reason=reason, listings=sorted(known)[:20])

    def _canaries(
        self,
        name: str,
        believed: Mapping[ListingKey, Observed],
        state: BatchState,
        held: Sequence[str],
        fallen: Collection[ListingKey],
    ) -> dict[str, int]:
        """Listings to read alongside `held`, with the count each should show: ones of the account
        just believed with stock, else (a batch of one or two SKUs) ones the ledger believes
        stocked; none that already fell in this batch."""
        gone = {sku for account, sku in {*fallen, *self.doubted} if account == name}
        mine = {sku: seen.quantity for (account, sku), seen in believed.items() if account == name and sku not in gone}
        chosen = {sku: mine[sku] for sku in canaries(mine, self._priors(name, list(mine), state, {}), held, CANARIES)}
        if len(chosen) < CANARIES:
            spare = self.stocked(name, {*mine, *held, *gone}, CANARIES - len(chosen))
            chosen.update((sku, expected) for sku, expected in spare.items() if sku in self.codes[name])
        return chosen

    def _fallen_canaries(self, seen: Mapping[str, Observed], shows: Mapping[str, int]) -> list[str]:
        """The canaries the confirming answer left out or shows with a suspicious drop from what
        they should show: that answer cannot confirm anything."""
        return sorted(sku for sku, q in shows.items() if sku not in seen or self._fell(seen[sku].quantity, q))

    def _fell(self, quantity: int, shows: int) -> bool:
        return suspicious_drop(quantity, Prior(shows, shows), has_feed=False, rules=self.rules) is not None
