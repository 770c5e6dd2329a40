"""One reconciler at a time: the lease row, its expiry, and fencing of plan commits."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import pytest

from sync.ledger.db import create_db_engine, session_factory
from sync.ledger.lease import LeaseBusy, LeaseLost, ReconcileLease


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def leases(url: str, clock: Clock) -> tuple[ReconcileLease, ReconcileLease]:
    sessions = session_factory(create_db_engine(url))
    ttl = timedelta(minutes=5)
    return ReconcileLease(sessions, clock, ttl, holder="first"), ReconcileLease(sessions, clock, ttl, holder="second")


def test_one_holder_at_a_time_and_release(any_db_url: str) -> None:
    clock = Clock()
    first, second = leases(any_db_url, clock)
    first.acquire(wait=0)
    with pytest.raises(LeaseBusy, match="another reconciler holds the ledger lock \\(first"):
        second.acquire(wait=0)
    first.renew()
    first.release()
    clock.now += timedelta(seconds=1)
    second.acquire(wait=0)
    assert second.current().holder == "second"  # type: ignore[union-attr]


def test_a_dead_holder_is_taken_over_when_its_lease_ends_and_is_fenced_off(any_db_url: str) -> None:
    clock = Clock()
    first, second = leases(any_db_url, clock)
    first.acquire(wait=0)
    clock.now += timedelta(minutes=6)  # the first holder stalled past its lease
    second.acquire(wait=0)
    with pytest.raises(LeaseLost):
        first.renew()  # it can no longer commit anything
    with pytest.raises(LeaseLost), first.sessions.begin() as session:
        first.extend(session)
    second.renew()


def test_waiting_is_bounded(any_db_url: str) -> None:
    clock = Clock()
    first, second = leases(any_db_url, clock)
    first.acquire(wait=0)
    naps: list[float] = []
    with pytest.raises(LeaseBusy):
        second.acquire(wait=0.05, poll=0.01, sleep=naps.append)
    assert naps  # it did wait before giving up


def test_a_dead_local_holder_is_taken_over_at_once(any_db_url: str) -> None:
    clock = Clock()
    sessions = session_factory(create_db_engine(any_db_url))
    gone = f"{socket.gethostname()}:{2**22 + 12345}:dead"  # above Linux's pid_max: no such process
    ReconcileLease(sessions, clock, holder=gone).acquire(wait=0)
    me = ReconcileLease(sessions, clock, holder=f"{socket.gethostname()}:{os.getpid()}:me")
    me.acquire(wait=0)  # no waiting for the dead holder's lease to run out
    with pytest.raises(LeaseBusy):  # a live local holder, or one on another host, is respected
        ReconcileLease(sessions, clock, holder="elsewhere:1:x").acquire(wait=0)
