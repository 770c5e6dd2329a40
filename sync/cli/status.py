"""`stocksync status`: account health, the last cycle, per SKU the pool and its listings, how the
reads went (bad reads, held drops, safety stops), and the order side: feeds, open oversells, order
actions and drifting listings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from sync.bootstrap import Ledger
from sync.cli.common import config_option, ledger_for, load
from sync.cli.reads import reads_text, reads_view
from sync.config import Config
from sync.ledger import order_views, snapshot
from sync.ledger.models import Account, Cycle, Lease
from sync.ledger.orders import OrderStore
from sync.ledger.oversells import Drift
from sync.order_flow import find_drift
from sync.platforms import PLATFORMS


@click.command()
@config_option
@click.option("--sku", "only", multiple=True, help="Show only this SKU (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many SKUs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: str, only: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Show each account's health, the last cycle, per SKU the pool and each listing, in-doubt
    pushes, how each account has been answering (bad reads and held drops in the last hour) with
    the open safety stops and the listings they hold, the leases held (which reconciler or replica
    works on what), order feeds, open oversells (and the orders alerted or cancelled for them),
    order actions, and listings drifting with no order to explain their changes."""
    config = load(config_path)
    with ledger_for(config) as ledger, ledger.store.sessions() as session:
        accounts = snapshot.accounts(session)
        cycle = snapshot.last_cycle(session)
        skus = snapshot.skus(session, list(only) or None, limit)
        doubts = snapshot.in_doubt_counts(session)
        reads = reads_view(session, accounts, datetime.now(UTC))
        leases = [
            {"name": lease.name, "holder": lease.holder, "expires_at": lease.expires_at}
            for lease in session.scalars(select(Lease).order_by(Lease.name))
            if lease.expires_at > datetime.now(UTC)
        ]
        orders = {
            "leases": leases,
            "feeds": order_views.feeds(session),
            "open_oversells": order_views.oversells(session),
            "order_actions": order_views.action_counts(session),
            "drifting": [drift.__dict__ for drift in _drifting(config, ledger)],
        }
        if as_json:
            data = _json(accounts, cycle, skus) | {"in_doubt_pushes": doubts, "reads": reads} | orders
            click.echo(json.dumps(data, indent=2, default=snapshot.as_json))
        else:
            click.echo(_text(accounts, cycle, skus))
            click.echo(_doubts_text(doubts))
            click.echo(reads_text(reads))
            click.echo(_orders_text(orders))


def _doubts_text(doubts: dict[str, dict[str, int]]) -> str:
    """Pushes in doubt per platform: open, and settled by orders or flagged (quiet listing, rule)."""
    if not doubts:
        return "in-doubt pushes: none"
    lines = ["in-doubt pushes (applied / not applied):"]
    for platform, n in sorted(doubts.items()):
        pairs = {by: f"{n[by + '_applied']}/{n[by + '_not_applied']}" for by in ("orders", "quiet", "rule", "adopted")}
        lines.append(
            f"  {platform}: {n['open']} open; by orders {pairs['orders']}; flagged: quiet listing "
            f"{pairs['quiet']}, timeout rule {pairs['rule']}; adopted afresh {pairs['adopted']}"
        )
    return "\n".join(lines)


def _drifting(config: Config, ledger: Ledger) -> list[Drift]:
    feed_accounts = [a.name for a in config.accounts if PLATFORMS[a.platform].has_order_feed]
    return find_drift(OrderStore(ledger.store.sessions), config, feed_accounts, datetime.now(UTC))


def _orders_text(orders: dict[str, Any]) -> str:
    lines = [f"leases held: {len(orders['leases']) or 'none'}"]
    for lease in orders["leases"]:
        lines.append(f"  {lease['name']:<20} {lease['holder']} until {lease['expires_at']:%H:%M:%S}")
    feeds = ", ".join(
        f"{f['account']} ({f['orders']} orders, last page {f['last_page_at']:%Y-%m-%d %H:%M:%S})"
        for f in orders["feeds"]
    )
    lines.append(f"order feeds: {feeds or 'none read yet'}")
    actions = ", ".join(f"{k} {v}" for k, v in sorted(orders["order_actions"].items()))
    lines.append(f"order actions: {actions or 'none'}")
    if not orders["open_oversells"]:
        lines.append("open oversells: none")
    for o in orders["open_oversells"]:
        acted = (
            "; ".join(f"{a['kind']} {a['account']}:{a['order']} {a['state']}" for a in o["actions"]) or "no order found"
        )
        lines.append(
            f"OVERSOLD {o['sku']}: {o['shortfall']} unit(s) short since {o['opened_at']:%Y-%m-%d %H:%M:%S}: {acted}"
        )
    if not orders["drifting"]:
        lines.append("drifting listings: none")
    for d in orders["drifting"]:
        lines.append(
            f"DRIFTING {d['account']} {d['sku']}: {d['movements']} changes ({d['units']} units) no order explains"
        )
    return "\n".join(lines)


def _json(accounts: list[Account], cycle: Cycle | None, skus: list[snapshot.SkuView]) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "name": a.name,
                "platform": a.platform,
                "healthy": a.healthy,
                "last_success_at": a.last_success_at,
                "last_error_at": a.last_error_at,
                "last_error": a.last_error,
            }
            for a in accounts
        ],
        "last_cycle": None
        if cycle is None
        else {
            key: getattr(cycle, key)
            for key in (
                "id",
                "trigger",
                "started_at",
                "finished_at",
                "outcome",
                "movements",
                "pushes_planned",
                "pushes_confirmed",
                "pushes_failed",
                "pushes_in_doubt",
                "accounts_failed",
                "error",
            )
        },
        "skus": [
            {"sku": s.sku, "pool": s.pool, "listings": [listing.__dict__ for listing in s.listings]} for s in skus
        ],
    }


def _text(accounts: list[Account], cycle: Cycle | None, skus: list[snapshot.SkuView]) -> str:
    lines = ["accounts:"]
    for a in accounts:
        health = "ok" if a.healthy else f"BROKEN since {a.last_error_at:%Y-%m-%d %H:%M:%S}: {a.last_error}"
        success = a.last_success_at.strftime("%Y-%m-%d %H:%M:%S") if a.last_success_at else "never"
        lines.append(f"  {a.name:<20} {a.platform:<10} last success {success}  {health}")
    if cycle is None:
        lines.append("last cycle: none yet")
    else:
        c = cycle
        lines.append(
            f"last cycle: #{c.id} {c.trigger} {c.outcome}, started {c.started_at:%Y-%m-%d %H:%M:%S}, "
            f"{c.movements} movements, {c.pushes_planned} pushes ({c.pushes_confirmed} confirmed, "
            f"{c.pushes_failed} failed, {c.pushes_in_doubt} in doubt)"
        )
    lines.append("skus (pool | account: expected to show (last read before our push) ...):")
    for s in skus:
        cells = []
        for listing in s.listings:
            read = "-" if listing.last_observed is None else str(listing.last_observed)
            doubt = " IN DOUBT" if listing.in_doubt else ""
            cells.append(f"{listing.account}: {listing.expected} (last read {read}){doubt}")
        lines.append(f"  {s.sku:<24} {s.pool:>6} | " + "  ".join(cells))
    return "\n".join(lines)
