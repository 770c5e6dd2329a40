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
    environ = {"OAKRA_APP_KEY": "k", "GRAAS_ACCOUNT_NUMBER": "n", "GRAAS_APP_KEY": "g", "OTO_REFRESH_TOKEN": "r"}
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


def test_demo_keep_leaves_emulators_and_ledger_for_every_other_command(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.test_processes import ROOT, demo_config_on_free_ports

    source = demo_config_on_free_ports(tmp_path)
    kept = tmp_path / "kept"
    log = (tmp_path / "demo.log").open("w+")
    args = ["demo", "--config", str(source), "--duration", "2", "--rate", "4", "--keep", str(kept)]
    process = subprocess.Popen([sys.executable, "-m", "sync", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C here" not in (tmp_path / "demo.log").read_text() and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "demo.log").read_text()
            time.sleep(0.2)
        config = kept / "stocksync.toml"
        for command in (["status"], ["explain", "mug-white"], ["reconcile", "--dry-run"], ["reconcile"]):
            done = subprocess.run(
                [sys.executable, "-m", "sync", *command, "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
            )
            assert done.returncode == 0, (command, done.stdout + done.stderr)
            assert "Traceback" not in done.stderr
        assert not (tmp_path / "stocksync.db").exists()  # every command used the kept ledger
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    output = (tmp_path / "demo.log").read_text()
    assert process.returncode == 0, output
    assert "stopped:" in output and "Traceback" not in output


def test_status_summarises_first_and_filters_what_is_out_of_step(tmp_path: Path, running: Fleet) -> None:
    import json
    import re

    for platform in running.platforms.values():
        for sku, quantity in (("mug", 10), ("cap", 7), ("tote", 4)):
            platform.set_quantity(sku, quantity)
    config = write_config(tmp_path, running, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert invoke("db", "upgrade", "--config", config).exit_code == 0
    assert invoke("reconcile", "--config", config).exit_code == 0
    text = invoke("status", "--config", config).output
    assert text.startswith("summary: 2 accounts; 3 SKUs, 3 in step, 0 out of step; 0 pushes in doubt")
    assert re.search(r"last success \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+  ok", text), text  # its zone named
    assert "showing 2 of 3 (--limit N for more" in invoke("status", "--config", config, "--limit", "2").output
    # Graas is down when a mug sells on Oakra: Graas's mug listing is left out of step.
    running.servers["gra"].stop()
    assert running.platforms["oak"].sell("mug", 3)
    assert invoke("reconcile", "--config", config).exit_code == 1
    text = invoke("status", "--config", config, "--out-of-step").output
    assert "1 BROKEN" in text and "2 in step, 1 out of step" in text
    assert "skus out of step (showing 1 of 1)" in text
    (row,) = [line for line in text.splitlines() if line.strip().startswith("mug")]
    assert row.split()[1:] == ["7", "7", "10*"], row  # the pool, Oakra, Graas (buffer 0 here)
    data = json.loads(invoke("status", "--config", config, "--json").output)
    assert data["totals"]["skus"] == 3 and data["totals"]["skus_out_of_step"] == 1
    (mug,) = [s for s in data["skus"] if s["sku"] == "mug"]
    assert mug["out_of_step"] == ["gra"]


def test_the_sku_table_fits_the_terminal() -> None:
    from sync.cli.sku_table import SkuLine, table_text
    from sync.ledger.snapshot import ListingView, SkuView

    names = ["oakra-bangkok", "oakra-chiangmai", "graas-sg", "oto-riyadh", "ankorstore-eu"]
    view = SkuView("shirt-blue-m", 12, [ListingView(n, 12, 12, None, n == "oto-riyadh") for n in names])
    line = SkuLine(view, {n: 12 for n in names} | {"graas-sg": 10})
    wide = table_text([line], names, 120)
    assert len(wide) == 2 and all(len(row) <= 120 for row in wide)
    assert wide[1].split() == ["shirt-blue-m", "12", "12", "12", "12*", "12?", "12"]
    narrow = table_text([line], names, 60)
    assert all(len(row) <= 60 for row in narrow) and len(narrow) == 1 + len(names)
    assert "graas-sg: 12* (rules give 10)" in "\n".join(narrow)
    long = [SkuLine(SkuView(f"ACME-WINTER-JACKET-NAVY-XXL-{year}", 1, []), {}) for year in (2025, 2026)]
    rows = table_text(long, names, 200)
    assert all(any(f"XXL-{year}" in row for row in rows) for year in (2025, 2026)), rows  # never cut


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


def test_simulate_prints_figures_not_python_reprs() -> None:
    result = invoke("simulate", "--seed", "3", "--steps", "3", "--no-bad-reads")
    figures = [line for line in result.output.splitlines() if not line.startswith("{")]
    faults = next(line for line in figures if line.startswith("faults injected: "))
    assert "{" not in faults and "'" not in faults, faults
    assert any(line.startswith("misjudged by platform: ankorstore (listings 0, units 0)") for line in figures)


def test_explain_columns_line_up_past_cycle_nine(tmp_path: Path, running: Fleet) -> None:
    import re

    from tests.test_orders import cycle

    for platform in running.platforms.values():
        platform.set_quantity("mug", 40)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    path = write_config(tmp_path, running, db)
    assert invoke("db", "upgrade", "--config", path).exit_code == 0
    from sync.config import load_config

    config = load_config(path)
    for _ in range(11):
        assert running.platforms["oak"].sell("mug", 1)
        cycle(config)
    text = invoke("explain", "mug", "--config", path).output
    movements = [line for line in text.splitlines() if re.match(r"  \d{4}-\d\d-\d\d .*cycle", line)]
    assert len(movements) >= 11 and any(re.search(r"cycle 1[01]  ", line) for line in movements), text
    after_cycle = {m.start(1) for line in movements if (m := re.search(r"cycle +\d+  (\S)", line))}
    assert len(after_cycle) == 1, text  # the kind column starts at one place past cycle 9


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


def test_status_and_explain_agree_on_units_held_for_sales_no_read_shows(tmp_path: Path) -> None:
    # An unpicked OTO order (its read shows the sale only at picking): the other listings show 2
    # less, and neither status nor explain may call them out of step for it.
    import json

    from sync.ledger.db import create_db_engine, upgrade
    from tests.test_orders import in_engine
    from tests.test_picking_review import UNKNOWN, _setup

    with fleet(("sel", "oto", UNKNOWN), ("other", "graas"), ("oak", "oakra")) as running:
        db = f"sqlite:///{tmp_path / 'ledger.db'}"
        upgrade(create_db_engine(db))
        seller, config = _setup(running, db)
        assert seller.sell("lamp", 2) is not None
        in_engine(config, lambda engine: engine.run_orders())
        path = tmp_path / "stocksync.toml"
        path.write_text(running.toml(db, ["lamp"]))
        status = json.loads(invoke("status", "--config", path, "--json").stdout)
        (lamp,) = status["skus"]
        assert lamp["out_of_step"] == [], lamp
        explained = json.loads(invoke("explain", "lamp", "--config", path, "--json").stdout)
        targets = {listing["account"]: listing["target"] for listing in explained["listings"]}
        assert targets == {listing["account"]: listing["rules_give"] for listing in lamp["listings"]}
        assert targets["other"] == 8 and targets["sel"] == 10


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


def test_demo_with_a_port_taken_says_which_and_keeps_nothing(tmp_path: Path) -> None:
    from tests.test_processes import demo_config_on_free_ports

    source = demo_config_on_free_ports(tmp_path)
    port = int(source.read_text().split("http://127.0.0.1:")[1].split("/")[0])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        kept = tmp_path / "kept"
        result = invoke("demo", "--config", source, "--duration", "1", "--keep", kept)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("stocksync: error: accounts.oakra-bangkok.base_url: port") and str(port) in line
    assert "another demo running?" in line and not kept.exists()  # the same --keep works next time
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    nested = invoke("demo", "--config", source, "--keep", blocked / "sub")
    assert nested.exit_code == 2
    assert nested.output.startswith(f"stocksync: error: --keep: cannot create {blocked / 'sub'}")


def test_a_database_stocksync_does_not_run_on_is_named(tmp_path: Path, running: Fleet) -> None:
    config = write_config(tmp_path, running, "mysql://u:p@127.0.0.1/ledger")
    result = invoke("status", "--config", config)
    assert result.exit_code == 2
    assert "database.url: 'mysql' is not a ledger stocksync runs on" in result.output
