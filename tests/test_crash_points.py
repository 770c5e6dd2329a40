"""A real daemon killed with SIGKILL at each named point in a push's life, then restarted: the
ledger and the platforms agree, with nothing lost or applied twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sync.crashpoints import ENV_VAR, POINTS
from sync.planner import AccountRules
from tests.fakes import fleet
from tests.test_cli import assert_ledger_consistent
from tests.test_processes import ROOT, ledger_pools, ledger_pushes, stocksync

pytestmark = pytest.mark.slow
SKUS = ["mug", "cap", "tote", "sock"]


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_crash_point_and_restarted_nothing_is_lost(tmp_path: Path, db_url: str, point: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas", {"buffer": 1})) as running:
        for platform in running.platforms.values():
            for sku in SKUS:
                platform.set_quantity(sku, 12)
        config = tmp_path / "stocksync.toml"
        # A killed holder's lease is not taken over before it runs out (no process id is trusted):
        # a short lease keeps the restart quick.
        config.write_text(
            running.toml(db_url, SKUS, "[sync]\ninterval_seconds = 0.2\nlease_seconds = 2\nlate_landing_seconds = 0\n")
        )
        config.chmod(0o600)
        assert stocksync(config, "reconcile").returncode == 0  # bootstrap
        for sku in SKUS:  # sales on both sides: the next cycle has pushes to make
            running.platforms["oak"].sell(sku, 2)
            running.platforms["gra"].sell(sku, 1)

        killed = subprocess.run(
            [sys.executable, "-m", "sync", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, ENV_VAR: point},
        )
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

        for _ in range(4):  # restart: recover the outbox, settle doubts, converge
            after = stocksync(config, "reconcile", "--json", "--wait", "5")
            assert after.returncode == 0, after.stderr
            if not json.loads(after.stdout)["pushes"]:
                break
        applied = {name: Counter(p.applied) for name, p in running.platforms.items()}
        shown = {name: {sku: p.quantity(sku) for sku in SKUS} for name, p in running.platforms.items()}

    assert_ledger_consistent(db_url)
    pools = ledger_pools(db_url)
    assert pools == {sku: 12 - 3 for sku in SKUS}  # the start minus every unit sold
    for name, quantities in shown.items():
        rules = AccountRules(buffer=1 if name == "gra" else 0)
        assert quantities == {sku: rules.target(pools[sku]) for sku in SKUS}, name
    counted = Counter()
    for account, code, delta, state in ledger_pushes(db_url):
        if state in ("confirmed", "applied"):
            counted[(account, code, delta)] += 1
    assert counted == Counter({(n, c, d): k for n, changes in applied.items() for (c, d), k in changes.items()})
