"""The error values every layer speaks.

Platform clients translate third-party exceptions into these exactly once, at the edge, so the
engine can act on a failure by its kind alone:

- retriable: nothing was applied; the same call may be tried again later;
- fatal: trying again will not help until an operator fixes something (credentials, a request the
  platform rejects);
- skippable: one record is bad; the rest of its batch goes on;
- in doubt: a write whose answer was lost; it may have been applied, so it is never simply resent.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    """How the caller should act on a failure."""

    RETRIABLE = "retriable"
    FATAL = "fatal"
    SKIPPABLE = "skippable"
    IN_DOUBT = "in_doubt"


class SyncError(Exception):
    """Base of every error stocksync raises on purpose; carries its kind."""

    kind: ErrorKind = ErrorKind.FATAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetriableError(SyncError):
    """Nothing was applied; try again later."""

    kind = ErrorKind.RETRIABLE


class RateLimitedError(RetriableError):
    """The platform refused the call for rate (HTTP 429); `retry_after` is its advice in seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReadProblem(str, Enum):
    """Why a read, or part of one, was not believed: the kinds of bad read that are counted."""

    EMPTY = "empty"  # no listings where the ledger knows some
    ALL_ZEROS = "all_zeros"  # every quantity zero where several listings had stock
    UNPARSEABLE = "unparseable"  # truncated, not JSON, or not the document's shape
    DUPLICATE = "duplicate"  # the same listing twice with different numbers
    BAD_VALUE = "bad_value"  # one listing's quantity: not an integer, out of range, negative
    DISAGREED = "disagreed"  # a confirming read did not show the drop it was asked to confirm


class BadAnswerError(RetriableError):
    """An answer that cannot be believed as a whole: not JSON, not the document's shape, or the
    same listing twice with different numbers. Nothing in it is booked; reading again may help.
    `problem` is a `ReadProblem` value."""

    problem = ReadProblem.UNPARSEABLE

    def __init__(self, message: str, problem: ReadProblem | None = None) -> None:
        super().__init__(message)
        if problem is not None:
            self.problem = problem


class ConflictError(RetriableError):
    """The platform refused a change because its state moved (HTTP 409): nothing was applied;
    read again and decide again rather than resend."""


class FatalError(SyncError):
    """Retrying will not help until someone changes the configuration or the request."""

    kind = ErrorKind.FATAL


class AuthError(FatalError):
    """The platform rejected our credentials (HTTP 401): a token is renewed once, then it is fatal."""


class ForbiddenError(FatalError):
    """The platform knows our credentials but refuses them this call (HTTP 403): a new token
    would be refused too, so none is asked for."""


class NotFoundError(FatalError):
    """The platform does not know what the call names (HTTP 404)."""


class RejectedError(FatalError):
    """The platform refused the request's content as invalid (HTTP 400/422): nothing was applied,
    and a batch may hold just one bad item."""


class SkippableError(SyncError):
    """One record is bad; the rest of the batch carries on without it."""

    kind = ErrorKind.SKIPPABLE


class InDoubtError(SyncError):
    """A write whose outcome is unknown: it may or may not have been applied."""

    kind = ErrorKind.IN_DOUBT


class LedgerUnavailable(RetriableError):
    """The ledger database failed under a step (unreachable, a deadlock, a lock wait that timed
    out): that step's transaction rolled back, what earlier steps committed stays; try again."""

    @classmethod
    def from_database(cls, err: BaseException) -> LedgerUnavailable:
        """One line saying what the database said (its own first line, without SQL or traceback)."""
        said = str(getattr(err, "orig", None) or err).strip().splitlines()
        return cls(f"the ledger database failed: {said[0] if said else type(err).__name__}")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message names the key."""


class SchemaError(Exception):
    """The ledger database has no schema, or an older one than this code needs."""
