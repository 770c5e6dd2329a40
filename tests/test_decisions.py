"""An operator's decision on a safety stop: `stocksync accept` / `reject` (dry run, recording, usage
errors), and what `status` and `explain` show of held listings and judged reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from sync.emulation.faults import Fault
from sync.ledger.models import Account, Listing, Movement, MovementKind, ReadEvent, SafetyStop, Sku
from tests.fakes import Fleet, account_entry, fleet
from tests.test_cli import assert_ledger_consistent, invoke, ledger_rows

SKUS = ["sku-a", "sku-b", "sku-c"]
UNREACHABLE = "http://127.0.0.1:1"


def build_ledger(db_url: str) -> None:
    """oak (Oakra) holds sku-a (expected 8, reading 0) and sku-b (expected 8, reading 2) under an open
    stop, sku-c is not held; oto holds sku-a under its own stop; gra holds nothing. Pools: 8, 8, 7.
    Read events: oak answering badly (an all-zeros answer, two stopped listings), gra two
    disagreements, and an old bad value outside the last hour."""
    now = datetime.now(UTC)
    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        accounts = {
            name: Account(name=name, platform=platform, healthy=True)
            for name, platform in (("oak", "oakra"), ("gra", "graas"), ("oto", "oto"))
        }
        accounts["oak"].bad_since = now - timedelta(minutes=5)
        accounts["oak"].last_bad_at = now - timedelta(minutes=1)
        skus = {code: Sku(code=code, created_at=now) for code in SKUS}
        session.add_all([*accounts.values(), *skus.values()])
        session.flush()
        stops = {
            name: SafetyStop(account_id=accounts[name].id, opened_at=now - timedelta(minutes=5), reason=f"{name} fell")
            for name in ("oak", "oto")
        }
        session.add_all(stops.values())
        session.flush()
        pools = {"sku-a": 8, "sku-b": 8, "sku-c": 7}
        held = {("oak", "sku-a"): 0, ("oak", "sku-b"): 2, ("oto", "sku-a"): 0}
        for name, account in accounts.items():
            for code, sku in skus.items():
                reading = held.get((name, code))
                session.add(
                    Listing(
                        account_id=account.id,
                        sku_id=sku.id,
                        code=code,
                        ref=f"{name}-{code}",
                        expected=pools[code],
                        last_observed=pools[code],
                        stop_id=stops[name].id if reading is not None else None,
                        held_quantity=reading,
                    )
                )
        for sku in skus.values():
            session.add(Movement(sku_id=sku.id, kind=MovementKind.BOOTSTRAP.value, quantity=8, created_at=now))
        session.add(Movement(sku_id=skus["sku-c"].id, kind=MovementKind.EXTERNAL.value, quantity=-1, created_at=now))
        events = [
            ("oak", None, "all_zeros", None, None, "reported all 3 listings at zero", now - timedelta(minutes=10)),
            ("oak", "sku-a", "stopped", 0, 8, "dropped to 0 from 8", now - timedelta(minutes=5)),
            ("oak", "sku-b", "stopped", 2, 8, "dropped 6 of 8 (over 50%)", now - timedelta(minutes=5)),
            ("gra", "sku-c", "disagreed", None, 7, "read 3 after 0", now - timedelta(minutes=20)),
            ("gra", "sku-c", "disagreed", None, 7, "read 7 after 3", now - timedelta(minutes=19)),
            ("gra", "sku-b", "bad_value", None, 8, "quantity '8.5' is not an integer", now - timedelta(hours=2)),
        ]
        for name, code, kind, quantity, expected, reason, at in events:
            session.add(
                ReadEvent(
                    account_id=accounts[name].id,
                    sku_id=skus[code].id if code else None,
                    at=at,
                    kind=kind,
                    quantity=quantity,
                    expected=expected,
                    reason=reason,
                    # oak's all-zeros answer was asked for sku-a and sku-b (sku-c was in another)
                    skus='["sku-a", "sku-b"]' if kind == "all_zeros" else None,
                )
            )
    engine.dispose()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """A configuration naming the three accounts (none reachable: these commands only use the
    ledger) over a ledger built by build_ledger; oak keeps a buffer of 1."""
    build_ledger(db_url)
    accounts = Fleet(
        entries=[
            account_entry("oak", "oakra", UNREACHABLE, buffer=1),
            account_entry("gra", "graas", UNREACHABLE),
            account_entry("oto", "oto", UNREACHABLE),
        ]
    )
    path = tmp_path / "stocksync.toml"
    path.write_text(accounts.toml(db_url, SKUS))
    path.chmod(0o600)
    return path


def decisions(db_url: str) -> dict[tuple[str, str], str | None]:
    """(account, SKU) -> the decision recorded on that listing."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(
            select(Account.name, Sku.code, Listing.decision)
            .select_from(Listing)
            .join(Account, Listing.account_id == Account.id)
            .join(Sku, Listing.sku_id == Sku.id)
        ).all()
    engine.dispose()
    return {(name, code): decision for name, code, decision in rows}


