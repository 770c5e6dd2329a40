"""The shard count is recorded in the ledger: a reconciler configured with another count refuses to
run (exit 2, a message saying how to change it), `stocksync db shards N` changes it under every
shard's lease and recovers every shard's open pushes, and a daemon left running with the old
count stops at its next cycle."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from sync.bootstrap import Wiring, open_ledger, running_engine
from sync.crashpoints import ProcessDeath
from sync.ledger.models import LedgerSetting, Order, Push, PushState
from sync.ledger.shards import ShardsMismatch, set_shards
from sync.scheduler import run_daemon
from tests.fakes import Fleet, fleet
from tests.test_cli import invoke
from tests.test_orders import cycle, in_engine
from tests.test_trust import seeded

SKUS = [f"sku-{i}" for i in range(6)]


def write(running: Fleet, tmp_path: Path, db_url: str, shards: int) -> Path:
    path = tmp_path / f"shards-{shards}.toml"
    # The emulators apply a write or drop it, never queue it: no write lands late.
    settings = f"[sync]\nshards = {shards}\nlease_seconds = 5\nlate_landing_seconds = 0\n"
    path.write_text(running.toml(db_url, SKUS, settings))
    path.chmod(0o600)
    return path


def recorded(db_url: str) -> str | None:
    engine = create_engine(db_url)
    with engine.connect() as c:
        value = c.scalar(select(LedgerSetting.value).where(LedgerSetting.key == "shards"))
    engine.dispose()
    return value


def push_states(db_url: str) -> list[str]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        states = list(c.scalars(select(Push.state)))
    engine.dispose()
    return states


def test_another_count_is_refused_until_the_ledger_is_changed(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 5)
        one, three = write(running, tmp_path, db_url, 1), write(running, tmp_path, db_url, 3)
        assert invoke("reconcile", "--config", one).exit_code == 0
        assert recorded(db_url) == "1"
        refused = invoke("reconcile", "--config", three)
        assert refused.exit_code == 2
        assert "[sync] shards = 3, but this ledger is cut into 1 shards" in refused.output
        assert "stocksync db shards 3" in refused.output and "Traceback" not in refused.output
        assert invoke("run", "--config", three).exit_code == 2  # the daemon refuses at start too

        changed = invoke("db", "shards", "3", "--config", one)
        assert changed.exit_code == 0, changed.output
        assert "now cut into 3 shard(s) (was 1)" in changed.output
        assert recorded(db_url) == "3"
        assert invoke("reconcile", "--config", three).exit_code == 0
        assert invoke("reconcile", "--config", one).exit_code == 2
        assert "already cut into 3" in invoke("db", "shards", "3", "--config", three).output


def test_changing_the_count_recovers_every_shards_open_pushes(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 5)
        config = running.config(db_url, SKUS, sync={"lease_seconds": 5, "late_landing_seconds": 0})
        in_engine(config, lambda engine: engine.run_cycle("manual"))
        for sku in SKUS:
            running.platforms["oak"].sell(sku, 1)

        def crash(point: str) -> None:
            if point == "after_mark_sent":
                raise ProcessDeath(point)

        with pytest.raises(ProcessDeath):  # pushes marked sent, never sent: left open
            in_engine(config, lambda engine: engine.run_cycle("manual"), crash=crash)
        assert PushState.SENT.value in push_states(db_url)
        path = write(running, tmp_path, db_url, 1)
        changed = invoke("db", "shards", "4", "--config", path, "--wait", "30")  # waits out the dead lease
        assert changed.exit_code == 0, changed.output
        assert PushState.SENT.value not in push_states(db_url)
        assert PushState.IN_DOUBT.value in push_states(db_url)  # every shard's, whatever its new number
        four = write(running, tmp_path, db_url, 4)
        # Oakra's are settled by the reads (a quiet listing); Graas's by its orders, once shard 0,
        # which reads the feed, has read it past their probes: a later reconcile, not the cycle's end.
        for _ in range(30):
            assert invoke("reconcile", "--config", four).exit_code == 0
            if PushState.IN_DOUBT.value not in push_states(db_url):
                break
        assert PushState.IN_DOUBT.value not in push_states(db_url)
        assert {running.platforms[name].quantity(sku) for name in ("oak", "gra") for sku in SKUS} == {4}


def test_a_daemon_running_with_the_old_count_stops_at_its_next_cycle(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        seeded(running, SKUS, 5)
        config = running.config(db_url, SKUS, sync={"interval_seconds": 0.2})
        wiring = Wiring()
        status: list[int] = []
        daemon = threading.Thread(target=lambda: status.append(run_daemon(config, open_ledger(config), wiring)))
        daemon.start()
        try:
            deadline = time.monotonic() + 30
            while recorded(db_url) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            changed = invoke("db", "shards", "2", "--config", write(running, tmp_path, db_url, 1))
            assert changed.exit_code == 0, changed.output
            daemon.join(timeout=30)
        finally:
            wiring.stop.set()
            daemon.join(timeout=30)
        assert status == [2]


def test_the_count_is_checked_in_every_commit_so_the_order_job_writes_nothing_either(db_url: str) -> None:
    with fleet(("gra", "graas"), ("oak", "oakra")) as running:
        seeded(running, SKUS, 9)
        config = running.config(db_url, SKUS)
        cycle(config)  # records shards = 1
        ledger = open_ledger(config)

        async def go() -> None:
            async with running_engine(config, ledger, Wiring()) as engine:
                with ledger.store.sessions.begin() as session:  # `stocksync db shards 2` meanwhile
                    set_shards(session, 2)
                running.platforms["gra"].sell("sku-1", 2)
                with pytest.raises(ShardsMismatch):
                    await engine.run_orders()

        try:
            asyncio.run(go())
            with ledger.store.sessions() as session:
                assert list(session.scalars(select(Order.external_id))) == []  # nothing booked
        finally:
            ledger.close()
