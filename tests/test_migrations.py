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


def test_0008_counts_an_upward_push_already_in_doubt_as_applied_while_undecided(any_db_url: str) -> None:
    # From then on a push in doubt counts under the hypothesis with fewer units in the pool: an
    # upward one as applied, its listing's expected moved by it. One already in doubt is moved so.
    engine = create_db_engine(any_db_url)
    command.downgrade(alembic_config(engine), "0007")  # the fixture's ledger is at head
    rows = [
        "INSERT INTO accounts (id, name, platform, healthy) VALUES (1, 'gra', 'graas', true)",
        "INSERT INTO skus (id, code, created_at) VALUES (1, 'mug', '2026-01-01 00:00:00+00:00')",
        "INSERT INTO skus (id, code, created_at) VALUES (2, 'cup', '2026-01-01 00:00:00+00:00')",
        "INSERT INTO listings (id, account_id, sku_id, code, ref, expected) VALUES (1, 1, 1, 'mug', 'r1', 5)",
        "INSERT INTO listings (id, account_id, sku_id, code, ref, expected) VALUES (2, 1, 2, 'cup', 'r2', 5)",
    ]
    push = (
        "INSERT INTO pushes (listing_id, delta, expected_before, observed, target, state, detail, created_at) "
        "VALUES ({listing}, {delta}, 5, 5, 5, 'in_doubt', '', '2026-01-01 00:00:00+00:00')"
    )
    with engine.begin() as connection:
        for statement in [*rows, push.format(listing=1, delta=3), push.format(listing=2, delta=-2)]:
            connection.exec_driver_sql(statement)
    upgrade(engine)
    expected = "SELECT expected FROM listings ORDER BY id"
    with engine.connect() as connection:
        assert [row[0] for row in connection.exec_driver_sql(expected)] == [8, 5]  # the downward one: not applied
    command.downgrade(alembic_config(engine), "0007")
    with engine.connect() as connection:
        assert [row[0] for row in connection.exec_driver_sql(expected)] == [5, 5]
    engine.dispose()
