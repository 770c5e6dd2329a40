"""The first hour of a new user (issue 15): every command on a ledger that is missing, in a folder
that does not exist, or on a database that cannot be reached says so in one line naming the
ledger, with the documented exit status, and never creates a ledger as a side effect of reading."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sync.cli import cli
from tests.fakes import Fleet, fleet
from tests.test_cli import write_config

READING = [("status",), ("explain", "mug"), ("reconcile",), ("reconcile", "--dry-run")]


@pytest.fixture
def running() -> Iterator[Fleet]:
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        yield running


def invoke(*args: str | Path) -> Result:
    """The command as a user meets it: an exception escaping it would be a traceback."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", READING)
def test_reading_a_ledger_that_does_not_exist_names_it_and_creates_nothing(
    tmp_path: Path, running: Fleet, command: tuple[str, ...]
) -> None:
    ledger = tmp_path / "ledger.db"
    config = write_config(tmp_path, running, f"sqlite:///{ledger}")
    result = invoke(*command, "--config", config)
    assert result.exit_code == 2, result.output
    assert f"no ledger at {ledger}" in result.output and "stocksync db upgrade" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not ledger.exists()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("run", "--upgrade-db"), ("status",)])
def test_a_sqlite_ledger_in_a_missing_folder_is_a_config_error(
    tmp_path: Path, running: Fleet, command: tuple[str, ...]
) -> None:
    folder = tmp_path / "no-such-folder"
    config = write_config(tmp_path, running, f"sqlite:///{folder / 'ledger.db'}")
    result = invoke(*command, "--config", config)
    assert result.exit_code == 2, result.output
    assert f"database.url: the folder {folder} does not exist" in result.output
    assert not folder.exists()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("run", "--upgrade-db"), ("status",), ("reconcile",)])
def test_an_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, running: Fleet, command: tuple[str, ...]
) -> None:
    url = f"postgresql+psycopg://stocksync:s3cret-pw@127.0.0.1:{closed_port()}/ledger"
    config = write_config(tmp_path, running, url)
    result = invoke(*command, "--config", config)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("stocksync: error: cannot reach the ledger at postgresql+psycopg://stocksync:***@")
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize("mistake", ["missing", "invalid", "no_ledger"])
def test_healthcheck_exits_0_or_1_only(tmp_path: Path, running: Fleet, mistake: str) -> None:
    # Docker reserves exit status 2 in a HEALTHCHECK: a configuration error is "not ready", 1.
    config = write_config(tmp_path, running, f"sqlite:///{tmp_path / 'ledger.db'}")
    if mistake == "missing":
        config = tmp_path / "nope.toml"
    elif mistake == "invalid":
        config.write_text(config.read_text() + "\nbogus = 1\n")
    result = invoke("healthcheck", "--config", config)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("stocksync: error: ")


def test_json_logs_hold_only_json() -> None:
    import io
    import json
    import logging

    import structlog

    from sync.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        scheduler = logging.getLogger("apscheduler.scheduler")
        scheduler.warning("Execution of job sweep skipped: maximum number of running instances reached (1)")
        logging.getLogger("apscheduler.executors.default").error("Job %r raised an exception", "sweep")
        structlog.get_logger("sync.test").info("cycle.start", cycle=1)
        records = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        configure_logging("warning", "json")
    # The skipped start is by design (one job at a time) and said by the cycle events: dropped.
    assert [r["event"] for r in records] == ["Job 'sweep' raised an exception", "cycle.start"]
    assert records[0]["level"] == "error" and records[0]["logger"] == "apscheduler.executors.default"
    assert "timestamp" in records[0]


def test_a_reconcile_where_every_account_failed_does_not_say_complete(tmp_path: Path, running: Fleet) -> None:
    config = write_config(tmp_path, running, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert invoke("db", "upgrade", "--config", config).exit_code == 0
    for server in running.servers.values():
        server.stop()
    result = invoke("reconcile", "--config", config)
    assert result.exit_code == 1
    (title,) = [line for line in result.output.splitlines() if line.startswith("cycle ")]
    assert title.endswith("(FAILED: no account could be synced)"), result.output


@pytest.mark.parametrize("platforms", [(), ("oto", "graas")])
def test_init_writes_a_starting_config_that_loads(tmp_path: Path, platforms: tuple[str, ...]) -> None:
    from sync.config import load_config

    out = tmp_path / "stocksync.toml"
    result = invoke("init", "--out", out, *[arg for p in platforms for arg in ("--platform", p)])
    assert result.exit_code == 0, result.output
    secret = tmp_path / "graas_app_key"
    secret.write_text("key\n")
    out.write_text(out.read_text().replace("/run/secrets/graas_app_key", str(secret)))
    environ = {"OAKRA_APP_KEY": "k", "GRAAS_ACCOUNT_NUMBER": "n", "OTO_REFRESH_TOKEN": "r"}
    config = load_config(out, environ={**environ, "ANKORSTORE_CLIENT_ID": "c", "ANKORSTORE_CLIENT_SECRET": "s"})
    assert {a.platform for a in config.accounts} == set(platforms or ("oakra", "graas", "oto", "ankorstore"))
    again = invoke("init", "--out", out)
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


def test_the_configs_ship_inside_the_package() -> None:
    # `pip install .` (not editable) must carry demo.toml and example.toml: demo and init read them.
    import tomllib

    root = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert pyproject["package-dir"]["sync.configs"] == "config"
    assert "sync.configs" in pyproject["packages"]
    shipped = pyproject["package-data"]["sync.configs"]
    assert {"demo.toml", "example.toml"} <= set(shipped)
    assert all((root / "config" / name).is_file() for name in shipped)
