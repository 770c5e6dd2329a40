"""A sale that the selling platform's stock read shows only once its order is picked (OTO's
`quantityOnHand` and Graas's `quantity` do not say when): stocksync holds its units back from the
other platforms from the moment the order is seen until it leaves the open states, books the drop
once when the read shows it, and gives nothing twice, under either reading of the silence (and
holds nothing where the account says its read shows a sale at the order)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sync.config import Config
from sync.emulation.platform import EmulatedPlatform
from sync.ledger.models import Movement
from tests.fakes import Fleet, fleet
from tests.test_orders import cycle, in_engine, pools, rows, stock

READINGS = {"at the order": True, "at picking": False}
# (what the emulator does, what the account says): never "at_order" where the read waits for picking
# (that is a wrong setting, not a silence).
CASES = [("at the order", "at_order"), ("at the order", "unknown"), ("at picking", "unknown")]


@contextmanager
def caught_up(
    db_url: str, platform: str, reading: str, setting: str = "unknown"
) -> Iterator[tuple[Fleet, EmulatedPlatform, Config]]:
    """`sel` on `platform` (its read showing a sale as `reading` says, its account saying
    `setting`), another feed platform and Oakra, 5 lamps each, booked and with the feeds read to
    their end once (caught up)."""
    with fleet(
        ("sel", platform, {"sale_shows_in_read": setting}),
        ("other", "graas" if platform == "oto" else "oto", {"sale_shows_in_read": "at_order"}),
        ("oak", "oakra"),
    ) as running:
        seller = running.platforms["sel"]
        seller.silences.reflects_sale_at_order = READINGS[reading]
        for emulator in running.platforms.values():
            emulator.set_quantity("lamp", 5)
        config = running.config(db_url, ["lamp"])
        cycle(config)
        cycle(config)
        yield running, seller, config


@pytest.mark.parametrize("platform", ["oto", "graas"])
@pytest.mark.parametrize(("reading", "setting"), CASES)
def test_a_sale_reaches_the_other_platforms_at_once_and_counts_once_when_picked(
    db_url: str, platform: str, reading: str, setting: str
) -> None:
    with caught_up(db_url, platform, reading, setting) as (running, seller, config):
        assert seller.sell("lamp", 2) is not None
        in_engine(config, lambda engine: engine.run_orders())  # the fast path
        shown_by_seller = 3 if READINGS[reading] else 5
        # Under "unknown" the open order's 2 units are kept off the others until it leaves the
        # open states: where the read showed the sale at once, 2 short meanwhile (never 2 over).
        held = 2 if setting == "unknown" and READINGS[reading] else 0
        assert stock(running, "lamp") == {"sel": shown_by_seller, "other": 3 - held, "oak": 3 - held}
        assert pools(config) == {"lamp": shown_by_seller}  # the pool moves only with a read
        cycle(config)  # nothing changes until the order is picked
        assert stock(running, "lamp") == {"sel": shown_by_seller, "other": 3 - held, "oak": 3 - held}
        assert seller.ship("lamp")
        in_engine(config, lambda engine: engine.run_orders())  # the feed sees it shipped
        cycle(config)
        cycle(config)
        assert stock(running, "lamp") == {"sel": 3, "other": 3, "oak": 3}
        assert pools(config) == {"lamp": 3}
        # Each other platform was written down by 2 in all: nothing taken twice for good.
        for name in ("other", "oak"):
            writes = [delta for _, delta in running.platforms[name].applied if delta]
            assert writes == ([-4, 2] if held else [-2])
        drops = [m.quantity for m in rows(config, Movement) if m.kind == "external"]
        assert drops == [-2]
        assert next(iter(rows(config, Movement))).kind == "bootstrap"


@pytest.mark.parametrize("platform", ["oto", "graas"])
@pytest.mark.parametrize(("reading", "setting"), CASES)
def test_an_order_cancelled_before_picking_gives_its_units_back_once(
    db_url: str, platform: str, reading: str, setting: str
) -> None:
    with caught_up(db_url, platform, reading, setting) as (running, seller, config):
        order = seller.sell("lamp", 1)
        assert order is not None
        in_engine(config, lambda engine: engine.run_orders())
        held = 1 if setting == "unknown" and READINGS[reading] else 0
        assert stock(running, "lamp")["other"] == 4 - held
        assert seller.cancel(order.order_id)
        in_engine(config, lambda engine: engine.run_orders())
        cycle(config)
        cycle(config)
        assert stock(running, "lamp") == {"sel": 5, "other": 5, "oak": 5}
        assert pools(config) == {"lamp": 5}


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_orders_open_before_the_feed_first_caught_up_are_held_until_picked(db_url: str, reading: str) -> None:
    # An order open when stocksync first looks is in the first readings' count under "at
    # picking" (its unit sold, not yet picked): it is held like a new one, until picked. (A second
    # review: taking such orders as shown offered their units twice; so did one placed after the
    # first stock read while the feed was still catching up.)
    with fleet(("sel", "oto", {"sale_shows_in_read": "unknown"}), ("other", "graas"), ("oak", "oakra")) as running:
        seller = running.platforms["sel"]
        seller.silences.reflects_sale_at_order = READINGS[reading]
        for emulator in running.platforms.values():
            emulator.set_quantity("lamp", 5)
        assert seller.sell("lamp", 1) is not None  # before stocksync ever looked
        config = running.config(db_url, ["lamp"])
        cycle(config)
        assert not cycle(config).oversells  # held, but never taken for an oversell: it may be shown
        start = 4 if READINGS[reading] else 5  # the first readings are the truth we start from
        # Held elsewhere: at picking 4 are left, and 4 shown; at the order one unit short meanwhile
        # (never one too many).
        assert stock(running, "lamp") == {"sel": start, "other": start - 1, "oak": start - 1}
        assert seller.sell("lamp", 1) is not None
        in_engine(config, lambda engine: engine.run_orders())
        assert stock(running, "lamp")["other"] == (1 if READINGS[reading] else 3)
        while seller.ship("lamp"):
            pass
        in_engine(config, lambda engine: engine.run_orders())
        cycle(config)
        cycle(config)
        # Picked: under "at picking" the units leave the count now, and nothing is held any more.
        assert stock(running, "lamp") == {"sel": 3, "other": 3, "oak": 3}
        assert pools(config) == {"lamp": 3}


def test_explain_shows_the_units_a_read_does_not_show_yet_and_the_lower_targets(tmp_path: Any, db_url: str) -> None:
    from tests.test_cli import invoke

    unknown = {"sale_shows_in_read": "unknown"}
    with fleet(("sel", "oto", unknown), ("other", "graas"), ("oak", "oakra")) as running:
        running.platforms["sel"].silences.reflects_sale_at_order = False
        for emulator in running.platforms.values():
            emulator.set_quantity("lamp", 5)
        config_path = tmp_path / "stocksync.toml"
        config_path.write_text(running.toml(db_url, ["lamp"]))
        config_path.chmod(0o600)
        for _ in range(2):
            assert invoke("reconcile", "--config", config_path).exit_code == 0
        assert running.platforms["sel"].sell("lamp", 2) is not None
        assert invoke("reconcile", "--config", config_path).exit_code == 0
        assert stock(running, "lamp") == {"sel": 5, "other": 3, "oak": 3}
        shown = invoke("explain", "lamp", "--config", config_path)
        assert shown.exit_code == 0, shown.output
        lines = {
            line.split()[0]: line for line in shown.output.splitlines() if line.startswith("  ") and "expected" in line
        }
        assert "-> target 5; 2 unit(s) of open orders here, which its read may not show yet" in lines["sel"]
        assert lines["other"].endswith("-> target 3") and lines["oak"].endswith("-> target 3")
