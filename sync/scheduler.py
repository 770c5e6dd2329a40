"""The daemon: APScheduler 3.x runs the full sweep on an interval, one cycle at a time, and reads
the order feeds every few seconds in between (a new order's SKUs are reconciled at once). While a
sweep runs, the sweep itself reads the feeds between its batches, so the two never overlap.

SIGTERM or SIGINT only sets a flag: the batch in hand finishes and is recorded, no new cycle
starts, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from datetime import timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sync.bootstrap import Ledger, Wiring, running_engines
from sync.config import Config
from sync.engine import Engine
from sync.errors import ConfigError, LedgerUnavailable
from sync.health import DaemonState, HealthServer
from sync.ledger.lease import LeaseBusy, Membership
from sync.notify import Notifier
from sync.report import CycleReport
from sync.sharding import fair_share, rotation

log = structlog.get_logger(__name__)

OnCycle = Callable[[CycleReport], None]


def run_daemon(config: Config, ledger: Ledger, wiring: Wiring | None = None, *, on_cycle: OnCycle | None = None) -> int:
    """Run until `wiring.stop` is set or a signal arrives; returns the exit status."""
    return asyncio.run(_daemon(config, ledger, wiring or Wiring(), on_cycle))


async def _daemon(config: Config, ledger: Ledger, wiring: Wiring, on_cycle: OnCycle | None) -> int:
    stop = wiring.stop
    _install_signal_handlers(stop)
    busy = asyncio.Lock()
    notifier = Notifier()
    refused: list[ConfigError] = []

    def refuse(err: ConfigError) -> None:
        # A setting every replica must share changed under us (the ledger's shard count): stop.
        log.error("daemon.config_refused", error=str(err))
        refused.append(err)
        stop.set()

    def cycle_done(report: CycleReport) -> None:
        notifier.status(
            f"cycle {report.cycle_id} ({report.trigger}) {'ok' if report.ok else 'partial'}: "
            f"{len(report.movements)} movements, {len(report.pushes)} pushes, {len(report.oversells)} oversells"
        )
        if on_cycle is not None:
            on_cycle(report)

    sharded = config.sync.shards > 1
    # Among several replicas a busy shard is simply someone else's this round: never wait for it.
    async with running_engines(config, ledger, wiring, lock_wait=0.0 if sharded else None) as engines:
        engine = engines[0]
        state = DaemonState()
        health = _health_server(config, ledger, engine, state)
        members = (
            Membership(ledger.store.sessions, wiring.clock, timedelta(seconds=config.sync.lease_seconds))
            if sharded
            else None
        )

        async def sweep() -> None:
            async with busy:
                if stop.is_set():
                    return
                try:
                    if members is None:
                        await _one_cycle(engine, cycle_done)
                    else:
                        await _sweep_shards(engines, members, config, cycle_done, stop)
                except ConfigError as err:
                    refuse(err)

        async def orders() -> None:
            if busy.locked() or stop.is_set():
                return  # the sweep in hand reads the feeds between its batches
            async with busy:
                try:
                    for each in engines:  # shard 0 reads the feeds; the others take what was queued
                        await _orders(each, cycle_done)
                except ConfigError as err:
                    refuse(err)

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        if engine.flow.feed_accounts:
            scheduler.add_job(
                orders,
                "interval",
                seconds=config.orders.poll_seconds,
                id="orders",
                max_instances=1,
                coalesce=True,
            )
        scheduler.add_job(
            sweep,
            "interval",
            seconds=config.sync.interval_seconds,
            id="sweep",
            max_instances=1,
            coalesce=True,
            next_run_time=wiring.clock(),
        )
        scheduler.start()
        state.scheduler_running = True
        log.info(
            "daemon.started",
            accounts=len(config.accounts),
            skus=len(config.skus),
            interval=config.sync.interval_seconds,
            order_feeds=engine.flow.feed_accounts,
            order_poll=config.orders.poll_seconds,
        )
        notifier.ready(f"syncing {len(config.skus)} SKUs on {len(config.accounts)} accounts")
        while not stop.is_set():
            # Pinged from the loop itself: a loop stuck in a blocking call stops the pings, and
            # systemd restarts the service.
            notifier.watchdog_due()
            await asyncio.sleep(0.05)
        notifier.stopping()
        log.info("daemon.stopping", waiting_for_cycle=busy.locked())
        async with busy:
            # The cycle in hand has finished its batch and recorded it. Only then shut the
            # scheduler down: its asyncio executor cancels the jobs still running.
            scheduler.shutdown(wait=False)
            state.scheduler_running = False
        if health is not None:
            health.stop()
        if members is not None:
            members.leave()
    log.info("daemon.stopped")
    return 2 if refused else 0  # 2: the configuration no longer fits the ledger


def _health_server(config: Config, ledger: Ledger, engine: Engine, state: DaemonState) -> HealthServer | None:
    """Start the health and metrics port when `[health] port` is set."""
    if config.health.port is None:
        return None
    names = [a.name for a in config.accounts]
    server = HealthServer(
        ledger.store.sessions, state, lambda: names, host=config.health.host, port=config.health.port
    ).start()
    log.info("health.listening", host=config.health.host, port=server.port)
    return server


async def _sweep_shards(
    engines: list[Engine], members: Membership, config: Config, cycle_done: OnCycle, stop: threading.Event
) -> None:
    """One round of a replica among several: sweep the shards that are due and free, up to this
    replica's fair share, starting from its own place in the rotation."""
    members.heartbeat()
    share = fair_share(len(engines), members.live())
    interval = timedelta(seconds=config.sync.interval_seconds)
    swept = 0
    for shard in rotation(members.holder, len(engines)):
        if swept >= share or stop.is_set():
            return
        last = members.last_sweep(shard)
        if last is not None and members.clock() - last < interval:
            continue  # another replica swept it this round
        try:
            report = await engines[shard].run_cycle("scheduled")
        except LeaseBusy:
            continue  # another replica is on it
        except ConfigError:
            raise  # the ledger's shard count changed: this replica must stop
        except Exception as err:
            _log_failure("daemon.cycle_failed", err, shard=shard)
            continue
        swept += 1
        cycle_done(report)


def _log_failure(event: str, err: Exception, **context: object) -> None:
    """A failed ledger is said in one line (the next interval tries again); anything else is a bug,
    logged with its traceback."""
    if isinstance(err, LedgerUnavailable):
        log.error(event, error=str(err), **context)
    else:
        log.exception(event, **context)


async def _one_cycle(engine: Engine, on_cycle: OnCycle | None) -> None:
    try:
        report = await engine.run_cycle("scheduled")
    except LeaseBusy as busy:
        # A manual `stocksync reconcile` is working: skip this sweep, the next one will run.
        log.info("cycle.skipped", reason=str(busy))
        return
    except ConfigError:
        raise
    except Exception as err:
        # The ledger itself failed (disk, database down): log and try again next interval.
        _log_failure("daemon.cycle_failed", err)
        return
    if on_cycle is not None:
        on_cycle(report)


async def _orders(engine: Engine, on_cycle: OnCycle | None) -> None:
    try:
        report = await engine.run_orders()
    except LeaseBusy:
        return  # another reconciler works on the ledger and reads the feeds itself
    except ConfigError:
        raise
    except Exception as err:
        _log_failure("daemon.orders_failed", err)
        return
    if report is not None and on_cycle is not None:
        on_cycle(report)


def _install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set the stop flag (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, stop, sig.name)


def _request_stop(stop: threading.Event, name: str) -> None:
    log.info("daemon.signal", signal=name)
    stop.set()
