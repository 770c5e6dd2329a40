"""`stocksync explain SKU`: why a number is what it is."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from sync.bootstrap import Ledger
from sync.cli.common import config_option, fail, ledger_for, load, when
from sync.cli.holds import unshown_units
from sync.config import Config
from sync.ledger import judgements, snapshot
from sync.ledger.models import Sku
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
    done about each. A listing held by a safety stop is shown first, with the command that decides
    it, and the SKU's newest held or refused readings with their reason close the list."""
    config = load(config_path)
    with ledger_for(config) as ledger:
        with ledger.store.sessions() as session:
            found = snapshot.explain(session, sku)
            judged = judgements.sku_judged(session, sku)
        unshown = _unshown(config, ledger, sku)
    if found is None:
        fail(f"{sku}: no such SKU in the ledger (it is booked at its first reconcile)", 1)
        return
    found = dataclasses.replace(found, holds=judged["holds"], read_events=judged["read_events"])
    for listing in found.listings:
        account = listing["account"]
        listing["unshown"] = unshown.get(account, 0)
        elsewhere = sum(units for other, units in unshown.items() if other != account)
        listing.update(_rules(config, account, found.pool - elsewhere))
    for hold in found.holds:
        hold["accept"] = f"stocksync accept {hold['account']} --sku {sku}"
        hold["reject"] = f"stocksync reject {hold['account']} --sku {sku}"
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(found), indent=2, default=snapshot.as_json))
    else:
        click.echo(_text(found))


def _unshown(config: Config, ledger: Ledger, sku: str) -> dict[str, int]:
    """Per account whose read may show a sale only at picking: the units sold on its listing of
    `sku` that no read has shown yet (held back from the other listings)."""
    with ledger.store.sessions() as session:
        sku_id = session.scalar(select(Sku.id).where(Sku.code == sku))
    if sku_id is None:
        return {}
    held = unshown_units(config, ledger.store.sessions, {sku: sku_id})
    return {account: units for (account, _), units in held.items()}


def _rules(config: Config, account: str, pool: int) -> dict[str, int | None]:
    try:
        settings = config.account(account)
    except StopIteration:  # an account since removed from the configuration
        return {"buffer": None, "max_quantity": None, "target": None}
    rules = AccountRules(settings.buffer, settings.max_quantity)
    return {"buffer": settings.buffer, "max_quantity": settings.max_quantity, "target": rules.target(pool)}


def _text(found: snapshot.Explanation) -> str:
    # Cycle numbers right-aligned to the widest, so the columns after them line up.
    width = max((len(str(row["cycle"])) for row in [*found.movements, *found.pushes]), default=1)
    lines = [_held(hold) for hold in found.holds]
    lines.append(f"{found.sku}: pool {found.pool} = the sum of {len(found.movements)} movements")
    platforms = {listing["account"]: listing["platform"] for listing in found.listings}
    for m in found.movements:
        flag = "  [flagged for the operator]" if m["flagged"] else ""
        lines.append(
            f"  {when(m['at'])}  cycle {m['cycle']!s:>{width}}  {m['kind']:<10} {m['quantity']:+5d}  "
            f"{m['source'] or '-':<18} {m['note']}{flag}{_why(m, platforms)}"
        )
    lines.append("listings:")
    for listing in found.listings:
        cap = "none" if listing["max_quantity"] is None else listing["max_quantity"]
        lines.append(
            f"  {listing['account']:<18} expected {listing['expected']}, last read {listing['last_observed']} "
            f"(so since {when(listing['last_observed_at'])}); buffer {listing['buffer']}, cap {cap} "
            f"-> target {listing['target']}{_unshown_note(listing)}"
        )
    lines.append("pushes:")
    for p in found.pushes:
        settled = f" -> {p['resolution']}" if p["resolution"] else ""
        if p["settled_by"] in ("quiet", "rule"):
            settled += f" [flagged: {p['settled_by']}]"  # no evidence decided it
        detail = f" ({p['detail']})" if p["detail"] else ""
        lines.append(
            f"  #{p['id']} {when(p['at'])}  cycle {p['cycle']!s:>{width}}  {p['account']:<18} "
            f"{p['observed']} -> {p['target']} "
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
    lines.append(
        "held/refused readings with their reason (newest first):"
        if found.read_events
        else "held/refused readings: none"
    )
    for e in found.read_events:
        at = f"  {when(datetime.fromisoformat(e['at']))}  {e['account']:<18} {e['kind']:<12} "
        if e.get("whole_answer"):
            lines.append(f"{at}an answer asked for this listing was refused whole: {e['reason']}")
            continue
        reading = "-" if e["quantity"] is None else e["quantity"]
        expected = "-" if e["expected"] is None else e["expected"]
        lines.append(f"{at}reading {reading}, expected {expected}: {e['reason']}")
    return "\n".join(lines)


def _unshown_note(listing: dict[str, Any]) -> str:
    if not listing.get("unshown"):
        return ""
    return (
        f"; {listing['unshown']} unit(s) of open orders here, which its read may not show yet (it may drop "
        'only at picking; sale_shows_in_read = "at_order" says it does at once): held back from the other listings'
    )


def _held(hold: dict[str, Any]) -> str:
    """The line saying a listing of the SKU is held by a safety stop, and how to decide it."""
    since = when(hold["since"])
    decided = f" [{hold['decision']} recorded, applied at the next reconcile]" if hold["decision"] else ""
    return (
        f"HELD by a safety stop on {hold['account']} since {since}: reading {hold['held']}, expected "
        f"{hold['expected']}; {hold['accept']} (the drop was real) or {hold['reject']} (the platform is wrong)"
        f"{decided}"
    )


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
