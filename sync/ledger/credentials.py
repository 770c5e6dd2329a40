"""Credentials a platform replaced, kept in the ledger so that a restart uses the current one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sync.errors import LedgerUnavailable
from sync.ledger.models import RotatedToken


def digest(token: str) -> str:
    """What the ledger keeps of a configured token: enough to tell it changed, nothing to use."""
    return hashlib.sha256(token.encode()).hexdigest()


class LedgerTokenKeeper:
    """The TokenKeeper of every account on one ledger (OTO's rotated refresh tokens)."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.sessions = sessions
        self.clock = clock

    def load(self, account: str, configured: str) -> str | None:
        """The token that replaced `configured`, unless the operator has configured another since."""
        try:
            with self.sessions() as session:
                row = session.get(RotatedToken, account)
                return row.current if row is not None and row.configured == digest(configured) else None
        except SQLAlchemyError as err:
            raise LedgerUnavailable.from_database(err) from err

    def save(self, account: str, configured: str, current: str) -> None:
        """Keep `current` as what replaced `configured`."""
        try:
            with self.sessions.begin() as session:
                row = session.get(RotatedToken, account)
                if row is None:
                    row = RotatedToken(account=account)
                    session.add(row)
                row.configured, row.current, row.updated_at = digest(configured), current, self.clock()
        except SQLAlchemyError as err:
            raise LedgerUnavailable.from_database(err) from err
