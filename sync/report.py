"""What a reconcile cycle saw and did: per account, the reads and their judgement; the movements
booked and the pushes sent; the order side. The CLI prints it and derives the exit status from it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sync.ledger.oversells import Drift
from sync.order_flow import FeedReport, OversellReport
from sync.planner import PlannedMovement, PlannedPush
from sync.reading import AccountRead


@dataclass
class AccountRun(AccountRead):
    """One account's part in a cycle: what was read and judged, and whether it failed."""

    name: str = ""
    platform: str = ""
    ok: bool = True
    error: str | None = None
    error_kind: str | None = None

    def fail(self, error: str, kind: str) -> None:
        """Mark the account failed for this cycle (the first error is kept)."""
        if self.ok:
            self.ok, self.error, self.error_kind = False, error, kind


@dataclass
class PushReport:
    """A planned push and, unless it was a dry run, its outcome."""

    push: PlannedPush
    outcome: str = "planned"
    detail: str = ""


@dataclass
class CycleReport:
    """What one cycle saw and did; the CLI prints it and derives the exit status from it."""

    trigger: str
    dry_run: bool
    cycle_id: int | None = None
    accounts: dict[str, AccountRun] = field(default_factory=dict)
    movements: list[PlannedMovement] = field(default_factory=list)
    pushes: list[PushReport] = field(default_factory=list)
    waiting: list[tuple[str, str | None, str]] = field(default_factory=list)
    settled: int = 0
    stopped: bool = False
    skus_done: int = 0
    started: float = field(default_factory=time.monotonic)
    feeds: FeedReport = field(default_factory=FeedReport)
    fast_skus: int = 0
    oversells: list[OversellReport] = field(default_factory=list)
    drifting: list[Drift] = field(default_factory=list)
    # Why this reconciler lost its lease mid-cycle (another took over): it wrote nothing more.
    lease_lost: str | None = None

    @property
    def ok(self) -> bool:
        """True when every account was read, believed and written without trouble: none failed,
        answered badly, or holds listings under a safety stop, and the lease held to the end."""
        if self.lease_lost is not None:
            return False
        return all(run.ok and not run.stopped and not run.bad for run in self.accounts.values())

    def failed(self, account: str) -> bool:
        """True when the account already failed this cycle in a way that reading it again would
        not mend (answers that could not be believed leave its other batches to be read)."""
        run = self.accounts[account]
        return not run.ok and run.error_kind != "bad_answers"

    def fail(self, account: str, error: str, kind: str) -> None:
        """Record that the account could not be read this cycle."""
        self.accounts[account].fail(error, kind)

    def reading(self, account: str) -> AccountRead:
        """The account's reading figures for this cycle."""
        return self.accounts[account]

    def count(self, outcome: str) -> int:
        """How many pushes ended with `outcome`."""
        return sum(1 for p in self.pushes if p.outcome == outcome)
