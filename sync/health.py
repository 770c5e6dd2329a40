"""The daemon's optional HTTP port (`[health] port`): `/healthz`, `/readyz` and `/metrics`.

- `/healthz`: 200 while the process serves at all (liveness).
- `/readyz`: 200 when the ledger answers, the scheduler runs, and no listing is held by a safety
  stop; otherwise 503 with the reasons (the stopped listings named), as JSON.
- `/metrics`: Prometheus text format: the daemon's counters and the ledger's states.

A small threaded server in the background: a slow scrape never holds up a reconcile.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from sync.ledger.judgements import open_stops
from sync.metrics import METRICS, LedgerCollector


@dataclass
class DaemonState:
    """What readiness looks at, kept up to date by the daemon."""

    scheduler_running: bool = False


class _Both(Collector):
    """The daemon's counters and the ledger's states as one registry."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        """Every metric of every collector."""
        for collector in self.collectors:
            yield from collector.collect()


def readiness(sessions: sessionmaker[Session], state: DaemonState) -> list[str]:
    """Why the daemon is not ready (empty: ready)."""
    problems = []
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
            stops = open_stops(session)
    except Exception as err:  # noqa: BLE001 - any failure means the ledger is unreachable
        problems.append(f"ledger unreachable: {type(err).__name__}")
        stops = []
    if not state.scheduler_running:
        problems.append("scheduler not running")
    for stop in stops:
        skus = ", ".join(listing["sku"] for listing in stop["listings"][:10])
        more = "" if len(stop["listings"]) <= 10 else f" and {len(stop['listings']) - 10} more"
        problems.append(
            f"account {stop['account']} stopped by a safety stop since {stop['opened_at']}: "
            f"{len(stop['listings'])} listings held ({skus}{more}); {stop['reason']}; "
            f"decide with: stocksync accept {stop['account']} --dry-run"
        )
    return problems


class HealthServer:
    """Serves the three endpoints on `host:port` in a background thread; a context manager."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        state: DaemonState,
        account_names: Callable[[], list[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Both([METRICS.registry, LedgerCollector(sessions, account_names)]))
        handler = _handler(sessions, state, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(
    sessions: sessionmaker[Session], state: DaemonState, registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                problems = readiness(sessions, state)
                body = json.dumps({"ready": not problems, "problems": problems}).encode() + b"\n"
                self._send(503 if problems else 200, body, "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /healthz, /readyz or /metrics\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
            """Scrapes every few seconds would flood the log: stay quiet."""

    return Handler
