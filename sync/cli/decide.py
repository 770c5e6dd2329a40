"""`stocksync accept` and `stocksync reject`: an operator's decision on the listings a safety stop
holds. The decision is recorded in the ledger; the engine applies it at each listing's next read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from sync.cli.common import EXIT_FAILED, config_option, fail, ledger_for, load, when
from sync.config import Config
from sync.ledger import judgements, snapshot
from sync.planner import AccountRules

APPLIED_BY = "the next reconcile (the daemon's next cycle, or `stocksync reconcile`)"

_COMMON_HELP = """
A safety stop holds an account's listings when more than [sync] safety_max_drop_share of them
dropped at once with nothing to explain it (no order covering it, or a drop to zero or by more
than confirm_drop_share). Nothing of those listings is booked, and the other platforms keep
showing the pool, until the drops prove real by themselves (orders explain them), the readings
come back, or you decide.

Run with --dry-run first: it lists each held listing (SKU, what the ledger expected, the reading
held) and what the decision would do, and writes nothing. Without --dry-run the decision is
recorded for every listing the account holds (or only the --sku ones), and the next reconcile
(the daemon's next cycle, or `stocksync reconcile`) applies it at each listing's next read and
releases the listing; a stop left with no listing is closed. `stocksync status` and `stocksync
explain SKU` show what is held.

Exit 0 when done; 2 for an unknown account, an account with no listing under a safety stop, or a
--sku it does not hold (or a bad configuration).
"""

ACCEPT_HELP = (
    """Accept the drops a safety stop holds on ACCOUNT: they were real, book them.

Use it when the platform's numbers are right: a stock count, or sales made while the daemon was
stopped on a platform without an order feed (such as Oakra), so no order explains the drops. Each
held listing's reading at its next read is booked into the pool as an external movement (the
dry run shows the change and the pool before and after, from the reading held now), and the other
platforms are brought down to the new pool. If the numbers are wrong, use `stocksync reject`.
"""
    + _COMMON_HELP
)

REJECT_HELP = (
    """Reject the drops a safety stop holds on ACCOUNT: the platform's numbers are wrong.

Use it when the platform lost its stock by mistake: a bad import or a reset zeroed its catalogue,
a broken integration wrote nonsense. Each held listing's reading at its next read is taken as it
is without booking anything (the pool stays), and the platform is pushed back to the pool's
target, like any listing that drifted from it. If the drops were real, use `stocksync accept`.
"""
    + _COMMON_HELP
)


@dataclass(frozen=True)
class Plan:
    """What a decision does to one held listing."""

    sku: str
    stop: int
    expected: int
    held: int | None
    pool: int
    change: int  # what is booked into the pool (0 for a rejection)
    pool_after: int
    target: int  # what the account's listing is then brought to
    earlier_decision: str | None
    outcome: str


def _command(decision: str, help_text: str) -> click.Command:
    @click.command(name=decision, help=help_text)
    @click.argument("account")
    @config_option
    @click.option(
        "--sku",
        "only",
        multiple=True,
        help="Decide only this held SKU (repeatable; default: every listing the account holds).",
    )
    @click.option("--dry-run", is_flag=True, help="Show what the decision would do; write nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def command(account: str, config_path: str, only: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
        decide(decision, account, load(config_path), tuple(dict.fromkeys(only)), dry_run=dry_run, as_json=as_json)

    return command


accept = _command("accept", ACCEPT_HELP)
reject = _command("reject", REJECT_HELP)


def decide(decision: str, account: str, config: Config, only: tuple[str, ...], *, dry_run: bool, as_json: bool) -> None:
    """Show (and unless `dry_run`, record) `decision` on the listings `account`'s open stops hold."""
    names = [a.name for a in config.accounts]
    if account not in names:
        fail(f"unknown account {account!r}; the configured accounts are: {', '.join(names)}")
        return
    settings = config.account(account)
    rules = AccountRules(settings.buffer, settings.max_quantity)
    with ledger_for(config) as ledger:
        try:
            with ledger.store.sessions.begin() as session:
                stops = judgements.open_stops(session, account)
                held = [{**listing, "stop": stop["id"]} for stop in stops for listing in stop["listings"]]
                _check(decision, account, held, only)
                if only:
                    held = [listing for listing in held if listing["sku"] in only]
                pools = snapshot.pools(session, [listing["sku"] for listing in held])
                verb = "would" if dry_run else "will"
                plans = [_plan(decision, listing, pools.get(listing["sku"], 0), rules, verb) for listing in held]
                recorded = 0 if dry_run else judgements.decide(session, account, decision, only)
        except SQLAlchemyError as err:
            cause = getattr(err, "orig", None) or err
            first_line = str(cause).splitlines()[0] if str(cause) else ""
            fail(f"the ledger could not be read or written: {type(cause).__name__}: {first_line}", EXIT_FAILED)
            return
    shown_stops = [{key: stop[key] for key in ("id", "opened_at", "reason")} for stop in stops]
    if as_json:
        data = {
            "account": account,
            "decision": decision,
            "dry_run": dry_run,
            "stops": shown_stops,
            "listings": [asdict(plan) for plan in plans],
            "recorded": recorded,
            "applied_by": APPLIED_BY,
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_text(decision, account, shown_stops, plans, only, dry_run, recorded))


