"""The SKU part of `stocksync status`: each SKU's pool and what each listing is expected to show,
which listings are out of step with the pool, and a table that fits the terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sync.cli.holds import held_elsewhere
from sync.ledger.snapshot import SkuView
from sync.planner import AccountRules

SKU_WIDTH = 24  # at least
MIN_CELL = 6  # narrower than this, the table is written one listing per line instead


@dataclass(frozen=True)
class SkuLine:
    """A SKU's view with what each account's rules give from its pool."""

    view: SkuView
    targets: dict[str, int]

    @property
    def out_of_step(self) -> list[str]:
        """The accounts whose listing is expected to show another number than its rules give from
        the pool (a push that failed, an account down, units held for sales no read shows yet),
        or whose last push is in doubt."""
        return [
            listing.account
            for listing in self.view.listings
            if listing.in_doubt or listing.expected != self.targets.get(listing.account, listing.expected)
        ]


def sku_lines(
    views: Sequence[SkuView], rules: Mapping[str, AccountRules], unshown: Mapping[tuple[str, str], int]
) -> list[SkuLine]:
    """Each SKU with its listings' targets under the configured rules, less the units held off them
    for sales no read shows yet (`sync.cli.holds`), as the engine plans them."""
    return [
        SkuLine(
            view,
            {
                lv.account: rules[lv.account].target(view.pool - held_elsewhere(unshown, lv.account, view.sku))
                for lv in view.listings
                if lv.account in rules
            },
        )
        for view in views
    ]


def table_text(lines: Sequence[SkuLine], accounts: Sequence[str], width: int) -> list[str]:
    """One row per SKU with a column per account when the terminal is wide enough, else one line
    per listing. A cell is what the listing is expected to show; `*` marks a number other than the
    pool gives it, `?` a push in doubt."""
    # SKU codes are never cut (two that differ only at the end must stay apart, and be pasted into
    # `explain`): the column takes the longest, and the cells what is left.
    sku_width = max([SKU_WIDTH, *(len(line.view.sku) for line in lines)])
    room = (width - sku_width - 8) // max(len(accounts), 1) - 1
    cell = min(max([MIN_CELL, *(len(a) for a in accounts)]), room)
    if cell < MIN_CELL:
        return [row for line in lines for row in _listing_rows(line)]
    rows = [f"{'sku':<{sku_width}} {'pool':>6} " + " ".join(f"{a[:cell]:>{cell}}" for a in accounts)]
    for line in lines:
        by_account = {listing.account: listing for listing in line.view.listings}
        cells = []
        for account in accounts:
            listing = by_account.get(account)
            text = "-" if listing is None else f"{listing.expected}{_mark(line, account)}"
            cells.append(f"{text:>{cell}}")
        rows.append(f"{line.view.sku:<{sku_width}} {line.view.pool:>6} " + " ".join(cells))
    return rows


def _listing_rows(line: SkuLine) -> list[str]:
    rows = [f"{line.view.sku}  pool {line.view.pool}"]
    for listing in line.view.listings:
        target = line.targets.get(listing.account)
        rows.append(f"    {listing.account}: {listing.expected}{_mark(line, listing.account)} (rules give {target})")
    return rows


def _mark(line: SkuLine, account: str) -> str:
    listing = next(lv for lv in line.view.listings if lv.account == account)
    if listing.in_doubt:
        return "?"
    return "*" if account in line.out_of_step else ""
