"""Three real replicas on one PostgreSQL ledger: the shards spread across them, one is killed in the
middle of a cycle (after marking its pushes sent), the others take its shards over when its leases
run out, and no change is ever pushed twice."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from sync.crashpoints import ENV_VAR
from sync.ledger.models import Cycle, PushState, UrgentSku
from sync.planner import AccountRules
from tests.conftest import migrated, postgres_database
from tests.fakes import fleet
from tests.test_cli import assert_ledger_consistent
from tests.test_processes import ledger_pools, ledger_pushes, start_daemon, stocksync, stop

pytestmark = pytest.mark.slow
SKUS = [f"sku-{i:02d}" for i in range(36)]
SETTINGS = """
[sync]
shards = 6
lease_seconds = 3
late_landing_seconds = 0
interval_seconds = 0.5
batch_size = 4
[orders]
poll_seconds = 0.3
[logging]
format = "json"
"""


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with postgres_database(postgres_url) as url:
        yield migrated(url)


def cycles(url: str) -> list[tuple[str, int, str, str, float, float]]:
    """(holder pid, shard, trigger, outcome, started, finished) of every cycle."""
    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            select(Cycle.holder, Cycle.shard, Cycle.trigger, Cycle.outcome, Cycle.started_at, Cycle.finished_at)
        ).all()
    engine.dispose()
    return [
        (str(h).split(":")[1], s, t, o, at.timestamp(), end.timestamp() if end else float("inf"))
        for h, s, t, o, at, end in rows
    ]


def reconcile(config: Path) -> dict[str, object] | list[dict[str, object]]:
    done = stocksync(config, "reconcile", "--json", "--wait", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_three_replicas_share_the_shards_and_take_over_from_a_killed_one(tmp_path: Path, pg_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas"), ("oto", "oto")) as running:
        for platform in running.platforms.values():
            platform.faults.latency = 0.01
            for sku in SKUS:
                platform.set_quantity(sku, 30)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(pg_url, SKUS, SETTINGS))
        config.chmod(0o600)
        reconcile(config)  # bootstrap every shard
        # The third replica dies the first time it has marked pushes sent, before sending them.
        replicas = [start_daemon(config), start_daemon(config), start_daemon(config, {ENV_VAR: "after_mark_sent"})]
        pids = [str(r.pid) for r in replicas]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                seen = {pid for pid, _, trigger, *_ in cycles(pg_url) if trigger == "scheduled"}
                if set(pids) <= seen:
                    break
                time.sleep(0.2)
            assert set(pids) <= seen, "every replica swept some shards"
            shown = json.loads(stocksync(config, "status", "--json").stdout)
            live = {lease["holder"].split(":")[1] for lease in shown["leases"] if lease["name"].startswith("replica:")}
            assert set(pids) <= live, "status shows every replica's heartbeat"
            # A burst of sales on every platform, then quiet: every shard has pushes to make. The
            # burst is atomic for readers (every emulator's lock held), so no replica plans from half
            # of it: a push whose answer is lost can then always be settled by a quiet read.
            with running.platforms["oak"].lock, running.platforms["gra"].lock, running.platforms["oto"].lock:
                for i, sku in enumerate(SKUS):
                    for name in ("oak", "gra", "oto"):
                        assert running.platforms[name].sell(sku, 1 + (i % 2))
            replicas[2].wait(timeout=60)
            assert replicas[2].returncode == -signal.SIGKILL
            killed_at = time.time()
            time.sleep(8)  # its leases (3 s) run out; the others take its shards over and settle
        finally:
            outputs = [stop(r) for r in replicas[:2]]
            for replica in replicas:
                replica.kill()
        for _ in range(5):  # a last manual pass: nothing should be left to do
            reports = reconcile(config)
            if not any(r["pushes"] for r in reports):  # type: ignore[index,union-attr]
                break
        applied = {name: Counter(p.applied) for name, p in running.platforms.items()}
        shown = {name: {sku: p.quantity(sku) for sku in SKUS} for name, p in running.platforms.items()}
        sold = {sku: sum(p.sold[sku] for p in running.platforms.values()) for sku in SKUS}

    assert all("cycle.end" in output for output in outputs)
    history = cycles(pg_url)
    dead = pids[2]
    dead_shards = {shard for pid, shard, trigger, *_ in history if pid == dead and trigger == "scheduled"}
    assert dead_shards, "the killed replica had shards"
    assert any(o == "abandoned" for pid, _, _, o, *_ in history if pid == dead), "it died mid-cycle"
    taken = {s for pid, s, trigger, _, at, _ in history if pid != dead and at > killed_at and trigger == "scheduled"}
    assert dead_shards <= taken, "its shards were swept by the others after it died"
    # The replicas worked side by side: cycles of different replicas on different shards overlapped.
    assert any(a[0] != b[0] and a[1] != b[1] and a[4] < b[5] and b[4] < a[5] for a in history for b in history), (
        "no two replicas ever worked at the same time"
    )
    # The dead replica's pushes were marked sent, never sent: recovered in doubt, settled not applied.
    assert any(state == PushState.NOT_APPLIED.value for *_, state in ledger_pushes(pg_url))
    # No change pushed twice: what each platform applied is exactly what the ledger holds as applied.
    for name, changes in applied.items():
        counted = Counter(
            (code, delta)
            for account, code, delta, state in ledger_pushes(pg_url)
            if account == name and state in (PushState.CONFIRMED.value, PushState.APPLIED.value)
        )
        assert changes == counted, name
    assert_ledger_consistent(pg_url)
    pools = ledger_pools(pg_url)
    assert pools == {sku: 30 - sold[sku] for sku in SKUS}
    for name, quantities in shown.items():
        assert quantities == {sku: AccountRules().target(pools[sku]) for sku in SKUS}, name
    engine = create_engine(pg_url)
    with engine.connect() as c:
        assert c.execute(select(UrgentSku)).all() == []  # every queued SKU was reconciled
    engine.dispose()
