"""What the next reconciler makes of pushes a stopped one left `sent`: in doubt, unless the ledger
proves the write never left. An absolute set records its fresh read before it leaves, under the
lease: marked sent with none recorded, it never left, and waiting on evidence for it would leave
its listing unwritten until the in-doubt timeout (found by the fencing test, frozen by SIGSTOP
between marking its pushes sent and Ankorstore's fresh read)."""

from __future__ import annotations

import pytest

from sync.config import Config
from sync.crashpoints import ProcessDeath
from sync.ledger.models import Account, Listing, Push
from tests.fakes import fleet
from tests.test_doubt_edges import crash_at
from tests.test_orders import cycle, pools, rows, stock
from tests.test_trust import seeded


def pushes_by_account(config: Config) -> dict[str, list[Push]]:
    accounts = {a.id: a.name for a in rows(config, Account)}
    listings = {listing.id: accounts[listing.account_id] for listing in rows(config, Listing)}
    found: dict[str, list[Push]] = {}
    for push in rows(config, Push):
        found.setdefault(listings[push.listing_id], []).append(push)
    return found


def test_an_absolute_set_marked_sent_before_its_fresh_read_is_cancelled_not_left_in_doubt(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas"), ("ank", "ankorstore")) as running:
        seeded(running, ["mug"], 10)
        config = running.config(db_url, ["mug"])
        cycle(config)
        assert running.platforms["oak"].sell("mug", 3)
        with pytest.raises(ProcessDeath):  # every push marked sent; the process dies before any leaves
            cycle(config, crash=crash_at("after_mark_sent"))
        report = cycle(config, holder="p2")
        by_account = pushes_by_account(config)
        (ank_first, *ank_again) = by_account["ank"]
        assert ank_first.state == "cancelled", ank_first.detail
        assert "fresh read" in ank_first.detail
        # Nothing waits on Ankorstore: the takeover's cycle sets it at once.
        assert not [w for w in report.waiting if w[1] == "ank"], report.waiting
        assert [p.state for p in ank_again] == ["confirmed"]
        # Graas's relative push may have left: it is in doubt, for evidence to settle.
        assert by_account["gra"][0].state == "in_doubt"
        assert pools(config) == {"mug": 7}
        assert stock(running, "mug")["ank"] == 7


def test_an_absolute_set_whose_fresh_read_was_recorded_stays_in_doubt(db_url: str) -> None:
    with fleet(("oak", "oakra"), ("ank", "ankorstore")) as running:
        seeded(running, ["mug"], 10)
        config = running.config(db_url, ["mug"])
        cycle(config)
        assert running.platforms["oak"].sell("mug", 3)
        # The set's fresh read is recorded, then the process dies before the answer: the set may
        # have landed (here it did), so it is judged from evidence, never cancelled.
        with pytest.raises(ProcessDeath):
            cycle(config, crash=crash_at("after_send"))
        (sent,) = pushes_by_account(config)["ank"]
        assert sent.fresh_quantity == 10 and sent.state == "sent"
        cycle(config, holder="p2")
        first = pushes_by_account(config)["ank"][0]
        assert first.state == "applied", (first.state, first.detail)
        assert pools(config) == {"mug": 7}
        assert stock(running, "mug") == {"oak": 7, "ank": 7}
