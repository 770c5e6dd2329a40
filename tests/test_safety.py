"""Safety stops: a read that looks like an outage is never booked into the pool."""

from __future__ import annotations

import json
from pathlib import Path

from sync.safety import SafetyLimits, refuse_reason
from tests.fakes import fleet
from tests.test_cli import assert_ledger_consistent, invoke

LIMITS = SafetyLimits(min_listings=4, max_drop_share=0.5)
KNOWN = {f"s{i}": 10 for i in range(6)}


def test_ordinary_trade_passes() -> None:
    assert refuse_reason(KNOWN, {**KNOWN, "s0": 9, "s1": 0}, LIMITS) is None
    assert refuse_reason({"a": 5}, {"a": 0}, LIMITS) is None  # too few listings to judge


def test_outage_shapes_are_refused() -> None:
    assert "none of its 6" in str(refuse_reason(KNOWN, {}, LIMITS))
    assert "at zero" in str(refuse_reason(KNOWN, {sku: 0 for sku in KNOWN}, LIMITS))
    assert "4 of 6 listings dropped" in str(refuse_reason(KNOWN, {**KNOWN, "s0": 1, "s1": 2, "s2": 3, "s3": 4}, LIMITS))


def test_a_platform_reporting_all_zeros_is_stopped_and_not_booked(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(12)]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            for sku in skus:
                platform.set_quantity(sku, 8)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(db_url, skus))
        config.chmod(0o600)
        assert invoke("reconcile", "--config", config).exit_code == 0
        for sku in skus:
            running.platforms["gra"].set_quantity(sku, 0)  # a broken Graas answers zero everywhere
        result = invoke("reconcile", "--config", config, "--json")
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["accounts"]["gra"]["error_kind"] == "safety_stop"
        assert report["movements"] == [] and report["pushes"] == []
        assert all(running.platforms["oak"].quantity(sku) == 8 for sku in skus)
    assert_ledger_consistent(db_url)


def test_a_batch_of_sold_skus_is_expected_to_drop() -> None:
    from sync.safety import SafetyLimits, refuse_reason

    known = {f"sku-{i}": 5 for i in range(12)}
    sold = {sku: 4 for sku in known}  # the fast path reads exactly the SKUs orders say sold
    limits = SafetyLimits(min_listings=10, max_drop_share=0.5)
    assert refuse_reason(known, sold, limits) is not None  # in a sweep, that many drops look like an outage
    assert refuse_reason(known, sold, limits, expect_drops=True) is None
    assert refuse_reason(known, {sku: 0 for sku in known}, limits, expect_drops=True) is not None  # all zeros
    assert refuse_reason(known, {}, limits, expect_drops=True) is not None  # none listed
