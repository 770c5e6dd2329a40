"""Catalogue scale: API calls, wall time, CPU and memory of a full sweep, one account per platform.

The engine runs in its own thread (its CPU time is measured there alone) against the four
emulators on loopback, each with a per-request latency; Ankorstore keeps its published limit of
600 requests a minute. For each catalogue size it runs a bootstrap sweep, makes the scenario's
changes (by default one sale on a tenth of the SKUs, spread over the platforms, with the orders read
from the feeds), and measures the next full sweep: wall time, API calls per platform
against the theoretical minimum for the batch sizes each accepts, the engine's CPU time per listing,
and the process's peak memory.

    python -m bench.scale [--sizes 1000,10000,100000] [--latency 0.05] [--scenario sales|quiet|drops]
                          [--json FILE]

The rate-limit floor is the time Ankorstore's 600 requests a minute impose on the sweep's calls (the
other platforms publish no limit). `python -m bench.side_by_side` runs the naive poller beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import platform as host
import pstats
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.fleet import start_fleet
from sync.bootstrap import Wiring, open_ledger, running_engine
from sync.config import Config
from sync.ledger.db import create_db_engine, upgrade
from sync.logs import configure_logging
from sync.order_flow import FeedReport
from sync.platforms import PLATFORMS
from sync.report import CycleReport

PROFILE: cProfile.Profile | None = None  # set by --profile
ANKORSTORE_PER_MINUTE = 600

ACCOUNTS = [
    {"name": "oakra", "platform": "oakra", "app_key": "bench-oakra", "location_id": "warehouse-1"},
    {"name": "graas", "platform": "graas", "account_number": "bench", "app_key": "bench-graas", "warehouse_id": "W1"},
    {"name": "oto", "platform": "oto", "refresh_token": "bench-oto", "location_code": "DMW"},
    {"name": "ankorstore", "platform": "ankorstore", "client_id": "bench", "client_secret": "bench-secret"},
]


def minimum_calls(platform: str, skus: int, changed: int, batch: int) -> int:
    """The fewest calls a full sweep can make: reads in batches, and writes for changed listings
    only (OTO: one per change; Ankorstore: a fresh read and a set per 50; the others: batches)."""
    reads = math.ceil(skus / batch)
    if platform == "oto":
        writes = changed
    elif platform == "ankorstore":
        writes = 2 * math.ceil(changed / 50)
    else:
        writes = math.ceil(changed / batch)
    return reads + writes


SCENARIOS = ("sales", "quiet", "drops")


def change_before_sweep(scenario: str, platforms: dict[str, Any], codes: list[str]) -> None:
    """What happens on the platforms between the bootstrap and the measured sweep:
    - sales: one sale (an order) on a tenth of the SKUs, spread over the platforms;
    - quiet: nothing;
    - drops: 1% of every account's listings drop to zero by hand, with no order (the worst case for
      confirmation reads: every one is read again before it is booked)."""
    if scenario == "sales":
        for emulator in platforms.values():
            for code in codes[:: max(1, 10 * len(platforms))]:
                emulator.sell(code, 1)
    elif scenario == "drops":
        for offset, emulator in enumerate(platforms.values()):
            for code in codes[offset::100]:
                emulator.set_quantity(code, 0)


def sweep(skus: int, latency: float, scenario: str = "sales") -> dict[str, Any]:
    """Bootstrap, the scenario's changes (orders read from the feeds, as the daemon reads them
    every few seconds), then the measured full sweep."""
    codes = [f"sku-{i:06d}" for i in range(skus)]
    platforms, servers, entries = start_fleet(ACCOUNTS, codes, 100)
    figures: dict[str, Any] = {"skus": skus, "scenario": scenario}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(create_db_engine(url))
        config = Config.model_validate(
            {
                "database": {"url": url},
                "accounts": entries,
                "skus": tuple(codes),
                "orders": {"poll_seconds": 3600},
            }
        )
        ledger = open_ledger(config)
        result: dict[str, Any] = {}

        def run() -> None:
            async def go() -> None:
                async with running_engine(config, ledger, Wiring()) as engine:
                    await engine.run_cycle("scheduled")  # bootstrap
                    change_before_sweep(scenario, platforms, codes)
                    await engine.flow.poll(engine.account_ids, FeedReport(), lambda _session: None)
                    for emulator in platforms.values():
                        emulator.faults.latency = latency
                        emulator.calls.clear()
                    cpu, wall = time.thread_time(), time.monotonic()
                    if PROFILE is not None:
                        PROFILE.enable()
                    report: CycleReport = await engine.run_cycle("scheduled")
                    if PROFILE is not None:
                        PROFILE.disable()
                    result.update(cpu=time.thread_time() - cpu, wall=time.monotonic() - wall, report=report)

            asyncio.run(go())

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        ledger.close()
        report = result["report"]
        changed = {name: sum(1 for p in report.pushes if p.push.account == name) for name in platforms}
        figures["wall_s"] = round(result["wall"], 2)
        figures["engine_cpu_us_per_listing"] = round(1e6 * result["cpu"] / (skus * len(platforms)), 1)
        figures["pushes"] = changed
        figures["calls"] = {}
        # Ankorstore publishes 600 requests a minute; the others publish no limit (emulated: none).
        floor = platforms["ankorstore"].api_calls() / (ANKORSTORE_PER_MINUTE / 60)
        figures["rate_limit_floor_s"] = round(floor, 1)
        figures["sweep_vs_floor"] = round(result["wall"] / floor, 3) if floor else None
        for entry in ACCOUNTS:
            name = entry["name"]
            used = platforms[name].api_calls()
            batch = PLATFORMS[entry["platform"]].settings.default_batch_size
            least = minimum_calls(entry["platform"], skus, changed[name], batch)
            figures["calls"][name] = {"used": used, "minimum": least, "ratio": round(used / max(1, least), 3)}
    for server in servers:
        server.stop()
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def main() -> None:
    """Run the sizes and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="catalogue sizes, comma-separated")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request at the emulators")
    parser.add_argument("--scenario", choices=SCENARIOS, default="sales", help=change_before_sweep.__doc__)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="profile the measured sweeps (slower)")
    args = parser.parse_args()
    configure_logging("error", "json")
    global PROFILE
    PROFILE = cProfile.Profile() if args.profile else None
    rows = [sweep(int(size), args.latency, args.scenario) for size in args.sizes.split(",")]
    machine = f"{host.system()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}"
    print(machine)
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "latency": args.latency, "rows": rows}, indent=2))
    if PROFILE is not None:
        pstats.Stats(PROFILE).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
