"""The `stocksync` command line: reconcile, run, db upgrade, status, explain, accept, reject,
healthcheck, init, demo, simulate.

Exit status: 0 success; 1 some account failed (the others still synced); 2 bad configuration,
bad usage, or a ledger schema that is missing or behind; 3 another reconciler holds the ledger.
"""

from __future__ import annotations

import os
import sys

import click

from sync import __version__
from sync.cli.common import EXIT_CONFIG, EXIT_FAILED
from sync.cli.db import db
from sync.cli.decide import accept, reject
from sync.cli.demo import demo
from sync.cli.explain import explain
from sync.cli.healthcheck import healthcheck
from sync.cli.init import init
from sync.cli.reconcile import reconcile
from sync.cli.run import run
from sync.cli.simulate import simulate
from sync.cli.status import status
from sync.logs import redact


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stocksync")
def cli() -> None:
    """stocksync keeps one shared stock pool per SKU showing on every platform (Oakra, Graas, ...).

    It reads each platform's stock, books what changed there (sales, returns, hand edits) into a
    local ledger, and pushes relative changes back so that no sale is ever overwritten.

    Every command takes --config PATH (default: $STOCKSYNC_CONFIG, then ./stocksync.toml);
    config/example.toml documents every key.
    """


for command in (reconcile, run, db, status, explain, accept, reject, healthcheck, init, demo, simulate):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point. Whatever escapes a command is a bug: said in one line with how
    to get its traceback (STOCKSYNC_TRACEBACK=1), never a traceback in front of the user."""
    try:
        cli.main(prog_name="stocksync", standalone_mode=True)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as err:
        if os.environ.get("STOCKSYNC_TRACEBACK"):
            raise
        message = redact(f"{type(err).__name__}: {err}".splitlines()[0])
        click.echo(
            f"stocksync: internal error: {message} (a bug: run it again with STOCKSYNC_TRACEBACK=1 for the "
            "traceback, and report it)",
            err=True,
        )
        sys.exit(EXIT_FAILED)


__all__ = ["cli", "main", "EXIT_CONFIG"]
