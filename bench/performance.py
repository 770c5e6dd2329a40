"""The whole performance report in one command: full sweeps at 1,000, 10,000 and 100,000 SKUs
(`bench/scale.py`), then stocksync and the naive poller side by side (`bench/side_by_side.py`).

    python -m bench.performance [--sizes 1000,10000,100000] [--latency 0.05] [--json FILE]

Prints the figures docs/performance.md reports, as Markdown tables; takes about 15 minutes on two
cores (the 100,000-SKU sweeps wait for Ankorstore's 600 requests a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
from pathlib import Path
from typing import Any

from bench import scale, side_by_side
from sync.logs import configure_logging


def markdown(rows: list[dict[str, Any]], compared: dict[str, Any]) -> str:
    """The report's tables."""
    lines = [
        "| SKUs | sweep | Ankorstore floor | sweep / floor | CPU per listing | peak memory |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['skus']:,} | {row['wall_s']} s | {row['rate_limit_floor_s']} s | {row['sweep_vs_floor']} "
            f"| {row['engine_cpu_us_per_listing']} µs | {row['peak_rss_mb']} MB |"
        )
    lines += ["", "| SKUs | platform | calls | minimum | ratio |", "| ---: | --- | ---: | ---: | ---: |"]
    for row in rows:
        for name, calls in row["calls"].items():
            lines.append(f"| {row['skus']:,} | {name} | {calls['used']} | {calls['minimum']} | {calls['ratio']} |")
    ours, naive = compared["stocksync"], compared["naive"]
    lines += [
        "",
        "| | API calls | time per pass | units shown that do not exist | units hidden | ledger errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| stocksync | {ours['api_calls']} | {ours['sweep_s']} s | {ours['units_shown_that_do_not_exist']} "
        f"| {ours['units_hidden']} | {ours['ledger_pool_errors']} |",
        f"| naive poller | {naive['api_calls']} | {naive['round_s']} s | {naive['units_shown_that_do_not_exist']} "
        f"| {naive['units_hidden']} | n/a |",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run everything and print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    configure_logging("error", "json")
    rows = [scale.sweep(int(size), args.latency) for size in args.sizes.split(",")]
    compared = side_by_side.run(300, 60, 10.0, 0.02, 1)
    machine = f"{host.system()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}"
    print(f"machine: {machine}\n")
    print(markdown(rows, compared))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "scale": rows, "side_by_side": compared}, indent=2))


if __name__ == "__main__":
    main()
