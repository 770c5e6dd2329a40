"""The ledger schema exists only through migrations: they must build exactly what the models say."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from sync.ledger.db import alembic_config, check_schema, create_db_engine, upgrade
from sync.ledger.models import Base


def test_migrations_build_exactly_the_models(any_db_url: str) -> None:
    engine = create_db_engine(any_db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    check_schema(engine)


def test_migrations_downgrade_and_upgrade_again(any_db_url: str) -> None:
    engine = create_db_engine(any_db_url)
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert {"accounts", "skus", "listings", "movements", "pushes", "cycles"} <= set(inspect(engine).get_table_names())


def test_sqlite_ledger_runs_in_wal_mode(db_url: str) -> None:
    engine = create_db_engine(db_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
