"""Safety stops: drops that look like an outage are never booked into the pool, lift when they
prove real, and otherwise wait for an operator's decision."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import fleet
from tests.test_cli import assert_ledger_consistent, invoke
from tests.test_decisions import reconciled_fleet


def test_a_platform_reporting_all_zeros_is_refused_and_not_booked(tmp_path: Path, db_url: str) -> None:
    skus = [f"sku-{i}" for i in range(12)]
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        config = reconciled_fleet(running, tmp_path, db_url, skus, 8)
        for sku in skus:
            running.platforms["gra"].set_quantity(sku, 0)  # a broken Graas answers zero everywhere
        result = invoke("reconcile", "--config", config, "--json")
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["accounts"]["gra"]["bad_reads"] == {"all_zeros": 1}
        assert report["accounts"]["gra"]["error_kind"] == "bad_answers"
        assert report["movements"] == [] and report["pushes"] == []
        assert all(running.platforms["oak"].quantity(sku) == 8 for sku in skus)
    assert_ledger_consistent(db_url)