NONE_DECIDED = {(name, code): None for name in ("oak", "gra", "oto") for code in SKUS}


def test_accept_dry_run_shows_the_booking_and_writes_nothing(config: Path, db_url: str) -> None:
    before = ledger_rows(db_url)
    result = invoke("accept", "oak", "--config", config, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "safety stop #1 on oak since " in result.output and "oak fell" in result.output
    assert "sku-a  expected 8, held reading 0: would book -8 (pool 8 -> 0)" in result.output
    assert "sku-b  expected 8, held reading 2: would book -6 (pool 8 -> 2)" in result.output
    assert "sku-c" not in result.output
    assert "dry run: nothing was written" in result.output and "`stocksync accept oak`" in result.output
    data = json.loads(invoke("accept", "oak", "--config", config, "--dry-run", "--json").stdout)
    assert data["dry_run"] is True and data["recorded"] == 0
    shown = {p["sku"]: (p["expected"], p["held"], p["change"], p["pool"], p["pool_after"]) for p in data["listings"]}
    assert shown == {"sku-a": (8, 0, -8, 8, 0), "sku-b": (8, 2, -6, 8, 2)}
    assert decisions(db_url) == NONE_DECIDED
    assert ledger_rows(db_url) == before


def test_reject_dry_run_shows_the_push_back_to_the_target(config: Path, db_url: str) -> None:
    result = invoke("reject", "oak", "--config", config, "--dry-run", "--sku", "sku-b")
    assert result.exit_code == 0, result.output
    # pool 8, oak's buffer 1: the platform goes back to 7, nothing is booked
    line = (
        "sku-b  expected 8, held reading 2: would adopt 2 unbooked and push the platform back to the pool's target (7)"
    )
    assert line in result.output
    assert "sku-a" not in result.output and "`stocksync reject oak --sku sku-b`" in result.output
    assert decisions(db_url) == NONE_DECIDED


def test_accept_records_the_decision_on_that_accounts_held_listings_only(config: Path, db_url: str) -> None:
    before = ledger_rows(db_url)
    result = invoke("accept", "oak", "--config", config)
    assert result.exit_code == 0, result.output
    assert "recorded for 2 listing(s) of oak" in result.output and "next reconcile" in result.output
    assert "will book -8 (pool 8 -> 0)" in result.output
    assert decisions(db_url) == NONE_DECIDED | {("oak", "sku-a"): "accept", ("oak", "sku-b"): "accept"}
    assert ledger_rows(db_url) == before  # nothing booked: the next read applies it


def test_reject_one_sku_sets_only_that_listing(config: Path, db_url: str) -> None:
    result = invoke("reject", "oak", "--sku", "sku-b", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recorded"] == 1 and [p["sku"] for p in data["listings"]] == ["sku-b"]
    assert decisions(db_url) == NONE_DECIDED | {("oak", "sku-b"): "reject"}
    # a later dry run says what is recorded already
    again = invoke("accept", "oak", "--config", config, "--dry-run")
    assert "[reject already recorded, not applied yet]" in again.output
    held = invoke("explain", "sku-b", "--config", config).output.splitlines()[0]
    assert (
        held.startswith("HELD by a safety stop on oak") and "[reject recorded, applied at the next reconcile]" in held
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accept", "nope"), "unknown account 'nope'; the configured accounts are: oak, gra, oto"),
        (("reject", "nope", "--dry-run"), "unknown account 'nope'; the configured accounts are: oak, gra, oto"),
        (("accept", "gra"), "nothing to accept: account gra holds no listing under a safety stop"),
        (("reject", "gra", "--dry-run"), "nothing to reject: account gra holds no listing under a safety stop"),
        (("accept", "oak", "--sku", "sku-c"), "account oak holds no listing of sku-c under a safety stop"),
        (("reject", "oak", "--sku", "sku-a", "--sku", "zzz"), "account oak holds no listing of zzz under a safety"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(config: Path, db_url: str, args: tuple[str, ...], message: str) -> None:
    result = invoke(*args, "--config", config)
    assert result.exit_code == 2, result.output
    assert f"stocksync: error: {message}" in result.output
    assert "Traceback" not in result.output
    assert decisions(db_url) == NONE_DECIDED


def test_help_says_when_to_accept_and_when_to_reject() -> None:
    accept = invoke("accept", "--help").output
    assert "real" in accept and "Oakra" in accept and "--dry-run" in accept
    reject = invoke("reject", "--help").output
    assert "wrong" in reject and "zeroed" in reject and "pushed back" in reject


def test_status_shows_reads_and_stops(config: Path) -> None:
    data = json.loads(invoke("status", "--config", config, "--json").stdout)
    reads = data["reads"]
    oak, gra = reads["accounts"]["oak"], reads["accounts"]["gra"]
    assert oak["answering_badly"] is True and oak["bad_since"] and oak["last_bad_at"]
    assert oak["bad_reads_last_hour"] == {"all_zeros": 1}
    assert oak["held_drops_last_hour"] == {"stopped": 2}
    assert gra["answering_badly"] is False
    assert gra["bad_reads_last_hour"] == {"disagreed": 2}  # the bad value two hours ago is left out
    assert reads["accounts"]["oto"]["bad_reads_last_hour"] == {}
    stops = {s["account"]: s for s in reads["stops"]}
    assert set(stops) == {"oak", "oto"}
    assert stops["oak"]["listings"] == [
        {"sku": "sku-a", "expected": 8, "held": 0, "decision": None},
        {"sku": "sku-b", "expected": 8, "held": 2, "decision": None},
    ]
    assert stops["oak"]["accept"] == "stocksync accept oak --dry-run"

    text = invoke("status", "--config", config).output
    assert "answering BADLY since " in text and "bad reads: 1 all_zeros; held drops: 2 stopped" in text
    assert "bad reads: 2 disagreed; held drops: none" in text
    assert "SAFETY STOP #1 on oak since " in text and "oak fell; 2 listing(s) held" in text
    assert "sku-b  expected 8, held reading 2" in text
    assert "`stocksync accept oak --dry-run` (the drops were real)" in text
    assert "`stocksync reject oto --dry-run`" in text


def test_explain_shows_the_hold_first_then_the_judged_reads(config: Path) -> None:
    text = invoke("explain", "sku-a", "--config", config).output
    first = text.splitlines()[0]
    assert first.startswith("HELD by a safety stop on oak since ")
    assert "reading 0, expected 8; stocksync accept oak --sku sku-a" in first
    assert text.splitlines()[1].startswith("HELD by a safety stop on oto since ")
    assert "held/refused readings with their reason (newest first):" in text
    assert "stopped      reading 0, expected 8: dropped to 0 from 8" in text
    data = json.loads(invoke("explain", "sku-a", "--config", config, "--json").stdout)
    assert [(h["account"], h["held"], h["expected"]) for h in data["holds"]] == [("oak", 0, 8), ("oto", 0, 8)]
    assert [(e["account"], e["kind"], e["quantity"], e["whole_answer"]) for e in data["read_events"]] == [
        ("oak", "stopped", 0, False),
        ("oak", "all_zeros", None, True),  # an answer asked for it, refused whole
    ]
    assert "all_zeros    an answer asked for this listing was refused whole: reported all 3" in text
    plain = invoke("explain", "sku-c", "--config", config).output
    assert not plain.startswith("HELD") and "read 7 after 3" in plain and "read 3 after 0" in plain
    assert "all_zeros" not in plain  # that answer was not asked for sku-c


# --- end to end, with emulators ---------------------------------------------------------------

E2E_SKUS = [f"sku-{i:02d}" for i in range(12)]
DROPPED = E2E_SKUS[:10]


def reconciled_fleet(running: Fleet, tmp_path: Path, db_url: str, skus: list[str], stock: int) -> Path:
    """Every platform showing `stock` of each SKU, a configuration for them, and a first reconcile."""
    for platform in running.platforms.values():
        for sku in skus:
            platform.set_quantity(sku, stock)
    config = tmp_path / "stocksync.toml"
    config.write_text(running.toml(db_url, skus))
    config.chmod(0o600)
    assert invoke("reconcile", "--config", config).exit_code == 0
    return config


def stopped_fleet(running: Fleet, tmp_path: Path, db_url: str) -> Path:
    """Reconcile 12 SKUs at 8, then zero 10 of Oakra's listings (Oakra has no order feed): the
    next reconcile must open a safety stop and book nothing."""
    config = reconciled_fleet(running, tmp_path, db_url, E2E_SKUS, 8)
    for sku in DROPPED:
        running.platforms["oak"].set_quantity(sku, 0)
    result = invoke("reconcile", "--config", config, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["accounts"]["oak"]["stopped"] == 10 and report["movements"] == []
    assert all(running.platforms["gra"].quantity(sku) == 8 for sku in E2E_SKUS)
    reads = json.loads(invoke("status", "--config", config, "--json").stdout)["reads"]
    (stop,) = reads["stops"]
    assert stop["account"] == "oak" and [listing["sku"] for listing in stop["listings"]] == DROPPED
    assert all(listing["held"] == 0 and listing["expected"] == 8 for listing in stop["listings"])
    assert {s["sku"]: s["pool"] for s in json.loads(invoke("status", "--config", config, "--json").stdout)["skus"]} == {
        sku: 8 for sku in E2E_SKUS
    }
    return config


def open_stops(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as c:
        count = len(c.execute(select(SafetyStop.id).where(SafetyStop.closed_at.is_(None))).all())
    engine.dispose()
    return count


def test_accepting_a_stop_books_the_drops(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        config = stopped_fleet(running, tmp_path, db_url)
        dry = invoke("accept", "oak", "--config", config, "--dry-run")
        assert dry.exit_code == 0 and dry.output.count("would book -8 (pool 8 -> 0)") == 10
        assert invoke("accept", "oak", "--config", config).exit_code == 0
        result = invoke("reconcile", "--config", config, "--json")
        assert result.exit_code == 0, result.output
        status = json.loads(invoke("status", "--config", config, "--json").stdout)
        pools = {s["sku"]: s["pool"] for s in status["skus"]}
        assert pools == {sku: 0 if sku in DROPPED else 8 for sku in E2E_SKUS}
        assert {sku: running.platforms["gra"].quantity(sku) for sku in E2E_SKUS} == pools
        assert {sku: running.platforms["oak"].quantity(sku) for sku in E2E_SKUS} == pools
        assert status["reads"]["stops"] == [] and open_stops(db_url) == 0
        assert status["reads"]["accounts"]["oak"]["held_drops_last_hour"]["accepted"] == 10
        assert invoke("reconcile", "--config", config).exit_code == 0  # and it stays quiet
    assert_ledger_consistent(db_url)


def test_rejecting_a_stop_puts_the_platform_back(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        config = stopped_fleet(running, tmp_path, db_url)
        assert invoke("reject", "oak", "--config", config).exit_code == 0
        result = invoke("reconcile", "--config", config, "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["movements"] == []
        assert {(p["account"], p["sku"], p["delta"]) for p in report["pushes"]} == {("oak", sku, 8) for sku in DROPPED}
        status = json.loads(invoke("status", "--config", config, "--json").stdout)
        assert {s["sku"]: s["pool"] for s in status["skus"]} == {sku: 8 for sku in E2E_SKUS}
        assert all(running.platforms[name].quantity(sku) == 8 for name in ("oak", "gra") for sku in E2E_SKUS)
        assert status["reads"]["stops"] == [] and open_stops(db_url) == 0
        assert invoke("reconcile", "--config", config).exit_code == 0
    assert_ledger_consistent(db_url)


def test_explain_names_a_refused_answer_only_for_the_skus_it_was_asked_for(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            for sku in ("a", "b"):
                platform.set_quantity(sku, 5)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, ["a", "b"], "[sync]\nbatch_size = 1\n"))
        config.chmod(0o600)
        assert invoke("reconcile", "--config", config).exit_code == 0
        running.platforms["oak"].faults.inject(Fault.TRUNCATED)  # oak's answer for batch ["a"]
        assert invoke("reconcile", "--config", config).exit_code == 1
        assert invoke("reconcile", "--config", config).exit_code == 0
        refused = json.loads(invoke("explain", "a", "--config", config, "--json").stdout)["read_events"]
        assert [(e["account"], e["kind"], e["whole_answer"]) for e in refused] == [("oak", "unparseable", True)]
        assert "an answer asked for this listing was refused whole" in invoke("explain", "a", "--config", config).output
        others = json.loads(invoke("explain", "b", "--config", config, "--json").stdout)["read_events"]
        assert others == []
