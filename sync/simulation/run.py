"""Run one seed: bootstrap, `steps` cycles under faults, crashes and external events, then settle
and check that every listing shows the shared pool and every unit is accounted for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from sync.bootstrap import Ledger, Wiring, running_engine
from sync.config import Config
from sync.crashpoints import ProcessDeath
from sync.domain import SettledBy
from sync.engine import Engine
from sync.evidence import TIME_MARGIN
from sync.ledger import judgements
from sync.ledger.db import session_factory
from sync.ledger.lease import ReconcileLease
from sync.ledger.models import Base, PushState
from sync.ledger.store import LedgerStore
from sync.planner import AccountRules
from sync.platforms import PLATFORMS
from sync.report import CycleReport
from sync.simulation.books import (
    InvariantViolation,
    LedgerView,
    check_balance,
    check_outbox_closed,
    check_undershoot,
    read_ledger,
)
from sync.simulation.transport import SimTransport
from sync.simulation.world import ABSOLUTE, FEED_REPORTED, FEEDS, World

TIMEOUT = 15.0
# Platforms whose order times do not bound when their stock moved (their adapters say so).
UNTIMED = frozenset(name for name, spec in PLATFORMS.items() if not spec.order_times_bound_moves)
IN_DOUBT_TIMEOUT = 120.0


@dataclass
class SimOptions:
    """What one simulated run does."""

    steps: int = 100
    skus: int = 6
    fault_rate: float = 0.15  # chance that a request meets a fault
    crash_rate: float = 0.03  # chance of a crash at each crash point
    event_rate: float = 0.08  # chance of an external event at each I/O boundary
    interval: float = 30.0  # virtual seconds between cycles
    bad_reads: bool = True  # whether stock reads may lie too (SimFault.BAD_READ)
    engine_class: type[Engine] = Engine


@dataclass
class Figures:
    """What the simulator saw: steps, what it injected, and how in-doubt pushes ended."""

    steps: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    bad_reads: Counter[str] = field(default_factory=Counter)  # the kinds of lie the reads told
    crashes: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    in_doubt: int = 0
    settled: Counter[str] = field(default_factory=Counter)
    # Per platform: listings left off by a push in doubt settled wrongly, and their units; where
    # the feed reports every change in the window (misjudged), and where no document can decide
    # (undecidable: a hand edit or return in the window, any change on Oakra, an order racing the read).
    misjudged: Counter[str] = field(default_factory=Counter)
    misjudged_units: Counter[str] = field(default_factory=Counter)
    undecidable: Counter[str] = field(default_factory=Counter)
    undecidable_units: Counter[str] = field(default_factory=Counter)
    window_units: int = 0  # units lost or gained in an absolute set's read-to-write window

    def add(self, other: Figures) -> None:
        """Fold another run's figures in."""
        self.steps += other.steps
        for mine, theirs in (
            (self.faults, other.faults),
            (self.bad_reads, other.bad_reads),
            (self.crashes, other.crashes),
            (self.events, other.events),
            (self.settled, other.settled),
            (self.misjudged, other.misjudged),
            (self.misjudged_units, other.misjudged_units),
            (self.undecidable, other.undecidable),
            (self.undecidable_units, other.undecidable_units),
        ):
            mine.update(theirs)
        self.in_doubt += other.in_doubt
        self.window_units += other.window_units


@dataclass
class SeedResult(Figures):
    """One seed's figures."""

    seed: int = 0


class SimulationFailure(AssertionError):
    """A seed broke an invariant; the message says how to replay it."""

    def __init__(self, seed: int, step: str, problem: str, steps: int, bad_reads: bool = True) -> None:
        flags = "" if bad_reads else " --no-bad-reads"
        super().__init__(
            f"seed {seed} failed at {step}: {problem}\n"
            f"  replay: stocksync simulate --seed {seed} --steps {steps}{flags}"
        )
        self.seed = seed


