"""stocksync and a naive poller (`bench/naive.py`) side by side, in the same run, under the same
concurrent sales: API calls, time per pass over the catalogue, and units lost.

Two identical fleets of four emulated accounts (one per platform), each with a per-request latency;
the same seeded stream of sales hits both. stocksync (the real daemon, default settings but for the
catalogue) keeps one fleet; the naive poller loops over the other. When the sales stop, both get a
moment to settle, then each fleet is compared with the truth: every SKU's start minus every unit
sold on any platform. A unit lost is a unit the platforms show that no longer exists (a sale
overwritten), or one they hide that does.

    python -m bench.side_by_side [--skus 300] [--seconds 60] [--rate 10] [--latency 0.02] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.fleet import start_fleet
from bench.naive import NaivePoller
from bench.scale import ACCOUNTS
from sync.bootstrap import Wiring, open_ledger
from sync.config import Config
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.sales import SalesDriver
from sync.ledger.db import create_db_engine, upgrade
from sync.ledger.snapshot import skus as sku_views
from sync.logs import configure_logging
from sync.platforms import PLATFORMS, build_adapter
from sync.report import CycleReport
from sync.scheduler import run_daemon

START = 50


def ledger_bytes(ledger: Any) -> int:
    """The SQLite ledger's size, its write-ahead log folded in."""
    with ledger.db.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        size = connection.exec_driver_sql("PRAGMA page_size").scalar()
    return int(pages) * int(size)


def losses(platforms: dict[str, EmulatedPlatform], skus: list[str]) -> dict[str, int]:
    """Units shown that no longer exist, units hidden that do, and units sold beyond the stock."""
    shown_extra = hidden = oversold = 0
    for sku in skus:
        truth = START - sum(p.sold[sku] for p in platforms.values())
        oversold += max(0, -truth)
        for platform in platforms.values():
            quantity = platform.quantity(sku) or 0
            shown_extra += max(0, quantity - max(0, truth))
            hidden += max(0, max(0, truth) - quantity)
    return {"units_shown_that_do_not_exist": shown_extra, "units_hidden": hidden, "units_oversold": oversold}


def run(skus_count: int, seconds: float, rate: float, latency: float, seed: int) -> dict[str, Any]:
    """Both methods, one run; returns the figures."""
    skus = [f"sku-{i:04d}" for i in range(skus_count)]
    ours, our_servers, our_entries = start_fleet(ACCOUNTS, skus, START, latency)
    naive, naive_servers, naive_entries = start_fleet(ACCOUNTS, skus, START, latency)
    figures: dict[str, Any] = {"skus": skus_count, "seconds": seconds, "sales_per_second": rate, "latency_s": latency}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(create_db_engine(url))
        config = Config.model_validate({"database": {"url": url}, "accounts": our_entries, "skus": tuple(skus)})
        ledger = open_ledger(config)
        wiring = Wiring()
        sweeps: list[float] = []

        def on_cycle(report: CycleReport) -> None:
            if report.trigger == "scheduled":
                sweeps.append(time.monotonic() - report.started)

        daemon = threading.Thread(target=run_daemon, args=(config, ledger, wiring), kwargs={"on_cycle": on_cycle})
        daemon.start()
        stop_naive = threading.Event()
        rounds: list[float] = []

        def poll() -> None:
            async def go() -> None:
                adapters = {
                    entry["name"]: build_adapter(PLATFORMS[entry["platform"]].settings.model_validate(entry))
                    for entry in naive_entries
                }
                poller = NaivePoller(adapters)  # type: ignore[arg-type]
                try:
                    while not stop_naive.is_set():
                        began = time.monotonic()
                        await poller.round(skus)
                        rounds.append(time.monotonic() - began)
                finally:
                    for adapter in adapters.values():
                        await adapter.aclose()

            asyncio.run(go())

        poller_thread = threading.Thread(target=poll)
        poller_thread.start()
        time.sleep(5)
        size_before = ledger_bytes(ledger)
        for platform in (*ours.values(), *naive.values()):
            platform.calls.clear()
        drivers = [
            SalesDriver(list(ours.values()), rate, seed=seed).start(),
            SalesDriver(list(naive.values()), rate, seed=seed).start(),
        ]
        time.sleep(seconds)
        for driver in drivers:
            driver.stop()
        settle_rounds = len(rounds) + 2
        deadline = time.monotonic() + 600
        while len(rounds) < settle_rounds and time.monotonic() < deadline:
            time.sleep(0.5)  # the naive poller gets two whole passes after the last sale
        time.sleep(max(5.0, config.sync.interval_seconds + 5))  # stocksync: one more full sweep
        stop_naive.set()
        poller_thread.join(600)
        wiring.stop.set()
        daemon.join(120)
        with ledger.store.sessions() as session:
            pools = {view.sku: view.pool for view in sku_views(session)}
        growth = ledger_bytes(ledger) - size_before
        ledger.close()
    for server in (*our_servers, *naive_servers):
        server.stop()
    truth = {sku: START - sum(p.sold[sku] for p in ours.values()) for sku in skus}
    figures["stocksync"] = {
        "api_calls": sum(p.api_calls() for p in ours.values()),
        "sweep_s": round(sum(sweeps) / max(1, len(sweeps)), 2),
        "sales": sum(sum(p.sold.values()) for p in ours.values()),
        "ledger_pool_errors": sum(abs(pools.get(sku, START) - truth[sku]) for sku in skus),
        **losses(ours, skus),
    }
    sales = max(1, figures["stocksync"]["sales"])
    figures["ledger_growth"] = {
        "bytes_per_sale": round(growth / sales),
        "mb_per_day_at_1_sale_per_second": round(growth / sales * 86_400 / 1e6, 1),
        "sweeps_in_run": len(sweeps),
    }
    figures["naive"] = {
        "api_calls": sum(p.api_calls() for p in naive.values()),
        "round_s": round(sum(rounds) / max(1, len(rounds)), 2),
        "sales": sum(sum(p.sold.values()) for p in naive.values()),
        **losses(naive, skus),
    }
    return figures


def main() -> None:
    """Run once and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=10.0, help="sales per second on each fleet")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    configure_logging("error", "json")
    figures = run(args.skus, args.seconds, args.rate, args.latency, args.seed)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
