"""The oversell window: from a sale on one platform to the matching decrement showing on every
other platform, with the daemon at its default settings.

Runs the real daemon (scheduler, engine, SQLite ledger) against one emulated account per platform
on loopback, each with a per-request latency and Ankorstore's published rate limit, over a
catalogue of 10,000 SKUs. Once the first sweep has booked the catalogue, customers buy one unit at
a time at random (a Poisson stream, one sale a second by default) on random platforms. For every
sale the bench watches the other platforms' emulators and records when each shows the decrement.

Sales on Graas, OTO and Ankorstore reach the others through their order feeds (the fast path);
Oakra documents no order list, so its sales wait for the next full sweep: they are reported apart.

    python -m bench.oversell_window [--skus 10000] [--seconds 180] [--rate 1] [--latency 0.02]
        [--order-list newest|oldest] [--history 500] [--sale-shows order|picking] [--json FILE]

The order lists of OTO and Ankorstore document no sort order: `--order-list` runs them newest or
oldest first, and `--history` places that many orders on each feed platform over the six hours
before the daemon starts (several pages of history, as a real shop has). Nor do OTO's and Graas's
documents say whether their stock read shows a sale at the order or only once it is picked:
`--sale-shows picking` runs their emulators the second way (no order is picked during the run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import random
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fleet import start_fleet
from sync.bootstrap import Wiring, open_ledger
from sync.config import Config
from sync.emulation.platform import EmulatedPlatform
from sync.ledger.db import create_db_engine, upgrade
from sync.logs import configure_logging
from sync.metrics import METRICS
from sync.report import CycleReport
from sync.scheduler import run_daemon

ACCOUNTS = [
    {"name": "oakra", "platform": "oakra", "app_key": "bench-oakra", "location_id": "warehouse-1"},
    {"name": "graas", "platform": "graas", "account_number": "bench", "app_key": "bench-graas", "warehouse_id": "W1"},
    {"name": "oto", "platform": "oto", "refresh_token": "bench-oto", "location_code": "DMW"},
    {"name": "ankorstore", "platform": "ankorstore", "client_id": "bench", "client_secret": "bench-secret"},
]
STOCK = 1_000


@dataclass
class Sale:
    """One sale being watched: where, what, and when each other platform showed it."""

    source: str
    sku: str
    at: float
    goal: dict[str, int]  # platform -> the quantity at or below which it shows the sale
    seen: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def run(
    skus_count: int,
    seconds: float,
    rate: float,
    latency: float,
    seed: int,
    newest_first: bool = True,
    history: int = 0,
    at_order: bool = True,
) -> dict[str, Any]:
    """One run; returns the figures."""
    skus = [f"sku-{i:05d}" for i in range(skus_count)]
    # The accounts say what the emulators do (where the read waits for picking, `unknown` is the
    # only right setting; where it does not, the operator would have seen it and said so).
    shows = "at_order" if at_order else "unknown"
    accounts = [{**a, "sale_shows_in_read": shows} if a["platform"] in ("graas", "oto") else a for a in ACCOUNTS]
    platforms, servers, entries = start_fleet(accounts, skus, STOCK, latency)
    for emulator in platforms.values():
        emulator.silences.reflects_sale_at_order = at_order
    rng = random.Random(seed)
    _order_history(platforms, skus, rng, newest_first, history)
    sales: list[Sale] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(create_db_engine(url))
        config = Config.model_validate({"database": {"url": url}, "accounts": entries, "skus": tuple(skus)})
        ledger = open_ledger(config)
        wiring = Wiring()
        first = threading.Event()

        def on_cycle(report: CycleReport) -> None:
            if report.trigger == "scheduled":
                first.set()

        started = time.monotonic()
        daemon = threading.Thread(target=run_daemon, args=(config, ledger, wiring), kwargs={"on_cycle": on_cycle})
        daemon.start()
        if not first.wait(1800):
            raise SystemExit("the first sweep did not finish within 30 minutes")
        first_sweep = time.monotonic() - started
        print(f"first sweep over {skus_count} SKUs x {len(ACCOUNTS)} accounts: {first_sweep:.1f} s", flush=True)
        end = time.monotonic() + seconds
        next_sale = time.monotonic()
        while time.monotonic() < end or any(len(s.seen) < len(s.goal) for s in sales):
            now = time.monotonic()
            if now >= next_sale and now < end:
                sales.append(_sell(platforms, skus, rng))
                next_sale = now + rng.expovariate(rate)
            for sale in sales:
                for name, goal in sale.goal.items():
                    if name not in sale.seen and (platforms[name].quantity(sale.sku) or 0) <= goal:
                        sale.seen[name] = time.monotonic() - sale.at
            if now > end + 600:
                break  # a sale never seen is reported as missing
            time.sleep(0.02)
        wiring.stop.set()
        daemon.join(120)
        ledger.close()
    for server in servers:
        server.stop()
    order_list = "newest" if newest_first else "oldest"
    figures = _figures(sales, skus_count, seconds, rate, latency, first_sweep, order_list, history)
    figures["sale_shows"] = "order" if at_order else "picking"
    figures["calls_per_minute"] = _calls_per_minute(platforms, time.monotonic() - started)
    figures["rate_limit_waits"] = _rate_limit_waits()
    return figures


def _calls_per_minute(platforms: dict[str, EmulatedPlatform], elapsed: float) -> dict[str, dict[str, float]]:
    """Per platform, the calls it answered per minute of the run by kind (ids in paths folded)."""
    figures: dict[str, dict[str, float]] = {}
    for name, emulator in platforms.items():
        kinds: dict[str, int] = {}
        for call, n in emulator.calls.items():
            kind = re.sub(r"/[0-9a-fA-F-]{8,}(?=/|$)|/\d+(?=/|$)", "/{id}", call)
            kinds[kind] = kinds.get(kind, 0) + n
        figures[name] = {kind: round(n * 60 / elapsed, 1) for kind, n in sorted(kinds.items())}
    return figures


def _rate_limit_waits() -> dict[str, dict[str, float]]:
    """Per account, the waits its platform's rate limit imposed (pacing and pauses): count and seconds."""
    waits: dict[str, dict[str, float]] = {}
    for metric in METRICS.registry.collect():
        for sample in metric.samples:
            if sample.name in ("stocksync_rate_limit_waits_total", "stocksync_rate_limit_wait_seconds_total"):
                key = "count" if sample.name.endswith("waits_total") else "seconds"
                waits.setdefault(sample.labels["account"], {})[key] = round(sample.value, 1)
    return waits


