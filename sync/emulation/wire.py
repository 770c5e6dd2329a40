"""Requests and responses as the emulators see them, independent of the server that carries them.

The same emulator answers over a real loopback HTTP server (`serve`) and in process through an
httpx transport (`as_transport`), so a simulator can drive it deterministically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class LostResponse(Exception):
    """Raised by an emulator to drop the connection without answering (the change stands)."""


@dataclass(frozen=True)
class EmuRequest:
    """One request: method, path, query (repeated keys kept), lower-cased headers and body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes) -> EmuRequest:
        """Parse a request target (`/path?query`) and headers into an EmuRequest."""
        parts = urlsplit(target)
        return cls(
            method=method.upper(),
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8") or "null")


@dataclass
class EmuResponse:
    """An answer: status, JSON (or raw) body and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def encoded(self) -> tuple[bytes, str]:
        """The body bytes and their content type."""
        if self.raw is not None:
            return self.raw, self.headers.get("Content-Type", "text/plain")
        return json.dumps(self.body).encode(), self.headers.get("Content-Type", "application/json")


class App(Protocol):
    """Anything that answers EmuRequests."""

    def handle(self, request: EmuRequest) -> EmuResponse:
        """Answer one request, or raise LostResponse."""
        ...  # pragma: no cover
