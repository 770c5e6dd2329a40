"""`stocksync explain SKU`: why a number is what it is."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from sync.cli.common import config_option, fail, ledger_for, load
from sync.config import Config
from sync.ledger import snapshot
from sync.planner import AccountRules
from sync.platforms import PLATFORMS


@click.command()
@click.argument("sku")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(sku: str, config_path: str, as_json: bool) -> None:
    """Show the chain behind a SKU's numbers: the pool and every movement that made it (source,
    amount, time, cycle, and the orders that explain it, or that none does), each listing's
    expected and last read quantity with the buffer and cap applied, every push with its outcome
    and how an in-doubt one was settled, the SKU's newest orders, and its oversells with what was
    done about each."""
    config = load(config_path)
    with ledger_for(config) as ledger, ledger.store.sessions() as session:
        found = snapshot.explain(session, sku)
    if found is None:
        fail(f"{sku}: no such SKU in the ledger (it is booked at its first reconcile)", 1)
        return
    for listing in found.listings:
        listing.update(_rules(config, listing["account"], found.pool))
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(found), indent=2, default=snapshot.as_json))
    else:
        click.echo(_text(found))


def _rules(config: Config, account: str, pool: int) -> dict[str, int | None]:
    try:
        settings = config.account(account)
    except StopIteration:  # an account since removed from the configuration
        return {"buffer": None, "max_quantity": None, "target": None}
    rules = AccountRules(settings.buffer, settings.max_quantity)
    return {"buffer": settings.buffer, "max_quantity": settings.max_quantity, "target": rules.target(pool)}


def _text(found: snapshot.Explanation) -> str:
    when = lambda value: value.strftime("%Y-%m-%d %H:%M:%S") if value else "never"  # noqa: E731
    lines = [f"{found.sku}: pool {found.pool} = the sum of {len(found.movements)} movements"]
    platforms = {listing["account"]: listing["platform"] for listing in found.listings}
    for m in found.movements:
        flag = "  [flagged for the operator]" if m["flagged"] else ""
        lines.append(
            f"  {when(m['at'])}  cycle {m['cycle']}  {m['kind']:<10} {m['quantity']:+5d}  "
            f"{m['source'] or '-':<18} {m['note']}{flag}{_why(m, platforms)}"
        )
    lines.append("listings:")
    for listing in found.listings:
        cap = "none" if listing["max_quantity"] is None else listing["max_quantity"]
        lines.append(
            f"  {listing['account']:<18} expected {listing['expected']}, last read {listing['last_observed']} "
            f"(so since {when(listing['last_observed_at'])}); buffer {listing['buffer']}, cap {cap} "
            f"-> target {listing['target']}"
        )
    lines.append("pushes:")
    for p in found.pushes:
        settled = f" -> {p['resolution']}" if p["resolution"] else ""
        detail = f" ({p['detail']})" if p["detail"] else ""
        lines.append(
            f"  #{p['id']} {when(p['at'])}  cycle {p['cycle']}  {p['account']:<18} {p['observed']} -> {p['target']} "
            f"({p['delta']:+d})  {p['state']}{settled}{detail}"
        )
    if found.orders:
        lines.append("orders (newest first):")
        for o in found.orders:
            placed = when(o["placed_at"])
            lines.append(f"  {placed}  {o['account']:<18} order {o['order']}  {o['quantity']} unit(s)  {o['status']}")
    for o in found.oversells:
        state = f"closed {when(o['closed_at'])}" if o["closed_at"] else "OPEN"
        lines.append(f"oversell: {o['shortfall']} unit(s) short, opened {when(o['opened_at'])}, {state}")
        for a in o["actions"]:
            what = f"{a['kind']:<6} {a['account']}: order {a['order']} ({a['units']} unit(s))"
            lines.append(f"  {what}  {a['state']}  {a['detail']}")
    return "\n".join(lines)


def _why(movement: dict[str, Any], platforms: dict[str, str]) -> str:
    """What explains an external movement: its orders, or the fact that none does."""
    if movement["kind"] != "external":
        return ""
    explained = "; ".join(f"order {o['order']} ({o['units']:+d}, {o['status']})" for o in movement["orders"])
    left = abs(movement["quantity"]) - movement["explained"]
    platform = platforms.get(movement["source"] or "", "")
    if platform not in PLATFORMS or not PLATFORMS[platform].has_order_feed:
        return f"  <- {platform or 'its platform'} has no order feed"
    if left == 0:
        return f"  <- {explained}"
    unexplained = f"{left} unit(s) no order explains" if explained else "no order explains it"
    return f"  <- {explained + '; ' if explained else ''}{unexplained}"
