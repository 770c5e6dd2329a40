"""What Ankorstore's absolute set still costs: units lost or gained in the read-to-write window.

Runs the real daemon against an Ankorstore emulator and an Oakra emulator on loopback (with a
per-request latency), while retailers order on both and Ankorstore ships orders, at a few event
rates. A unit moves only when something lands between the adapter's fresh read of a variant and
its set; the figure is the sum of |units moved| per thousand sales.

    python -m bench.ankorstore_window [--seconds 30] [--latency 0.02] [--rates 5,20,50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bench.fleet import start_fleet
from sync.bootstrap import Wiring, open_ledger
from sync.config import Config
from sync.emulation.sales import SalesDriver
from sync.ledger.db import create_db_engine, upgrade
from sync.ledger.models import Account, Listing, Push, PushState
from sync.logs import configure_logging
from sync.report import CycleReport
from sync.scheduler import run_daemon

SKUS = [f"sku-{i:03d}" for i in range(100)]
ACCOUNTS = [
    {"name": "oakra", "platform": "oakra", "app_key": "bench-oakra", "location_id": "warehouse-1"},
    {"name": "ankorstore", "platform": "ankorstore", "client_id": "bench", "client_secret": "bench-secret"},
]


def run(rate: float, seconds: float, latency: float, seed: int) -> dict[str, float]:
    """One run at `rate` events a second; returns its figures."""
    platforms, servers, entries = start_fleet(ACCOUNTS, SKUS, 500, latency)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(create_db_engine(url))
        config = Config.model_validate(
            {
                "database": {"url": url},
                "accounts": entries,
                "skus": tuple(SKUS),
                # Hot sales on a small catalogue drop most listings every half second: that is
                # trade here, not an outage, so the safety stop stays out of the way.
                "sync": {"interval_seconds": 0.5, "safety_max_drop_share": 1.0},
            }
        )
        ledger = open_ledger(config)
        wiring, quiet = Wiring(), Counter[str]()
        first, settled, done = threading.Event(), threading.Event(), threading.Event()

        def on_cycle(report: CycleReport) -> None:
            first.set()
            calm = report.ok and not report.movements and not report.pushes
            quiet["n"] = quiet["n"] + 1 if calm and done.is_set() else 0
            if quiet["n"] >= 2:
                settled.set()

        daemon = threading.Thread(target=run_daemon, args=(config, ledger, wiring), kwargs={"on_cycle": on_cycle})
        daemon.start()
        first.wait(30)
        sales = SalesDriver(list(platforms.values()), rate, seed=seed, ship_share=0.3).start()
        time.sleep(seconds)
        sales.stop()
        done.set()
        settled.wait(120)
        wiring.stop.set()
        daemon.join(60)
        with ledger.store.sessions() as session:
            counted = dict(
                session.execute(
                    select(Listing.code, func.sum(func.coalesce(Push.applied_delta, Push.delta)))
                    .join(Listing, Push.listing_id == Listing.id)
                    .join(Account, Listing.account_id == Account.id)
                    .where(Account.name == "ankorstore")
                    .where(Push.state.in_([PushState.CONFIRMED.value, PushState.APPLIED.value]))
                    .group_by(Listing.code)
                ).all()
            )
            pushes = session.scalar(select(func.count()).select_from(Push))
        ledger.close()
    for server in servers:
        server.stop()
    applied = Counter[str]()
    for code, delta in platforms["ankorstore"].applied:
        applied[code] += delta
    moved = sum(abs(applied[sku] - int(counted.get(sku) or 0)) for sku in SKUS)
    total_sales = sum(sum(p.sold.values()) for p in platforms.values())
    return {
        "rate_per_s": rate,
        "sales": total_sales,
        "shipments": sales.shipments,
        "pushes": int(pushes or 0),
        "units_moved_in_window": moved,
        "per_thousand_sales": round(1000 * moved / max(1, total_sales), 3),
    }


def main() -> None:
    """Run the sweep of rates and print (and optionally save) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request at the emulators")
    parser.add_argument("--rates", default="5,20,50", help="events per second, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    configure_logging("error", "json")
    rows = [run(float(rate), args.seconds, args.latency, args.seed) for rate in args.rates.split(",")]
    print(f"{'events/s':>9} {'sales':>7} {'shipments':>10} {'pushes':>7} {'units moved':>12} {'per 1000 sales':>15}")
    for row in rows:
        print(
            f"{row['rate_per_s']:>9} {row['sales']:>7} {row['shipments']:>10} {row['pushes']:>7} "
            f"{row['units_moved_in_window']:>12} {row['per_thousand_sales']:>15}"
        )
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "latency": args.latency, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
