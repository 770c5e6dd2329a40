"""Settling a push in doubt from the order feed: which orders fall in the window between two reads,
which sit on a read's edge (in it or not, no timestamp can say), and which hypotheses they allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sync.settling import OrderFact, Window, by_orders, held_back, provisional_base, window_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float, units: int, spread: float = 0.0) -> OrderFact:
    return OrderFact(units, T0 + timedelta(seconds=seconds - spread), T0 + timedelta(seconds=seconds + spread))


def reads(first: tuple[float, float], last: tuple[float, float]) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((T0 + timedelta(seconds=a), T0 + timedelta(seconds=b)) for a, b in (first, last))


def test_orders_before_between_on_the_edges_and_after_the_reads() -> None:
    first, last = reads((10, 11), (40, 41))
    facts = [at(5, -1), at(20, -2), at(10.5, -3), at(40.2, -4), at(60, -5), at(12, +2, spread=3)]
    window = window_of(facts, first, last)
    assert window.certain == -2  # the sale at 20 only
    assert sorted(window.edges) == [-3, 2]  # in the first read's interval, or spanning it
    assert window.late == (-4,) and not window.final  # in the later read's: a later read may tell
    assert window.orders == 4


def test_a_hypothesis_fits_when_some_choice_of_edge_orders_explains_it() -> None:
    window = Window(certain=-2, edges=(-1, -3))
    assert {x for x in range(-10, 3) if window.allows(x)} == {-2, -3, -5, -6}
    assert Window().allows(0) and not Window().allows(-1)


def test_orders_decide_only_when_exactly_one_hypothesis_fits() -> None:
    # -2 from 10, reads 8 later.
    assert by_orders(-2, 10, 8, Window(certain=-2)).applied is False  # type: ignore[union-attr]
    assert by_orders(-2, 10, 8, Window(certain=0)).applied is True  # type: ignore[union-attr]
    assert by_orders(-2, 10, 8, Window(certain=-1)) is None  # a change no order explains
    assert by_orders(-2, 10, 8, Window(edges=(-2,))) is None  # a sale on the edge: both fit
    assert by_orders(-2, 10, 8, Window(late=(-2,))) is None


@given(st.integers(-20, 20).filter(bool), st.integers(0, 30), st.integers(-10, 10), st.booleans())
def test_provisional_booking_and_settlement_book_the_truth_exactly(
    delta: int, before: int, external: int, applied: bool
) -> None:
    # Whatever the truth, what is booked while undecided plus what settlement books equals the
    # true external change, and while undecided the pool is never above the truth.
    shown = before + external + (delta if applied else 0)
    provisional = shown - provisional_base(before, delta)
    assert provisional <= external
    assert provisional + held_back(delta, applied) == external


def test_a_verdict_that_needs_a_sale_on_the_edge_proves_the_probe_reflects_it() -> None:
    # OTO's orders carry no usable time: a sale we first saw after the probe sits on both edges.
    # -1 from 2, probe 0: applied needs exactly one sale of 1 in the window.
    first, last = reads((10, 11), (40, 41))
    sale = OrderFact(-1, T0, T0 + timedelta(seconds=45), line=7)
    verdict = by_orders(-1, 2, 0, window_of([sale], first, last))
    assert verdict is not None and verdict.applied and verdict.reflected == {7}
    # Two such sales and one needed (-3 from 5, probe 1): either could be it, so neither is proved.
    other = OrderFact(-1, T0, T0 + timedelta(seconds=45), line=8)
    verdict = by_orders(-3, 5, 1, window_of([sale, other], first, last))
    assert verdict is not None and verdict.applied and verdict.reflected == frozenset()
    # A sale every explanation leaves out is not proved in (nor, spanning both reads, out).
    verdict = by_orders(-2, 3, 1, window_of([sale], first, last))
    assert verdict is not None and verdict.applied and verdict.reflected == frozenset()


def test_a_sale_a_settlement_placed_in_a_read_is_not_counted_again_after_it() -> None:
    # The read a sale is proved in bounds it for every later window: before the next push's read.
    probe = reads((10, 11), (40, 41))[1]
    proved = OrderFact(-1, T0, probe[0] - timedelta(microseconds=1), line=7)
    window = window_of([proved], probe, reads((60, 61), (90, 91))[0])
    assert window.orders == 0 and by_orders(1, 0, 0, window) is not None  # "not applied" fits alone
