"""`stocksync reconcile`: one cycle over every account, then exit."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from sync.bootstrap import Ledger, Wiring, running_engines
from sync.cli.common import EXIT_BUSY, EXIT_FAILED, EXIT_OK, config_option, fail, ledger_for, load
from sync.cli.render import report_json, report_text
from sync.config import Config
from sync.ledger.lease import LeaseBusy
from sync.report import CycleReport


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Read and plan only: print the pushes, change nothing anywhere.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="Seconds to wait while another reconciler (the daemon) holds the ledger.",
)
def reconcile(config_path: str, dry_run: bool, as_json: bool, wait: float) -> None:
    """Run one reconcile cycle over every account and exit.

    Exit 0 when every account succeeded, 1 when any failed (the others still synced), 2 for bad
    configuration (a [sync] shards the ledger does not record included) or a ledger schema that
    needs `stocksync db upgrade`, 3 when another reconciler held the ledger for longer than --wait
    or took it over midway (this reconcile then wrote nothing more; run it again).
    With [sync] shards above 1, every shard is reconciled in turn under its own lease, and one
    report per shard is printed (a JSON list with --json).
    """
    config = load(config_path)
    wiring = Wiring(lock_wait=wait)
    with ledger_for(config) as ledger:
        try:
            reports = asyncio.run(
                _cycles(config, ledger, wiring, dry_run, show_progress=not as_json and sys.stderr.isatty())
            )
        except LeaseBusy as busy:
            fail(str(busy), EXIT_BUSY)
            raise
    if as_json:
        shown = [report_json(r) for r in reports]
        click.echo(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
    else:
        click.echo("\n\n".join(report_text(r) for r in reports))
    lost = [r.lease_lost for r in reports if r.lease_lost]
    if lost:
        click.echo(f"stocksync: error: the ledger lease was lost midway ({lost[0]}); run it again", err=True)
        sys.exit(EXIT_BUSY)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)


async def _cycles(
    config: Config, ledger: Ledger, wiring: Wiring, dry_run: bool, *, show_progress: bool
) -> list[CycleReport]:
    async with running_engines(config, ledger, wiring) as engines:
        if not show_progress:
            return [await engine.run_cycle("manual", dry_run=dry_run) for engine in engines]
        with click.progressbar(length=len(config.skus), label="reconciling", file=sys.stderr) as bar:
            reports = []
            for engine in engines:
                done = 0

                def advance(current: int, _total: int) -> None:
                    nonlocal done
                    bar.update(current - done)
                    done = current

                reports.append(await engine.run_cycle("manual", dry_run=dry_run, progress=advance))
            return reports
