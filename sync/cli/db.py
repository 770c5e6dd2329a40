"""`stocksync db upgrade`: apply the ledger migrations; `stocksync db shards N`: change the shard
count every replica must use."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from sync.cli.common import EXIT_BUSY, config_option, fail, ledger_for, load
from sync.ledger.db import schema_revisions, upgrade
from sync.ledger.lease import LeaseBusy, LeaseLost
from sync.ledger.shards import change_shards


@click.group()
def db() -> None:
    """Manage the ledger database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str) -> None:
    """Create the ledger schema, or bring it up to date (safe to run every start)."""
    config = load(config_path)
    with ledger_for(config, require_schema=False) as ledger:
        before, head = schema_revisions(ledger.db)
        upgrade(ledger.db)
        if before == head:
            click.echo(f"ledger schema already at {head}")
        else:
            click.echo(f"ledger schema upgraded from {before or 'nothing'} to {head}")


@db.command("shards")
@config_option
@click.argument("count", type=click.IntRange(min=1, max=1024))
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="Seconds to wait for the cycles running now to end.",
)
def db_shards(config_path: str, count: int, wait: float) -> None:
    """Cut the ledger into COUNT shards for replicas (every replica must then run with
    [sync] shards = COUNT).

    Takes every shard's lease (waiting up to --wait for running cycles), recovers what any cycle
    left open (unsent pushes cancelled, sent ones in doubt, settled by the next reads), and records
    the new count in one transaction. Replicas still running with the old count stop at their next
    cycle (exit 2). Exit 0 when done, 3 when a cycle held a lease past --wait.
    """
    config = load(config_path)
    with ledger_for(config) as ledger:
        try:
            before = change_shards(ledger.store, count, wait)
        except (LeaseBusy, LeaseLost) as busy:
            fail(f"{busy}; nothing was changed", EXIT_BUSY)
            raise
        except SQLAlchemyError as err:  # e.g. a deadlock with a reconciler that woke up meanwhile
            fail(f"the ledger refused the change ({type(err).__name__}); nothing was changed: run it again", 1)
            raise
    if before == count:
        click.echo(f"the ledger is already cut into {count} shard(s)")
    else:
        click.echo(
            f"the ledger is now cut into {count} shard(s) (was {before or 1}); "
            f"run every replica with [sync] shards = {count}"
        )
