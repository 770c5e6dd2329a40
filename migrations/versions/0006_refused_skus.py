"""refused skus: the SKUs of a whole answer refused, so `explain` can tell which listing it held

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("read_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skus", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("read_events", schema=None) as batch_op:
        batch_op.drop_column("skus")
