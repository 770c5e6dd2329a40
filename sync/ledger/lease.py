"""One reconciler at a time: a lease row in the ledger, held from opening a cycle until it closes,
and fencing of every write made for the cycle.

- **Time comes from the database** (`database_now`): the expiry is written and compared with the
  server's clock (the host's for SQLite), never with each process's own, so a process whose clock
  runs ahead cannot take a live lease.
- **Taking it is a compare-and-swap** on the row's token *and* expiry: a renewal that lands
  between a taker's read and its write changes the expiry, and the taker's write then misses.
- **Every write is fenced**: the engine's sessions run `extend` as the first statement of each
  transaction (`fenced`), an UPDATE matching our holder and token. It both renews the lease and, by
  locking the row until commit (PostgreSQL) or holding the write lock (SQLite), keeps a taker
  out until the transaction is over; if the lease passed on, it raises LeaseLost before the
  transaction has touched anything else: a holder that lost its lease changes nothing, and takes
  no row lock that its successor could wait on (two writers locking the same rows in different
  orders would deadlock, and the database would abort one of them, perhaps the rightful one).
- **It stays alive while work is in flight**: a keeper thread renews it every third of its
  length while held. Each success moves a local deadline (monotonic clock, a margin short of the
  expiry); past it, or once a renewal found the lease gone, `check` refuses, and platform writes
  are refused before they leave (`sync.fencing`).
- **A dead holder** stops renewing and its lease runs out within `lease_seconds`; no process ids
  are trusted (they repeat across containers and are reused).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import structlog
from sqlalchemy import Connection, event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from sync.ledger.models import Cycle
from sync.ledger.models import Lease as LeaseRow

log = structlog.get_logger(__name__)

RECONCILE = "reconcile"
# The local deadline stops this short of the expiry the database wrote: room for the time a
# renewal's transaction took and for a write already on its way.
MARGIN = 0.8


class LeaseBusy(Exception):
    """Another reconciler holds the lease."""

    def __init__(self, holder: str, since: datetime, expires: datetime) -> None:
        super().__init__(
            f"another reconciler holds the ledger lock ({holder}, since {since:%Y-%m-%d %H:%M:%S} UTC, "
            f"lease until {expires:%H:%M:%S} UTC); try again when it is done"
        )
        self.holder = holder


class LeaseLost(Exception):
    """The lease passed to another reconciler (or could not be renewed in time): stop, and
    commit nothing more."""


def database_now(session: Session | Connection) -> datetime:
    """The database's own clock, timezone-aware UTC (SQLite's is the host's)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        if value is None:
            raise LeaseLost("the database did not say what time it is")
        return cast(datetime, value).astimezone(UTC)
    stamp = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.fromisoformat(str(stamp)).replace(tzinfo=UTC)


def never_dead(_holder: str) -> bool:
    """No holder is presumed dead before its lease runs out (the production rule)."""
    return False


