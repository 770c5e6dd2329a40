"""Prometheus metrics: what the daemon counts as it works, and what the ledger says at scrape time.

Counters live in this process (`METRICS`); the states that must survive a restart or be true across
replicas (in-doubt pushes open, oversells open, each account's last success) are read from the
ledger when Prometheus scrapes (`LedgerCollector`). `sync.health` serves them on `/metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.models import Account, Listing, Oversell, Push, PushState


@dataclass
class Metrics:
    """The daemon's own counters, registered on one registry."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.cycles = Counter(
            "stocksync_cycles", "Reconcile cycles by trigger and outcome", ["trigger", "outcome"], registry=r
        )
        self.cycle_seconds = Histogram(
            "stocksync_cycle_duration_seconds",
            "How long a cycle took",
            ["trigger"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.api_calls = Counter(
            "stocksync_api_calls",
            "HTTP calls to platforms by HTTP status (or error)",
            ["platform", "account", "status"],
            registry=r,
        )
        self.pushes = Counter("stocksync_pushes", "Pushes by outcome", ["platform", "account", "outcome"], registry=r)
        self.rate_limit_waits = Counter(
            "stocksync_rate_limit_waits", "Waits a platform's rate limit imposed", ["platform", "account"], registry=r
        )
        self.rate_limit_wait_seconds = Counter(
            "stocksync_rate_limit_wait_seconds",
            "Seconds spent waiting for rate limits",
            ["platform", "account"],
            registry=r,
        )
        self.orders_booked = Counter("stocksync_orders_booked", "New orders booked from feeds", ["account"], registry=r)
        self.oversells = Counter("stocksync_oversells", "Oversells detected (or deepened)", registry=r)
        self.order_actions = Counter(
            "stocksync_order_actions", "Actions on oversold orders by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.drifting = Gauge("stocksync_listings_drifting", "Listings drifting at the last sweep", registry=r)
        self.in_doubt_settled = Counter(
            "stocksync_in_doubt_settled",
            "Pushes in doubt settled, by platform and what decided (orders; quiet and rule are flagged: undecidable)",
            ["platform", "account", "by", "applied"],
            registry=r,
        )
        self.leases_lost = Counter(
            "stocksync_leases_lost", "Cycles that lost their lease to another reconciler midway", registry=r
        )
        self.bad_reads = Counter(
            "stocksync_bad_reads", "Reads not believed, by kind", ["platform", "account", "problem"], registry=r
        )
        self.held_drops = Counter(
            "stocksync_held_drops",
            "Drops held for confirmation or stopped, by how they ended",
            ["account", "outcome"],
            registry=r,
        )


METRICS = Metrics()


class LedgerCollector(Collector):
    """States read from the ledger at scrape time."""

    def __init__(self, sessions: sessionmaker[Session], account_names: Callable[[], list[str]]) -> None:
        self.sessions = sessions
        self.account_names = account_names

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One query per family; a ledger that cannot be read yields nothing (readiness says why)."""
        try:
            with self.sessions() as session:
                in_doubt = session.scalar(
                    select(func.count()).select_from(Push).where(Push.state == PushState.IN_DOUBT.value)
                )
                oversells = session.scalar(
                    select(func.count()).select_from(Oversell).where(Oversell.closed_at.is_(None))
                )
                accounts = list(
                    session.execute(select(Account.name, Account.last_success_at, Account.healthy, Account.bad_since))
                )
                stopped = dict(
                    session.execute(
                        select(Account.name, func.count(Listing.id))
                        .join(Listing, Listing.account_id == Account.id)
                        .where(Listing.stop_id.is_not(None))
                        .group_by(Account.name)
                    ).all()
                )
        except Exception:  # noqa: BLE001 - a scrape must not fail because the ledger is down
            return
        yield GaugeMetricFamily("stocksync_in_doubt_pushes", "Pushes in doubt, not yet settled", value=in_doubt or 0)
        yield GaugeMetricFamily("stocksync_oversells_open", "Oversells not yet closed", value=oversells or 0)
        last = GaugeMetricFamily(
            "stocksync_account_last_success_timestamp_seconds", "When each account last synced", labels=["account"]
        )
        healthy = GaugeMetricFamily(
            "stocksync_account_healthy", "1 when the account's last cycle succeeded", labels=["account"]
        )
        badly = GaugeMetricFamily(
            "stocksync_account_answering_badly", "1 while the account's answers are lately bad", labels=["account"]
        )
        held = GaugeMetricFamily(
            "stocksync_safety_stop_listings", "Listings held by an open safety stop", labels=["account"]
        )
        configured = set(self.account_names())
        for name, at, ok, bad_since in accounts:
            if name not in configured:
                continue
            if at is not None:
                last.add_metric([name], at.timestamp())
            healthy.add_metric([name], 1.0 if ok else 0.0)
            badly.add_metric([name], 0.0 if bad_since is None else 1.0)
            held.add_metric([name], float(stopped.get(name, 0)))
        yield last
        yield healthy
        yield badly
        yield held
