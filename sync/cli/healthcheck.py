"""`stocksync healthcheck`: a probe for container HEALTHCHECKs and monitoring scripts."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

import click

from sync.cli.common import config_option, ledger_for, load
from sync.health import DaemonState, readiness


@click.command()
@config_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds to wait.")
def healthcheck(config_path: str, timeout: float) -> None:
    """Exit 0 when the daemon is ready, 1 otherwise, printing why.

    With [health] port set this asks the running daemon's /readyz (ledger reachable, scheduler
    running, no account held by a safety stop); without it, it checks that the ledger answers.
    A configuration error is "not ready" too: exit 1 (Docker reserves any other status).
    """
    try:
        _check(config_path, timeout)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            sys.exit(1)
        raise


def _check(config_path: str, timeout: float) -> None:
    config = load(config_path)
    if config.health.port is None:
        with ledger_for(config) as ledger:
            problems = readiness(ledger.store.sessions, DaemonState(scheduler_running=True))
    else:
        host = "127.0.0.1" if config.health.host in ("0.0.0.0", "::", "") else config.health.host
        url = f"http://{host}:{config.health.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - our own loopback URL
                problems = json.loads(answer.read())["problems"]
        except urllib.error.HTTPError as err:
            problems = json.loads(err.read() or b"{}").get("problems") or [f"HTTP {err.code}"]
        except (OSError, ValueError) as err:
            problems = [f"{url}: {err}"]
    if problems:
        click.echo("not ready: " + "; ".join(problems), err=True)
        sys.exit(1)
    click.echo("ready")
