"""`stocksync demo`: see stocksync work against emulated platforms, with nothing to set up."""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

import click

from sync.cli.common import EXIT_FAILED, EXIT_OK, fail, load
from sync.errors import ConfigError

BUNDLED = "demo.toml"


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Demo configuration (default: the bundled config/demo.toml).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=30,
    show_default=True,
    help="Seconds of random sales before letting it settle.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=1.5,
    show_default=True,
    help="Sales per second across all platforms.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed for stock and sales.")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the SQLite ledger at this new path (default: a temporary file).",
)
def demo(config_path: str | None, duration: float, rate: float, seed: int, ledger_path: Path | None) -> None:
    """Start emulated platforms with random sales, run the daemon against them, show convergence.

    Ends by itself after --duration seconds of sales plus the time to settle; exits 0 when every
    platform shows the shared pool.
    """
    from sync.demo import run_demo

    config = load(config_path or str(_bundled_config()))
    if ledger_path is not None and ledger_path.exists():
        fail(f"--ledger: {ledger_path} already exists; the demo needs a fresh ledger")
    with tempfile.TemporaryDirectory(prefix="stocksync-demo-") as tmp:
        try:
            result = run_demo(
                config,
                duration=duration,
                rate=rate,
                seed=seed,
                ledger_path=ledger_path or Path(tmp) / "ledger.db",
                echo=click.echo,
            )
        except ConfigError as err:
            fail(str(err))
            raise
    sys.exit(EXIT_OK if result.converged else EXIT_FAILED)


def _bundled_config() -> Path:
    """config/demo.toml, shipped inside the package as `sync.configs`."""
    return bundled(BUNDLED)


def bundled(name: str) -> Path:
    """A configuration example shipped inside the package (config/ in a checkout)."""
    path = Path(str(resources.files("sync.configs").joinpath(name)))
    if not path.exists():
        fail(f"no {name} in the installed package; pass --config PATH/TO/config/{name}")
    return path
