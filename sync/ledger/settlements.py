"""Writing what settling pushes in doubt decided: their verdicts, their probes, and the sales a
verdict proved a probe reflects (`sync.evidence` keeps those out of every later window)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from sync.ledger.models import OrderLine, Push, PushState
from sync.planner import ListingKey, Plan


@dataclass(frozen=True)
class DoubtReads:
    """A push in doubt's two reads: the one it was made from (began, planned) and its probe."""

    push_id: int
    read: tuple[datetime, datetime] | None
    probe: tuple[datetime, datetime] | None


def write_settlements(
    session: Session,
    doubts: Mapping[ListingKey, DoubtReads],
    plan: Plan,
    read_began: datetime,
    read_ended: datetime,
    now: datetime,
) -> None:
    """The plan's settlements and probes (this batch's read, `read_began` to `read_ended`)."""
    if plan.settlements:
        session.execute(
            update(Push),
            [
                {
                    "id": s.push_id,
                    "state": (PushState.APPLIED if s.applied else PushState.NOT_APPLIED).value,
                    "resolution": s.note,
                    "settled_by": s.by.value,
                    "settled_at": now,
                }
                for s in sorted(plan.settlements, key=lambda s: s.push_id)
            ],
        )
    mark_reflected(session, doubts, plan)
    if plan.probes:
        session.execute(
            update(Push),
            [
                {"id": push_id, "probe_quantity": quantity, "probe_began_at": read_began, "probe_ended_at": read_ended}
                for push_id, quantity in sorted(plan.probes.items())
            ],
        )


def mark_reflected(session: Session, doubts: Mapping[ListingKey, DoubtReads], plan: Plan) -> None:
    """Sales a settlement proved its probe read reflects: when that read began, kept at the
    earliest such read."""
    rows = []
    for s in plan.settlements:
        reads = doubts.get((s.account, s.sku))
        if s.verdict.reflected and reads is not None and reads.probe is not None:
            rows += [{"line": line, "at": reads.probe[0]} for line in sorted(s.verdict.reflected)]
    if rows:
        lines = cast(Table, OrderLine.__table__)
        column = lines.c.sale_in_read_at
        session.connection().execute(
            update(lines)
            .where(lines.c.id == bindparam("line"))
            .where(column.is_(None) | (column > bindparam("at")))
            .values(sale_in_read_at=bindparam("at")),
            rows,
        )
