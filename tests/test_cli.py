"""The command line as an operator meets it: exit statuses, messages, dry runs, status, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, select

from sync.cli import cli
from sync.emulation.faults import Fault
from sync.emulation.wire import EmuResponse
from sync.ledger.models import Cycle, Listing, Movement, Push, PushState
from tests.fakes import CREDENTIALS, Fleet, fleet

SKUS = ["mug", "cap", "tote"]


@pytest.fixture
def running() -> Iterator[Fleet]:
    with fleet(("oak", "oakra"), ("gra", "graas", {"buffer": 1})) as running:
        for platform in running.platforms.values():
            for sku, quantity in zip(SKUS, (10, 7, 4), strict=True):
                platform.set_quantity(sku, quantity)
        yield running


def write_config(tmp_path: Path, running: Fleet, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "stocksync.toml"
    path.write_text(running.toml(db_url, SKUS, extra))
    path.chmod(0o600)
    return path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def ledger_rows(db_url: str) -> dict[str, object]:
    """Counts and values that a command must not change."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = {
            "movements": c.scalar(select(func.count()).select_from(Movement)),
            "pushes": c.scalar(select(func.count()).select_from(Push)),
            "cycles": c.scalar(select(func.count()).select_from(Cycle)),
            "expected": sorted(c.execute(select(Listing.id, Listing.expected)).all()),
        }
    engine.dispose()
    return rows


