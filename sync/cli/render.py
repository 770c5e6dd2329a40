"""Turning a CycleReport into text for people and JSON for machines."""

from __future__ import annotations

from typing import Any

from sync.report import CycleReport


def report_json(report: CycleReport) -> dict[str, Any]:
    """A machine-readable summary of a cycle."""
    return {
        "cycle": report.cycle_id,
        "trigger": report.trigger,
        "dry_run": report.dry_run,
        "ok": report.ok,
        "stopped": report.stopped,
        "lease_lost": report.lease_lost,
        "accounts": {
            name: {
                "platform": run.platform,
                "ok": run.ok,
                "error": run.error,
                "error_kind": run.error_kind,
                "observed": run.observed,
                "skipped": run.skipped,
                "bad_reads": dict(run.bad),
                "held": run.held,
                "confirmed": run.confirmed,
                "stopped": run.stopped,
            }
            for name, run in report.accounts.items()
        },
        "movements": [
            {
                "sku": m.sku,
                "account": m.account,
                "quantity": m.quantity,
                "kind": m.kind.value,
                "note": m.note,
                "flagged": m.flagged,
            }
            for m in report.movements
        ],
        "pushes": [
            {
                "sku": p.push.sku,
                "account": p.push.account,
                "observed": p.push.observed,
                "target": p.push.target,
                "delta": p.push.delta,
                "outcome": p.outcome,
                "detail": p.detail,
            }
            for p in report.pushes
        ],
        "waiting": [{"sku": sku, "account": account, "reason": reason} for sku, account, reason in report.waiting],
        "in_doubt_settled": report.settled,
        "orders": {
            "pages": report.feeds.pages,
            "new_orders": report.feeds.new_orders,
            "status_changes": report.feeds.status_changes,
            "attributed_units": report.feeds.attributed_units,
            "feeds_failed": report.feeds.failed,
            "fast_path_skus": report.fast_skus,
        },
        "oversells": [
            {"sku": o.sku, "shortfall": o.shortfall, "orders": [a.__dict__ for a in o.acts]} for o in report.oversells
        ],
        "drifting": [d.__dict__ for d in report.drifting],
    }


def report_text(report: CycleReport) -> str:
    """A readable summary: accounts, then movements and pushes."""
    lines = []
    title = "dry run: nothing was written or sent" if report.dry_run else f"cycle {report.cycle_id}"
    broken = [name for name, run in report.accounts.items() if not run.ok]
    ending = "complete"
    if report.lease_lost:
        ending = "LEASE LOST midway: another reconciler took the ledger over; nothing more was written"
    elif report.stopped:
        ending = "stopped early"
    elif broken and len(broken) == len(report.accounts):
        ending = "FAILED: no account could be synced"
    elif broken:
        ending = f"partial: {len(broken)} of {len(report.accounts)} accounts failed ({', '.join(broken)})"
    lines.append(f"{title} ({ending})")
    lines.append("accounts:")
    for name, run in report.accounts.items():
        state = "ok" if run.ok else f"FAILED ({run.error_kind}): {run.error}"
        skipped = f", {len(run.skipped)} skipped" if run.skipped else ""
        lines.append(f"  {name:<20} {run.platform:<10} {run.observed} observed{skipped}  {state}")
        if run.bad or run.held or run.stopped:
            bad = ", ".join(f"{n} {kind}" for kind, n in sorted(run.bad.items())) or "none"
            lines.append(
                f"  {'':<20} bad reads: {bad}; drops held {run.held}, confirmed {run.confirmed}; "
                f"{run.stopped} listings under a safety stop"
                + (f" (stocksync accept {name} --dry-run)" if run.stopped else "")
            )
    if report.movements:
        lines.append(f"movements ({len(report.movements)}):")
        for m in report.movements:
            source = m.account or "-"
            flag = "  [flagged]" if m.flagged else ""
            lines.append(f"  {m.sku:<24} {m.quantity:+6d}  {m.kind.value:<10} {source:<20} {m.note}{flag}")
    verb = "would push" if report.dry_run else "pushes"
    lines.append(f"{verb} ({len(report.pushes)}):")
    for p in report.pushes:
        push = p.push
        outcome = "" if report.dry_run else f"  {p.outcome}{': ' + p.detail if p.detail else ''}"
        lines.append(
            f"  {push.account:<20} {push.sku:<24} {push.observed:>6} -> {push.target:<6} ({push.delta:+d}){outcome}"
        )
    for sku, account, reason in report.waiting:
        lines.append(f"waiting: {sku}{' on ' + account if account else ''}: {reason}")
    feeds = report.feeds
    if feeds.pages or feeds.failed:
        failed = "".join(f"; {name} FAILED: {error}" for name, error in feeds.failed.items())
        lines.append(
            f"orders: {feeds.new_orders} new, {feeds.status_changes} status changes, {feeds.attributed_units} units "
            f"attributed, {report.fast_skus} SKUs reconciled at once{failed}"
        )
    for o in report.oversells:
        acts = "; ".join(f"{a.kind} {a.account}:{a.order} ({a.units}) {a.outcome}" for a in o.acts) or "no open order"
        lines.append(f"OVERSOLD {o.sku}: {o.shortfall} unit(s) short: {acts}")
    for d in report.drifting:
        lines.append(f"DRIFTING {d.account} {d.sku}: {d.movements} changes ({d.units} units) no order explains")
    return "\n".join(lines)
