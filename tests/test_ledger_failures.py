"""The ledger database failing under a cycle (a deadlock, a lock wait that timed out, a lost
connection) is an outage, not a bug: the step's transaction rolls back, the reconciler says so in
one line with no traceback (a manual reconcile exits 1, the daemon tries again next interval), and
the next cycle finishes the work with nothing lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from structlog.testing import capture_logs

from sync.errors import LedgerUnavailable
from sync.logs import configure_logging
from tests.fakes import fleet
from tests.test_cli import invoke
from tests.test_orders import cycle, pools
from tests.test_shard_count import SKUS, push_states, write
from tests.test_trust import seeded


@contextmanager
def failing_once(statement_start: str) -> Iterator[list[str]]:
    """Every ledger connection in this process fails the first statement starting with
    `statement_start`, as the database does when it picks this transaction to abort."""
    failed: list[str] = []

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not failed and statement.lstrip().upper().startswith(statement_start):
            failed.append(statement)
            raise sqlite3.OperationalError("deadlock detected")

    event.listen(Engine, "before_cursor_execute", fail)
    try:
        yield failed
    finally:
        event.remove(Engine, "before_cursor_execute", fail)


def test_a_manual_reconcile_says_the_ledger_failed_and_the_next_one_finishes(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 5)
        config = write(running, tmp_path, db_url, 1)
        assert invoke("reconcile", "--config", config).exit_code == 0
        for sku in SKUS:
            assert running.platforms["oak"].sell(sku, 2)
        # The pushes are sent, then recording their answers fails: they stay "sent", and only
        # the platforms' next reads can say what became of them.
        with failing_once("UPDATE PUSHES") as failed:
            result = invoke("reconcile", "--config", config)
        assert failed, "the failure was never injected"
        assert result.exit_code == 1, result.output
        assert "the ledger database failed: deadlock detected" in result.output
        assert "run it again" in result.output and "Traceback" not in result.output
        assert invoke("reconcile", "--config", config).exit_code == 0
        assert {"sent", "in_doubt"}.isdisjoint(push_states(db_url))
        for sku in SKUS:
            assert {running.platforms[name].quantity(sku) for name in ("oak", "gra")} == {3}, sku


def test_a_cycle_logs_the_failure_in_one_line_and_records_it(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 5)
        config = running.config(db_url, SKUS)
        cycle(config)
        running.platforms["gra"].sell(SKUS[0], 1)
        configure_logging("info", "json")
        with capture_logs() as logs, failing_once("INSERT INTO MOVEMENTS"), pytest.raises(LedgerUnavailable):
            cycle(config)
        failures = [e for e in logs if e["event"] == "cycle.ledger_failed"]
        assert len(failures) == 1 and failures[0]["error"] == "the ledger database failed: deadlock detected"
        assert not any("exc_info" in e or e["log_level"] == "error" and e is not failures[0] for e in logs), logs
        report = cycle(config)
        assert report.ok
        assert pools(config)[SKUS[0]] == 4  # booked once, by the cycle that finished


def test_an_absolute_set_the_ledger_cannot_record_first_does_not_leave(db_url: str) -> None:
    # Ankorstore's fresh read and real move are recorded before the set leaves; when that write
    # fails (here a deadlock; in CI a frozen process's connection closed by the server), the set is
    # not sent: certainly not applied, the push fails without a traceback, the next cycle converges.
    with fleet(("gra", "graas"), ("ank", "ankorstore")) as running:
        seeded(running, SKUS[:2], 5)
        config = running.config(db_url, SKUS[:2])
        cycle(config)
        assert running.platforms["gra"].sell(SKUS[0], 2)
        configure_logging("info", "json")
        with capture_logs() as logs, failing_once("UPDATE PUSHES SET APPLIED_DELTA=?, FRESH_QUANTITY") as failed:
            report = cycle(config)
        assert failed, "the failure was never injected"
        first, *later = [p for p in report.pushes if p.push.account == "ank"]
        assert first.outcome == "failed" and "not set: the ledger database failed" in first.detail
        confirmed = sum(1 for p in later if p.outcome == "confirmed")  # the next batch planned afresh
        assert len(running.platforms["ank"].applied) == confirmed  # the failed one never left
        assert not any("exc_info" in e for e in logs)
        cycle(config)
        assert {name: p.quantity(SKUS[0]) for name, p in running.platforms.items()} == {"gra": 3, "ank": 3}
