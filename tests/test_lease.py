"""One reconciler at a time: the lease row, its expiry by the database's clock, the compare-and-swap
that a renewal defeats, the keeper that renews it while work is in flight, and fencing of every
commit made through the engine's sessions. Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.db import create_db_engine, session_factory
from sync.ledger.lease import LeaseBusy, LeaseLost, ReconcileLease, database_now
from sync.ledger.models import Account
from sync.ledger.models import Lease as LeaseRow


class Clock:
    """A database clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self, _session: Session) -> datetime:
        return self.now


def sessions_for(url: str) -> sessionmaker[Session]:
    return session_factory(create_db_engine(url))


def pair(url: str, clock: Clock, ttl: timedelta = timedelta(minutes=5)) -> tuple[ReconcileLease, ReconcileLease]:
    sessions = sessions_for(url)
    first = ReconcileLease(sessions, ttl, holder="first", now_of=clock, keep_alive=False)
    return first, ReconcileLease(sessions, ttl, holder="second", now_of=clock, keep_alive=False)


def accounts(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Account.name)))


def test_one_holder_at_a_time_and_release(any_db_url: str) -> None:
    clock = Clock()
    first, second = pair(any_db_url, clock)
    first.acquire(wait=0)
    with pytest.raises(LeaseBusy, match="another reconciler holds the ledger lock \\(first"):
        second.acquire(wait=0)
    first.renew()
    first.release()
    second.acquire(wait=0)
    assert second.current().holder == "second"  # type: ignore[union-attr]


def test_a_stalled_holder_is_taken_over_when_its_lease_ends_and_commits_nothing_after(any_db_url: str) -> None:
    clock = Clock()
    first, second = pair(any_db_url, clock)
    first.acquire(wait=0)
    fenced = first.fenced(first.sessions)
    clock.now += timedelta(minutes=6)  # the first holder stalled past its lease
    second.acquire(wait=0)
    with pytest.raises(LeaseLost):
        first.renew()
    with pytest.raises(LeaseLost), fenced.begin() as session:  # a write made for its cycle
        session.execute(insert(Account).values(name="late", platform="oakra", healthy=True))
    assert accounts(first.sessions) == []  # rolled back: nothing of the stalled holder's landed
    with pytest.raises(LeaseLost):
        first.check()  # and it knows: it sends nothing more
    second.renew()


def test_an_expired_lease_nobody_took_is_still_ours(any_db_url: str) -> None:
    clock = Clock()
    first, _ = pair(any_db_url, clock)
    first.acquire(wait=0)
    clock.now += timedelta(minutes=6)
    first.renew()  # the token never moved: no one else wrote, so carrying on is safe


