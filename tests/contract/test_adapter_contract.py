"""The contract every platform adapter keeps, run against that platform's emulator over real HTTP
on loopback. A new platform joins by adding its name to PLATFORM_NAMES (and, where its bad-record
shape differs, to `bad_change`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sync.emulation.faults import BAD_READS, Fault
from sync.emulation.platform import EmulatedPlatform
from sync.errors import AuthError, FatalError, ReadProblem, RetriableError
from sync.platforms import PLATFORMS, build_adapter
from sync.platforms.base import Adapter, Change, Outcome
from tests.fakes import Fleet, MemoryKeeper, fleet
from tests.test_cli import assert_ledger_consistent, invoke

PLATFORM_NAMES = sorted(PLATFORMS)


class Harness:
    """One emulated account and a way to build adapters for it, recording every backoff sleep."""

    def __init__(self, platform: str, fleet_: Fleet) -> None:
        self.platform = platform
        self.emulator: EmulatedPlatform = fleet_.platforms["acct"]
        self.entry = fleet_.entries[0]
        self.sleeps: list[float] = []
        self.keeper = MemoryKeeper()  # a token the platform rotates outlives each adapter

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def adapter(self, **overrides: Any) -> Adapter:
        """An adapter for the emulated account; `overrides` change its settings."""
        settings = PLATFORMS[self.platform].settings.model_validate({**self.entry, **overrides})
        return build_adapter(settings, sleep=self._sleep, keeper=self.keeper)

    def seed(self, count: int, quantity: int = 10) -> list[str]:
        """Create `count` listings holding `quantity` each; returns their codes."""
        codes = [f"sku-{i:03d}" for i in range(count)]
        for code in codes:
            self.emulator.set_quantity(code, quantity)
        return codes

    def write_calls(self) -> int:
        """Requests that reached the write route."""
        paths = self.emulator.auth_paths
        return sum(
            n
            for key, n in self.emulator.calls.items()
            if key.startswith(("POST", "PUT")) and key.split(" ", 1)[1] not in paths
        )

    def wrong_credentials(self) -> dict[str, str]:
        """Settings overrides that make every credential wrong."""
        return {field: "wrong-key" for field in PLATFORMS[self.platform].settings.secret_fields()}


def run(coro_factory: Callable[[], Any]) -> Any:
    """Run an async callable that builds and closes its own adapter."""
    return asyncio.run(coro_factory())


async def _read(adapter: Adapter, codes: list[str]) -> Any:
    try:
        return await adapter.read(codes)
    finally:
        await adapter.aclose()


async def _push(adapter: Adapter, changes: list[Change]) -> Any:
    try:
        return await adapter.push(changes)
    finally:
        await adapter.aclose()


@pytest.fixture(params=PLATFORM_NAMES)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with fleet(("acct", request.param)) as running:
        yield Harness(request.param, running)


def change_for(h: Harness, code: str, delta: int) -> Change:
    """A change for `code` with the ref the adapter reads for it."""
    observed = run(lambda: _read(h.adapter(), [code])).observed[code]
    return Change(code, observed.ref, delta)


def test_reads_every_listing_in_batches(harness: Harness) -> None:
    codes = harness.seed(25)
    harness.emulator.set_quantity("sku-odd", 3)
    result = run(lambda: _read(harness.adapter(batch_size=10), [*codes, "sku-odd", "not-listed"]))
    assert {c: o.quantity for c, o in result.observed.items()} == {**{c: 10 for c in codes}, "sku-odd": 3}
    assert "not-listed" not in result.observed and "not-listed" not in result.skipped
    assert harness.emulator.api_calls(catalogue=False) == 3  # 27 codes in batches of 10


def test_relative_change_keeps_a_sale_made_after_the_read(harness: Harness) -> None:
    harness.seed(1, quantity=10)
    change = change_for(harness, "sku-000", +5)  # read 10, target 15
    assert harness.emulator.sell("sku-000", 2)  # a customer buys between our read and our push
    results = run(lambda: _push(harness.adapter(), [change]))
    assert [r.outcome for r in results] == [Outcome.CONFIRMED]
    assert harness.emulator.quantity("sku-000") == 13  # the sale survives


@pytest.mark.parametrize("applies_the_rest", [False, True])
def test_one_bad_change_fails_alone_or_leaves_its_batch_in_doubt_never_resent(
    harness: Harness, applies_the_rest: bool
) -> None:
    # Per-item answers (Graas, OTO): the bad change fails, the others land. A whole batch rejected
    # (Oakra's 400, Ankorstore's 422): no document says the rest was not applied (the emulator
    # chooses), so all of it is in doubt and nothing is sent again; alone, the bad one fails.
    harness.emulator.silences.rejected_batch_applies_the_rest = applies_the_rest
    harness.seed(2, quantity=10)
    good = [change_for(harness, "sku-000", -3), change_for(harness, "sku-001", +4)]
    bad = Change("ghost-sku", "987654", 1)
    results = run(lambda: _push(harness.adapter(), [good[0], bad, good[1]]))
    shown = (harness.emulator.quantity("sku-000"), harness.emulator.quantity("sku-001"))
    if all(r.outcome is Outcome.IN_DOUBT for r in results):
        assert shown == ((7, 14) if applies_the_rest else (10, 10))  # each applied once at most
        (alone,) = run(lambda: _push(harness.adapter(), [replace(bad, alone=True)]))
        assert alone.outcome is Outcome.FAILED
    else:
        assert [r.outcome for r in results] == [Outcome.CONFIRMED, Outcome.FAILED, Outcome.CONFIRMED]
        assert shown == (7, 14)


def test_rejected_credentials_are_an_auth_error(harness: Harness) -> None:
    codes = harness.seed(1)
    with pytest.raises(AuthError) as caught:
        run(lambda: _read(harness.adapter(**harness.wrong_credentials()), codes))
    assert "wrong-key" not in str(caught.value)
    change = change_for(harness, codes[0], 1)
    results = run(lambda: _push(harness.adapter(**harness.wrong_credentials()), [change]))
    assert results[0].outcome is Outcome.FAILED and isinstance(results[0].error, AuthError)
    assert harness.emulator.quantity(codes[0]) == 10


def test_rate_limit_is_retried_after_the_advised_wait(harness: Harness) -> None:
    codes = harness.seed(3)
    harness.emulator.faults.retry_after = 2
    harness.emulator.faults.inject(Fault.RATE_LIMIT)
    result = run(lambda: _read(harness.adapter(), codes))
    assert len(result.observed) == 3
    assert harness.sleeps == [2.0]


def test_a_failed_read_is_retried(harness: Harness) -> None:
    codes = harness.seed(3)
    harness.emulator.faults.inject(Fault.SERVER_ERROR)
    harness.emulator.faults.inject(Fault.LOST_RESPONSE)
    result = run(lambda: _read(harness.adapter(), codes))
    assert len(result.observed) == 3
    assert len(harness.sleeps) == 2


def test_a_rate_limited_write_is_retried_and_applied_once(harness: Harness) -> None:
    harness.seed(1, quantity=10)
    change = change_for(harness, "sku-000", -4)
    harness.emulator.faults.inject(Fault.RATE_LIMIT, writes_only=True)
    results = run(lambda: _push(harness.adapter(), [change]))
    assert results[0].outcome is Outcome.CONFIRMED
    assert harness.emulator.quantity("sku-000") == 6


@pytest.mark.parametrize(
    ("fault", "applied"),
    [(Fault.LOST_RESPONSE, True), (Fault.SERVER_ERROR_AFTER, True), (Fault.SERVER_ERROR, False)],
)
def test_a_write_whose_answer_is_lost_is_in_doubt_and_never_resent(
    harness: Harness, fault: Fault, applied: bool
) -> None:
    harness.seed(1, quantity=10)
    change = change_for(harness, "sku-000", -4)
    writes_before = harness.write_calls()
    harness.emulator.faults.inject(fault, writes_only=True)
    results = run(lambda: _push(harness.adapter(), [change]))
    assert results[0].outcome is Outcome.IN_DOUBT
    assert harness.write_calls() - writes_before == 1  # sent exactly once
    assert harness.emulator.quantity("sku-000") == (6 if applied else 10)


def test_an_answer_that_breaks_the_document_is_refused_whole(harness: Harness) -> None:
    codes = harness.seed(4)
    harness.emulator.faults.inject(Fault.BAD_SHAPE)
    result = run(lambda: _read(harness.adapter(batch_size=2), codes))
    # Only the batch whose answer broke is refused; the other batch is read as usual.
    assert len(result.refusals) == 1
    refusal = result.refusals[0]
    assert refusal.problem is ReadProblem.UNPARSEABLE and harness.platform in refusal.reason
    assert set(refusal.codes) | set(result.observed) == set(codes)
    assert not set(refusal.codes) & set(result.observed)


def test_an_unreachable_platform_is_retriable_and_writes_fail_cleanly(harness: Harness) -> None:
    codes = harness.seed(1)
    dead = "http://127.0.0.1:9" + PLATFORMS[harness.platform].emulator_base_path  # discard port: refused
    with pytest.raises(RetriableError) as caught:
        run(lambda: _read(harness.adapter(base_url=dead), codes))
    assert "unreachable" in str(caught.value)
    change = change_for(harness, codes[0], 1)
    results = run(lambda: _push(harness.adapter(base_url=dead), [change]))
    assert results[0].outcome is Outcome.FAILED  # refused before sending: certainly not applied


def test_a_quantity_that_is_not_an_integer_is_skipped_not_guessed(harness: Harness) -> None:
    codes = harness.seed(2)
    harness.emulator.set_quantity(codes[0], 2.5)  # type: ignore[arg-type]
    result = run(lambda: _read(harness.adapter(), codes))
    assert codes[0] in result.bad and codes[0] not in result.observed
    assert result.observed[codes[1]].quantity == 10


def test_a_wrong_base_url_fails_the_account_at_once(harness: Harness) -> None:
    codes = harness.seed(30)
    wrong = harness.entry["base_url"] + "/not-here"
    with pytest.raises(FatalError) as caught:
        run(lambda: _read(harness.adapter(base_url=wrong, batch_size=10), codes))
    assert "HTTP 404" in str(caught.value)
    assert harness.emulator.api_calls() <= 3  # one call per batch, no splitting hunt for a bad SKU


# --- bad reads ---------------------------------------------------------------------------------

# Platforms whose document writes quantities as strings of digits: there "12" is a quantity.
DIGIT_STRINGS = frozenset({"oto"})
# Platforms whose relative writes have no floor (`sync.platforms.values`): there a negative number
# is a believable count, so a lying one reaches the engine's judge like a lying zero does.
NEGATIVE_OK = frozenset({"oakra", "graas", "oto"})
# What the adapter must refuse on its own, whole answers at a time.
REFUSED = {Fault.TRUNCATED: ReadProblem.UNPARSEABLE, Fault.DUPLICATE_SKU: ReadProblem.DUPLICATE}
# What only the engine's judge can tell (the adapter sees a well-formed answer).
JUDGED = (Fault.EMPTY_READ, Fault.ZERO_READ, Fault.SOME_ZEROS)


def seed_for_lies(h: Harness) -> tuple[list[str], dict[str, int]]:
    """Six listings at 10 and one at 7; returns the codes and each one's true quantity."""
    codes = [*h.seed(6), "sku-odd"]
    h.emulator.set_quantity("sku-odd", 7)
    return codes, {code: h.emulator.quantity(code) or 0 for code in codes}


