"""order_feeds.caught_up_at: when a poll first read the feed to its end. Orders booked before are
history, taken as shown by the stock reads; a later sale's units are held back from the other
platforms until its own listing's read shows it (it may only at picking)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_feeds") as batch:
        batch.add_column(sa.Column("caught_up_at", sa.DateTime(timezone=True), nullable=True))
    # A feed read to its end before this revision: what it booked until its last page is taken as
    # shown already (nothing is held back for orders seen before the upgrade).
    op.execute("UPDATE order_feeds SET caught_up_at = updated_at WHERE read_through_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("order_feeds") as batch:
        batch.drop_column("caught_up_at")
