"""`stocksync status`: account health, the last cycle, per SKU the pool and its listings, how the
reads went (bad reads, held drops, safety stops), and the order side: feeds, open oversells, order
actions and drifting listings."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from sync.bootstrap import Ledger
from sync.cli.common import config_option, ledger_for, load, when
from sync.cli.holds import unshown_units
from sync.cli.reads import reads_text, reads_view
from sync.cli.sku_table import SkuLine, sku_lines, table_text
from sync.config import Config
from sync.ledger import order_views, snapshot
from sync.ledger.models import Account, Cycle, Lease, Sku
from sync.ledger.orders import OrderStore
from sync.ledger.oversells import Drift
from sync.order_flow import find_drift
from sync.planner import AccountRules
from sync.platforms import PLATFORMS


@click.command()
@config_option
@click.option("--sku", "only", multiple=True, help="Show only this SKU (repeatable).")
@click.option("--out-of-step", is_flag=True, help="Show only SKUs with a listing out of step with the pool.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many SKUs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with totals).")
def status(config_path: str, only: tuple[str, ...], out_of_step: bool, limit: int, as_json: bool) -> None:
    """Show a summary, then each account's health, the last cycle, per SKU the pool and what each
    listing is expected to show (marking those out of step), in-doubt pushes, how each account has
    been answering (bad reads and held drops in the last hour) with the open safety stops and the
    listings they hold, the leases held (which reconciler or replica works on what), order feeds,
    open oversells (and the orders alerted or cancelled for them), order actions, and listings
    drifting with no order to explain their changes. Times are this machine's, their zone named."""
    config = load(config_path)
    with ledger_for(config) as ledger, ledger.store.sessions() as session:
        accounts = snapshot.accounts(session)
        cycle = snapshot.last_cycle(session)
        rules = {a.name: AccountRules(a.buffer, a.max_quantity) for a in config.accounts}
        views = snapshot.skus(session, list(only) or None)
        ids = dict(
            session.execute(
                select(Sku.code, Sku.id).where(Sku.code.in_(only)) if only else select(Sku.code, Sku.id)
            ).all()
        )
        every = sku_lines(views, rules, unshown_units(config, ledger.store.sessions, ids))
        chosen = [line for line in every if line.out_of_step] if out_of_step else every
        shown = chosen[:limit]
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
        totals = {
            "accounts": len(accounts),
            "accounts_broken": sum(1 for a in accounts if not a.healthy),
            "skus": len(every),
            "skus_out_of_step": sum(1 for line in every if line.out_of_step),
            "skus_listed": len(chosen),
            "skus_shown": len(shown),
            "pushes_in_doubt": sum(n["open"] for n in doubts.values()),
            "open_oversells": len(orders["open_oversells"]),
            "safety_stops": len(reads["stops"]),
            "drifting_listings": len(orders["drifting"]),
        }
        if as_json:
            data = {"totals": totals} | _json(accounts, cycle, shown) | {"in_doubt_pushes": doubts, "reads": reads}
            click.echo(json.dumps(data | orders, indent=2, default=snapshot.as_json))
        else:
            click.echo(_summary(totals))
            click.echo(_text(accounts, cycle))
            names = [a.name for a in config.accounts]
            click.echo(_skus_text(totals, shown, names, out_of_step))
            click.echo(_doubts_text(doubts))
            click.echo(reads_text(reads))
            click.echo(_orders_text(orders))


def _summary(t: dict[str, int]) -> str:
    broken = f" ({t['accounts_broken']} BROKEN)" if t["accounts_broken"] else ""
    return (
        f"summary: {t['accounts']} accounts{broken}; {t['skus']:,} SKUs, {t['skus'] - t['skus_out_of_step']:,} in "
        f"step, {t['skus_out_of_step']:,} out of step; {t['pushes_in_doubt']} pushes in doubt; "
        f"{t['open_oversells']} open oversells; {t['safety_stops']} safety stops; "
        f"{t['drifting_listings']} drifting listings"
    )


def _skus_text(t: dict[str, int], shown: list[SkuLine], accounts: list[str], out_of_step: bool) -> str:
    which = "out of step " if out_of_step else ""
    more = "" if t["skus_shown"] == t["skus_listed"] else " (--limit N for more, --sku CODE for one)"
    lines = [
        f"skus {which}(showing {t['skus_shown']:,} of {t['skus_listed']:,}{more}); a cell is what the listing "
        "is expected to show; * not what its rules give from the pool (`stocksync explain SKU` says why), "
        "? a push in doubt:"
    ]
    width = shutil.get_terminal_size((120, 24)).columns
    lines += [f"  {row}" for row in table_text(shown, accounts, width - 2)]
    return "\n".join(lines)


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
        lines.append(f"  {lease['name']:<20} {lease['holder']} until {when(lease['expires_at'])}")
    feeds = ", ".join(
        f"{f['account']} ({f['orders']} orders, last page {when(f['last_page_at'])})" for f in orders["feeds"]
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
        lines.append(f"OVERSOLD {o['sku']}: {o['shortfall']} unit(s) short since {when(o['opened_at'])}: {acted}")
    if not orders["drifting"]:
        lines.append("drifting listings: none")
    for d in orders["drifting"]:
        lines.append(
            f"DRIFTING {d['account']} {d['sku']}: {d['movements']} changes ({d['units']} units) no order explains"
        )
    return "\n".join(lines)


def _json(accounts: list[Account], cycle: Cycle | None, skus: list[SkuLine]) -> dict[str, Any]:
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
            {
                "sku": line.view.sku,
                "pool": line.view.pool,
                "out_of_step": line.out_of_step,
                "listings": [
                    listing.__dict__ | {"rules_give": line.targets.get(listing.account)}
                    for listing in line.view.listings
                ],
            }
            for line in skus
        ],
    }


def _text(accounts: list[Account], cycle: Cycle | None) -> str:
    lines = ["accounts:"]
    for a in accounts:
        health = "ok" if a.healthy else f"BROKEN since {when(a.last_error_at)}: {a.last_error}"
        lines.append(f"  {a.name:<20} {a.platform:<10} last success {when(a.last_success_at)}  {health}")
    if cycle is None:
        lines.append("last cycle: none yet")
    else:
        c = cycle
        lines.append(
            f"last cycle: #{c.id} {c.trigger} {c.outcome}, started {when(c.started_at)}, "
            f"{c.movements} movements, {c.pushes_planned} pushes ({c.pushes_confirmed} confirmed, "
            f"{c.pushes_failed} failed, {c.pushes_in_doubt} in doubt)"
        )
    return "\n".join(lines)
