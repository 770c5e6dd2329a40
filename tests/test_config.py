"""Configuration: every documented key loads, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import load_config
from sync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = """
[catalog]
skus = ["a", "b"]

[[accounts]]
name = "oak"
platform = "oakra"
base_url = "https://app.oakra.com/api/v1"
app_key = "${OAKRA_KEY}"
location_id = "warehouse-1"
"""


def write(tmp_path: Path, text: str, name: str = "stocksync.toml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_example_documents_every_key_and_loads(tmp_path: Path) -> None:
    text = (ROOT / "config" / "example.toml").read_text()
    config = load_config(
        write(tmp_path, text, mode=0o644),
        environ={
            "OAKRA_APP_KEY": "k1",
            "GRAAS_ACCOUNT_NUMBER": "n1",
            "GRAAS_APP_KEY": "from-the-environment",
            "OTO_REFRESH_TOKEN": "r1",
            "ANKORSTORE_CLIENT_ID": "c1",
            "ANKORSTORE_CLIENT_SECRET": "s1",
        },
    )
    graas = config.account("graas-sg")
    assert graas.app_key.get_secret_value() == "from-the-environment"  # type: ignore[attr-defined]
    assert config.skus == ("shirt-blue-m", "shirt-green-m")
    assert config.warnings == ()  # readable by others (0644): it holds no credentials
    # A starting point cancels no customer's order and renames nothing until the operator says so.
    assert {a.oversell_policy for a in config.accounts} == {"alert"} and not graas.aliases
    assert config.orders.poll_seconds == 2


def test_the_demo_config_loads() -> None:
    config = load_config(ROOT / "config" / "demo.toml")
    assert {a.platform for a in config.accounts} == {"oakra", "graas", "oto", "ankorstore"}


def test_environment_interpolation_and_a_missing_variable(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert load_config(path, environ={"OAKRA_KEY": "s3cret"}).accounts[0].app_key.get_secret_value() == "s3cret"  # type: ignore[attr-defined]
    with pytest.raises(
        ConfigError, match=r"accounts\[0\] \(oak\)\.app_key: environment variable OAKRA_KEY \(or OAKRA_KEY_FILE\)"
    ):
        load_config(path, environ={})
    # The container convention: $OAKRA_KEY_FILE names a file holding the secret.
    secret = tmp_path / "oakra_key"
    secret.write_text("from-a-secret-file\n")
    loaded = load_config(path, environ={"OAKRA_KEY_FILE": str(secret)})
    assert loaded.accounts[0].app_key.get_secret_value() == "from-a-secret-file"  # type: ignore[attr-defined]


def test_plain_secrets_in_a_readable_file_are_warned_about(tmp_path: Path) -> None:
    text = MINIMAL.replace('"${OAKRA_KEY}"', '"plain-key"')
    assert load_config(write(tmp_path, text, mode=0o600), environ={}).warnings == ()
    warnings = load_config(write(tmp_path, text, mode=0o644), environ={}).warnings
    assert warnings and "accounts[0] (oak).app_key" in warnings[0] and "plain-key" not in warnings[0]


def test_catalog_file_csv_and_lines(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text("sku,name\nc,Cap\nd,Dress\n")
    (tmp_path / "list.txt").write_text("# comment\ne\n\nf\n")
    for name, expected in (("cat.csv", ("a", "b", "c", "d")), ("list.txt", ("a", "b", "e", "f"))):
        text = MINIMAL.replace('skus = ["a", "b"]', f'skus = ["a", "b"]\nfile = "{name}"')
        assert load_config(write(tmp_path, text), environ={"OAKRA_KEY": "k"}).skus == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('platform = "oakra"', 'platform = "shopify"'),
            "accounts[0] (oak).platform: 'shopify' is not a known platform",
        ),
        (('location_id = "warehouse-1"', ""), "accounts[0] (oak).location_id: required but missing"),
        (('name = "oak"', 'name = "oak"\nbufer = 2'), "accounts[0] (oak).bufer: unknown key"),
        (
            ('base_url = "https://app.oakra.com/api/v1"', 'base_url = "app.oakra.com"'),
            "accounts[0] (oak).base_url: must start with http:// or https://",
        ),
        (("[catalog]", '[bootstrap]\nrule = "nobody"\n[catalog]'), "bootstrap.rule: 'nobody' is neither"),
        (('skus = ["a", "b"]', "skus = []"), "catalog: no SKUs"),
        (
            ('name = "oak"', 'name = "oak"\nbuffer = -1'),
            "accounts[0] (oak).buffer: Input should be greater than or equal to 0",
        ),
        (
            ('name = "oak"', 'name = "oak"\noversell_policy = "refund"'),
            "accounts[0] (oak).oversell_policy: Input should be 'alert' or 'cancel'",
        ),
        (("[catalog]", "[orders]\npoll_seconds = 0\n[catalog]"), "orders.poll_seconds: Input should be greater than 0"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"OAKRA_KEY": "k"})
    assert message in str(caught.value)


def test_duplicate_account_names(tmp_path: Path) -> None:
    account = MINIMAL.split("[[accounts]]")[1]
    path = write(tmp_path, MINIMAL + "[[accounts]]" + account)
    with pytest.raises(ConfigError, match="name 'oak' is used twice"):
        load_config(path, environ={"OAKRA_KEY": "k"})


def test_not_toml_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[database\nurl="), environ={})
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml", environ={})


def test_secret_file_and_plain_value_together_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL.replace('app_key = "${OAKRA_KEY}"', 'app_key = "x"\napp_key_file = "k.txt"')
    with pytest.raises(ConfigError, match="give either app_key or app_key_file"):
        load_config(write(tmp_path, text), environ={})


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("STOCKSYNC_CONFIG", str(path))
    monkeypatch.setenv("OAKRA_KEY", "k")
    assert load_config(None).accounts[0].name == "oak"


# --- files as a spreadsheet or an editor saves them (issue 15) ---------------------------------


def test_a_config_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "stocksync.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    path.chmod(0o600)
    assert load_config(path, environ={"OAKRA_KEY": "k"}).skus == ("a", "b")


def test_a_config_not_in_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "stocksync.toml"
    path.write_bytes(MINIMAL.replace('name = "oak"', 'name = "oak-café"').encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 \(line 6 has byte 0xe9\): save it as UTF-8"):
        load_config(path, environ={"OAKRA_KEY": "k"})


@pytest.mark.parametrize(
    ("content", "skus"),
    [
        (b"\xef\xbb\xbfsku,name\nmug,Mug\ncap,Cap\n", ("mug", "cap")),  # "CSV UTF-8" from a spreadsheet
        ("name,sku\nCaf\u00e9 mug,mug\n".encode(), ("mug",)),
        (b"mug\ncap\n", ("mug", "cap")),  # one per line
        (b"\xef\xbb\xbfsku;name;qty\r\nmug;Mug;3\r\n", ("mug",)),  # a European spreadsheet's "CSV UTF-8"
        (b"name\tsku\nMug\tmug\n", ("mug",)),  # tab-separated
    ],
)
def test_catalog_files_as_saved(tmp_path: Path, content: bytes, skus: tuple[str, ...]) -> None:
    (tmp_path / "catalog.csv").write_bytes(content)
    text = MINIMAL.replace('skus = ["a", "b"]', 'file = "catalog.csv"')
    assert load_config(write(tmp_path, text), environ={"OAKRA_KEY": "k"}).skus == skus


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"name,qty\nmug,3\n", r"no `sku` column: name the column of SKU codes `sku`"),
        (b"name;qty\nmug;3\n", r"no `sku` column"),
        ("sku,name\nmug,Caf\u00e9\n".encode("latin-1"), r"catalog.file: .* is not UTF-8 \(line 2 has byte 0xe9\)"),
    ],
)
def test_catalog_files_that_would_be_misread_are_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "catalog.csv").write_bytes(content)
    text = MINIMAL.replace('skus = ["a", "b"]', 'file = "catalog.csv"')
    with pytest.raises(ConfigError, match=problem):
        load_config(write(tmp_path, text), environ={"OAKRA_KEY": "k"})


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_credential_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    # docker-compose passes an unset `${OAKRA_KEY:-}` as an empty string.
    with pytest.raises(ConfigError, match=r"accounts\[0\] \(oak\)\.app_key: empty; set it"):
        load_config(write(tmp_path, MINIMAL), environ={"OAKRA_KEY": value})
