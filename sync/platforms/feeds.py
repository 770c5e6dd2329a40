"""Order feed cursors: the two ways the platforms let a client read orders incrementally.

A cursor is an opaque string to the engine, stored in the ledger and advanced only in the
transaction that books the page it follows, so a crash mid-feed re-reads a page (booking is
idempotent) and never skips one.

- `WindowCursor` (Graas): a time window `[after, before]` read page by page (downwards, see
  `after_page`); the next window starts a little before the last one ended, because an order
  updated in the very second a window closes may be indexed a moment later.
- `ScanCursor` (OTO, Ankorstore): the list comes newest first with no "updated since" filter; each
  scan reads from the top down to the newest order of the previous complete scan (the mark).
  Orders added on top while a scan runs push older ones down, so resuming a scan re-reads some
  orders but never skips one; they are seen again in the next scan from the top.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sync.errors import FatalError

WINDOW_OVERLAP = timedelta(seconds=30)


def _load(cursor: str, kind: str) -> dict[str, object]:
    try:
        value = json.loads(cursor)
    except ValueError:
        value = None
    if not isinstance(value, dict) or value.get("kind") != kind:
        raise FatalError(f"stored order feed cursor {cursor!r} is not a {kind} cursor")
    return value


@dataclass(frozen=True)
class WindowCursor:
    """Read orders updated in `[after, before]` (`before` None: up to now). `page` None probes page
    1; a number is the next page of a descent from the last page to the first."""

    after: int
    before: int | None
    page: int | None

    @classmethod
    def parse(cls, cursor: str | None, since: datetime) -> WindowCursor:
        """The stored cursor, or the first window starting at `since`."""
        if cursor is None:
            return cls(int(since.timestamp()), None, None)
        raw = _load(cursor, "window")
        before, page = raw.get("before"), raw.get("page")
        return cls(
            int(str(raw["after"])),
            None if before is None else int(str(before)),
            None if page is None else int(str(page)),
        )

    @property
    def page_to_read(self) -> int:
        """The page number to ask for."""
        return self.page or 1

    def dump(self) -> str:
        """The cursor as stored."""
        return json.dumps({"kind": "window", **asdict(self)})

    def after_page(self, before: int, pages: int) -> tuple[WindowCursor, bool]:
        """The cursor after reading a page of the window ending at `before`, which has `pages`
        pages, and whether the window has more to read.

        A window of several pages is read from its last page down to its first. An order updated
        while we page leaves the window (it moves to the next one) and the orders behind it move up
        one place: reading downwards, those are pages still to read, so none is skipped. The probe
        of page 1 that told us the page count is read again at the end."""
        if self.page is None and pages > 1:
            return WindowCursor(self.after, before, pages), True
        if self.page is not None and self.page > 1:
            return WindowCursor(self.after, before, self.page - 1), True
        return WindowCursor(before - int(WINDOW_OVERLAP.total_seconds()), None, None), False


@dataclass(frozen=True)
class ScanCursor:
    """A newest-first scan: `mark` is where the last complete scan began (ISO time), `top` where
    this one began, `position` where it resumes (a page number or the last order id read)."""

    mark: str
    top: str | None
    position: str | None

    @classmethod
    def parse(cls, cursor: str | None, since: datetime) -> ScanCursor:
        """The stored cursor, or a first scan reaching back to `since`."""
        if cursor is None:
            return cls(since.isoformat(), None, None)
        raw = _load(cursor, "scan")
        top, position = raw.get("top"), raw.get("position")
        return cls(str(raw["mark"]), None if top is None else str(top), None if position is None else str(position))

    def dump(self) -> str:
        """The cursor as stored."""
        return json.dumps({"kind": "scan", **asdict(self)})

    def after_page(self, times: Sequence[datetime], next_position: str | None) -> tuple[ScanCursor, bool]:
        """The cursor after a page whose orders carry `times` (newest first), and whether the scan
        goes on. It ends at the last page or at the first order older than the mark."""
        mark = datetime.fromisoformat(self.mark)
        top = self.top or (max(times).isoformat() if times else None)
        done = next_position is None or not times or min(times) < mark
        if done:
            return ScanCursor(top or self.mark, None, None), False
        return ScanCursor(self.mark, top, next_position), True


def at_rest(cursor: str | None) -> bool:
    """Whether a stored cursor starts a new scan or window (none half-read): a poll from such a
    cursor that reads to the end has seen every order placed before it began. One that resumes a
    scan begun earlier has not: orders placed since arrive on top, where it does not look."""
    if cursor is None:
        return True
    try:
        raw = json.loads(cursor)
    except ValueError:
        return False
    if not isinstance(raw, dict):
        return False
    if raw.get("kind") == "window":
        return raw.get("before") is None and raw.get("page") is None
    if raw.get("kind") == "scan":
        return raw.get("top") is None and raw.get("position") is None
    return False
