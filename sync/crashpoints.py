"""Named points in a push's life where a test may crash the engine on purpose.

In process, the simulator passes a hook that raises; for a real process, `STOCKSYNC_CRASH_AT`
names a point (optionally `point:N` for its N-th passage) and the process kills itself there with
SIGKILL, as a power cut would. Unset, every point is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

CrashHook = Callable[[str], None]


class ProcessDeath(BaseException):  # noqa: N818 - it is not an error the program handles
    """Raised by an in-process crash hook to stand for the process dying on the spot: nothing
    after it may touch the ledger (no cleanup, no cycle record, no lease release)."""


# In the order a push meets them.
POINTS = ("before_plan_commit", "after_plan_commit", "after_mark_sent", "after_send", "after_outcomes")
# In the order an order feed page and an order cancel meet them.
ORDER_POINTS = ("before_feed_commit", "after_feed_page", "after_cancel_marked")
ENV_VAR = "STOCKSYNC_CRASH_AT"


def no_crash(point: str) -> None:
    """The production hook: nothing happens."""


def crash_hook_from_env(environ: dict[str, str] | None = None) -> CrashHook:
    """A hook that SIGKILLs this process at the point named in $STOCKSYNC_CRASH_AT."""
    spec = (environ if environ is not None else dict(os.environ)).get(ENV_VAR, "")
    if not spec:
        return no_crash
    point, _, nth = spec.partition(":")
    if point not in POINTS + ORDER_POINTS:
        raise ValueError(f"{ENV_VAR}: unknown crash point {point!r}; one of {', '.join(POINTS + ORDER_POINTS)}")
    wanted = int(nth or 1)
    seen: Counter[str] = Counter()

    def hook(name: str) -> None:
        if name == point:
            seen[name] += 1
            if seen[name] == wanted:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook
