"""The read judge's rules on plain values: what an answer and a change must show to be believed."""

from __future__ import annotations

from sync.errors import ReadProblem
from sync.judge import (
    Check,
    Prior,
    TrustRules,
    canaries,
    confirm,
    needs_confirmation,
    refused_answer,
    stop_reason,
    suspicious_drop,
    unsettling_read,
)

RULES = TrustRules(confirm_drop_share=0.5, stop_min_listings=4, stop_drop_share=0.5)


def prior(expected: int, low: int | None = None, explained: int = 0) -> Prior:
    return Prior(expected, expected if low is None else low, explained)


def test_an_answer_with_none_of_its_known_listings_is_refused_as_empty() -> None:
    priors = {"a": prior(5), "b": prior(3)}
    assert refused_answer(["a", "b"], set(), {}, priors) == (ReadProblem.EMPTY, "reported none of its 2 known listings")
    # A listing the ledger does not know yet may simply not exist there: nothing to refuse.
    assert refused_answer(["new"], set(), {}, priors) is None
    # Mentioned but unusable (a bad value) is not empty.
    assert refused_answer(["a", "b"], {"a"}, {}, priors) is None


def test_all_zeros_is_refused_when_several_listings_had_stock_whatever_the_batch_size() -> None:
    priors = {"a": prior(5), "b": prior(3), "c": prior(0)}
    refused = refused_answer(["a", "b"], {"a", "b"}, {"a": 0, "b": 0}, priors)
    assert refused is not None and refused[0] is ReadProblem.ALL_ZEROS
    # One listing at zero among others is judged as a change, not as the answer.
    assert refused_answer(["a", "b"], {"a", "b"}, {"a": 0, "b": 3}, priors) is None
    # Only one of them had stock: a single sell-out is judged by confirmation instead.
    assert refused_answer(["a", "c"], {"a", "c"}, {"a": 0, "c": 0}, priors) is None
    assert refused_answer(["a"], {"a"}, {"a": 0}, priors) is None


def test_drops_on_a_feed_platform_need_orders_to_explain_them() -> None:
    assert suspicious_drop(4, prior(5, explained=1), has_feed=True, rules=RULES) is None
    assert suspicious_drop(0, prior(5, explained=5), has_feed=True, rules=RULES) is None  # a real sell-out
    why = suspicious_drop(3, prior(5, explained=1), has_feed=True, rules=RULES)
    assert why == "dropped 2 from 5, orders explain 1"
    assert suspicious_drop(6, prior(5), has_feed=True, rules=RULES) is None  # a rise is not a drop


def test_drops_without_a_feed_are_confirmed_when_to_zero_or_large() -> None:
    assert suspicious_drop(4, prior(5), has_feed=False, rules=RULES) is None
    assert suspicious_drop(0, prior(1), has_feed=False, rules=RULES) == "dropped to 0 from 1"
    assert suspicious_drop(4, prior(10), has_feed=False, rules=RULES) == "dropped 6 of 10 (over 50%)"
    assert suspicious_drop(5, prior(10), has_feed=False, rules=RULES) is None


def test_a_push_in_doubt_counts_under_the_outcome_that_shows_fewer_units() -> None:
    # expected 10, a push of -4 in doubt: 6 is explained by our own push, not a drop.
    assert suspicious_drop(6, Prior(10, 6), has_feed=True, rules=RULES) is None
    assert suspicious_drop(5, Prior(10, 6), has_feed=True, rules=RULES) == "dropped 1 from 6, orders explain 0"


def test_a_reading_that_would_settle_a_push_in_doubt_is_judged_from_the_higher_outcome_too() -> None:
    # A push of +5 from 0 in doubt: a lying 0 would settle it "not applied" and send it twice.
    raised = Prior(0, 0, 0, high=5)
    assert suspicious_drop(0, raised, has_feed=False, rules=RULES) is None  # no drop: never a stop
    assert unsettling_read(0, raised, has_feed=False, rules=RULES) == "dropped to 0 from 5 (a push in doubt)"
    assert needs_confirmation(0, raised, has_feed=False, rules=RULES) == "dropped to 0 from 5 (a push in doubt)"
    assert needs_confirmation(5, raised, has_feed=False, rules=RULES) is None  # the higher outcome itself
    # A push of -5 from 5 in doubt: a lying 0 would settle it "applied" when it never landed.
    lowered = Prior(5, 0, 0, high=5)
    assert unsettling_read(0, lowered, has_feed=False, rules=RULES) == "dropped to 0 from 5 (a push in doubt)"
    # On a feed platform, a gap that unbooked sales cover is no suspicious reading (which outcome
    # it settles is the planner's call); one they do not cover is confirmed.
    assert needs_confirmation(6, Prior(10, 6, 4, high=10), has_feed=True, rules=RULES) is None
    assert unsettling_read(6, Prior(10, 6, 0, high=10), has_feed=True, rules=RULES) == (
        "dropped 4 from 10, orders explain 0 (a push in doubt)"
    )
    # A drop from the lower outcome is a suspicious drop (it counts towards a stop), not both.
    assert unsettling_read(2, Prior(10, 6, 0, high=10), has_feed=False, rules=RULES) is None
    assert suspicious_drop(2, Prior(10, 6, 0, high=10), has_feed=False, rules=RULES) is not None
    # Without doubt the higher outcome plays no part.
    assert needs_confirmation(4, Prior(4, 4, 0, high=4), has_feed=False, rules=RULES) is None


def test_a_stop_needs_enough_listings_and_a_share_of_them() -> None:
    assert stop_reason(3, 3, RULES) is None  # too few to judge
    assert stop_reason(2, 4, RULES) is None  # half is not over half
    assert stop_reason(3, 4, RULES) == "3 of 4 listings dropped at once with nothing to explain it (limit 50%)"


def test_a_confirmation_books_only_what_a_second_read_agrees_with() -> None:
    p = prior(5)
    assert confirm(0, 0, p, has_feed=False, rules=RULES).check is Check.CONFIRMED
    back = confirm(0, 5, p, has_feed=False, rules=RULES)
    assert back.check is Check.NOT_A_DROP and back.quantity == 5 and back.disagreed
    again = confirm(0, 1, p, has_feed=False, rules=RULES)  # 1 of 5 is still a large drop
    assert again.check is Check.AGAIN and again.quantity == 1 and again.disagreed
    assert confirm(0, None, p, has_feed=False, rules=RULES).check is Check.UNCONFIRMED


def test_canaries_are_listings_just_believed_with_stock() -> None:
    priors = {"a": prior(5), "b": prior(0), "c": prior(7), "d": prior(2)}
    accepted = {"a": 5, "b": 3, "c": 0, "d": 2, "e": 9}
    assert canaries(accepted, priors, held={"a"}, count=2) == ["d"]
    assert canaries(accepted, priors, held=set(), count=1) == ["a"]
