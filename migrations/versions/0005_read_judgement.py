"""read judgement: safety stops, read events, held listings, retired skus, answering badly

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'safety_stops',
        sa.Column('id', ID, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('resolution', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_safety_stops_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_safety_stops')),
    )
    with op.batch_alter_table('safety_stops', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_safety_stops_account_id'), ['account_id'], unique=False)
    op.create_table(
        'read_events',
        sa.Column('id', ID, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('sku_id', ID, nullable=True),
        sa.Column('cycle_id', ID, nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=True),
        sa.Column('expected', sa.BigInteger(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_read_events_account_id_accounts')),
        sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_read_events_cycle_id_cycles')),
        sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_read_events_sku_id_skus')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_read_events')),
    )
    with op.batch_alter_table('read_events', schema=None) as batch_op:
        batch_op.create_index('ix_read_events_at', ['at'], unique=False)
        batch_op.create_index('ix_read_events_sku_id_id', ['sku_id', 'id'], unique=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bad_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_bad_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('skus', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stop_id', ID, nullable=True))
        batch_op.add_column(sa.Column('held_quantity', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('decision', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_listings_stop_id'), ['stop_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_listings_stop_id_safety_stops'), 'safety_stops', ['stop_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_listings_stop_id_safety_stops'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_listings_stop_id'))
        batch_op.drop_column('decision')
        batch_op.drop_column('held_quantity')
        batch_op.drop_column('stop_id')
    with op.batch_alter_table('skus', schema=None) as batch_op:
        batch_op.drop_column('retired_at')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('last_bad_at')
        batch_op.drop_column('bad_since')
    with op.batch_alter_table('read_events', schema=None) as batch_op:
        batch_op.drop_index('ix_read_events_sku_id_id')
        batch_op.drop_index('ix_read_events_at')
    op.drop_table('read_events')
    with op.batch_alter_table('safety_stops', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_safety_stops_account_id'))
    op.drop_table('safety_stops')
