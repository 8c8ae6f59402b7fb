"""The receiver's HTTP side: a server that can hang up on every connection, and a handler.

:class:`Server` is a ``ThreadingHTTPServer`` speaking HTTP/1.1 (keep-alive, as senders expect)
from daemon threads, tracking its connections so that a stopped receiver is really gone.
:class:`Handler` reads a request's body (``Content-Length`` or chunked), hands it to the
:class:`Answering` object behind the server (the receiver), and sends the :class:`Reply` it gets
back: an answer, nothing (a hang until released, a dropped connection), after a delay, or with
the request echoed.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .store import ReceivedRequest

__all__ = ["HANG", "WRITE_PATH", "Answering", "Handler", "Reply", "Server", "path_of"]

WRITE_PATH = "/api/v1/write"


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        status: the HTTP status.
        body: the response body (a str is sent as UTF-8).
        headers: extra response headers, such as ``{"Retry-After": "2"}``.
        delay: seconds to wait before answering (real time: keep it short).
        hang: read the request, then answer nothing until :meth:`Receiver.release` or
            :meth:`Receiver.stop`, and close the connection.
        drop: read the request and close the connection at once, without an answer.
        echo: append the request's target and every header it carried to ``body``, as a
            careless receiver quoting what it was sent (credentials included).
    """

    status: int = 204
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    drop: bool = False
    echo: bool = False

    @property
    def answers(self) -> bool:
        """Tell whether the reply sends an HTTP answer at all (not a hang or a drop)."""
        return not (self.hang or self.drop)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace") if isinstance(self.body, bytes) else self.body


HANG = Reply(hang=True)
"""A reply that never comes (until :meth:`Receiver.release`)."""


class Answering(Protocol):
    """What the handler needs from the receiver behind the server (private to the two)."""

    def _receive(self, target: str, headers: Mapping[str, str], body: bytes) -> tuple[ReceivedRequest, Reply]:
        """Record one POST and decide its answer."""

    def _headers_for(self, received: ReceivedRequest, reply: Reply) -> dict[str, str]:
        """Return the headers to answer ``received`` with."""

    def _wait_released(self, timeout: float | None) -> bool:
        """Wait until hanging replies are released; True if they were."""

    def _page(self) -> str:
        """Return the text ``GET /`` shows."""

    def _log_request(self, client: str, text: str, error: BaseException | None = None) -> None:
        """Log one handled request, or a failure to handle one (at debug level)."""


class Server(ThreadingHTTPServer):
    """A threading HTTP server that can hang up on every open connection."""

    daemon_threads = True
    block_on_close = False
    receiver: Answering

    def server_activate(self) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open (keep-alive) connection, so a stopped receiver is really gone."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request (or failing its TLS handshake) is its business.
        self.receiver._log_request(str(client_address), "error handling a request", sys.exc_info()[1])


class Handler(BaseHTTPRequestHandler):
    """Read a POST, let the receiver answer it, send its Reply; GET shows the stored series."""

    server: Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        headers = {k: v for k, v in self.headers.items()}
        received, reply = self.server.receiver._receive(self.path, headers, body)
        if reply.hang:
            self.server.receiver._wait_released(None)
        elif reply.delay > 0 and self.server.receiver._wait_released(reply.delay):
            reply = HANG  # released (or stopped) while waiting: no answer
        if not reply.answers:
            self.close_connection = True
            return
        payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        if reply.echo:
            quoted = [self.path, *(f"{name}: {value}" for name, value in headers.items())]
            payload += ("\n" + "\n".join(quoted)).encode("utf-8", "replace")
        try:
            self._send(reply.status, payload, self.server.receiver._headers_for(received, reply))
        except OSError:  # the client gave up (timed out) before the answer
            self.close_connection = True

    def do_GET(self) -> None:
        path = path_of(self.path)
        if path in ("/", "/metrics"):
            self._send(200, self.server.receiver._page().encode())
        elif path == WRITE_PATH:
            self._send(
                405, f"remote write takes POST, not GET, at {WRITE_PATH}\n".encode(), {"Allow": "POST"}
            )
        else:
            self._send(404, b"not found\n")

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            self._send(411, b"a Content-Length header is required\n")
            return None
        return self.rfile.read(int(length))

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        bodiless = status in (204, 304) or 100 <= status < 200
        if payload and not bodiless and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "text/plain; charset=utf-8"
        for name, value in headers.items():
            self.send_header(name, value)
        if not bodiless:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and not bodiless:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.receiver._log_request(self.address_string(), format % args)


def path_of(target: str) -> str:
    """Return the path of a request target, origin form (``/a?b``) or absolute (through a proxy)."""
    if "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target.split("?", 1)[0]
