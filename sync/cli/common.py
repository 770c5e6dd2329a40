"""What the commands share: the --config option, loading with clear errors, logging, the ledger."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import structlog

from sync.bootstrap import Ledger, open_ledger
from sync.config import Config, load_config
from sync.errors import ConfigError, LedgerUnavailable, SchemaError
from sync.logs import configure_logging, register_secrets

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_BUSY = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """Add `--config PATH` (falling back to $STOCKSYNC_CONFIG, then ./stocksync.toml)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="STOCKSYNC_CONFIG",
        default="stocksync.toml",
        show_default=True,
        help="Configuration file (env: STOCKSYNC_CONFIG).",
    )(func)


def fail(message: str, status: int = EXIT_CONFIG) -> None:
    """Print `stocksync: error: ...` and exit with `status`."""
    click.echo(f"stocksync: error: {message}", err=True)
    sys.exit(status)


def load(config_path: str) -> Config:
    """Load the configuration and set up logging, or exit 2 with the key at fault."""
    try:
        config = load_config(config_path)
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable: fail() exits
    register_secrets(config.secrets())
    configure_logging(config.logging.level, config.logging.format)
    for warning in config.warnings:
        structlog.get_logger("sync.config").warning("config.plain_secrets", detail=warning)
    return config


@contextmanager
def ledger_for(config: Config, *, require_schema: bool = True) -> Iterator[Ledger]:
    """The ledger, or exit 2 saying how to create or upgrade its schema."""
    try:
        ledger = open_ledger(config, require_schema=require_schema)
    except (SchemaError, ConfigError) as err:
        fail(str(err))
        raise
    except LedgerUnavailable as err:  # a database down or unreachable: the same command may work later
        fail(f"{err}; is the database running and database.url right?", EXIT_FAILED)
        raise
    try:
        yield ledger
    except ConfigError as err:  # found under way, e.g. the ledger's shard count is another
        fail(str(err))
    except LedgerUnavailable as err:  # what earlier steps recorded stays; nothing is half-done
        fail(f"{err}; what was recorded before it stays, run it again", EXIT_FAILED)
    finally:
        ledger.close()


def when(value: datetime | str | None) -> str:
    """A moment in this machine's time zone, the zone named (`UTC` where it runs in UTC)."""
    if value is None:
        return "never"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # the ledger stores UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
