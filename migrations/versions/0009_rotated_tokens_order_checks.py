"""rotated tokens: a refresh token the platform replaced, kept across restarts; when each order's
status was last read on its own (lists read only at their ends miss changes in the middle), and
the latest its stock can have moved where the platform gives a later time than its placing

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rotated_tokens",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("configured", sa.String(length=64), nullable=False),
        sa.Column("current", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_rotated_tokens")),
    )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("moved_by", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("moved_by")
        batch.drop_column("checked_at")
    op.drop_table("rotated_tokens")
