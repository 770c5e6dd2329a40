"""Shared fixtures: a migrated SQLite ledger per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from sync.ledger.db import create_db_engine, upgrade
from sync.logs import configure_logging
from tests.postgres import postgres_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The simulator's CI sweep first: it holds two processes for minutes, and the suite on its
    other worker then ends about when it does, instead of after it."""
    items.sort(key=lambda item: item.name != "test_ci_sweep_every_fault_on_passes")


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    configure_logging("warning", "json")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session, or a skip that says why there is none."""
    try:
        with postgres_server() as url:
            yield url
    except FileNotFoundError as err:
        pytest.skip(f"PostgreSQL tests skipped: {err} (.ci/run installs it)")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated ledger on each supported database."""
    if request.param == "sqlite":
        yield migrated(f"sqlite:///{tmp_path / 'ledger.db'}")
        return
    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield migrated(url)


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger, migrated to head."""
    return migrated(f"sqlite:///{tmp_path / 'ledger.db'}")


def migrated(url: str) -> str:
    """Apply the migrations to `url` and return it."""
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
