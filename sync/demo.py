"""`stocksync demo`: emulated platforms with random sales, the real daemon against them on a fresh
SQLite ledger, and a table that shows every platform converging on the shared pool."""

from __future__ import annotations

import random
import shlex
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sync.bootstrap import Ledger, Wiring, open_ledger
from sync.config import Config, DatabaseSettings
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.sales import SalesDriver
from sync.emulation.server import EmulatorServer
from sync.errors import ConfigError
from sync.ledger import snapshot
from sync.ledger.db import create_db_engine, upgrade
from sync.platforms import PLATFORMS
from sync.report import CycleReport
from sync.scheduler import run_daemon

Echo = Callable[[str], None]


@dataclass
class DemoResult:
    """How the demo ended."""

    converged: bool
    sales: int
    cycles: int


class Demo:
    """Emulators for every configured account, seeded with stock, serving on their base URLs."""

    def __init__(self, config: Config, seed: int) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.platforms: dict[str, EmulatedPlatform] = {}
        self.servers: list[EmulatorServer] = []
        self.start: dict[str, int] = {}
        for account in config.accounts:
            spec = PLATFORMS[account.platform]
            parts = urlsplit(account.base_url)
            if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
                raise ConfigError(
                    f"accounts.{account.name}.base_url: the demo serves emulators on loopback; "
                    f"use http://127.0.0.1:PORT{spec.emulator_base_path}"
                )
            emulator = spec.emulator(account)
            self.platforms[account.name] = emulator
            try:
                self.servers.append(EmulatorServer(emulator, port=parts.port))
            except OSError as err:
                for server in self.servers:
                    server.close()
                raise ConfigError(
                    f"accounts.{account.name}.base_url: port {parts.port} cannot be served "
                    f"({err.strerror or err}; another demo running?): stop it, or pass --config with other ports"
                ) from None
        for sku in config.skus:
            # Enough that half a minute of sales leaves stock everywhere (no sell-out by default).
            quantities = {name: self.rng.randint(30, 60) for name in self.platforms}
            for name, quantity in quantities.items():
                self.platforms[name].set_quantity(account_code(config, name, sku), quantity)
            self.start[sku] = min(quantities.values())  # the bootstrap rule `min`

    def table(self, pools: dict[str, int] | None = None) -> str:
        """SKU rows: each platform's quantity, and the pool when known."""
        names = list(self.platforms)
        header = f"{'sku':<16}" + "".join(f"{n[:14]:>15}" for n in names) + f"{'ledger pool':>13}"
        rows = [header]
        for sku in self.config.skus:
            cells = "".join(f"{self.platforms[n].quantity(account_code(self.config, n, sku)) or 0:>15}" for n in names)
            pool = "" if pools is None or sku not in pools else str(pools[sku])
            rows.append(f"{sku:<16}{cells}{pool:>13}")
        return "\n".join(rows)

    def ship_everything(self) -> int:
        """Every platform picks and ships its open orders (where a read shows a sale only at
        picking, the units leave the count now). Returns how many orders shipped."""
        shipped = 0
        for name, platform in self.platforms.items():
            for sku in self.config.skus:
                while platform.ship(account_code(self.config, name, sku)):
                    shipped += 1
        return shipped

    def sold(self, sku: str) -> int:
        """Units of `sku` sold across every platform."""
        return sum(p.sold[account_code(self.config, n, sku)] for n, p in self.platforms.items())

    def converged(self) -> bool:
        """Every listing shows clamp(start - sold - buffer, 0, max): the true pool, less its buffer."""
        for sku in self.config.skus:
            pool = self.start[sku] - self.sold(sku)
            for account in self.config.accounts:
                target = max(0, pool - account.buffer)
                if account.max_quantity is not None:
                    target = min(target, account.max_quantity)
                if self.platforms[account.name].quantity(account.code_for(sku)) != target:
                    return False
        return True


def account_code(config: Config, account: str, sku: str) -> str:
    """The code `account` uses for `sku`."""
    return config.account(account).code_for(sku)


def rules_legend(config: Config) -> str:
    """How to read the table: which accounts hold units back or cap what they show."""
    rules = []
    for account in config.accounts:
        parts = [f"holds {account.buffer} back"] if account.buffer else []
        parts += [f"shows at most {account.max_quantity}"] if account.max_quantity is not None else []
        if parts:
            rules.append(f"{account.name} {' and '.join(parts)}")
    return (
        "every platform shows the shared pool, less the account's buffer and capped at its max_quantity "
        f"({'; '.join(rules) or 'none here'})"
    )


Hold = Callable[[Demo], None]