@pytest.mark.parametrize("kind", BAD_READS)
def test_a_lying_read_is_never_taken_for_the_truth(harness: Harness, kind: Fault) -> None:
    codes, truth = seed_for_lies(harness)
    harness.emulator.faults.inject(kind)
    result = run(lambda: _read(harness.adapter(batch_size=50), codes))
    assert [lie.fault for lie in harness.emulator.lies] == [kind]  # one stock read, and it lied
    lie = harness.emulator.lies[0]
    if kind in JUDGED:
        assert tuple(codes) in result.answers
        assert all(seen.quantity in (truth[code], 0) for code, seen in result.observed.items())
        assert not set(lie.dropped) & set(result.observed)
        assert all(result.observed[code].quantity == 0 for code in lie.told)
        if kind is Fault.EMPTY_READ:
            assert result.observed == {}
        return
    negatives = _negatives(harness.platform, lie.told)
    assert all(seen.quantity == truth[code] for code, seen in result.observed.items() if code not in negatives)
    if kind in REFUSED:
        assert [r.problem for r in result.refusals] == [REFUSED[kind]]
        assert set(result.refusals[0].codes) == set(codes)
        assert result.observed == {}
        return
    assert kind is Fault.WRONG_TYPES and lie.told
    for code, value in lie.told.items():
        if harness.platform in DIGIT_STRINGS and value == str(truth[code]):
            assert result.observed[code].quantity == truth[code]  # the document's own form
        elif code in negatives:
            assert result.observed[code].quantity == value  # believable there: the judge's to doubt
        else:
            assert code in result.bad and code not in result.observed, (code, value)
    assert set(result.observed) == set(codes) - set(result.bad)


