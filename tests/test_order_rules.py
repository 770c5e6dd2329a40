"""The pure order rules: attribution matching, which orders an oversell falls on, feed cursors."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.errors import FatalError
from sync.orders.attribution import Explainer, Link, Unexplained, match
from sync.orders.oversell import Candidate, orders_to_act_on
from sync.platforms.feeds import HEAD, SWEEP, TAIL, EndsCursor, WindowCursor, at_rest

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_drops_match_sales_and_rises_match_cancellations_oldest_first() -> None:
    movements = [Unexplained(1, -3, at(10)), Unexplained(2, -1, at(20)), Unexplained(3, 2, at(30))]
    lines = [Explainer(10, -2, at(5)), Explainer(11, -2, at(6)), Explainer(12, 2, at(25)), Explainer(13, -5, at(40))]
    assert match(movements, lines) == [
        Link(1, 10, -2),
        Link(1, 11, -1),
        Link(2, 11, -1),
        Link(3, 12, 2),
    ]


def test_a_drop_booked_before_a_sale_could_happen_is_not_its_sale() -> None:
    # A write-off last week must not stand for a sale made today (the sale would look shown).
    assert match([Unexplained(1, -1, at(0))], [Explainer(10, -1, at(60))]) == []
    assert match([Unexplained(1, -1, at(60))], [Explainer(10, -1, at(60))]) == [Link(1, 10, -1)]


def test_nothing_to_explain_with_no_order() -> None:
    assert match([Unexplained(1, -3, at(0))], []) == []


@given(
    st.lists(st.integers(-5, 5).filter(bool), max_size=8),
    st.lists(st.integers(-5, 5).filter(bool), max_size=8),
)
def test_matching_never_explains_more_than_either_side_holds(moves: list[int], lines: list[int]) -> None:
    movements = [Unexplained(i, q, at(i)) for i, q in enumerate(moves)]
    explainers = [Explainer(100 + i, q, at(i)) for i, q in enumerate(lines)]
    links = match(movements, explainers)
    per_movement, per_line = Counter[int](), Counter[int]()
    for link in links:
        movement = movements[link.movement_id]
        line = explainers[link.line_id - 100]
        assert link.units * movement.units > 0 and link.units * line.units > 0  # same direction
        per_movement[link.movement_id] += abs(link.units)
        per_line[link.line_id] += abs(link.units)
    assert all(per_movement[m.movement_id] <= abs(m.units) for m in movements)
    assert all(per_line[e.line_id] <= abs(e.units) for e in explainers)
    assert all(e.at <= movements[k.movement_id].at for k in links if k.units < 0 for e in [explainers[k.line_id - 100]])
    for sign in (-1, 1):  # greedy: one side is used up, or (drops) what is left of it came too early
        moved = sum(abs(m.units) for m in movements if m.units * sign > 0)
        held = sum(abs(e.units) for e in explainers if e.units * sign > 0)
        linked = sum(abs(k.units) for k in links if k.units * sign > 0)
        if sign > 0:
            assert linked == min(moved, held)
            continue
        waiting = [m.at for m in movements if m.units < 0 and per_movement[m.movement_id] < abs(m.units)]
        unused = [e.at for e in explainers if e.units < 0 and per_line[e.line_id] < abs(e.units)]
        assert linked == min(moved, held) or max(waiting) < min(unused)


def test_an_oversell_falls_on_the_newest_orders_until_the_shortfall_is_covered() -> None:
    orders = [
        Candidate(1, "gra", "A", 1, at(0)),
        Candidate(2, "oto", "B", 2, at(10)),
        Candidate(3, "ank", "C", 1, at(20)),
    ]
    assert [c.order_id for c in orders_to_act_on(1, 0, orders)] == [3]
    assert [c.order_id for c in orders_to_act_on(2, 0, orders)] == [3, 2]
    assert [c.order_id for c in orders_to_act_on(3, 1, orders)] == [3, 2]  # one unit already covered
    assert orders_to_act_on(2, 2, orders) == []
    assert [c.order_id for c in orders_to_act_on(9, 0, orders)] == [3, 2, 1]  # all there is


def test_orders_placed_in_the_same_second_are_chosen_deterministically() -> None:
    tied = [Candidate(1, "gra", "100000001", 1, at(0)), Candidate(2, "oto", "OID-1", 1, at(0))]
    assert orders_to_act_on(1, 0, tied) == orders_to_act_on(1, 0, list(reversed(tied)))


def test_a_window_of_several_pages_is_read_downwards_then_moves_on_with_an_overlap() -> None:
    first = WindowCursor.parse(None, T0)
    assert (first.after, first.before, first.page_to_read) == (int(T0.timestamp()), None, 1)
    end = int(T0.timestamp()) + 100
    cursor, more = first.after_page(end, 3)
    pages = [cursor.page_to_read]
    while more:
        cursor, more = WindowCursor.parse(cursor.dump(), T0).after_page(end, 3)
        pages.append(cursor.page_to_read)
    assert pages[:3] == [3, 2, 1]
    assert (cursor.after, cursor.before, cursor.page) == (end - 30, None, None)


def test_a_poll_reads_the_head_to_the_mark_then_the_tail_and_the_next_starts_from_the_newest_seen() -> None:
    first = EndsCursor.parse(None, at(0))
    cursor, more = first.after_head([at(50), at(40)], "2")
    assert more and (cursor.phase, cursor.position) == (HEAD, "2")
    # An order older than the mark less the overlap: the head is done, the tail begins.
    cursor, more = EndsCursor.parse(cursor.dump(), at(0)).after_head([at(30), at(-31)], "3", tail_from="9")
    assert more and (cursor.phase, cursor.position) == (TAIL, "9")
    cursor, more = EndsCursor.parse(cursor.dump(), at(0)).after_tail([at(60), at(55)], "8", end="id-60")
    assert more and (cursor.position, cursor.tail) == ("8", "id-60")
    cursor, more = cursor.after_tail([], None)
    assert not more and at_rest(cursor.dump())
    assert (cursor.mark, cursor.tail) == (at(60).isoformat(), "id-60")
    # The overlap: an order up to 30 s older than the mark does not end the head.
    _, more = cursor.after_head([at(70), at(31)], "2")
    assert more and not at_rest(_.dump())
    _, more = cursor.after_head([at(70), at(29)], "2")
    assert more and _.phase == TAIL


def test_a_head_that_reads_the_whole_list_needs_no_tail_and_keeps_where_the_list_ended() -> None:
    cursor, more = EndsCursor.parse(None, at(0)).after_head([at(5), at(9)], None, end="last-id")
    assert not more and (cursor.phase, cursor.tail, cursor.mark) == (HEAD, "last-id", at(9).isoformat())


def test_a_whole_window_read_moves_the_mark_to_the_newest_it_saw_then_reads_the_head() -> None:
    cursor = EndsCursor.parse(None, at(0))
    assert cursor.sweep_due(at(0), timedelta(minutes=10))
    swept = cursor.begin_sweep(at(0))
    assert (swept.phase, swept.position) == (SWEEP, "1") and not swept.sweep_due(at(599), timedelta(minutes=10))
    empty, more = swept.after_sweep([], None)  # an empty window: the mark stays
    assert more and (empty.phase, empty.mark) == (HEAD, at(0).isoformat())
    paged, more = swept.after_sweep([at(50), at(20)], "2")
    assert more and paged.position == "2"
    done, more = paged.after_sweep([at(10)], None)
    assert more and (done.phase, done.mark, done.position) == (HEAD, at(50).isoformat(), None)
    rest, _ = done.after_head([at(50)], None, end=None)
    assert rest.swept == at(0).isoformat() and rest.sweep_due(at(600), timedelta(minutes=10))


def test_a_cursor_stored_by_the_newest_first_scan_starts_a_fresh_poll_from_its_mark() -> None:
    legacy = json.dumps({"kind": "scan", "mark": at(10).isoformat(), "top": at(20).isoformat(), "position": "7"})
    assert at_rest(legacy)
    cursor = EndsCursor.parse(legacy, at(0))
    assert (cursor.mark, cursor.phase, cursor.position, cursor.tail) == (at(10).isoformat(), HEAD, None, None)
    with pytest.raises(FatalError):
        EndsCursor.parse(json.dumps({"kind": "window", "after": 1}), at(0))
