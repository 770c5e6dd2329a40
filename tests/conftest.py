"""Shared fixtures: a migrated SQLite ledger per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.ledger.db import create_db_engine, upgrade
from sync.logs import configure_logging


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    configure_logging("warning", "json")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger, migrated to head."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