def test_a_renewal_between_a_takers_read_and_its_write_defeats_the_takeover(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    first, second = pair(any_db_url, clock)
    first.acquire(wait=0)
    clock.now += timedelta(minutes=6)  # expired, as the taker reads it ...
    real_get = Session.get

    def get_then_renewal(session: Session, *args: object, **kwargs: object) -> object:
        row = real_get(session, *args, **kwargs)  # type: ignore[arg-type]
        first.renew()  # ... and the holder renews (its own connection) before the taker writes
        return row

    monkeypatch.setattr(Session, "get", get_then_renewal)
    with pytest.raises(LeaseBusy, match="renewed or took it a moment ago"):
        second.acquire(wait=0)
    monkeypatch.undo()
    first.renew()  # still the holder
    assert first.current().holder == "first"  # type: ignore[union-attr]


def test_waiting_is_bounded(any_db_url: str) -> None:
    clock = Clock()
    first, second = pair(any_db_url, clock)
    first.acquire(wait=0)
    naps: list[float] = []
    with pytest.raises(LeaseBusy):
        second.acquire(wait=0.05, poll=0.01, sleep=naps.append)
    assert naps  # it did wait before giving up


def test_time_comes_from_the_database_so_a_clock_running_ahead_takes_nothing(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = sessions_for(any_db_url)
    ttl = timedelta(seconds=60)
    holder = ReconcileLease(sessions, ttl, holder="live", keep_alive=False)
    holder.acquire(wait=0)
    # A process whose own clock runs two leases ahead: nothing in the lease reads it.
    ahead = datetime.now(UTC) + 2 * ttl

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return ahead

    monkeypatch.setattr("sync.ledger.lease.datetime", Ahead)
    with pytest.raises(LeaseBusy):
        ReconcileLease(sessions, ttl, holder="skewed", keep_alive=False).acquire(wait=0)
    with sessions() as session:
        drift = abs((database_now(session) - datetime.now(UTC).astimezone(UTC)).total_seconds())
    assert drift < 5  # the database's clock, not the patched one (this host's, for both here)


def test_the_keeper_renews_while_work_is_in_flight_and_stops_on_release(any_db_url: str) -> None:
    sessions = sessions_for(any_db_url)
    ttl = timedelta(seconds=1.5)
    holder = ReconcileLease(sessions, ttl, holder="busy")
    holder.acquire(wait=0)
    first_expiry = holder.current().expires_at  # type: ignore[union-attr]
    taker = ReconcileLease(sessions, ttl, holder="taker", keep_alive=False)
    deadline = time.monotonic() + 30
    while holder.current().expires_at == first_expiry and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)  # the keeper renews every ttl/3
    assert holder.current().expires_at > first_expiry  # type: ignore[union-attr]
    with pytest.raises(LeaseBusy):
        taker.acquire(wait=0)
    holder.check()  # renewed recently: still surely ours
    holder.release()
    taker.acquire(wait=0)


def test_a_holder_that_cannot_renew_refuses_writes_once_its_deadline_passes(any_db_url: str) -> None:
    sessions = sessions_for(any_db_url)
    holder = ReconcileLease(sessions, timedelta(seconds=1), holder="cut-off", keep_alive=False)
    holder.acquire(wait=0)
    holder.check()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            holder.check()
        except LeaseLost as lost:
            assert "could not be renewed in time" in str(lost)
            break
        time.sleep(0.05)
    else:
        pytest.fail("the local deadline never passed")


def test_the_lease_row_is_written_with_the_databases_time(any_db_url: str) -> None:
    sessions = sessions_for(any_db_url)
    lease = ReconcileLease(sessions, timedelta(seconds=30), holder="h", keep_alive=False)
    lease.acquire(wait=0)
    with sessions() as session:
        row = session.scalar(select(LeaseRow))
        now = database_now(session)
    assert row is not None and row.acquired_at <= now
    assert timedelta(seconds=25) < row.expires_at - now <= timedelta(seconds=30)


def test_postgresql_sessions_cannot_hold_locks_past_a_lease(any_db_url: str) -> None:
    # A holder frozen in the middle of a transaction would keep its row locks, and the next holder
    # would wait on them for as long as the connection looks alive: the server ends such a
    # transaction, a lock wait fails rather than hangs, and keepalives notice a vanished peer.
    if not any_db_url.startswith("postgresql"):
        pytest.skip("SQLite holds no lock across a stalled process's transaction: one writer at a time")
    engine = create_db_engine(any_db_url)
    with engine.connect() as connection:
        idle = connection.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar()
        lock = connection.exec_driver_sql("SHOW lock_timeout").scalar()
    engine.dispose()
    assert (idle, lock) == ("20s", "30s")


def test_a_stale_holder_touches_no_row_its_successor_holds(any_db_url: str) -> None:
    # The successor's transaction holds row locks; the stale holder, resumed, writes those rows in
    # another order. Were it allowed to lock anything before its fence failed, the two would wait
    # on each other and the database would abort one of them, perhaps the rightful holder's.
    # Its fence is the first thing its transaction does: it fails at once, holding nothing. (Even
    # here, where its own deadline has not passed yet, as if its clock had not seen the freeze.)
    if not any_db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: a second writer waits, it never deadlocks")
    clock = Clock()
    first, second = pair(any_db_url, clock)
    with first.sessions.begin() as session:
        session.execute(insert(Account).values(name="a", platform="oakra", healthy=True))
    first.acquire(wait=0)
    stale = first.fenced(first.sessions)
    clock.now += timedelta(minutes=6)
    second.acquire(wait=0)
    with second.fenced(second.sessions).begin() as rightful:
        rightful.execute(update(Account).where(Account.name == "a").values(healthy=False))
        outcome: list[BaseException | None] = []

        def stale_write() -> None:
            try:
                with stale.begin() as session:
                    session.execute(update(Account).where(Account.name == "a").values(healthy=True))
                outcome.append(None)
            except BaseException as err:  # noqa: BLE001 - the outcome is what is asserted
                outcome.append(err)

        writer = threading.Thread(target=stale_write)
        writer.start()
        # Not a wait on the clock: before the fence came first, the stale write blocked here on
        # the rightful holder's row lock until that transaction ended, and this join gave up.
        writer.join(timeout=10)
        assert not writer.is_alive(), "the stale holder waited on its successor's row lock"
    assert len(outcome) == 1 and isinstance(outcome[0], LeaseLost), outcome
    with first.sessions() as session:
        assert session.scalar(select(Account.healthy).where(Account.name == "a")) is False
