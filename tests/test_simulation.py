"""The seeded simulator: it replays exactly, a CI sweep passes with every fault on, and it catches
deliberately broken engines."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sync.cli import cli
from sync.crashpoints import ORDER_POINTS, POINTS
from sync.emulation.faults import BAD_READS
from sync.simulation.run import SimOptions, SimulationFailure, run_seed
from sync.simulation.sweep import sweep
from sync.simulation.transport import SimFault
from tests.broken_engines import (
    BooksUnconfirmedDrops,
    CopiesTheAnswer,
    OffersUnpickedSales,
    ResendsInDoubt,
    SkipsTheOutbox,
)

pytestmark = pytest.mark.slow


def test_a_seed_replays_exactly() -> None:
    first = run_seed(11, SimOptions(steps=60))
    again = run_seed(11, SimOptions(steps=60))
    assert first == again
    assert first.in_doubt > 0 and sum(first.crashes.values()) > 0


def test_units_a_settlement_gives_back_inside_an_observed_change_lower_the_floor() -> None:
    # Found by the long sweep (seed 231 at 20 steps, before Ankorstore read its products): a Graas
    # push of -3 in doubt (applied) counted not applied meanwhile, so the pool sat 3 low and a
    # listing was written from it; the settlement gave the 3 back inside the reading's observed
    # change (+2, with a sale of 1), which the undershoot check did not count: it failed a listing
    # that was lawfully low. What a settlement gives back is read from its push now.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine

    from sync.domain import SettledBy
    from sync.ledger.db import session_factory
    from sync.ledger.models import Account, Base, Cycle, Listing, Push, PushState, Sku
    from sync.simulation.books import read_ledger

    t = datetime(2026, 1, 1, tzinfo=UTC)
    db = create_engine("sqlite://")
    Base.metadata.create_all(db)
    with session_factory(db).begin() as session:
        session.add_all([Account(id=1, name="gra", platform="graas"), Sku(id=1, code="mug", created_at=t)])
        session.add_all([Listing(id=1, account_id=1, sku_id=1, code="mug", ref="r", expected=6)])
        session.add(Cycle(id=1, trigger="scheduled", started_at=t))
        settled = [
            (-3, PushState.APPLIED, SettledBy.ORDERS, None),  # held 3 back: gives them back
            (-2, PushState.NOT_APPLIED, SettledBy.ORDERS, None),  # held nothing back
            (4, PushState.NOT_APPLIED, SettledBy.RULE, None),  # counted applied meanwhile: gives 4 back
            (-5, PushState.NOT_APPLIED, SettledBy.ADOPTED, None),  # nothing booked since: nothing held
            (6, PushState.NOT_APPLIED, SettledBy.ADOPTED, 3),  # a reading booked since: gives 6 back
        ]
        for i, (delta, state, by, probe) in enumerate(settled):
            session.add(
                Push(
                    listing_id=1,
                    cycle_id=1,
                    delta=delta,
                    expected_before=9,
                    observed=9,
                    target=9 + delta,
                    state=state.value,
                    settled_by=by.value,
                    settled_at=t + timedelta(seconds=i),
                    probe_quantity=probe,
                    created_at=t,
                )
            )
    with session_factory(db)() as session:
        view = read_ledger(session)
    assert view.given_back_since("mug", t) == 3 + 4 + 6
    assert view.given_back_since("mug", t + timedelta(seconds=1)) == 4 + 6


def test_ci_sweep_every_fault_on_passes() -> None:
    # Every fault, lying stock reads included, with the undershoot invariant checked at every step.
    # 50 seeds (about 4 minutes of CI's 15 on 2 cores); the documented sweeps go further.
    result = sweep(range(50), SimOptions(steps=100), jobs=2)
    assert result.failures == []
    assert result.seeds == 50 and result.steps == 50 * 100
    assert set(result.faults) == {fault.value for fault in SimFault}
    assert set(result.bad_reads) == {kind.value for kind in BAD_READS}  # every kind of lie was told
    # every push crash point; the feed ones too (the cancel one needs a cancel policy: not simulated)
    assert set(POINTS) | {"before_feed_commit", "after_feed_page"} == set(result.crashes)
    assert set(result.crashes) <= set(POINTS + ORDER_POINTS)
    assert result.in_doubt > 0 and result.settled
    # Where every change in a window is one the feed reports, the orders decide it rightly.
    assert set(result.misjudged) == {"oakra", "graas", "oto", "ankorstore"}
    assert sum(result.misjudged.values()) == 0, dict(result.misjudged)


@pytest.mark.parametrize(
    "broken", [ResendsInDoubt, CopiesTheAnswer, SkipsTheOutbox, BooksUnconfirmedDrops, OffersUnpickedSales]
)
def test_the_simulator_catches_a_broken_engine(broken: type) -> None:
    caught = []
    for seed in range(30):
        try:
            run_seed(seed, SimOptions(steps=60, engine_class=broken))
        except SimulationFailure as failure:
            caught.append(failure)
            break
    assert caught, f"{broken.__name__} went unnoticed for 30 seeds"
    assert "replay: stocksync simulate --seed" in str(caught[0])


def test_a_lie_booked_is_caught_as_an_undershoot() -> None:
    # Not by chance: a lying zero believed pulls the pool down and the other listings with it,
    # below what the truth allows, while the listing itself shows a count (not a negative one).
    # (Not every seed shows it: where a push in doubt on the same SKU is judged again at a cycle's
    # end, that re-read books the truth back before the cycle ends, and the damage is undone
    # unseen. Seed 2 believes a lying zero at its second step, and Graas shows the damage.)
    with pytest.raises(SimulationFailure) as caught:
        run_seed(2, SimOptions(steps=60, engine_class=BooksUnconfirmedDrops))
    assert "below the" in str(caught.value) and " shows -" not in str(caught.value)


def test_the_simulate_command_replays_a_seed_and_reports_figures() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--seed", "3", "--steps", "10", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["seeds"] == 1 and figures["passed"] == 1 and figures["steps"] == 10
    assert figures["failures"] == [] and figures["units_lost_or_counted_twice_otherwise"] == 0


def test_an_oto_order_seen_late_excuses_only_a_rule_that_found_the_orders_fit_both() -> None:
    # From the fourth outside review: an order made long before a push's read and first seen
    # inside its window excused any OTO push the rule settled, and with it the listing's later
    # pushes. Only a rule that found the orders fit both is excused by it now.
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from sync.ledger.models import PushState
    from sync.simulation.books import LedgerView, PushRow
    from sync.simulation.run import Simulation
    from sync.simulation.world import Event

    t, m = datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=1)
    wrong = PushRow(
        "oto-d", "s", -1, PushState.APPLIED.value, t + 10 * m, t + 12 * m, "orders", t + 10 * m, t + 10 * m, "orders"
    )
    events = [Event(t - 30 * m, "oto-d", "s", -1, "sale"), Event(t + 11 * m, "oto-d", "s", -1, "sale")]
    stub = SimpleNamespace(
        world=SimpleNamespace(
            settings={"oto-d": SimpleNamespace(platform="oto")},
            kinds=lambda a, sku, start, end: {e.kind for e in events if start <= e.time <= end},
            platforms={"oto-d": SimpleNamespace()},
        ),
        transports={"oto-d": SimpleNamespace(lied_at={}, set_windows=[])},
    )
    for note, excuse in (
        ("in doubt past 0:10:00: ruled not applied, residual -1", "misjudged"),
        ("in doubt past 0:10:00, orders fit both: ruled not applied", "undecidable"),
    ):
        ruled = PushRow("oto-d", "s", -1, PushState.NOT_APPLIED.value, t, t + 5 * m, note, t, t, "rule")
        view = LedgerView({}, {}, {}, pushes=[ruled, wrong])
        view.orders_seen = [("oto-d", "s", t + m)]  # the old order, first seen in the ruled push's window
        assert Simulation._excuse(stub, view, "oto-d", "s") == excuse  # type: ignore[arg-type]


def test_a_set_from_a_lying_fresh_read_is_excused_back_to_the_engines_read() -> None:
    # From the long sweep (seed 919 at f96eca9): Ankorstore's fresh read lied a zero where the
    # engine's read had seen zero too (believable), and the set erased a return made between the
    # two reads. The set's window reaches back to the engine's read then, and no further.
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from sync.simulation.books import LedgerView, PushRow
    from sync.simulation.run import Simulation

    t, s = datetime(2026, 1, 1, tzinfo=UTC), timedelta(seconds=1)
    push = PushRow("ank", "mug", 1, "confirmed", t, t + 30 * s, None, t, t, None)
    view = LedgerView({}, {}, {}, pushes=[push])
    lying = SimpleNamespace(transports={"ank": SimpleNamespace(lied_at={"mug": [t + 15 * s]})})
    honest = SimpleNamespace(transports={"ank": SimpleNamespace(lied_at={"mug": [t + 2 * s]})})
    assert Simulation._set_from(lying, view, "ank", "mug", t + 15 * s) == t  # type: ignore[arg-type]
    assert Simulation._set_from(honest, view, "ank", "mug", t + 15 * s) == t + 15 * s  # type: ignore[arg-type]


def test_a_cycle_that_loses_its_lease_keeps_every_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    # From the long sweep (seed 814, on a loaded machine): the lease's renewal deadline runs on
    # real time; a cycle past it stops where it is and leaves what it sent `sent` for the next
    # holder, and the checker took that for a completed cycle with its outbox left open. Here the
    # deadline is made to pass now and then: every invariant holds, and the next cycles settle it.
    import itertools
    import time as real_time

    import sync.engine as engine_module
    import sync.ledger.lease as lease_module

    calls, losses = itertools.count(), itertools.count()

    class LateClock:
        def __getattr__(self, name: str) -> object:
            return getattr(real_time, name)

        def monotonic(self) -> float:
            return real_time.monotonic() + (1000 if next(calls) % 97 == 50 else 0)

    noted = engine_module.note_lease_lost

    def counted(*args: object, **kwargs: object) -> None:
        next(losses)
        noted(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lease_module, "time", LateClock())
    monkeypatch.setattr(engine_module, "note_lease_lost", counted)
    for seed in range(3):
        run_seed(seed, SimOptions(steps=20))  # raises SimulationFailure on a broken invariant
    assert next(losses) >= 3  # cycles did lose their lease