def assert_ledger_consistent(db_url: str) -> None:
    """No push left planned or sent, every cycle closed."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        open_states = (PushState.PLANNED.value, PushState.SENT.value)
        assert c.scalar(select(func.count()).select_from(Push).where(Push.state.in_(open_states))) == 0
        assert c.scalar(select(func.count()).select_from(Cycle).where(Cycle.finished_at.is_(None))) == 0
    engine.dispose()


def test_reconcile_then_status(tmp_path: Path, running: Fleet, db_url: str) -> None:
    config = write_config(tmp_path, running, db_url)
    result = invoke("reconcile", "--config", config)
    assert result.exit_code == 0, result.output
    assert running.platforms["gra"].quantity("mug") == 9  # pool 10, buffer 1
    status = invoke("status", "--config", config, "--json")
    data = json.loads(status.stdout)
    assert {s["sku"]: s["pool"] for s in data["skus"]} == {"mug": 10, "cap": 7, "tote": 4}
    assert all(a["healthy"] for a in data["accounts"])
    text = invoke("status", "--config", config).output
    assert "mug" in text and "last cycle: #1" in text


def test_dry_run_prints_the_exact_pushes_and_changes_nothing(tmp_path: Path, running: Fleet, db_url: str) -> None:
    config = write_config(tmp_path, running, db_url)
    assert invoke("reconcile", "--config", config).exit_code == 0
    running.platforms["oak"].sell("cap", 3)  # drift: a sale on Oakra
    running.platforms["gra"].set_quantity("tote", 9)  # and a hand edit on Graas
    before_rows = ledger_rows(db_url)
    before_stock = {name: {s: p.quantity(s) for s in SKUS} for name, p in running.platforms.items()}
    applied_before = {name: list(p.applied) for name, p in running.platforms.items()}

    result = invoke("reconcile", "--config", config, "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    pushes = {(p["account"], p["sku"]): (p["observed"], p["target"], p["delta"]) for p in plan["pushes"]}
    # cap: pool 7 - 3 sold = 4 -> gra shows 6, target 3. tote: pool 4 + 6 = 10 -> oak 4 -> 10, gra 9 stays (10-1).
    assert pushes == {("gra", "cap"): (6, 3, -3), ("oak", "tote"): (4, 10, 6)}
    assert ledger_rows(db_url) == before_rows
    assert {name: {s: p.quantity(s) for s in SKUS} for name, p in running.platforms.items()} == before_stock
    assert {name: list(p.applied) for name, p in running.platforms.items()} == applied_before
    text = invoke("reconcile", "--config", config, "--dry-run").output
    assert "gra" in text and "6 -> 3" in text and "(-3)" in text and "would push (2)" in text


def test_a_malformed_config_exits_2_naming_the_key(tmp_path: Path, running: Fleet, db_url: str) -> None:
    config = write_config(tmp_path, running, db_url)
    config.write_text(config.read_text().replace('platform = "graas"', 'platform = "graas"\nbufer = 1'))
    before = ledger_rows(db_url)
    result = invoke("reconcile", "--config", config)
    assert result.exit_code == 2
    assert "accounts[1] (gra).bufer: unknown key" in result.output
    assert ledger_rows(db_url) == before
    missing = invoke("reconcile", "--config", tmp_path / "nope.toml")
    assert missing.exit_code == 2 and "no such configuration file" in missing.output


def test_a_missing_schema_says_to_upgrade(tmp_path: Path, running: Fleet) -> None:
    db_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config = write_config(tmp_path, running, db_url)
    result = invoke("reconcile", "--config", config)
    assert result.exit_code == 2 and "stocksync db upgrade" in result.output
    upgraded = invoke("db", "upgrade", "--config", config)
    assert upgraded.exit_code == 0 and "upgraded from nothing" in upgraded.output
    assert "already at" in invoke("db", "upgrade", "--config", config).output
    assert invoke("reconcile", "--config", config).exit_code == 0


@pytest.mark.parametrize("failure", ["unreachable", "auth", "bad_shape"])
def test_a_failing_platform_exits_1_and_the_others_still_sync(
    tmp_path: Path, running: Fleet, db_url: str, failure: str
) -> None:
    config = write_config(tmp_path, running, db_url)
    assert invoke("reconcile", "--config", config).exit_code == 0
    running.platforms["gra"].sell("mug", 4)  # a sale on Graas must still reach Oakra
    if failure == "unreachable":
        running.servers["oak"].stop()
        config.write_text(config.read_text())
    elif failure == "auth":
        running.platforms["oak"].app_key = "rotated-key"  # type: ignore[attr-defined]
    else:
        running.platforms["oak"].faults.inject(Fault.BAD_SHAPE, times=10)

    result = invoke("reconcile", "--config", config)

    assert result.exit_code == 1
    expected = {
        "unreachable": "platform unreachable",
        "auth": "credentials rejected",
        "bad_shape": "answer is neither an array",
    }[failure]
    assert expected in result.output
    assert "FAILED" in result.output
    assert_ledger_consistent(db_url)
    status = json.loads(invoke("status", "--config", config, "--json").stdout)
    health = {a["name"]: a for a in status["accounts"]}
    assert not health["oak"]["healthy"] and expected in health["oak"]["last_error"]
    assert health["gra"]["healthy"]
    assert {s["sku"]: s["pool"] for s in status["skus"]}["mug"] == 6  # booked from Graas


def test_secrets_never_reach_output_logs_or_ledger(tmp_path: Path, running: Fleet, db_url: str) -> None:
    config = write_config(tmp_path, running, db_url, '[logging]\nlevel = "debug"\nformat = "json"\n')
    running.platforms["oak"].app_key = "rotated-key"  # type: ignore[attr-defined]
    # A platform that echoes credentials back in its error bodies.
    running.platforms["gra"].route = lambda request: EmuResponse(  # type: ignore[method-assign]
        400, {"errorMessage": f"appKey {request.headers['appkey']} is not allowed here"}
    )
    result = CliRunner().invoke(cli, ["reconcile", "--config", str(config)], catch_exceptions=False)
    secrets = [entry["app_key"] for entry in running.entries] + [CREDENTIALS["graas"]["app_key"]]
    everything = result.output + (result.stderr if result.stderr_bytes else "")
    everything += Path(db_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1")
    assert "account.read_failed" in everything and "is not allowed here" in everything
    for secret in secrets:
        assert secret not in everything


def test_python_dash_m_sync_and_help() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("reconcile", "run", "db", "status", "demo"):
        assert command in result.output
    assert "--dry-run" in invoke("reconcile", "--help").output


def test_explain_shows_the_chain_behind_a_number(tmp_path: Path, running: Fleet, db_url: str) -> None:
    config = write_config(tmp_path, running, db_url)
    assert invoke("reconcile", "--config", config).exit_code == 0
    running.platforms["gra"].sell("mug", 2)
    running.platforms["oak"].faults.inject(Fault.LOST_RESPONSE, writes_only=True)  # oak's -2 goes in doubt
    assert invoke("reconcile", "--config", config).exit_code == 0

    data = json.loads(invoke("explain", "mug", "--config", config, "--json").stdout)

    assert data["pool"] == 8
    assert [(m["kind"], m["quantity"], m["source"]) for m in data["movements"]] == [
        ("bootstrap", 10, None),
        ("external", -2, "gra"),
    ]
    listings = {row["account"]: row for row in data["listings"]}
    assert listings["gra"]["buffer"] == 1 and listings["gra"]["target"] == 7
    assert listings["oak"]["expected"] == 8 and listings["oak"]["target"] == 8
    oak_pushes = [p for p in data["pushes"] if p["account"] == "oak"]
    assert oak_pushes[-1]["delta"] == -2 and oak_pushes[-1]["state"] == "applied"
    assert oak_pushes[-1]["resolution"] == "quiet listing, no order feed to confirm: applied"
    assert oak_pushes[-1]["settled_by"] == "quiet"
    doubts = json.loads(invoke("status", "--config", config, "--json").stdout)["in_doubt_pushes"]
    assert set(doubts) == {"oakra"} and doubts["oakra"]["quiet_applied"] == 1
    assert sum(doubts["oakra"].values()) == 1  # nothing open, nothing else settled
    status = invoke("status", "--config", config).stdout
    assert "oakra: 0 open; by orders 0/0; flagged: quiet listing 1/0" in status
    text = invoke("explain", "mug", "--config", config).stdout
    assert "pool 8" in text and "quiet listing, no order feed to confirm: applied" in text and "buffer 1" in text
    assert "[flagged: quiet]" in text
    missing = invoke("explain", "nope", "--config", config)
    assert missing.exit_code == 1 and "no such SKU" in missing.output
