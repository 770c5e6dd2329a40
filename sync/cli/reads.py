"""The "reads" part of `stocksync status`: how each account has been answering (bad reads and held
drops in the last hour) and the open safety stops with the listings they hold."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from sync.cli.common import when
from sync.errors import ReadProblem
from sync.ledger import judgements
from sync.ledger.models import Account

WINDOW = timedelta(hours=1)
BAD_KINDS = frozenset(problem.value for problem in ReadProblem)
SHOWN_LISTINGS = 20  # per stop in the text; --json has them all


def reads_view(session: Session, accounts: list[Account], now: datetime) -> dict[str, Any]:
    """Per account its answering state and last hour's read events by kind, and the open stops
    with their listings and the commands that decide them."""
    counts = judgements.bad_read_counts(session, now - WINDOW)
    shown: dict[str, Any] = {}
    for account in accounts:
        kinds = sorted(counts.get(account.name, {}).items())
        shown[account.name] = {
            "answering_badly": account.bad_since is not None,
            "bad_since": account.bad_since,
            "last_bad_at": account.last_bad_at,
            "bad_reads_last_hour": {kind: n for kind, n in kinds if kind in BAD_KINDS},
            "held_drops_last_hour": {kind: n for kind, n in kinds if kind not in BAD_KINDS},
        }
    stops = judgements.open_stops(session)
    for stop in stops:
        stop["accept"] = f"stocksync accept {stop['account']} --dry-run"
        stop["reject"] = f"stocksync reject {stop['account']} --dry-run"
    return {"accounts": shown, "stops": stops}


def reads_text(reads: dict[str, Any]) -> str:
    """The reads part as text: one line per account, then each open stop and its listings."""
    lines = ["reads (last hour; bad reads are not booked, suspicious drops are read again first):"]
    for name, account in reads["accounts"].items():
        if account["answering_badly"]:
            last = when(account["last_bad_at"])
            state = f"answering BADLY since {when(account['bad_since'])} (last bad read {last})"
        else:
            state = "answering well"
        bad = _counts(account["bad_reads_last_hour"])
        held = _counts(account["held_drops_last_hour"])
        lines.append(f"  {name:<20} {state}; bad reads: {bad}; held drops: {held}")
    if not reads["stops"]:
        lines.append("safety stops: none")
    for stop in reads["stops"]:
        listings = stop["listings"]
        lines.append(
            f"SAFETY STOP #{stop['id']} on {stop['account']} since {when(stop['opened_at'])}: {stop['reason']}; "
            f"{len(listings)} listing(s) held, nothing of theirs booked:"
        )
        width = max((len(listing["sku"]) for listing in listings[:SHOWN_LISTINGS]), default=0)
        for listing in listings[:SHOWN_LISTINGS]:
            decided = (
                f"  [{listing['decision']} recorded, applied at the next reconcile]" if listing["decision"] else ""
            )
            sku, expected, held = listing["sku"], listing["expected"], listing["held"]
            lines.append(f"    {sku:<{width}}  expected {expected}, held reading {held}{decided}")
        if len(listings) > SHOWN_LISTINGS:
            lines.append(f"    ... and {len(listings) - SHOWN_LISTINGS} more (--json lists them all)")
        lines.append(
            f"  decide: `{stop['accept']}` (the drops were real) or `{stop['reject']}` (the numbers are wrong)"
        )
    return "\n".join(lines)


def _counts(kinds: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "none"
