"""Holding the reconcile lease around a piece of work: taken (waiting as told), platform writes gated
on it, released after; a simulated process death abandons it (it runs out), and a lost lease is
noted once, the same way wherever the work found it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from sync.crashpoints import ProcessDeath
from sync.errors import LedgerUnavailable
from sync.fencing import FencedOff, write_gate
from sync.ledger.lease import LeaseLost, ReconcileLease
from sync.metrics import METRICS

log = structlog.get_logger(__name__)


@asynccontextmanager
async def holding(lease: ReconcileLease, wait: float, cancel: threading.Event) -> AsyncIterator[None]:
    """Hold `lease` around the block (LeaseBusy past `wait`), with platform writes gated on it."""
    await asyncio.to_thread(lease.acquire, wait, cancel=cancel)

    def gate() -> None:
        try:
            lease.check()
        except LeaseLost as lost:
            raise FencedOff(f"not sent: {lost}") from None

    try:
        with write_gate(gate):
            yield
    except OperationalError as err:  # translated once, here, for every step taken under the lease
        raise LedgerUnavailable.from_database(err) from None
    except ProcessDeath:
        lease.abandon()  # a dead process releases nothing: its lease runs out
        raise
    finally:
        if lease.token is not None:
            try:
                lease.release()
            except SQLAlchemyError as err:  # the database is unreachable: the lease runs out by itself
                log.warning("lease.release_failed", lease=lease.name, error=f"{type(err).__name__}: {err}")


def note_lease_lost(event: str, lease: ReconcileLease, lost: LeaseLost, **context: object) -> None:
    """Log a lost lease once and count it: another reconciler holds the ledger now."""
    METRICS.leases_lost.inc()
    log.error(event, lease=lease.name, reason=str(lost), **context)
