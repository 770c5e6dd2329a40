"""pushes settled by evidence: the read window each push came from, Ankorstore's fresh read, the
probe read the order feed judges, what settled it; how far each feed has been read; the settlement movement kind; in-doubt upward pushes booked provisionally

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('bootstrap', 'external', 'adjustment', 'correction')"
NEW_KINDS = "kind IN ('bootstrap', 'external', 'adjustment', 'correction', 'settlement')"


def upgrade() -> None:
    with op.batch_alter_table("pushes") as batch:
        batch.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fresh_quantity", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("probe_quantity", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("probe_began_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("probe_ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("settled_by", sa.String(length=16), nullable=True))
    with op.batch_alter_table("order_feeds") as batch:
        batch.add_column(sa.Column("read_through_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("movements") as batch:
        batch.drop_constraint(op.f("ck_movements_kind"), type_="check")
        batch.create_check_constraint("kind", NEW_KINDS)
    # A push in doubt now counts, while undecided, under the hypothesis that shows fewer units: an
    # upward one as applied. Its listing's expected moves by it, as it does for a push going in
    # doubt from now on (sync/ledger/store.py).
    op.execute(
        "UPDATE listings SET expected = expected + (SELECT SUM(COALESCE(p.applied_delta, p.delta)) FROM pushes p "
        "WHERE p.listing_id = listings.id AND p.state = 'in_doubt' AND COALESCE(p.applied_delta, p.delta) > 0) "
        "WHERE id IN (SELECT p.listing_id FROM pushes p "
        "WHERE p.state = 'in_doubt' AND COALESCE(p.applied_delta, p.delta) > 0)"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE listings SET expected = expected - (SELECT SUM(COALESCE(p.applied_delta, p.delta)) FROM pushes p "
        "WHERE p.listing_id = listings.id AND p.state = 'in_doubt' AND COALESCE(p.applied_delta, p.delta) > 0) "
        "WHERE id IN (SELECT p.listing_id FROM pushes p "
        "WHERE p.state = 'in_doubt' AND COALESCE(p.applied_delta, p.delta) > 0)"
    )
    op.execute("UPDATE movements SET kind = 'correction' WHERE kind = 'settlement'")
    with op.batch_alter_table("movements") as batch:
        batch.drop_constraint(op.f("ck_movements_kind"), type_="check")
        batch.create_check_constraint("kind", OLD_KINDS)
    with op.batch_alter_table("order_feeds") as batch:
        batch.drop_column("read_through_at")
    with op.batch_alter_table("pushes") as batch:
        batch.drop_column("settled_by")
        batch.drop_column("probe_ended_at")
        batch.drop_column("probe_began_at")
        batch.drop_column("probe_quantity")
        batch.drop_column("fresh_quantity")
        batch.drop_column("read_at")
