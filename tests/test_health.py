"""The daemon's health and metrics port: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.bootstrap import Wiring, open_ledger
from sync.health import DaemonState, HealthServer
from sync.ledger.models import Account, Listing, SafetyStop, Sku
from sync.report import CycleReport
from sync.scheduler import run_daemon
from tests.fakes import fleet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_daemon_serves_health_readiness_and_metrics(db_url: str) -> None:
    port = free_port()
    with fleet(("gra", "graas", {"oversell_policy": "alert"}), ("oto", "oto"), ("oak", "oakra")) as running:
        for platform in running.platforms.values():
            platform.set_quantity("lamp", 1)
            platform.set_quantity("mug", 5)
        config = running.config(
            db_url,
            ["lamp", "mug"],
            sync={"interval_seconds": 0.3},
            orders={"poll_seconds": 0.2},
            health={"port": port},
        )
        wiring = Wiring()
        cycles: list[CycleReport] = []
        daemon = threading.Thread(
            target=run_daemon, args=(config, open_ledger(config), wiring), kwargs={"on_cycle": cycles.append}
        )
        daemon.start()
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while len(cycles) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert httpx.get(f"{base}/healthz").status_code == 200
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 200 and ready.json() == {"ready": True, "problems": []}
            running.platforms["gra"].sell("lamp", 1)  # the last unit, sold twice
            running.platforms["oto"].sell("lamp", 1)
            # Until an oversell was acted on: a sweep may see the pool below zero before the feed
            # has booked the orders it falls on (detected first with no order to act on).
            while not any(o.acts for c in cycles for o in c.oversells) and time.monotonic() < deadline:
                time.sleep(0.05)
            page = httpx.get(f"{base}/metrics")
        finally:
            wiring.stop.set()
            daemon.join(timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
        found = samples(page.text)

        def value(name: str, **labels: Any) -> float:
            return found.get((name, tuple(sorted(labels.items()))), 0.0)

        assert value("stocksync_cycles_total", trigger="scheduled", outcome="ok") >= 2
        assert value("stocksync_cycle_duration_seconds_count", trigger="scheduled") >= 2
        assert value("stocksync_api_calls_total", platform="oakra", account="oak", status="200") >= 2
        assert value("stocksync_api_calls_total", platform="graas", account="gra", status="200") >= 2
        assert value("stocksync_pushes_total", platform="oakra", account="oak", outcome="confirmed") >= 1
        assert value("stocksync_oversells_total") >= 1
        assert value("stocksync_order_actions_total", kind="alert", outcome="done") >= 1
        assert value("stocksync_oversells_open") == 1
        assert value("stocksync_in_doubt_pushes") == 0
        assert value("stocksync_account_healthy", account="oto") == 1
        assert value("stocksync_account_last_success_timestamp_seconds", account="oak") > time.time() - 60
        assert ("stocksync_listings_drifting", ()) in found
        # The port closes with the daemon.
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            closed = False
        except httpx.TransportError:
            closed = True
        assert closed


def test_readiness_says_what_is_wrong(db_url: str) -> None:
    state = DaemonState()
    unreachable = sessionmaker(
        create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    )
    with HealthServer(unreachable, state, list) as server:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
        assert answer.status_code == 503
        assert answer.json()["problems"][:2] == ["ledger unreachable: OperationalError", "scheduler not running"]
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200  # alive all the same
        assert httpx.get(f"http://127.0.0.1:{server.port}/metrics").status_code == 200  # and scrapable
        assert httpx.get(f"http://127.0.0.1:{server.port}/nope").status_code == 404
    ledger = sessionmaker(create_engine(db_url))
    state = DaemonState(scheduler_running=True)
    with ledger.begin() as session:
        stop = hold_a_listing(session, "oak", "sku-1", expected=8, held=0)
    with HealthServer(ledger, state, list) as server:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
        assert answer.status_code == 503
        (problem,) = answer.json()["problems"]
        assert problem.startswith("account oak stopped by a safety stop since ")
        assert "1 listings held (sku-1)" in problem and "stocksync accept oak --dry-run" in problem
        with ledger.begin() as session:
            session.execute(update(Listing).values(stop_id=None, held_quantity=None))
            session.execute(update(SafetyStop).where(SafetyStop.id == stop).values(closed_at=datetime.now(UTC)))
        assert httpx.get(f"http://127.0.0.1:{server.port}/readyz").status_code == 200


def hold_a_listing(session: Session, account: str, sku: str, *, expected: int, held: int) -> int:
    """A ledger with one listing held by an open safety stop; returns the stop's id."""
    now = datetime.now(UTC)
    session.add_all([Account(name=account, platform="oakra", healthy=True), Sku(code=sku, created_at=now)])
    session.flush()
    account_id = session.scalar(select(Account.id).where(Account.name == account))
    sku_id = session.scalar(select(Sku.id).where(Sku.code == sku))
    stop = SafetyStop(account_id=account_id, opened_at=now, reason="test")
    session.add(stop)
    session.flush()
    session.add(
        Listing(
            account_id=account_id,
            sku_id=sku_id,
            code=sku,
            ref="1",
            expected=expected,
            stop_id=stop.id,
            held_quantity=held,
        )
    )
    return stop.id


def test_the_grafana_dashboard_only_uses_metrics_the_daemon_serves(db_url: str) -> None:
    import json
    import re

    from sync.health import _Both
    from sync.metrics import METRICS, LedgerCollector
    from tests.test_processes import ROOT

    served = set()
    for family in _Both([METRICS.registry, LedgerCollector(sessionmaker(create_engine(db_url)), list)]).collect():
        served |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
    dashboard = json.loads((ROOT / "config" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"stocksync_[a-z_]+", target["expr"])
    }
    assert used and used <= served, sorted(used - served)
    assert len(dashboard["panels"]) >= 10