def default_holder() -> str:
    """A name that says who holds the lease: host, process, and an instance id that no other
    process will ever have (host and process alone repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass
class ReconcileLease:
    """The reconcile lease (one shard's, among several replicas) for one process."""

    sessions: sessionmaker[Session]
    ttl: timedelta = timedelta(seconds=30)
    holder: str = ""
    name: str = RECONCILE
    token: int | None = None
    now_of: Callable[[Session | Connection], datetime] = database_now
    is_dead: Callable[[str], bool] = never_dead
    keep_alive: bool = True  # renew from a thread while held (off in the single-threaded simulator)
    # Also checked in every fenced commit: what else must still hold for the holder to write
    # (the engine checks the ledger's shard count there); raises to refuse the commit.
    also_check: Callable[[Session], None] | None = None
    _deadline: float = field(default=0.0, init=False, repr=False)
    _lost: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _stop_keeping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _keeper: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.holder = self.holder or default_holder()

    # --- taking and giving up -------------------------------------------------------------

    def acquire(
        self,
        wait: float,
        poll: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        cancel: threading.Event | None = None,
    ) -> None:
        """Take the lease, waiting up to `wait` seconds (or until `cancel` is set); raise LeaseBusy
        when it stays taken. While held, a keeper thread renews it."""
        deadline = time.monotonic() + wait
        while True:
            busy = self._try_acquire()
            if busy is None:
                self._lost.clear()
                self._start_keeper()
                return
            if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                raise busy
            if cancel is not None:
                cancel.wait(poll)
            else:
                sleep(poll)

    def _try_acquire(self) -> LeaseBusy | None:
        started = time.monotonic()
        with self.sessions.begin() as session:
            now = self.now_of(session)
            row = session.get(LeaseRow, self.name, populate_existing=True)
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
                token = 1
            else:
                if row.holder != self.holder and row.expires_at > now and not self.is_dead(row.holder):
                    return LeaseBusy(row.holder, row.acquired_at, row.expires_at)
                seen_token, seen_expiry = row.token, row.expires_at
                # Compare-and-swap on token and expiry: a renewal since our read moved the expiry.
                taken = session.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name, LeaseRow.token == seen_token)
                    .where(LeaseRow.expires_at == seen_expiry)
                    .values(holder=self.holder, token=seen_token + 1, acquired_at=now, expires_at=now + self.ttl)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    return LeaseBusy("a reconciler that renewed or took it a moment ago", now, now)
                token = seen_token + 1
        self.token = token
        self._renewed(started)
        return None

    def release(self) -> None:
        """Give the lease up (expire it now) if it is still ours; stop renewing it."""
        self._stop_keeper()
        if self.token is None:
            return
        try:
            with self.sessions.begin() as session:
                session.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder, LeaseRow.token == self.token)
                    .values(expires_at=self.now_of(session))
                )
        finally:
            self.token = None

    def abandon(self) -> None:
        """Stop renewing without giving the lease up, as a process that died would: it runs out."""
        self._stop_keeper()
        self.token = None

    # --- keeping it -------------------------------------------------------------------------

    def extend(self, session: Session | Connection) -> float:
        """Renew the lease inside `session`'s transaction; raise LeaseLost if it is no longer
        ours (the caller's transaction then rolls back). Returns the monotonic time the renewal
        started, for `_renewed` once the transaction has committed."""
        if self.token is None:
            raise LeaseLost(f"the {self.name} lease is not held")
        started = time.monotonic()
        now = self.now_of(session)
        kept = session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder, LeaseRow.token == self.token)
            .values(expires_at=now + self.ttl)
        )
        if kept.rowcount != 1:  # type: ignore[attr-defined]
            self._lost.set()
            raise LeaseLost(f"the {self.name} lease passed to another reconciler (ours was token {self.token})")
        return started

    def renew(self) -> None:
        """Renew the lease in its own transaction."""
        with self.sessions.begin() as session:
            started = self.extend(session)
        self._renewed(started)

    def check(self) -> None:
        """Raise LeaseLost unless the lease is surely still ours: not found gone by a renewal, and
        renewed recently enough that it cannot have run out."""
        if self.token is None or self._lost.is_set():
            raise LeaseLost(f"the {self.name} lease is not held any more")
        if time.monotonic() > self._deadline:
            raise LeaseLost(f"the {self.name} lease could not be renewed in time")

    def _renewed(self, started: float) -> None:
        self._deadline = started + MARGIN * self.ttl.total_seconds()

    def _start_keeper(self) -> None:
        if not self.keep_alive or (self._keeper is not None and self._keeper.is_alive()):
            return
        self._stop_keeping.clear()
        self._keeper = threading.Thread(target=self._keep, name=f"lease-keeper:{self.name}", daemon=True)
        self._keeper.start()

    def _stop_keeper(self) -> None:
        self._stop_keeping.set()
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not threading.current_thread():
            # Bounded: a keeper stuck on an unreachable database must not stall the caller (its
            # renewal then fails, and the released or abandoned lease runs out by itself).
            keeper.join(timeout=self.ttl.total_seconds())

    def _keep(self) -> None:
        every = self.ttl.total_seconds() / 3
        while not self._stop_keeping.wait(every):
            try:
                self.renew()
            except LeaseLost:
                return  # `check` now refuses; the cycle ends and logs it once (cycle.lease_lost)
            except SQLAlchemyError as err:  # the database is unreachable: the deadline decides
                log.warning("lease.renewal_failed", lease=self.name, error=f"{type(err).__name__}: {err}")

    # --- fencing ------------------------------------------------------------------------------

    def fenced(self, sessions: sessionmaker[Session]) -> sessionmaker[Session]:
        """Sessions like `sessions` whose every transaction first renews the lease (holding its
        row until the end), so nothing is written, and nothing commits, once the lease is lost."""
        maker: sessionmaker[Session] = sessionmaker(**sessions.kw)
        event.listen(maker, "after_begin", self._after_begin)
        event.listen(maker, "before_commit", self._before_commit)
        event.listen(maker, "after_commit", self._after_commit)
        return maker

    def _after_begin(self, session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        # Only a process that believes it holds the lease renews it first thing; one that never
        # held it may read, and its commits are refused below.
        if transaction.nested:
            return
        session.info.pop("lease_renewed", None)  # from a transaction that rolled back
        if self.token is None:
            return
        self.check()  # cheap and local: a holder resumed past its deadline stops here
        session.info["lease_renewed"] = self.extend(connection)

    def _before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT released: the outer commit is fenced
        if "lease_renewed" not in session.info:  # renewed at begin, the row locked since
            session.info["lease_renewed"] = self.extend(session)
        if self.also_check is not None:
            self.also_check(session)

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return
        started = session.info.pop("lease_renewed", None)
        if started is not None:
            self._renewed(started)

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
        """Say this replica is alive for another `ttl` (by the database's clock)."""
        name = f"replica:{self.holder}"[:64]
        with self.sessions.begin() as session:
            now = database_now(session)
            row = session.get(LeaseRow, name)
            if row is None:
                session.add(
                    LeaseRow(name=name, holder=self.holder, token=1, acquired_at=now, expires_at=now + self.ttl)
                )
            else:
                row.expires_at = now + self.ttl

    def live(self) -> int:
        """How many replicas beat within their ttl (this one included)."""
        with self.sessions() as session:
            now = database_now(session)
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
                update(LeaseRow)
                .where(LeaseRow.name == f"replica:{self.holder}"[:64])
                .values(expires_at=database_now(session))
            )

    def last_sweep(self, shard: int) -> datetime | None:
        """When a full sweep of `shard` last finished, by any replica."""
        with self.sessions() as session:
            return session.scalar(
                select(func.max(Cycle.started_at))
                .where(Cycle.shard == shard, Cycle.trigger == "scheduled", Cycle.finished_at.is_not(None))
                .where(Cycle.outcome.in_(["ok", "partial", "failed"]))
            )
