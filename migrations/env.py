"""Alembic environment: runs on the engine stocksync hands over (see sync.ledger.db)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sync.ledger.models import Base

target_metadata = Base.metadata


def run() -> None:
    """Run migrations online on the provided engine (or on `sqlalchemy.url` for the alembic CLI)."""
    engine = context.config.attributes.get("engine") or create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run()