def _check(decision: str, account: str, held: list[dict[str, Any]], only: tuple[str, ...]) -> None:
    """Exit 2 when there is nothing to decide, or a --sku the account does not hold."""
    if not held:
        fail(f"nothing to {decision}: account {account} holds no listing under a safety stop")
    codes = {listing["sku"] for listing in held}
    missing = [sku for sku in only if sku not in codes]
    if missing:
        listed = ", ".join(sorted(codes)[:10]) + (f" and {len(codes) - 10} more" if len(codes) > 10 else "")
        fail(
            f"account {account} holds no listing of {', '.join(missing)} under a safety stop "
            f"(it holds: {listed}); nothing was recorded"
        )


def _plan(decision: str, listing: dict[str, Any], pool: int, rules: AccountRules, verb: str) -> Plan:
    """One held listing's expected, held reading and what `decision` does to it."""
    expected, held = int(listing["expected"]), listing["held"]
    if decision == "accept":
        change = 0 if held is None else int(held) - expected
        outcome = f"{verb} book {change:+d} (pool {pool} -> {pool + change})"
        if held is None:
            outcome = f"{verb} book the listing's next reading (no reading is held)"
    else:
        change = 0
        reading = "its next reading" if held is None else str(held)
        outcome = (
            f"{verb} adopt {reading} unbooked and push the platform back to the pool's target ({rules.target(pool)})"
        )
    return Plan(
        sku=listing["sku"],
        stop=int(listing["stop"]),
        expected=expected,
        held=None if held is None else int(held),
        pool=pool,
        change=change,
        pool_after=pool + change,
        target=rules.target(pool + change),
        earlier_decision=listing["decision"],
        outcome=outcome,
    )


def _text(
    decision: str,
    account: str,
    stops: list[dict[str, Any]],
    plans: list[Plan],
    only: tuple[str, ...],
    dry_run: bool,
    recorded: int,
) -> str:
    lines = [f"safety stop #{s['id']} on {account} since {when(s['opened_at'])}: {s['reason']}" for s in stops]
    width = max((len(plan.sku) for plan in plans), default=0)
    for plan in plans:
        held = "?" if plan.held is None else plan.held
        earlier = ""
        if plan.earlier_decision:
            earlier = f"  [{plan.earlier_decision} already recorded, not applied yet]"
        lines.append(f"  {plan.sku:<{width}}  expected {plan.expected}, held reading {held}: {plan.outcome}{earlier}")
    if dry_run:
        command = f"stocksync {decision} {account}" + "".join(f" --sku {sku}" for sku in only)
        lines.append(f"dry run: nothing was written. `{command}` records this decision; {APPLIED_BY} applies it.")
    else:
        lines.append(
            f"{decision}ed: the decision is recorded for {recorded} listing(s) of {account}; "
            f"{APPLIED_BY} applies it at each listing's next read."
        )
    return "\n".join(lines)
