"""`stocksync explain SKU`: why a number is what it is."""

from __future__ import annotations

import dataclasses
import json

import click

from sync.cli.common import config_option, fail, ledger_for, load
from sync.config import Config
from sync.ledger import snapshot
from sync.planner import AccountRules


@click.command()
@click.argument("sku")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(sku: str, config_path: str, as_json: bool) -> None:
    """Show the chain behind a SKU's numbers: the pool and every movement that made it (source,
    amount, time, cycle), each listing's expected and last read quantity with the buffer and cap
    applied, and every push with its outcome and how an in-doubt one was settled."""
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
    for m in found.movements:
        flag = "  [flagged for the operator]" if m["flagged"] else ""
        lines.append(
            f"  {when(m['at'])}  cycle {m['cycle']}  {m['kind']:<10} {m['quantity']:+5d}  "
            f"{m['source'] or '-':<18} {m['note']}{flag}"
        )
    lines.append("listings:")
    for listing in found.listings:
        cap = "none" if listing["max_quantity"] is None else listing["max_quantity"]
        lines.append(
            f"  {listing['account']:<18} expected {listing['expected']}, last read {listing['last_observed']} "
            f"at {when(listing['last_observed_at'])}; buffer {listing['buffer']}, cap {cap} "
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
    return "\n".join(lines)
