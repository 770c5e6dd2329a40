"""`stocksync run`: the long-running daemon."""

from __future__ import annotations

import sys

import click

from sync.cli.common import config_option, ledger_for, load
from sync.ledger.db import upgrade
from sync.scheduler import run_daemon


@click.command()
@config_option
@click.option("--upgrade-db", is_flag=True, help="Apply ledger migrations before starting (for containers).")
def run(config_path: str, upgrade_db: bool) -> None:
    """Run the daemon: a full reconcile every [sync] interval_seconds, until SIGTERM or SIGINT.

    A signal lets the batch in hand finish and be recorded, then exits 0. Exits 2 on bad
    configuration, including a [sync] shards that differs from the count the ledger records
    (at start, or at the next cycle after `stocksync db shards` changed it).
    """
    config = load(config_path)
    with ledger_for(config, require_schema=not upgrade_db) as ledger:
        if upgrade_db:
            upgrade(ledger.db)
        sys.exit(run_daemon(config, ledger))