def _order_history(
    platforms: dict[str, EmulatedPlatform], skus: list[str], rng: random.Random, newest_first: bool, history: int
) -> None:
    """Each feed platform's list in the chosen order, with `history` orders placed over the last
    six hours (they sell units before the daemon's first read, which books them as they are)."""
    now = time.time()
    for name, emulator in platforms.items():
        emulator.silences.lists_newest_first = newest_first
        if name == "oakra":
            continue
        for i in range(history):
            placed = now - 6 * 3600 + i * (6 * 3600 / max(history, 1))
            emulator.wall = lambda placed=placed: placed  # type: ignore[misc]
            emulator.sell(rng.choice(skus), 1)
        emulator.wall = time.time


def _sell(platforms: dict[str, EmulatedPlatform], skus: list[str], rng: random.Random) -> Sale:
    """One customer buys one unit of a random SKU on a random platform."""
    while True:
        source = rng.choice(list(platforms))
        sku = rng.choice(skus)
        others = {name: p.quantity(sku) for name, p in platforms.items() if name != source}
        if platforms[source].sell(sku, 1):
            at = time.monotonic()
            return Sale(source, sku, at, {name: (q or 0) - 1 for name, q in others.items()})


def _figures(
    sales: list[Sale],
    skus: int,
    seconds: float,
    rate: float,
    latency: float,
    first_sweep: float,
    order_list: str = "newest",
    history: int = 0,
) -> dict[str, Any]:
    pairs: dict[str, dict[str, Any]] = {}
    for source in sorted({s.source for s in sales}):
        for target in sorted({t for s in sales for t in s.goal}):
            if target == source:
                continue
            waits = [s.seen[target] for s in sales if s.source == source and target in s.seen]
            missing = sum(1 for s in sales if s.source == source and target in s.goal and target not in s.seen)
            if waits:
                pairs[f"{source}->{target}"] = {
                    "sales": len(waits) + missing,
                    "p50_s": round(statistics.median(waits), 2),
                    "p99_s": round(percentile(waits, 0.99), 2),
                    "max_s": round(max(waits), 2),
                    "missing": missing,
                }
    everywhere = [max(s.seen.values()) for s in sales if len(s.seen) == len(s.goal)]
    by_source = {}
    for source in sorted({s.source for s in sales}):
        waits = [max(s.seen.values()) for s in sales if s.source == source and len(s.seen) == len(s.goal)]
        if waits:
            by_source[source] = {
                "sales": len(waits),
                "p50_s": round(statistics.median(waits), 2),
                "p99_s": round(percentile(waits, 0.99), 2),
            }
    return {
        "machine": f"{host.system()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        "skus": skus,
        "order_list": order_list,
        "history_orders_per_feed": history,
        "accounts": [a["platform"] for a in ACCOUNTS],
        "seconds": seconds,
        "sales_per_second": rate,
        "latency_s": latency,
        "first_sweep_s": round(first_sweep, 1),
        "sales": len(sales),
        "every_platform": {
            "p50_s": round(statistics.median(everywhere), 2) if everywhere else None,
            "p99_s": round(percentile(everywhere, 0.99), 2) if everywhere else None,
        },
        "by_source": by_source,
        "pairs": pairs,
    }


