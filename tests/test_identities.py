"""Identity mistakes in the configuration are refused at start: two SKUs sharing a code on one
account, and codes a platform's documented read cannot express."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import cli
from sync.config import load_config
from sync.errors import ConfigError

ENVIRON = {"SECRET": "s3cret"}
CATALOG = '[catalog]\nskus = ["a", "b", "c"]\n'
ACCOUNTS = {
    "oakra": 'platform = "oakra"\nbase_url = "https://app.oakra.com/api/v1"\napp_key = "${SECRET}"\n'
    'location_id = "warehouse-1"\n',
    "graas": 'platform = "graas"\nbase_url = "https://graas.example.com"\naccount_number = "n1"\n'
    'app_key = "${SECRET}"\nwarehouse_id = "w1"\n',
    "oto": 'platform = "oto"\nbase_url = "https://api.tryoto.com"\nrefresh_token = "${SECRET}"\n'
    'location_code = "riyadh"\n',
    "ankorstore": 'platform = "ankorstore"\nbase_url = "https://www.ankorstore.com"\nclient_id = "c1"\n'
    'client_secret = "${SECRET}"\n',
}


def account(name: str, platform: str, aliases: dict[str, str] | None = None) -> str:
    """One `[[accounts]]` table, with its aliases if any."""
    text = f'\n[[accounts]]\nname = "{name}"\n{ACCOUNTS[platform]}'
    if aliases:
        text += "\n[accounts.aliases]\n" + "".join(f'"{sku}" = "{code}"\n' for sku, code in aliases.items())
    return text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stocksync.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def refused(tmp_path: Path, text: str) -> str:
    """The message of the ConfigError that loading `text` raises."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ=ENVIRON)
    return str(caught.value)


def test_two_aliases_to_one_code(tmp_path: Path) -> None:
    text = CATALOG + account("oak", "oakra") + account("gra", "graas", {"a": "X", "c": "X"})
    message = refused(tmp_path, text)
    assert "accounts[1] (gra).aliases: SKUs 'a' and 'c' both map to code 'X' on account 'gra'" in message
    assert "remove or change one alias" in message
    assert "Traceback" not in message


def test_an_alias_equal_to_an_unaliased_catalogue_sku(tmp_path: Path) -> None:
    message = refused(tmp_path, CATALOG + account("oak", "oakra", {"a": "b"}))
    assert "SKUs 'a' and 'b' both map to code 'b' on account 'oak'" in message


def test_a_collision_through_the_catalogue_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text("sku,name\nd,Dress\nMUG-1,Mug\n")
    text = CATALOG.replace("[catalog]", '[catalog]\nfile = "catalog.csv"') + account("oak", "oakra", {"a": "MUG-1"})
    message = refused(tmp_path, text)
    assert "SKUs 'a' and 'MUG-1' both map to code 'MUG-1' on account 'oak'" in message
    # The same alias is fine while MUG-1 is not in the catalogue.
    (tmp_path / "catalog.csv").write_text("sku,name\nd,Dress\n")
    assert load_config(tmp_path / "stocksync.toml", environ=ENVIRON).skus == ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("platform", "reason"),
    [
        ("oto", "OTO's checkInventoryStock takes a comma-separated sku list"),
        ("ankorstore", "Ankorstore's filter[sku] takes a comma-separated sku list"),
    ],
)
def test_a_comma_cannot_be_read_on_oto_or_ankorstore(tmp_path: Path, platform: str, reason: str) -> None:
    catalog = CATALOG.replace('"c"]', '"c", "a,b"]')
    message = refused(tmp_path, catalog + account("oak", "oakra") + account("acct", platform))
    assert (
        f"accounts[1] (acct): SKU 'a,b' (code 'a,b') on account 'acct' cannot be read: {reason}; "
        "give it an alias the platform can read under [accounts.aliases] or remove it from the catalogue"
    ) in message
    assert "'oak'" not in message
    # An alias without the comma is the fix.
    fixed = catalog + account("oak", "oakra") + account("acct", platform, {"a,b": "a-b"})
    assert load_config(write(tmp_path, fixed), environ=ENVIRON).account("acct").code_for("a,b") == "a-b"


def test_a_comma_is_fine_on_oakra_and_graas(tmp_path: Path) -> None:
    text = CATALOG.replace('"c"]', '"c", "a,b"]') + account("oak", "oakra") + account("gra", "graas")
    assert "a,b" in load_config(write(tmp_path, text), environ=ENVIRON).skus


def test_an_alias_with_surrounding_whitespace(tmp_path: Path) -> None:
    message = refused(tmp_path, CATALOG + account("gra", "graas", {"b": " B "}))
    assert (
        "SKU 'b' (code ' B ') on account 'gra' cannot be read: the code has leading or trailing whitespace" in message
    )
    assert "change its alias under [accounts.aliases]" in message


def test_several_problems_are_reported_together_up_to_five(tmp_path: Path) -> None:
    skus = ", ".join(f'"s,{i}"' for i in range(8))
    text = f"[catalog]\nskus = [{skus}]\n" + account("oto", "oto")
    message = refused(tmp_path, text)
    assert [f"SKU 's,{i}'" in message for i in range(8)] == [True] * 5 + [False] * 3
    assert message.endswith("... and 3 more")


def test_aliases_that_do_not_collide_load(tmp_path: Path) -> None:
    # A swap is no collision: every SKU still has a code of its own.
    text = (
        CATALOG
        + account("oak", "oakra", {"a": "b", "b": "a"})
        + account("oto", "oto", {"c": "C-1"})
        + account("ank", "ankorstore", {"a": "A", "b": "B", "unknown": "A"})
    )
    config = load_config(write(tmp_path, text), environ=ENVIRON)
    assert [config.account("oak").code_for(s) for s in config.skus] == ["b", "a", "c"]
    assert [config.account("ank").code_for(s) for s in config.skus] == ["A", "B", "c"]


def test_the_cli_prints_the_error_without_a_traceback_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG + account("oak", "oakra", {"a": "X", "b": "X"}))
    result = CliRunner().invoke(cli, ["reconcile", "--config", str(path)], env=ENVIRON, catch_exceptions=False)
    assert result.exit_code == 2
    assert "stocksync: error:" in result.output
    assert "SKUs 'a' and 'b' both map to code 'X' on account 'oak'" in result.output
    assert "Traceback" not in result.output
