"""The first hour of a new user (issue 15), what goes wrong: every command on a ledger that is
missing, in a folder that does not exist, or unreachable says so in one line naming the ledger and
never creates one by reading; healthcheck exits 0 or 1; JSON logs hold only JSON; a failed cycle is
said so; compose and the unit fit the shipped configs; a bug is one line. What the commands show
is in test_first_hour_commands.py."""

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


def _variables(path: Path) -> set[str]:
    """The ${VAR} a configuration file reads, outside its comments."""
    import re

    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    return {name for line in lines for name in re.findall(r"\$\{([A-Z0-9_]+)\}", line)}


def test_compose_passes_every_variable_the_shipped_configs_read() -> None:
    import yaml

    from tests.test_processes import ROOT

    compose = yaml.safe_load((ROOT / "config" / "docker-compose.yml").read_text())
    passed = {entry.split("=")[0] for entry in compose["services"]["stocksync"]["environment"]}
    for config in ("example.toml", "compose.toml"):
        missing = _variables(ROOT / "config" / config) - passed
        assert not missing, f"config/docker-compose.yml does not pass {sorted(missing)} used by config/{config}"


def test_the_installed_config_is_readable_by_the_unit_and_image_users() -> None:
    # The unit's DynamicUser and the image's user 10001 are neither the file's owner nor its group:
    # the install lines the README and the unit give must let others read the configuration.
    import re

    from tests.test_processes import ROOT

    for source in (ROOT / "README.md", ROOT / "config" / "stocksync.service"):
        modes = re.findall(r"install -D -m (0\d{3}) stocksync\.toml", source.read_text())
        assert modes, source
        assert all(int(mode, 8) & 0o004 for mode in modes), (source, modes)
    assert "EnvironmentFile=-/etc/stocksync/secrets.env" in (ROOT / "config" / "stocksync.service").read_text()


def test_the_documented_shell_completion_works() -> None:
    import os
    import subprocess
    import sys

    from tests.test_processes import ROOT

    assert "_STOCKSYNC_COMPLETE=bash_source stocksync" in (ROOT / "README.md").read_text()
    script = subprocess.run(
        [sys.executable, "-c", "from sync.cli import main; main()"],
        env={**os.environ, "_STOCKSYNC_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "_stocksync_completion" in script.stdout, script.stdout + script.stderr


@pytest.mark.parametrize("traceback", [False, True])
def test_a_bug_is_one_line_unless_the_traceback_is_asked_for(traceback: bool) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, sync.cli\n"
        "def broken(*a, **k):\n    raise RuntimeError('boom\\nsecond line')\n"
        "sys.modules['sync.cli.status'].load = broken\n"
        "sys.argv = ['stocksync', 'status']\n"
        "from sync.cli import main\nmain()\n"
    )
    env = {**os.environ, "STOCKSYNC_TRACEBACK": "1"} if traceback else os.environ.copy()
    env.pop("STOCKSYNC_TRACEBACK", None) if not traceback else None
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    if traceback:
        assert "Traceback" in done.stderr and "RuntimeError: boom" in done.stderr
    else:
        assert done.stderr.strip().splitlines() == [
            "stocksync: internal error: RuntimeError: boom (a bug: run it again with STOCKSYNC_TRACEBACK=1 "
            "for the traceback, and report it)"
        ]


def test_a_cycle_where_every_account_failed_is_recorded_as_failed(tmp_path: Path, running: Fleet) -> None:
    import json

    config = write_config(tmp_path, running, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert invoke("db", "upgrade", "--config", config).exit_code == 0
    assert invoke("reconcile", "--config", config).exit_code == 0
    running.servers["gra"].stop()
    assert invoke("reconcile", "--config", config).exit_code == 1
    assert json.loads(invoke("status", "--config", config, "--json").stdout)["last_cycle"]["outcome"] == "partial"
    running.servers["oak"].stop()
    assert invoke("reconcile", "--config", config).exit_code == 1
    assert json.loads(invoke("status", "--config", config, "--json").stdout)["last_cycle"]["outcome"] == "failed"


def test_a_database_stocksync_does_not_run_on_is_named(tmp_path: Path, running: Fleet) -> None:
    config = write_config(tmp_path, running, "mysql://u:p@127.0.0.1/ledger")
    result = invoke("status", "--config", config)
    assert result.exit_code == 2
    assert "database.url: 'mysql' is not a ledger stocksync runs on" in result.output
