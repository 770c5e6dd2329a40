"""Builds the object graph once: configuration -> ledger -> adapters -> engine.

Tests hand in their own transports or adapters here instead of patching anything.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine as DbEngine

from sync.config import Config
from sync.crashpoints import CrashHook, crash_hook_from_env
from sync.engine import Clock, Engine, utcnow
from sync.ledger.credentials import LedgerTokenKeeper
from sync.ledger.db import check_reachable, check_schema, create_db_engine, session_factory
from sync.ledger.lease import ReconcileLease
from sync.ledger.shards import check_ledger_shards
from sync.ledger.store import LedgerStore
from sync.platforms import build_adapter
from sync.platforms.base import Adapter
from sync.platforms.http import Sleep


@dataclass
class Ledger:
    """The ledger database and its store."""

    db: DbEngine
    store: LedgerStore

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()


def open_ledger(config: Config, *, require_schema: bool = True) -> Ledger:
    """Connect to the configured database; by default refuse a missing or old schema."""
    db = create_db_engine(config.database.url)
    try:
        if require_schema:
            check_schema(db)
        else:
            check_reachable(db, creating=True)
    except Exception:
        db.dispose()
        raise
    return Ledger(db, LedgerStore(session_factory(db)))


@dataclass
class Wiring:
    """What can be swapped in: per-account httpx transports (emulators in process), a clock, a
    stop flag, how long to wait for another reconciler, and a crash hook for fault tests."""

    transports: Mapping[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    clock: Clock = utcnow
    stop: threading.Event = field(default_factory=threading.Event)
    lock_wait: float = 30.0
    crash: CrashHook = field(default_factory=crash_hook_from_env)
    sleep: Sleep | None = None
    rng: random.Random | None = None
    lease: Callable[[LedgerStore, Clock], ReconcileLease] | None = None


@asynccontextmanager
async def running_engine(
    config: Config, ledger: Ledger, wiring: Wiring | None = None, *, engine_class: type[Engine] = Engine
) -> AsyncIterator[Engine]:
    """An engine with one adapter per account, open for the life of the block (inside the loop
    that uses it, since HTTP connections belong to one event loop)."""
    async with running_engines(config, ledger, wiring, engine_class=engine_class, shards=[0]) as engines:
        yield engines[0]


@asynccontextmanager
async def running_engines(
    config: Config,
    ledger: Ledger,
    wiring: Wiring | None = None,
    *,
    engine_class: type[Engine] = Engine,
    shards: list[int] | None = None,
    lock_wait: float | None = None,
) -> AsyncIterator[list[Engine]]:
    """One engine per shard (every shard by default), sharing one adapter per account.

    Raises ShardsMismatch (a ConfigError) when the ledger is cut into another number of shards."""
    check_ledger_shards(ledger.store.sessions, config.sync.shards)
    wiring = wiring or Wiring()
    keeper = LedgerTokenKeeper(ledger.store.sessions)  # unfenced: a rotated token is kept by any process
    adapters: dict[str, Adapter] = {
        account.name: build_adapter(
            account,
            transport=wiring.transports.get(account.name),
            sleep=wiring.sleep,
            rng=wiring.rng,
            trust=config.sync.trust_rules(),
            keeper=keeper,
        )
        for account in config.accounts
    }
    try:
        yield [
            engine_class(
                config,
                ledger.store,
                adapters,
                clock=wiring.clock,
                stop=wiring.stop,
                lock_wait=wiring.lock_wait if lock_wait is None else lock_wait,
                crash=wiring.crash,
                lease=wiring.lease(ledger.store, wiring.clock) if wiring.lease else None,
                shard=shard,
                sleep=wiring.sleep or asyncio.sleep,
            )
            for shard in (range(config.sync.shards) if shards is None else shards)
        ]
    finally:
        for adapter in adapters.values():
            await adapter.aclose()