def run_demo(
    config: Config,
    *,
    duration: float,
    rate: float,
    seed: int,
    ledger_path: Path,
    echo: Echo,
    hold: Hold | None = None,
) -> DemoResult:
    """Run the demo for `duration` seconds of sales, then let it settle; True when it converged.
    `hold`, when given, runs once it has settled and the daemon has stopped, with the emulators
    still serving (`demo --keep`)."""
    url = f"sqlite:///{ledger_path}"
    config = config.model_copy(update={"database": DatabaseSettings(url=url)})
    demo = Demo(config, seed)  # first: ports already taken stop it before any ledger is made
    upgrade(create_db_engine(url))
    ledger = open_ledger(config)
    for server in demo.servers:
        server.start()
    sales = SalesDriver(list(demo.platforms.values()), rate, seed=seed)
    wiring = Wiring()
    cycles: list[CycleReport] = []
    first_cycle, quiet = threading.Event(), threading.Event()

    quiet_cycles: list[bool] = []

    def on_cycle(report: CycleReport) -> None:
        cycles.append(report)
        first_cycle.set()
        quiet_cycles.append(sales_stopped.is_set() and report.ok and not report.movements and not report.pushes)
        # Two quiet cycles in a row: the second started after the sales stopped and saw them all.
        if quiet_cycles[-2:] == [True, True]:
            quiet.set()

    sales_stopped = threading.Event()
    daemon = threading.Thread(target=run_daemon, args=(config, ledger, wiring), kwargs={"on_cycle": on_cycle})
    echo(f"demo: {len(demo.platforms)} emulated accounts, {len(config.skus)} SKUs, ledger {ledger_path}")
    echo(f"how to read it: {rules_legend(config)}")
    echo("starting stock on each platform (the pool starts at the minimum):")
    echo(demo.table())
    daemon.start()
    try:
        first_cycle.wait(timeout=30)
        sales.start()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            echo(f"\nafter {len(cycles)} cycles, {sales.sales} sales so far:")
            echo(demo.table(_pools(ledger)))
        sales.stop()
        shipped = demo.ship_everything()
        sales_stopped.set()
        echo(f"\nsales stopped, {shipped} orders picked and shipped; letting stocksync settle...")
        quiet.wait(timeout=max(30.0, 5 * config.sync.interval_seconds))
        sales.stop()
        wiring.stop.set()
        daemon.join(timeout=30)
        pools = _pools(ledger)
        truth = {sku: demo.start[sku] - demo.sold(sku) for sku in config.skus}
        converged = demo.converged() and pools == truth
        echo(demo.table(pools))
        echo(
            f"\n{sales.sales} sales, {len(cycles)} cycles: "
            + ("every platform shows the shared pool" if converged else "NOT converged")
        )
        oversells = sum(len(report.oversells) for report in cycles)
        if oversells:
            echo(
                f"{oversells} oversell(s) seen: the last units sold on two platforms within one poll, before "
                'either sale could reach the other; oversell_policy "alert" logged them ("cancel" would '
                "cancel the newest orders)"
            )
        if hold is not None:
            hold(demo)
    finally:
        sales.stop()
        wiring.stop.set()
        daemon.join(timeout=30)
        ledger.close()
        for server in demo.servers:
            server.stop()
    return DemoResult(converged, sales.sales, len(cycles))


def _pools(ledger: Ledger) -> dict[str, int]:
    """The ledger's pool per SKU."""
    with ledger.store.sessions() as session:
        return {view.sku: view.pool for view in snapshot.skus(session)}


def keep_serving(demo: Demo, config_file: Path, echo: Echo, stop: threading.Event, *, seed: int) -> None:
    """`demo --keep`: the emulators keep serving, a customer buying now and then, until `stop` is set
    or SIGINT or SIGTERM arrives (caught from here on only: before, Ctrl-C ends the demo at once)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sku = demo.config.skus[0]
    echo(
        f"\nThe emulators keep serving, and the ledger stays, until you press Ctrl-C here. In another terminal:\n"
        f"  stocksync status --config {shlex.quote(str(config_file))}\n"
        f"  stocksync explain {shlex.quote(sku)} --config {shlex.quote(str(config_file))}\n"
        f"  stocksync reconcile --dry-run --config {shlex.quote(str(config_file))}\n"
        f"  stocksync run --config {shlex.quote(str(config_file))}     (the daemon; Ctrl-C stops it)\n"
        "Customers keep buying now and then, so a run has sales to reconcile."
    )
    sales = SalesDriver(list(demo.platforms.values()), 0.1, seed=seed + 1)
    sales.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sales.stop()
    echo(f"stopped: {sales.sales} more sales while kept")
