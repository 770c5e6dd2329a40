"""Real processes: the daemon stopped by SIGTERM, `python -m sync`, and the demo end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from sync.emulation.sales import SalesDriver
from sync.ledger.models import Account, Cycle, Listing, Movement, Push, PushState, Sku, UTCDateTime
from sync.ledger.models import Lease as LeaseRow
from tests.fakes import fleet
from tests.test_cli import assert_ledger_consistent

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def finished_cycles(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as c:
        count = c.scalar(select(func.count()).select_from(Cycle).where(Cycle.finished_at.is_not(None)))
    engine.dispose()
    return int(count or 0)


def test_the_daemon_finishes_its_cycle_and_exits_0_on_sigterm(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(20)]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            platform.faults.latency = 0.05  # cycles long enough to be caught in the middle
            for sku in skus:
                platform.set_quantity(sku, 5)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, skus, "[sync]\ninterval_seconds = 0.2\nbatch_size = 5\n"))
        config.chmod(0o600)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "sync", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 30
            while finished_cycles(db_url) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert finished_cycles(db_url) >= 1
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
        finally:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert "daemon.stopped" in output
    try:
        assert_ledger_consistent(db_url)
    except AssertionError:
        print(output[-4000:])
        raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_config_on_free_ports(tmp_path: Path) -> Path:
    """config/demo.toml with its emulators on free loopback ports (tests run side by side)."""
    demo = (ROOT / "config" / "demo.toml").read_text()
    for port in ("18701", "18702", "18703", "18704", "18705"):
        demo = demo.replace(port, str(free_port()))
    config = tmp_path / "demo.toml"
    config.write_text(demo)
    return config


def test_the_demo_converges_and_ends_by_itself(tmp_path: Path) -> None:
    config = demo_config_on_free_ports(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "sync", "demo", "--config", str(config), "--duration", "3", "--rate", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every platform shows the shared pool" in result.stdout


class LoggedProcess(subprocess.Popen[str]):
    """A process whose output goes to a file, read back by `communicate`: a daemon logs a line per
    event, and a pipe nobody reads until the end fills up and blocks it mid-cycle."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self._sink = tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="stocksync-")  # noqa: SIM115
        super().__init__(args, stdout=self._sink, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the process, then return everything it wrote."""
        self.wait(timeout)
        self._sink.seek(0)
        output = self._sink.read()
        self._sink.close()
        return output, ""


def start_daemon(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`stocksync run` as a real process, its output going to a file."""
    return LoggedProcess([sys.executable, "-m", "sync", "run", "--config", str(config)], {**os.environ, **(env or {})})


def stocksync(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A `stocksync` command on `config`, as a real process, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "sync", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM a daemon and return its output."""
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    return output


def lease_held(db_url: str) -> bool:
    engine = create_engine(db_url)
    with engine.connect() as c:
        expires = c.scalar(select(LeaseRow.expires_at))
    engine.dispose()
    return expires is not None and UTCDateTime().process_result_value(expires, None) > datetime.now(UTC)  # type: ignore[arg-type]


def test_a_second_reconciler_waits_a_bounded_time_then_says_who_holds_the_lock(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(24)]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            platform.faults.latency = 0.4  # a long cycle (about 10 s): 24 batches of one SKU
            for sku in skus:
                platform.set_quantity(sku, 5)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, skus, "[sync]\ninterval_seconds = 60\nbatch_size = 1\n"))
        config.chmod(0o600)
        daemon = start_daemon(config)
        try:
            deadline = time.monotonic() + 30
            while not lease_held(db_url) and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()
            manual = subprocess.run(
                [sys.executable, "-m", "sync", "reconcile", "--config", str(config), "--wait", "1"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            waited = time.monotonic() - started
        finally:
            stop(daemon)
    assert manual.returncode == 3, manual.stdout + manual.stderr
    assert "another reconciler holds the ledger lock" in manual.stderr
    assert waited >= 1.0


def test_two_reconcilers_at_once_never_push_the_same_change_twice(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(8)]
    with fleet(("oak-a", "oakra"), ("oak-b", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            platform.faults.latency = 0.01
            for sku in skus:
                platform.set_quantity(sku, 30)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, skus, '[sync]\ninterval_seconds = 0.1\n[logging]\nformat = "json"\n'))
        config.chmod(0o600)
        daemons = [start_daemon(config), start_daemon(config)]
        sales = SalesDriver(list(running.platforms.values()), rate=10, seed=3)
        try:
            # Sales start once the ledger is bootstrapped: a sale before the first read is part of
            # the starting count, which the truth below (30 minus every sale) does not allow for.
            deadline = time.monotonic() + 60
            while finished_cycles(db_url) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            sales.start()
            time.sleep(4)  # four seconds of sales while both daemons reconcile
            sales.stop()
            while len(scheduled_holders(db_url)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            sales.stop()
            outputs = [stop(d) for d in daemons]
        for _ in range(5):  # let one reconciler settle what the last sales left
            settle = stocksync(config, "reconcile", "--json")
            assert settle.returncode == 0, settle.stderr
            if not json.loads(settle.stdout)["pushes"]:
                break
        ledger = ledger_pushes(db_url)
        truth_sold = {sku: sum(p.sold[sku] for p in running.platforms.values()) for sku in skus}
        applied = {name: Counter(p.applied) for name, p in running.platforms.items()}
    assert all("cycle.end" in output for output in outputs), "both daemons reconciled"
    cycles = ledger_cycles(db_url)
    assert len(scheduled_holders(db_url)) == 2, "both daemons ran"
    for (_, _, _, finished), (_, _, started, _) in zip(cycles, cycles[1:], strict=False):
        assert finished <= started, "two cycles overlapped"
    for name in applied:
        counted = Counter(
            (code, delta)
            for account, code, delta, state in ledger
            if account == name and state == PushState.CONFIRMED.value
        )
        assert applied[name] == counted, name  # each change applied exactly once, as recorded
    pools = ledger_pools(db_url)
    assert pools == {sku: 30 - truth_sold[sku] for sku in skus}


def ledger_pushes(db_url: str) -> list[tuple[str, str, int, str]]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(
            select(Account.name, Listing.code, Push.delta, Push.state)
            .join(Listing, Push.listing_id == Listing.id)
            .join(Account, Listing.account_id == Account.id)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def scheduled_holders(db_url: str) -> set[str]:
    """The reconcilers that finished a scheduled cycle."""
    return {holder for holder, trigger, _, _ in ledger_cycles(db_url) if trigger == "scheduled"}


def ledger_cycles(db_url: str) -> list[tuple[str, str, datetime, datetime]]:
    """(holder, trigger, started, finished) of every finished cycle, in start order."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(
            select(Cycle.holder, Cycle.trigger, Cycle.started_at, Cycle.finished_at)
            .where(Cycle.finished_at.is_not(None))
            .order_by(Cycle.started_at)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def ledger_pools(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(select(Sku.code, func.sum(Movement.quantity)).join(Movement).group_by(Sku.code)).all()
    engine.dispose()
    return {code: int(total) for code, total in rows}


def test_sigterm_in_the_middle_of_a_batch_of_pushes_leaves_nothing_unrecorded(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i:02d}" for i in range(40)]
    with fleet(("oak", "oakra"), ("oto", "oto", {"concurrency": 2})) as running:
        oak, oto = running.platforms["oak"], running.platforms["oto"]
        for platform in running.platforms.values():
            for sku in skus:
                platform.set_quantity(sku, 9)
        config = tmp_path / "stocksync.toml"
        config.write_text(
            running.toml(
                db_url, skus, "[sync]\ninterval_seconds = 3600\nbatch_size = 20\nsafety_max_drop_share = 1.0\n"
            )
        )
        config.chmod(0o600)
        assert (
            subprocess.run(
                [sys.executable, "-m", "sync", "reconcile", "--config", str(config)], cwd=ROOT, timeout=60
            ).returncode
            == 0
        )
        for sku in skus:
            oak.sell(sku, 1)  # every SKU needs a push on OTO: one call each, two at a time
        oto.faults.latency = 0.2
        daemon = start_daemon(config)
        first_push = threading.Event()
        oto.after_request = lambda request: first_push.set() if request.path.endswith("updateStockQuantity") else None
        try:
            assert first_push.wait(30)
            daemon.send_signal(signal.SIGTERM)  # the batch's other pushes are in flight or queued
            output, _ = daemon.communicate(timeout=60)
        finally:
            daemon.kill()
        assert daemon.returncode == 0, output
        assert_ledger_consistent(db_url)  # nothing left planned or sent
        done = Counter(
            (code, delta)
            for account, code, delta, state in ledger_pushes(db_url)
            if account == "oto" and state == "confirmed"
        )
        assert Counter(oto.applied) == done  # every push that reached OTO is recorded as such
        assert 0 < sum(done.values()) < len(skus)  # it stopped in the middle, after its batch
        oto.faults.latency = 0
        after = stocksync(config, "reconcile", "--json")  # the next start picks up where it stopped
        assert after.returncode == 0, after.stderr
        assert Counter(oto.applied) == Counter({(sku, -1): 1 for sku in skus})  # each applied once
        assert {sku: oto.quantity(sku) for sku in skus} == {sku: 8 for sku in skus}
