"""The real daemon (`stocksync run`, a separate process) against all four platforms while 15% of
their stock reads lie (empty, all zeros, some zeros, wrong types, truncated, a SKU twice) and
sales land: no listing ever shows fewer units than the truth allows, and once the lies stop every
listing and pool is exactly right."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from sync.emulation.faults import BAD_READS, FaultPlan
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest
from sync.ledger.models import Cycle, Movement, ReadEvent, Sku
from tests.fakes import Fleet, fleet
from tests.test_processes import ROOT, finished_cycles

pytestmark = pytest.mark.slow

STOCK = 12
SKUS = [f"sku-{i:02d}" for i in range(20)]


class Truth:
    """Units sold per SKU, counted before each sale lands (so the bound is never ahead of the
    platforms), and every moment a listing showed fewer units than that truth allows."""

    def __init__(self, running: Fleet) -> None:
        self.running = running
        self.sold: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.undershoots: list[str] = []
        self.checks = 0

    def bound(self, sku: str) -> int:
        """The fewest units a listing of `sku` may show now."""
        return max(0, STOCK - self.sold[sku])

    def check(self, _request: EmuRequest | None = None) -> None:
        """Every listing on every platform against the bound (run after every request)."""
        with self.lock:
            self.checks += 1
            for name, platform in self.running.platforms.items():
                for sku in SKUS:
                    shown = platform.quantity(sku) or 0
                    if shown < self.bound(sku):
                        why = f"{name}/{sku} showed {shown}, truth allows no fewer than {self.bound(sku)}"
                        self.undershoots.append(why)

    def sell(self, platform: EmulatedPlatform, sku: str) -> None:
        """A customer buys one unit, if the platform shows it."""
        with self.lock:
            self.sold[sku] += 1
        if platform.sell(sku, 1) is None:
            with self.lock:
                self.sold[sku] -= 1


def read_events(db_url: str) -> Counter[str]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        kinds = Counter(dict(c.execute(select(ReadEvent.kind, func.count()).group_by(ReadEvent.kind)).all()))
    engine.dispose()
    return kinds


def pools(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        found = dict(c.execute(select(Sku.code, func.sum(Movement.quantity)).join(Movement).group_by(Sku.code)).all())
    engine.dispose()
    return {sku: int(pool) for sku, pool in found.items()}


def last_cycles_quiet(db_url: str, count: int) -> bool:
    """Whether the last `count` finished cycles booked nothing and pushed nothing."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(
            select(Cycle.movements, Cycle.pushes_planned, Cycle.outcome)
            .where(Cycle.finished_at.is_not(None))
            .order_by(Cycle.id.desc())
            .limit(count)
        ).all()
    engine.dispose()
    return len(rows) == count and all(m == 0 and p == 0 and outcome == "ok" for m, p, outcome in rows)


def test_bad_reads_while_sales_land_hide_no_unit_and_leave_nothing_off(tmp_path: Path, db_url: str) -> None:
    rng = random.Random(11)
    with fleet(("oak", "oakra"), ("gra", "graas"), ("oto", "oto"), ("ank", "ankorstore")) as running:
        for platform in running.platforms.values():
            for sku in SKUS:
                platform.set_quantity(sku, STOCK)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, SKUS, "[sync]\ninterval_seconds = 1\n\n[orders]\npoll_seconds = 1\n"))
        config.chmod(0o600)
        # A cycle a second keeps Ankorstore's 600 requests a minute in reach with every confirmation
        # read and feed poll: a 429 there would hold every account's cycle for up to a minute.
        truth = Truth(running)
        for platform in running.platforms.values():
            platform.after_request = truth.check
        log_file = tmp_path / "daemon.log"
        sink = log_file.open("w")
        # The daemon's log goes to a file: a pipe nobody reads fills up and blocks it mid-cycle.
        daemon = subprocess.Popen(
            [sys.executable, "-m", "sync", "run", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 60
            while finished_cycles(db_url) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # the bootstrap sweep, with honest answers
            for index, platform in enumerate(running.platforms.values()):
                platform.faults = FaultPlan(seed=index)
                platform.faults.bad_reads(0.15)
            deadline = time.monotonic() + 120
            for _ in range(25):  # sales land between cycles while reads lie
                seen = finished_cycles(db_url)
                for _ in range(2):
                    truth.sell(rng.choice(list(running.platforms.values())), rng.choice(SKUS))
                while finished_cycles(db_url) < seen + 1 and time.monotonic() < deadline:
                    time.sleep(0.02)
            injected = Counter[str]()
            for platform in running.platforms.values():
                injected.update(fault.value for fault in platform.faults.injected.elements())
                platform.faults.clear()
            settle = time.monotonic() + 60
            platforms = list(running.platforms.values())
            while time.monotonic() < settle and not (
                all(p.quantity(sku) == truth.bound(sku) for p in platforms for sku in SKUS)
                and last_cycles_quiet(db_url, 3)
            ):
                time.sleep(0.1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
            sink.close()
        assert code == 0
        output = log_file.read_text()
        truth.check()
        assert truth.undershoots == [], truth.undershoots[:5]
        assert truth.checks > 100
        # Every kind of lie was told, and the daemon saw it.
        assert {fault.value for fault in BAD_READS} <= set(injected), injected
        assert sum(truth.sold.values()) >= 30
        events = read_events(db_url)
        assert events["bad_value"] and sum(events.values()) >= 20, events
        # Once the lies stopped: every listing and every pool is exactly the truth.
        off = {
            f"{name}/{sku}": platform.quantity(sku)
            for name, platform in running.platforms.items()
            for sku in SKUS
            if platform.quantity(sku) != truth.bound(sku)
        }
        assert off == {}, (off, {sku: truth.bound(sku) for sku in SKUS}, pools(db_url), output[-4000:])
        assert pools(db_url) == {sku: truth.bound(sku) for sku in SKUS}
        assert "Traceback" not in output
