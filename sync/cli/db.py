"""`stocksync db upgrade`: apply the ledger migrations."""

from __future__ import annotations

import click

from sync.cli.common import config_option, ledger_for, load
from sync.ledger.db import schema_revisions, upgrade


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
