"""The order feed's evidence for pushes in doubt: for each one on a feed account whose probe the
feed has been read past, the orders placed or cancelled on its listing between the read the push
was made from and the probe (`sync.settling` judges them).

Times are the platforms' (orders) against ours (reads): an order's stock move is taken to have
happened between `SKEW` before its timestamp and its timestamp's precision plus `SKEW` after its
latest time (`moved_by`: Graas's `timeCreated`, when it reached Graas). Where a platform's order
times bound nothing (OTO: precision None), only our first sight of the order bounds it. A feed
counts as read past a probe only when a poll that began that long after the probe ended read it
to its end: Graas's window stops at a whole second, and an order placed as the probe was read must
be in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sync.ledger.attribution import RETURNING
from sync.ledger.models import LINE_STATE, Order, OrderLine
from sync.ledger.orders import OrderStore
from sync.ledger.store import BatchState
from sync.platforms.base import OrderState
from sync.settling import OrderFact, Window, window_of

# Between a platform's clock and ours, and its stock and its orders: no platform documents it. A
# wider bound leaves more windows undecided (settled later, by a later read or the rule); a
# narrower one than the truth decides wrongly, so it is generous.
SKEW = timedelta(seconds=2)
# A feed no poll has read to its end for this many in-doubt timeouts is down: its pushes in doubt
# are settled as on a platform without a feed, so their listings are not held for long.
DOWN_AFTER = 3
# The longest an engine waits for a feed to be readable past a probe (the coarsest precision, 1 s).
TIME_MARGIN = timedelta(seconds=1) + SKEW
# Just before: a sale a read is proved to reflect happened before that read began, as the windows
# count it (a read reflects a sale made while it ran, or not: the proof says it did).
EPSILON = timedelta(microseconds=1)
# The latest a release the platform has yet to confirm can happen: any time.
UNTIL_SAID = datetime.max.replace(tzinfo=UTC)


class FeedEvidence:
    """The windows the order feeds let us judge (feeds read and stored by `sync.order_flow`)."""

    def __init__(
        self, orders: OrderStore, precision: Mapping[str, float | None], late_sales: Collection[str] = ()
    ) -> None:
        self.orders = orders
        self.feed_accounts = frozenset(precision)
        # Accounts whose read may show a sale only at picking: a sale may move the listing any
        # time from its order until we see it leave the open states.
        self.late_sales = frozenset(late_sales)
        # Per feed account, how far after an order's timestamp it may have happened; accounts whose
        # order times bound nothing (None) are judged by when we first saw each order.
        self.late = {name: timedelta(seconds=seconds or 0) + SKEW for name, seconds in precision.items()}
        self.untimed = frozenset(name for name, seconds in precision.items() if seconds is None)

    def windows(self, state: BatchState, account_ids: Mapping[str, int]) -> dict[int, Window]:
        """Per push in doubt in the batch whose probe the feed has been read past: its window."""
        waiting = {
            key: doubt
            for key, doubt in state.doubts.items()
            if key[0] in self.feed_accounts and key[0] in account_ids and doubt.read and doubt.probe
        }
        if not waiting:
            return {}
        through = self.orders.read_through({account_ids[account] for account, _ in waiting})
        due = {
            key: doubt
            for key, doubt in waiting.items()
            if doubt.probe is not None
            and account_ids[key[0]] in through
            and through[account_ids[key[0]]] >= doubt.probe[1] + self.late[key[0]]
        }
        if not due:
            return {}
        since = min(doubt.read[0] for doubt in due.values() if doubt.read is not None) - TIME_MARGIN
        listings = {(account_ids[account], state.sku_ids[sku]) for account, sku in due}
        late = {account_ids[name]: self.late[name] for name in {account for account, _ in due}}
        untimed = {account_ids[name] for name in self.untimed if name in account_ids}
        picked = {account_ids[name] for name in self.late_sales if name in account_ids}
        facts = self._facts(listings, since, late, untimed, picked)
        windows: dict[int, Window] = {}
        for (account, sku), doubt in due.items():
            assert doubt.read is not None and doubt.probe is not None
            found = facts.get((account_ids[account], state.sku_ids[sku]), [])
            windows[doubt.push_id] = window_of(found, doubt.read, doubt.probe)
        return windows

    def behind(self, account_ids: Mapping[str, int], now: datetime, timeout_seconds: float) -> frozenset[str]:
        """Feed accounts whose feed no poll has read to its end within `DOWN_AFTER` timeouts (down:
        a feed failing now and then, as under heavy faults, still catches up well before)."""
        names = [name for name in self.feed_accounts if name in account_ids]
        if not names:
            return frozenset()
        through = self.orders.read_through({account_ids[name] for name in names})
        since = now - DOWN_AFTER * timedelta(seconds=timeout_seconds)
        return frozenset(name for name in names if through.get(account_ids[name], since) <= since)

    def _facts(
        self,
        listings: Collection[tuple[int, int]],
        since: datetime,
        late: Mapping[int, timedelta],
        untimed: Collection[int],
        picked: Collection[int] = (),
    ) -> dict[tuple[int, int], list[OrderFact]]:
        """Per listing (account id, SKU id): the sales and cancellations its orders show since
        `since` (on `untimed` accounts, every order we first saw since then: when its stock moved,
        only our first sight of it bounds; on `picked` accounts, where the read may show a sale
        only at picking, every open order too: its sale may show in any read until it leaves the
        open states)."""
        if not listings:
            return {}
        accounts = {account for account, _ in listings}
        skus = {sku for _, sku in listings}
        facts: dict[tuple[int, int], list[OrderFact]] = defaultdict(list)
        with self.orders.sessions() as session:
            rows = session.execute(
                select(
                    OrderLine.id,
                    OrderLine.sale_in_read_at,
                    Order.account_id,
                    OrderLine.sku_id,
                    OrderLine.quantity,
                    LINE_STATE,
                    Order.placed_at,
                    Order.moved_by,
                    Order.first_seen_at,
                    Order.updated_at,
                )
                .join(Order, OrderLine.order_id == Order.id)
                .where(Order.account_id.in_(accounts), OrderLine.sku_id.in_(skus))
                .where(
                    (Order.placed_at >= since)
                    | (Order.updated_at >= since)
                    | (Order.first_seen_at >= since)
                    | (OrderState.RELEASING.value == LINE_STATE)  # its release may be in any window
                    | (Order.account_id.in_(picked) & (OrderState.OPEN.value == LINE_STATE))
                )
            )
            for line, in_read, account_id, sku_id, quantity, order_state, placed, moved_by, seen, updated in rows:
                if sku_id is None or (account_id, sku_id) not in listings:
                    continue
                key = (account_id, int(sku_id))
                if account_id in untimed:
                    earliest, latest = since, seen + SKEW
                else:
                    earliest, latest = placed - SKEW, (moved_by or placed) + late[account_id]
                if account_id in picked:  # shown at the order, or at picking: by when we saw it left
                    latest = UNTIL_SAID if order_state == OrderState.OPEN.value else max(latest, updated + SKEW)
                # A settlement proved a read began after the sale moved stock (a read reflects a
                # sale only once it has happened: it is before any read that began then or later).
                sale_latest = latest if in_read is None else min(latest, in_read - EPSILON)
                facts[key].append(OrderFact(-quantity, min(earliest, sale_latest), sale_latest, line))
                if order_state == OrderState.RELEASING.value:
                    # Its units may come back at any moment until the platform says it is
                    # cancelled: the release may be in any read from the order on.
                    facts[key].append(OrderFact(quantity, earliest, UNTIL_SAID))
                elif order_state in RETURNING:
                    # The units came back after the order moved stock and before we saw it so:
                    # when exactly, the feed does not say.
                    facts[key].append(OrderFact(quantity, earliest, updated + late[account_id]))
        return facts
