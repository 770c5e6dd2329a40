"""The daemon under systemd: the notify protocol against a fake NOTIFY_SOCKET, and the shipped unit."""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sync.notify import Notifier
from tests.fakes import fleet
from tests.test_processes import ROOT, start_daemon


def listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def drain(sock: socket.socket, into: list[str]) -> None:
    while True:
        try:
            into.append(sock.recv(4096).decode())
        except TimeoutError:
            return


def test_the_daemon_says_ready_pings_the_watchdog_and_says_stopping(tmp_path: Path, db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            platform.set_quantity("mug", 5)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, ["mug"], "[sync]\ninterval_seconds = 0.3\n"))
        config.chmod(0o600)
        sock = listen(tmp_path / "notify.sock")
        daemon = start_daemon(config, {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"})
        messages: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and sum("WATCHDOG=1" in m for m in messages) < 3:
                drain(sock, messages)
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
            drain(sock, messages)
        finally:
            daemon.kill()
            sock.close()
    assert daemon.returncode == 0, output
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    assert "STATUS=syncing 1 SKUs on 2 accounts" in messages[ready]
    assert sum("WATCHDOG=1" in m for m in messages[ready:]) >= 3  # every WATCHDOG_USEC / 2
    assert any(m.startswith("STATUS=cycle ") for m in messages)
    stopping = [i for i, m in enumerate(messages) if "STOPPING=1" in m]
    assert stopping and stopping[0] > ready


def test_an_abstract_socket_and_no_socket_at_all() -> None:
    name = f"stocksync-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("hello")
        assert sock.recv(4096) == b"READY=1\nSTATUS=hello"
    quiet = Notifier({})
    assert not quiet.enabled
    quiet.ready("nobody listens")  # no socket: nothing happens, nothing raises
    # A watchdog meant for another process (WATCHDOG_PID) is not ours to ping.
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).interval is None
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000"}).interval == 0.5


def test_the_shipped_unit_is_a_hardened_notify_service() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "stocksync.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"].rstrip("s")) > 0
    assert service["DynamicUser"] == "yes" and service["StateDirectory"] == "stocksync"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert "stocksync run" in service["ExecStart"] and "db upgrade" in service["ExecStartPre"]
    assert service["KillSignal"] == "SIGTERM"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    import shutil

    import pytest

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    stocksync = Path(sys.executable).with_name("stocksync")
    text = (ROOT / "config" / "stocksync.service").read_text().replace("/opt/stocksync/bin/stocksync", str(stocksync))
    unit = tmp_path / "stocksync.service"
    unit.write_text(text)
    checked = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines() if "stocksync.service" in line]
    assert problems == [], problems