def _negatives(platform: str, told: dict[str, object]) -> set[str]:
    """The codes a lie gave a negative count where the platform's counts may go negative."""
    if platform not in NEGATIVE_OK:
        return set()
    return {code for code, value in told.items() if isinstance(value, int) and value < 0}


def _form(value: object) -> str:
    """The kind of wrong value a lie told."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "null" if value is None else type(value).__name__
    return "negative" if value < 0 else "huge"


def test_every_wrong_value_is_set_apart_read_after_read(harness: Harness) -> None:
    codes, truth = seed_for_lies(harness)
    forms: set[str] = set()
    for _ in range(8):
        harness.emulator.faults.inject(Fault.WRONG_TYPES)
        result = run(lambda: _read(harness.adapter(batch_size=50), codes))
        told = harness.emulator.lies[-1].told
        forms |= {_form(value) for value in told.values()}
        negatives = _negatives(harness.platform, told)
        assert {code: seen.quantity for code, seen in result.observed.items()} == {
            code: told[code] if code in negatives else truth[code] for code in result.observed
        }
        assert negatives <= set(result.observed)
        digit_strings = {c for c, v in told.items() if harness.platform in DIGIT_STRINGS and v == str(truth[c])}
        assert set(result.bad) == set(told) - digit_strings - negatives
    assert forms == {"str", "null", "float", "huge", "negative"}


@pytest.mark.parametrize("kind", JUDGED)
def test_a_reconcile_books_nothing_from_a_lying_read(tmp_path: Path, db_url: str, platform: str, kind: Fault) -> None:
    peer = "graas" if platform == "oakra" else "oakra"
    with fleet(("acct", platform), ("peer", peer)) as running:
        codes = [f"sku-{i}" for i in range(6)] + ["sku-odd"]
        for emulator in running.platforms.values():
            for code in codes:
                emulator.set_quantity(code, 7 if code == "sku-odd" else 10)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, codes))
        config.chmod(0o600)
        assert invoke("reconcile", "--config", config).exit_code == 0
        pools = _pools(config)
        running.platforms["acct"].faults.inject(kind)

        result = invoke("reconcile", "--config", config, "--json")

        lies = running.platforms["acct"].lies
        assert [lie.fault for lie in lies] == [kind]
        report = json.loads(result.stdout)
        assert report["movements"] == [] and report["pushes"] == [], report
        assert _pools(config) == pools
        assert {code: running.platforms["peer"].quantity(code) for code in codes} == {
            code: 7 if code == "sku-odd" else 10 for code in codes
        }
        account = report["accounts"]["acct"]
        zeroed = [code for code, value in lies[0].told.items() if value == 0]
        if kind is Fault.SOME_ZEROS:
            # Each zero is held; the confirming read shows the truth, so nothing is booked.
            assert account["held"] == len(zeroed) and account["confirmed"] == 0
            assert zeroed and account["bad_reads"].get("disagreed") == len(zeroed)
        else:
            problem = "empty" if kind is Fault.EMPTY_READ else "all_zeros"
            assert account["bad_reads"] == {problem: 1}
            assert result.exit_code == 1
    assert_ledger_consistent(db_url)


@pytest.fixture(params=PLATFORM_NAMES)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pools(config: Path) -> dict[str, int]:
    status = json.loads(invoke("status", "--config", config, "--json").stdout)
    return {s["sku"]: s["pool"] for s in status["skus"]}
