"""One reconciler at a time: a lease row in the ledger, held from observing until the outcomes are
recorded.

The lease works the same on SQLite and PostgreSQL. Taking it is a compare-and-swap on its token;
every plan commit re-checks the token in the same transaction (fencing), so a reconciler that lost
its lease (it stalled past the expiry and another took over) cannot commit pushes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.models import Cycle
from sync.ledger.models import Lease as LeaseRow

RECONCILE = "reconcile"


class LeaseBusy(Exception):
    """Another reconciler holds the lease."""

    def __init__(self, holder: str, since: datetime, expires: datetime) -> None:
        super().__init__(
            f"another reconciler holds the ledger lock ({holder}, since {since:%Y-%m-%d %H:%M:%S} UTC, "
            f"lease until {expires:%H:%M:%S} UTC); try again when it is done"
        )
        self.holder = holder


class LeaseLost(Exception):
    """The lease passed to another reconciler: stop before committing anything more."""


def local_holder_is_dead(holder: str) -> bool:
    """True when `holder` names a process on this host that no longer exists, so a restarted
    daemon takes over at once instead of waiting for its dead predecessor's lease to run out."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another user
    return False


def default_holder() -> str:
    """A name that says who holds the lease: host, process and a unique suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class ReconcileLease:
    """The reconcile lease for one process."""

    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    ttl: timedelta = timedelta(minutes=5)
    holder: str = ""
    name: str = RECONCILE
    token: int | None = None
    is_dead: Callable[[str], bool] = local_holder_is_dead

    def __post_init__(self) -> None:
        self.holder = self.holder or default_holder()

    def acquire(
        self,
        wait: float,
        poll: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        cancel: threading.Event | None = None,
    ) -> None:
        """Take the lease, waiting up to `wait` seconds (or until `cancel` is set); raise LeaseBusy
        when it stays taken."""
        deadline = time.monotonic() + wait
        while True:
            busy = self._try_acquire()
            if busy is None:
                return
            if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                raise busy
            if cancel is not None:
                cancel.wait(poll)
            else:
                sleep(poll)

    def _try_acquire(self) -> LeaseBusy | None:
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(LeaseRow, self.name)
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(
                            insert(LeaseRow).values(
                                name=self.name, holder=self.holder, token=1, acquired_at=now, expires_at=now + self.ttl
                            )
                        )
                except IntegrityError:
                    return LeaseBusy("a reconciler starting at the same moment", now, now)
                self.token = 1
                return None
            if row.holder != self.holder and row.expires_at > now and not self.is_dead(row.holder):
                return LeaseBusy(row.holder, row.acquired_at, row.expires_at)
            token = row.token  # read before the UPDATE, which refreshes `row` in the session
            taken = session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.token == token)
                .values(holder=self.holder, token=token + 1, acquired_at=now, expires_at=now + self.ttl)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return LeaseBusy("a reconciler that took it a moment ago", now, now)
            self.token = token + 1
            return None

    def extend(self, session: Session) -> None:
        """Push the expiry forward inside `session`'s transaction; raise LeaseLost if it is no longer
        ours (the caller's transaction then rolls back)."""
        if self.token is None:
            raise LeaseLost("the reconcile lease was never taken")
        now = self.clock()
        kept = session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder, LeaseRow.token == self.token)
            .values(expires_at=now + self.ttl)
        )
        if kept.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"the reconcile lease passed to another reconciler (ours was token {self.token})")

    def renew(self) -> None:
        """Extend the lease in its own transaction."""
        with self.sessions.begin() as session:
            self.extend(session)

    def release(self) -> None:
        """Give the lease up (expire it now) if it is still ours."""
        if self.token is None:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder, LeaseRow.token == self.token)
                .values(expires_at=self.clock())
            )
        self.token = None

    def current(self) -> LeaseRow | None:
        """The lease row as it stands."""
        with self.sessions() as session:
            return session.scalars(select(LeaseRow).where(LeaseRow.name == self.name)).first()


@dataclass
class Membership:
    """A replica among several on one ledger: a heartbeat row (a lease named `replica:HOLDER`) that
    tells the others how many share the work, and when each shard was last swept."""

    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    ttl: timedelta
    holder: str = ""

    def __post_init__(self) -> None:
        self.holder = self.holder or default_holder()

    def heartbeat(self) -> None:
        """Say this replica is alive for another `ttl`."""
        now = self.clock()
        name = f"replica:{self.holder}"[:64]
        with self.sessions.begin() as session:
            row = session.get(LeaseRow, name)
            if row is None:
                session.add(
                    LeaseRow(name=name, holder=self.holder, token=1, acquired_at=now, expires_at=now + self.ttl)
                )
            else:
                row.expires_at = now + self.ttl

    def live(self) -> int:
        """How many replicas beat within their ttl (this one included)."""
        now = self.clock()
        with self.sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(LeaseRow)
                .where(LeaseRow.name.like("replica:%"), LeaseRow.expires_at > now, LeaseRow.holder != "")
            )
        return max(1, int(count or 0))

    def leave(self) -> None:
        """Stop counting as alive (a clean shutdown)."""
        with self.sessions.begin() as session:
            session.execute(
                update(LeaseRow).where(LeaseRow.name == f"replica:{self.holder}"[:64]).values(expires_at=self.clock())
            )

    def last_sweep(self, shard: int) -> datetime | None:
        """When a full sweep of `shard` last finished, by any replica."""
        with self.sessions() as session:
            return session.scalar(
                select(func.max(Cycle.started_at))
                .where(Cycle.shard == shard, Cycle.trigger == "scheduled", Cycle.finished_at.is_not(None))
                .where(Cycle.outcome.in_(["ok", "partial"]))
            )
