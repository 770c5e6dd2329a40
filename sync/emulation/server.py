"""Carry an emulator over real HTTP on loopback, or in process as an httpx transport."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from sync.emulation.wire import App, EmuRequest, LostResponse


class EmulatorServer:
    """A threaded HTTP server on 127.0.0.1 serving one emulator; a context manager."""

    def __init__(self, app: App, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = app
        self._host = host
        self._server = ThreadingHTTPServer((host, port), _handler_for(app))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
        )

    @property
    def url(self) -> str:
        """The server's root URL, `http://127.0.0.1:PORT`."""
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> EmulatorServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def close(self) -> None:
        """Close the socket of a server never started."""
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = EmuRequest.build(self.command, self.path, dict(self.headers.items()), body)
            try:
                response = app.handle(request)
            except LostResponse:
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client may already be gone
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            payload, content_type = response.encoded()
            # The client may be gone (a killed daemon, a timeout): its answer is simply lost.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    if name.lower() != "content-type":
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            """Keep test and demo output quiet."""

    return Handler


def as_transport(app: App) -> httpx.MockTransport:
    """An httpx transport that answers from the emulator in process (no sockets, no threads)."""

    def respond(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        emu = EmuRequest.build(request.method, target, dict(request.headers.items()), request.read())
        try:
            response = app.handle(emu)
        except LostResponse as err:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request) from err
        payload, content_type = response.encoded()
        headers = {"Content-Type": content_type, **response.headers}
        return httpx.Response(response.status, content=payload, headers=headers)

    return httpx.MockTransport(respond)
