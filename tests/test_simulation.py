"""The seeded simulator: it replays exactly, a CI sweep passes with every fault on, and it catches
deliberately broken engines."""

from __future__ import annotations

import pytest

from sync.crashpoints import POINTS
from sync.simulation.run import SimOptions, SimulationFailure, run_seed
from sync.simulation.sweep import sweep
from sync.simulation.transport import SimFault
from tests.broken_engines import CopiesTheAnswer, ResendsInDoubt, SkipsTheOutbox

pytestmark = pytest.mark.slow


def test_a_seed_replays_exactly() -> None:
    first = run_seed(11, SimOptions(steps=60))
    again = run_seed(11, SimOptions(steps=60))
    assert first == again
    assert first.in_doubt > 0 and sum(first.crashes.values()) > 0


def test_ci_sweep_every_fault_on_passes() -> None:
    result = sweep(range(200), SimOptions(steps=100), jobs=2)
    assert result.failures == []
    assert result.seeds == 200 and result.steps == 200 * 100
    assert set(result.faults) == {fault.value for fault in SimFault}
    assert set(result.crashes) == set(POINTS)
    assert result.in_doubt > 0 and result.settled


@pytest.mark.parametrize("broken", [ResendsInDoubt, CopiesTheAnswer, SkipsTheOutbox])
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
