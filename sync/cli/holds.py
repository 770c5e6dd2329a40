"""Units held off listings for sales no read shows yet, as the engine holds them (`Unshown`), for
`status` and `explain` alike: the same query, the same picked statuses, the same rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sync.config import Config
from sync.ledger.models import Account
from sync.ledger.orders import OrderStore
from sync.platforms import PLATFORMS

CHUNK = 5000


def unshown_units(
    config: Config, sessions: sessionmaker[Session], sku_ids: Mapping[str, int]
) -> dict[tuple[str, str], int]:
    """Per listing (account, SKU) of accounts whose read may show a sale only at picking: the units
    sold there that no read has shown yet, as the next read of the listing holds them."""
    late = {a.name: PLATFORMS[a.platform].picked_statuses for a in config.accounts if a.sale_may_show_late}
    if not late or not sku_ids:
        return {}
    with sessions() as session:
        names = dict(session.execute(select(Account.id, Account.name).where(Account.name.in_(late))).all())
    picked = {account_id: late[name] for account_id, name in names.items()}
    store, now, ids = OrderStore(sessions), datetime.now(UTC), list(sku_ids.values())
    found = {}
    for at in range(0, len(ids), CHUNK):  # a whole catalogue in queries of bounded size
        found.update(store.unshown_sales(names, ids[at : at + CHUNK], now, picked=picked))
    sku_of = {sku_id: sku for sku, sku_id in sku_ids.items()}
    held = {(names[a], sku_of[s]): sales.held(read_now=True) for (a, s), sales in found.items()}
    return {key: units for key, units in held.items() if units}


def held_elsewhere(unshown: Mapping[tuple[str, str], int], account: str, sku: str) -> int:
    """The units held off `account`'s listing of `sku`: those unshown on the SKU's other listings
    (a listing's own are in its count already)."""
    return sum(units for (other, code), units in unshown.items() if code == sku and other != account)
