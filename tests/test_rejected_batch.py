"""A batch rejected for one bad change (Oakra's 400, Ankorstore's 422): no document promises the
rest was not applied, so nothing in it is sent again until a read has settled it. Its changes go
in doubt, settle from later reads, and then go alone: the bad one fails on its own, the others
land, and no change is ever applied twice, whichever way the platform treats the rest (each
emulator chooses per seed; here both ways)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sync.domain import PushState
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.ledger.models import Listing, Push
from sync.platforms.batching import REJECTED_BATCH
from sync.platforms.oakra.emulator import OakraEmulator
from tests.fakes import fleet
from tests.test_orders import cycle, pools, rows, stock

SKUS = ["a", "b", "c"]


@pytest.mark.parametrize("applies_the_rest", [False, True])
def test_a_rejected_batch_is_settled_from_reads_before_anything_is_sent_again(
    db_url: str, applies_the_rest: bool
) -> None:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        oak = running.platforms["oak"]
        assert isinstance(oak, OakraEmulator)
        oak.silences.rejected_batch_applies_the_rest = applies_the_rest
        for platform in running.platforms.values():
            for sku in SKUS:
                platform.set_quantity(sku, 10)
        config = running.config(db_url, SKUS)
        cycle(config)
        for sku in SKUS:
            assert running.platforms["gra"].sell(sku, 2)

        def replace_b(request: EmuRequest) -> None:
            # Right after the cycle's read, Oakra's record for "b" is deleted and made again: the
            # id just read is stale, and a change sent to it is invalid.
            if request.method == "GET" and oak.after_request is replace_b:
                oak.after_request = None
                stale = next(r for r in oak.records.values() if r.sku == "b")
                del oak.records[stale.id]
                del oak._by_key[("b", stale.location_id)]
                oak.set_quantity("b", 10)

        oak.after_request = replace_b

        cycle(config)  # Oakra's batch of three is rejected for "b"
        pushes = sorted(rows(config, Push), key=lambda p: p.id)
        rejected = [p for p in pushes if p.detail.startswith(REJECTED_BATCH)]
        assert len(rejected) == 3  # in doubt, not split and sent again
        for push in rejected:  # settled from a read before its listing's next push was planned
            later = [p for p in pushes if p.listing_id == push.listing_id and p.id > push.id]
            assert push.settled_at is not None and all(p.created_at >= push.settled_at for p in later)
        for _ in range(3):
            cycle(config)
        assert {sku: stock(running, sku) for sku in SKUS} == dict.fromkeys(SKUS, {"oak": 8, "gra": 8})
        assert pools(config) == dict.fromkeys(SKUS, 8)
        applied = Counter(code for code, _ in oak.applied)
        assert applied["a"] == 1 and applied["c"] == 1  # never applied twice
        # Settled from reads (Oakra has no feed: a quiet listing, flagged), then sent alone.
        settled = {p.state for p in rows(config, Push) if p.detail.startswith(REJECTED_BATCH)}
        assert settled <= {PushState.APPLIED.value, PushState.NOT_APPLIED.value}


def test_a_change_the_platform_always_rejects_keeps_its_batch_mates_clear(db_url: str) -> None:
    # From the outside review: Oakra rejects every change to "b". Its first rejected batch puts
    # "a" and "c" in doubt once; from then on "b" goes alone (and fails alone), and its batch-mates
    # never go in doubt for it again.
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        oak = running.platforms["oak"]
        for platform in running.platforms.values():
            for sku in SKUS:
                platform.set_quantity(sku, 50)
        config = running.config(db_url, SKUS)
        cycle(config)
        bad = next(r.id for r in oak.records.values() if r.sku == "b")
        route = oak.route

        def reject_b(request: EmuRequest) -> EmuResponse:
            if request.method == "POST" and request.path.endswith("/change/"):
                items = json.loads(request.body)["stock_records"]
                if any(item["id"] == bad for item in items):
                    errors = [{"quantity_change": ["locked"]} if item["id"] == bad else {} for item in items]
                    return EmuResponse(400, {"stock_records": errors})
            return route(request)

        oak.route = reject_b  # type: ignore[method-assign]
        for _ in range(6):
            for sku in SKUS:
                assert running.platforms["gra"].sell(sku, 1)
            cycle(config)
        listing_sku = {listing.id: listing.code for listing in rows(config, Listing)}
        doubted = Counter(listing_sku[p.listing_id] for p in rows(config, Push) if p.detail.startswith(REJECTED_BATCH))
        assert doubted == {"a": 1, "b": 1, "c": 1}
        assert {sku: stock(running, sku)["oak"] for sku in ("a", "c")} == {"a": 44, "c": 44}