def main() -> None:
    """Run once and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=180, help="how long customers buy")
    parser.add_argument("--rate", type=float, default=1.0, help="sales per second")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request at the emulators")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--order-list", choices=["newest", "oldest"], default="newest", help="how OTO's and Ankorstore's lists run"
    )
    parser.add_argument("--history", type=int, default=0, help="orders already on each feed platform")
    parser.add_argument(
        "--sale-shows", choices=["order", "picking"], default="order", help="when OTO's and Graas's reads show a sale"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    configure_logging("error", "json")
    figures = run(
        args.skus,
        args.seconds,
        args.rate,
        args.latency,
        args.seed,
        args.order_list == "newest",
        args.history,
        args.sale_shows == "order",
    )
    print(f"{'sale on -> shown on':<26} {'sales':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'missing':>8}")
    for pair, row in figures["pairs"].items():
        print(f"{pair:<26} {row['sales']:>6} {row['p50_s']:>7} {row['p99_s']:>7} {row['max_s']:>7} {row['missing']:>8}")
    missing = sum(row["missing"] for row in figures["pairs"].values())
    history = figures["history_orders_per_feed"]
    shows = figures["sale_shows"]
    lists = figures["order_list"]
    print(f"order lists {lists} first, {history} orders of history, sales shown at {shows}; missed: {missing}")
    print("until every other platform shows it:")
    for source, row in figures["by_source"].items():
        print(f"  sale on {source:<12} {row['sales']:>6} sales  p50 {row['p50_s']} s  p99 {row['p99_s']} s")
    print("calls per minute (and the waits Ankorstore's limit imposed):")
    for name, kinds in figures["calls_per_minute"].items():
        print(f"  {name:<12} " + ", ".join(f"{kind} {n}" for kind, n in kinds.items()))
    for account, waits in figures["rate_limit_waits"].items():
        print(f"  {account:<12} rate-limit waits {waits.get('count', 0):.0f}, {waits.get('seconds', 0)} s in all")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
