"""Order feed cursors: the two ways the platforms let a client read orders incrementally.

A cursor is an opaque string to the engine, stored in the ledger and advanced only in the
transaction that books the page it follows, so a crash mid-feed re-reads a page (booking is
idempotent) and never skips one.

- `WindowCursor` (Graas): a time window `[after, before]` read page by page (downwards, see
  `after_page`); the next window starts a little before the last one ended, because an order
  updated in the very second a window closes may be indexed a moment later.
- `EndsCursor` (OTO, Ankorstore): lists with no "updated since" filter and no documented sort
  order; each poll reads both ends of the list down to the newest order the previous complete
  poll saw (the mark), so new orders are found whichever way the list runs. Orders added while a
  phase runs push others along, so resuming re-reads some orders but never skips one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sync.errors import FatalError

WINDOW_OVERLAP = timedelta(seconds=30)
# A head or tail read goes this far past the mark: an order indexed a moment after a newer one
# was listed is still found.
SCAN_OVERLAP = timedelta(seconds=30)
HEAD, TAIL, SWEEP = "head", "tail", "sweep"


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
class EndsCursor:
    """A list read from both ends, for lists whose sort order no document gives (OTO, Ankorstore).

    New orders arrive at one end of such a list: the top when it runs newest first, the bottom
    when it runs oldest first. Each poll reads both, so neither order can hide a new one:
    - the head phase reads from the first page down to the first order older than the mark (the
      newest order time the last complete poll saw, less `SCAN_OVERLAP` for orders indexed late):
      one page when the list runs oldest first;
    - the tail phase reads the last pages: from where the list ended last time onwards where the
      platform pages by cursor (`tail`, an order id), or from the last page back to the mark where
      it pages by number: one page when the list runs newest first.
    `position` is where the current phase resumes (a page number or an order id); `top` the newest
    time this poll has seen. A crash re-reads a page (booking is idempotent) and never skips one."""

    mark: str
    phase: str = HEAD
    top: str | None = None
    position: str | None = None
    tail: str | None = None
    swept: str | None = None  # when the last whole-window read began (OTO, see `begin_sweep`)

    @classmethod
    def parse(cls, cursor: str | None, since: datetime) -> EndsCursor:
        """The stored cursor, or a first poll reaching back to `since`. A newest-first scan cursor
        stored by an older version starts a fresh poll from its mark."""
        if cursor is None:
            return cls(since.isoformat())
        try:
            raw = _load(cursor, "ends")
        except FatalError:
            legacy = _load(cursor, "scan")
            return cls(str(legacy["mark"]))
        text = {key: None if raw.get(key) is None else str(raw[key]) for key in ("top", "position", "tail", "swept")}
        phase = str(raw.get("phase", HEAD))
        if phase not in (HEAD, TAIL, SWEEP):
            raise FatalError(f"stored order feed cursor {cursor!r} has no phase head, tail or sweep")
        return cls(str(raw["mark"]), phase, text["top"], text["position"], text["tail"], text["swept"])

    def dump(self) -> str:
        """The cursor as stored."""
        return json.dumps({"kind": "ends", **asdict(self)})

    def reaches_mark(self, times: Sequence[datetime]) -> bool:
        """Whether a page holds an order older than the mark (less the overlap): in a list sorted
        by time, nothing beyond it, in the direction being read, is new."""
        return bool(times) and min(times) < datetime.fromisoformat(self.mark) - SCAN_OVERLAP

    def after_head(
        self, times: Sequence[datetime], following: str | None, *, end: str | None = None, tail_from: str | None = None
    ) -> tuple[EndsCursor, bool]:
        """The cursor after a head page whose orders carry `times`; `following` is the next page's
        position, None at the list's end (which `end` then names, for a list paged by cursor).
        Reaching the mark before the end starts the tail phase at `tail_from` (None: from
        `tail`)."""
        top = self._top(times)
        if following is None:  # the head read the whole list: its end is the tail
            return self._at_rest(top, end if end is not None else self.tail), False
        if times and not self.reaches_mark(times):
            return replace(self, top=top, position=following), True
        return replace(self, phase=TAIL, top=top, position=tail_from), True

    def after_tail(
        self, times: Sequence[datetime], following: str | None, *, end: str | None = None
    ) -> tuple[EndsCursor, bool]:
        """The cursor after a tail page: `following` is the next position to read (None: the poll
        is done); `end`, for a list paged by cursor, the last order id read."""
        top = self._top(times)
        tail = end if end is not None else self.tail
        if following is not None:
            return replace(self, top=top, position=following, tail=tail), True
        return self._at_rest(top, tail), False

    def sweep_due(self, now: datetime, every: timedelta) -> bool:
        """Whether a poll starting from here should first read the whole window: at rest, and no
        such read began within `every`."""
        at_rest = self.phase == HEAD and self.position is None and self.top is None
        return at_rest and (self.swept is None or now - datetime.fromisoformat(self.swept) >= every)

    def begin_sweep(self, now: datetime) -> EndsCursor:
        """A whole-window read, from its first page: where a list is sorted by a time its creator
        sets (OTO's `orderDate`), a new order may sit anywhere in it, not only at an end."""
        return replace(self, phase=SWEEP, position="1", swept=now.isoformat())

    def after_sweep(self, times: Sequence[datetime], following: str | None) -> tuple[EndsCursor, bool]:
        """The cursor after a page of the whole-window read: the next page, or the head, down to
        the newest order the whole window showed (anything newer is at an end)."""
        top = self._top(times)
        if following is not None:
            return replace(self, top=top, position=following), True
        mark = max([datetime.fromisoformat(self.mark), *([datetime.fromisoformat(top)] if top else [])])
        return replace(self, mark=mark.isoformat(), phase=HEAD, top=top, position=None), True

    def restart_tail(self) -> EndsCursor:
        """The stored tail is no longer in the list (the platform refused it): walk it again from
        the first page."""
        return replace(self, phase=TAIL, position=None, tail=None)

    def _top(self, times: Sequence[datetime]) -> str | None:
        newest = max([*times, *([datetime.fromisoformat(self.top)] if self.top else [])], default=None)
        return None if newest is None else newest.isoformat()

    def _at_rest(self, top: str | None, tail: str | None) -> EndsCursor:
        mark = datetime.fromisoformat(self.mark)
        if top is not None:
            mark = max(mark, datetime.fromisoformat(top))
        return EndsCursor(mark.isoformat(), HEAD, None, None, tail, self.swept)


def at_rest(cursor: str | None) -> bool:
    """Whether a stored cursor starts a new scan or window (none half-read): a poll from such a
    cursor that reads to the end has seen every order placed before it began. One that resumes a
    poll begun earlier has not: orders placed since arrive at an end it has already read."""
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
    if raw.get("kind") == "ends":
        return raw.get("phase", HEAD) == HEAD and raw.get("top") is None and raw.get("position") is None
    return raw.get("kind") == "scan"  # stored by an older version: read as a fresh poll