class Simulation:
    """One seed's world, ledger and engine processes."""

    def __init__(self, seed: int, options: SimOptions) -> None:
        self.seed = seed
        self.options = options
        self.world = World(seed, [f"sku-{i}" for i in range(options.skus)], options.event_rate)
        self.transports = {name: SimTransport(self.world, name, 0.0, TIMEOUT) for name in self.world.platforms}
        for transport in self.transports.values():
            transport.bad_reads_on = options.bad_reads
        db = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        Base.metadata.create_all(db)  # the migrations build the same schema (tests/test_migrations.py)
        self.ledger = Ledger(db, LedgerStore(session_factory(db)))
        self.config = Config.model_validate(
            {
                "accounts": [s.model_dump() for s in self.world.settings.values()],
                "skus": tuple(self.world.skus),
                "sync": {"in_doubt_timeout_seconds": IN_DOUBT_TIMEOUT, "batch_size": 4},
            }
        )
        self.crash_rate = 0.0
        self.result = SeedResult(steps=options.steps, seed=seed)
        self.processes = 0
        self.dead: set[str] = set()
        self.truth: dict[str, int] = {}
        self.rules = {name: AccountRules(s.buffer, s.max_quantity) for name, s in self.world.settings.items()}

    # --- the engine as a process ------------------------------------------------------------

    def _failure(self, step: str, problem: str) -> SimulationFailure:
        """A failure of this seed at `step`, with the command that replays it."""
        return SimulationFailure(self.seed, step, problem, self.options.steps, self.options.bad_reads)

    def _crash(self, point: str) -> None:
        if self.crash_rate and self.world.rng.random() < self.crash_rate:
            self.result.crashes[point] += 1
            raise ProcessDeath(point)

    def _lease(self, store: LedgerStore, clock: Any) -> ReconcileLease:
        # Virtual time, and no keeper thread: the simulator stays single-threaded and replayable.
        return ReconcileLease(
            store.sessions,
            holder=f"sim-{self.processes}",
            now_of=lambda _session: clock(),
            is_dead=self.dead.__contains__,
            keep_alive=False,
        )

    async def cycle(self) -> CycleReport | None:
        """One cycle in a fresh process (a long-running daemon behaves the same: each cycle starts
        from the ledger). Returns None when the process crashed."""
        self.processes += 1
        for transport in self.transports.values():
            transport.cycle_started = self.world.clock.now
        wiring = Wiring(
            transports=self.transports,
            clock=self.world.clock,
            lock_wait=0,
            crash=self._crash,
            sleep=self.world.clock.sleep,
            rng=random.Random(self.world.rng.random()),
            lease=self._lease,
        )
        try:
            async with running_engine(
                self.config, self.ledger, wiring, engine_class=self.options.engine_class
            ) as engine:
                return await engine.run_cycle("scheduled")
        except ProcessDeath:
            self.dead.add(f"sim-{self.processes}")
            return None

    # --- checks -----------------------------------------------------------------------------

    def view(self, *, rows: bool = False) -> LedgerView:
        with self.ledger.store.sessions() as session:
            return read_ledger(session, rows=rows)

    def quantities(self) -> dict[tuple[str, str], int]:
        return {
            (name, sku): p.quantity(sku) or 0 for name, p in self.world.platforms.items() for sku in self.world.skus
        }

    def applied(self) -> dict[str, list[tuple[str, int]]]:
        return {name: list(p.applied) for name, p in self.world.platforms.items()}

    def truth_now(self) -> dict[str, int]:
        """Each pool as it truly is: the bootstrap plus every external change since."""
        return {sku: start + self.world.external_total(sku) for sku, start in self.truth.items()}

    def lowest_truth(self) -> dict[str, int]:
        """Each pool's lowest lawful value: the bootstrap plus every external change that lowered it."""
        return {sku: start + self.world.lowered[sku] for sku, start in self.truth.items()}

    def check(self, step: str, *, completed: bool) -> LedgerView:
        view = self.view()
        quantities, applied = self.quantities(), self.applied()
        since = {
            (name, sku): when
            for name, transport in self.transports.items()
            for sku, when in transport.changed_in_cycle.items()
        }
        try:
            check_balance(view, quantities, applied, self.truth_now())
            low = self.lowest_truth()
            held = self.world.held_elsewhere(since)
            check_undershoot(view, quantities, applied, low, self.rules, self.world.own_drops(since), since, held)
            if completed:
                check_outbox_closed(view)
        except InvariantViolation as err:
            raise self._failure(step, str(err)) from None
        return view

    # --- the run ----------------------------------------------------------------------------

    async def run(self) -> SeedResult:
        first = await self.cycle()  # bootstrap: no faults, no events, no crashes
        assert first is not None
        await self.finish_bootstrap()
        self.truth = dict(self.view().pools)
        self._set_faults(on=True)
        for step in range(self.options.steps):
            self.world.clock.advance(self.options.interval)
            report = await self.cycle()
            # A cycle that lost its lease stops where it is: what it sent stays sent, for the next
            # holder to settle (the lease's renewal deadline runs on real time: a loaded machine).
            self.check(f"step {step}", completed=report is not None and not report.lease_lost)
        self._set_faults(on=False)
        await self.quiet_down()  # orders still open: what a read does not show yet is held back
        self.check_nothing_offered_twice()
        self.world.ship_everything()
        await self.settle()
        return self.result

    async def finish_bootstrap(self) -> None:
        """Cycle until every SKU has its pool: a first read of true zeros where other accounts show
        stock is held under a safety stop (the engine cannot tell it from a lie), which the
        operator accepts."""
        for _ in range(5):
            missing = set(self.world.skus) - set(self.view().pools)
            if not missing:
                return
            self.operator_accepts()
            self.world.clock.advance(self.options.interval)
            assert await self.cycle() is not None
        raise self._failure("bootstrap", f"no pool for {sorted(missing)}")

    def operator_accepts(self) -> None:
        """The operator accepts every open safety stop. Called only while no fault or event is on:
        every reading is then true, and an accepted listing books what its next read shows (its
        true change, or none where the held drop was a lie)."""
        with self.ledger.store.sessions.begin() as session:
            for stop in judgements.open_stops(session):
                judgements.decide(session, stop["account"], "accept")

    def _set_faults(self, *, on: bool) -> None:
        self.world.events_on = on
        self.crash_rate = self.options.crash_rate if on else 0.0
        for transport in self.transports.values():
            transport.fault_rate = self.options.fault_rate if on else 0.0

    async def settle(self) -> None:
        """No more faults or events: cycle until two quiet cycles in a row, then the final checks."""
        await self.quiet_down()
        self.final_checks()

    def check_nothing_offered_twice(self) -> None:
        """Settled with orders still open: no listing offers the units sold on another whose read
        does not show them yet (not picked): `target(count - those units)` at most, the count
        being what the reads add up to (or the pool, where an excused misjudgement raised it)."""
        view, truth = self.view(), self.truth_now()
        doubts = view.number((PushState.IN_DOUBT.value,))
        for name, settings in self.world.settings.items():
            rules = AccountRules(settings.buffer, settings.max_quantity)
            for sku in self.world.skus:
                if doubts[(name, sku)]:
                    continue  # takes no push until its push in doubt is settled (after the shipping)
                elsewhere = sum(p.unpicked[sku] for other, p in self.world.platforms.items() if other != name)
                most = rules.target(max(view.pools[sku], truth[sku]) - elsewhere)
                shown = self.world.platforms[name].quantity(sku) or 0
                if shown > most:
                    raise self._failure(
                        "settled, orders open",
                        f"{name}/{sku} shows {shown}, above the {most} left once the {elsewhere} unit(s) sold "
                        "elsewhere and not yet picked are held back",
                    )

    async def quiet_down(self) -> None:
        """Cycle until two cycles in a row find nothing to do."""
        quiet = 0
        for attempt in range(30):
            self.world.clock.advance(IN_DOUBT_TIMEOUT)  # every doubt gets its chance to be ruled
            self.operator_accepts()  # a safety stop waits for an operator (or orders) to lift it
            report = await self.cycle()
            assert report is not None
            self.check(f"settle {attempt}", completed=not report.lease_lost)
            quiet = quiet + 1 if report.ok and not report.movements and not report.pushes else 0
            if quiet >= 2:
                break
        else:
            raise self._failure("settle", "did not settle within 30 cycles")

    def final_checks(self) -> None:
        view = self.view(rows=True)
        fail = lambda problem: self._failure("the end", problem)  # noqa: E731
        for name, settings in self.world.settings.items():
            rules = AccountRules(settings.buffer, settings.max_quantity)
            for sku in self.world.skus:
                shown = self.world.platforms[name].quantity(sku)
                if shown != rules.target(view.pools[sku]):
                    raise fail(f"{name}/{sku} shows {shown}, target {rules.target(view.pools[sku])}")
        applied_total = Counter[tuple[str, str]]()
        for name, changes in self.applied().items():
            for code, delta in changes:
                applied_total[(name, code)] += delta
        counted = view.counted()
        truth = self.truth_now()
        for sku in self.world.skus:
            drift = {name: applied_total[(name, sku)] - counted[(name, sku)] for name in self.world.platforms}
            if view.pools[sku] - truth[sku] != sum(drift.values()):
                raise fail(f"{sku}: pool {view.pools[sku]} vs truth {truth[sku]} not explained by {drift}")
            for name, units in drift.items():
                if not units:
                    continue
                why = self._excuse(view, name, sku)
                platform = self.world.settings[name].platform
                if why is None:
                    raise fail(f"{name}/{sku}: {units:+d} units lost or counted twice, with no ambiguous window")
                if why == "absolute":
                    self.result.window_units += abs(units)
                elif why == "undecidable":
                    self.result.undecidable[platform] += 1
                    self.result.undecidable_units[platform] += abs(units)
                else:
                    self.result.misjudged[platform] += 1
                    self.result.misjudged_units[platform] += abs(units)
        self._tally(view)

    def _excuse(self, view: LedgerView, account: str, sku: str) -> str | None:
        """Why a listing may drift, or None when nothing excuses it:
        - "absolute": on a platform written with absolute sets, an external change hit the listing
          between the fresh read and the set (the window the set cannot protect), or, where the
          fresh read lied believably, between the engine's read and the set;
        - "undecidable": a push in doubt there was settled while a change no document can decide hit
          the listing in its window: on Oakra (no feed) any change; elsewhere a hand edit or a
          return (no feed reports them), or an order racing the read the push came from, settled
          by the rule (its timestamp cannot say whether that read saw it; where order times bound
          nothing, OTO's, any order we first saw only once the read began); or a read in the window
          lied believably (a zero where the ledger expected zero, or one outcome of the push): no
          evidence tells such a lie from the truth;
        - "misjudged": a push in doubt there was settled wrongly in a window whose every change the
          platform's order feed reports (counted: there should be none)."""
        platform = self.world.settings[account].platform
        if platform in ABSOLUTE and any(
            code == sku and self.world.touched(account, sku, self._set_from(view, account, sku, start), end)
            for code, start, end in self.transports[account].set_windows
        ):
            return "absolute"
        excuse = None
        for push in view.pushes:
            if push.account != account or push.sku != sku or push.settled_at is None:
                continue
            if push.state not in (PushState.APPLIED.value, PushState.NOT_APPLIED.value):
                continue
            start = push.read_at or push.cycle_started
            lied = self.transports[account].lied_at.get(sku, [])
            if any(start - TIME_MARGIN <= at <= push.settled_at for at in lied):
                return "undecidable"  # a read in its window lied (believably, or it settled nothing)
            kinds = self.world.kinds(account, sku, start - TIME_MARGIN, push.settled_at)
            # Where order times bound nothing, a sale made before the window that we first saw
            # only once it began may be in it, for all the feed can tell.
            late_seen = view.first_seen_between(account, sku, start - TIME_MARGIN, push.settled_at)
            fit_both = push.settled_by == SettledBy.RULE.value and "orders fit both" in (push.resolution or "")
            if platform in UNTIMED and late_seen and fit_both:
                return "undecidable"
            # A sale whose read may show it only at picking (`sale_shows_in_read = "unknown"`)
            # may fall in any window until shipped: where orders fit both, only the rule decides.
            unknown = getattr(self.world.settings[account], "sale_shows_in_read", None) == "unknown"
            # (one not seen shipped before the window: its picking may be in it, for all we knew)
            closed = view.closed_before(account, sku, start - TIME_MARGIN)
            if unknown and fit_both and self.world.sales_by(account, sku, push.settled_at) > closed:
                return "undecidable"
            if not kinds:
                continue
            # An order whose earliest time falls before the read ended may have been in it: one
            # placed that long before it moved stock (Graas) races the read for that much longer.
            lead = timedelta(seconds=getattr(self.world.platforms[account], "order_time_lead", 0.0))
            raced = self.world.kinds(account, sku, start - TIME_MARGIN, push.planned_at + lead + TIME_MARGIN)
            if platform in UNTIMED:  # no order time bounds the move: every order may race the read
                raced = kinds
            if platform not in FEEDS or kinds - FEED_REPORTED or (raced and push.settled_by == SettledBy.RULE.value):
                return "undecidable"
            excuse = "misjudged"
        return excuse

    def _set_from(self, view: LedgerView, account: str, sku: str, fresh: datetime) -> datetime:
        """Where an absolute set's window begins: at its fresh read, or, where that read lied
        believably (a zero where the engine's read was zero too), at the engine's read the push
        came from: the set then keeps no change made since that read."""
        lied = self.transports[account].lied_at.get(sku, [])
        if not any(fresh <= at <= fresh + TIME_MARGIN for at in lied):
            return fresh
        reads = [p.read_at for p in view.pushes if p.account == account and p.sku == sku and p.read_at is not None]
        return max((at for at in reads if at <= fresh), default=fresh)

    def _tally(self, view: LedgerView) -> None:
        for platform in {s.platform for s in self.world.settings.values()}:  # every one, zeros included
            for counter in (self.result.misjudged, self.result.undecidable):
                counter[platform] += 0
        for transport in self.transports.values():
            self.result.faults.update(transport.faults)
            self.result.bad_reads.update(transport.bad_reads)
        self.result.events.update(self.world.event_kinds)
        for push in view.pushes:
            if push.state in (PushState.APPLIED.value, PushState.NOT_APPLIED.value):
                self.result.in_doubt += 1
                self.result.settled[f"{push.settled_by}:{push.state}"] += 1


def run_seed(seed: int, options: SimOptions | None = None) -> SeedResult:
    """Run one seed to the end; raises SimulationFailure (naming the seed) on any broken invariant."""
    simulation = Simulation(seed, options or SimOptions())
    try:
        return asyncio.run(simulation.run())
    finally:
        simulation.ledger.close()
