"""Real processes: the daemon stopped by SIGTERM, `python -m sync`, and the demo end to end."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from sync.ledger.models import Cycle
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
    assert_ledger_consistent(db_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_converges_and_ends_by_itself(tmp_path: Path) -> None:
    demo = (ROOT / "config" / "demo.toml").read_text()
    for port in ("18701", "18702", "18703"):
        demo = demo.replace(port, str(free_port()))
    config = tmp_path / "demo.toml"
    config.write_text(demo)
    result = subprocess.run(
        [sys.executable, "-m", "sync", "demo", "--config", str(config), "--duration", "3", "--rate", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every platform shows the shared pool" in result.stdout
