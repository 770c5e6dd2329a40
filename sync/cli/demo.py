"""`stocksync demo`: see stocksync work against emulated platforms, with nothing to set up."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from functools import partial
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
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Afterwards keep the emulators serving, with the ledger and a stocksync.toml in this new "
    "folder, to try status, explain, reconcile and run against them (Ctrl-C ends it).",
)
def demo(
    config_path: str | None, duration: float, rate: float, seed: int, ledger_path: Path | None, keep_dir: Path | None
) -> None:
    """Start emulated platforms with random sales, run the daemon against them, show convergence.

    Ends by itself after --duration seconds of sales plus the time to settle; exits 0 when every
    platform shows the shared pool. With --keep DIR it then keeps the emulators serving until
    Ctrl-C, and DIR/stocksync.toml points every other command at them and at the demo's ledger.
    """
    from sync.demo import keep_serving, run_demo

    source = Path(config_path) if config_path else _bundled_config()
    config = load(str(source))
    hold = None
    if keep_dir is not None:
        if ledger_path is not None:
            fail("--ledger and --keep: give one (--keep keeps the ledger in its folder)")
        if keep_dir.is_dir() and any(keep_dir.iterdir()):
            fail(f"--keep: {keep_dir} is not empty; the demo needs a new folder")
        try:
            keep_dir.mkdir(parents=True, exist_ok=True)
            ledger_path = keep_dir.resolve() / "ledger.db"
            config_file = keep_dir / "stocksync.toml"
            config_file.write_text(_kept_config(source.read_text(encoding="utf-8"), ledger_path), encoding="utf-8")
            config_file.chmod(0o600)  # the emulators' credentials, in plain text like a real config's would be
        except OSError as err:
            fail(f"--keep: cannot create {keep_dir}: {err.strerror or err}")
            raise
        hold = partial(keep_serving, config_file=config_file, echo=click.echo, stop=threading.Event(), seed=seed)
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
                hold=hold,
            )
        except ConfigError as err:
            if keep_dir is not None:  # nothing kept: the same --keep works once the cause is fixed
                shutil.rmtree(keep_dir, ignore_errors=True)
            fail(str(err))
            raise
    sys.exit(EXIT_OK if result.converged else EXIT_FAILED)


def _kept_config(demo_text: str, ledger: Path) -> str:
    """The demo's configuration with its ledger, and logs a person can read, for `--keep`."""
    text = demo_text.replace('level = "error"', 'level = "info"').replace(", so [database] is not read here", "")
    return (
        "# Written by `stocksync demo --keep`: the demo's emulators (while it runs) and its ledger.\n"
        f'[database]\nurl = "sqlite:///{ledger}"\n\n{text}'
    )


def _bundled_config() -> Path:
    """config/demo.toml, shipped inside the package as `sync.configs`."""
    return bundled(BUNDLED)


def bundled(name: str) -> Path:
    """A configuration example shipped inside the package (config/ in a checkout)."""
    path = Path(str(resources.files("sync.configs").joinpath(name)))
    if not path.exists():
        fail(f"no {name} in the installed package; pass --config PATH/TO/config/{name}")
    return path
