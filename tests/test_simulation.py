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
from tests.broken_engines import BooksUnconfirmedDrops, CopiesTheAnswer, ResendsInDoubt, SkipsTheOutbox

pytestmark = pytest.mark.slow


def test_a_seed_replays_exactly() -> None:
    first = run_seed(11, SimOptions(steps=60))
    again = run_seed(11, SimOptions(steps=60))
    assert first == again
    assert first.in_doubt > 0 and sum(first.crashes.values()) > 0


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


@pytest.mark.parametrize("broken", [ResendsInDoubt, CopiesTheAnswer, SkipsTheOutbox, BooksUnconfirmedDrops])
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
    # unseen. Seed 7 believes a lying zero on Ankorstore at its second step.)
    with pytest.raises(SimulationFailure) as caught:
        run_seed(7, SimOptions(steps=60, engine_class=BooksUnconfirmedDrops))
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
