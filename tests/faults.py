"""A fault-injecting remote-write receiver, in process, for transport and pusher tests.

``FaultReceiver`` is a ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port) answering
from a script of ``Reply`` objects, then ``204`` for ever.  It records every request (arrival
time on ``time.monotonic``, headers, raw body, and the body decoded with
``prometheus_rw_bridge.decode_write_request`` when it decodes), and tests wait on those
records through a condition variable, never by sleeping::

    from faults import FaultReceiver, Reply, fault_receiver  # noqa: F401  (the fixture)

    def test_retried(fault_receiver):
        fault_receiver.script(Reply(500, "try later"))
        ...  # push to fault_receiver.url
        first, second = fault_receiver.wait_for_requests(2, timeout=10)

Faults on offer: any status, body and headers (``Retry-After``); ``echo`` (quote the request's
target and headers back in the body); a ``delay`` before the answer; ``hang`` (accept, read the
request, answer nothing until ``release()``); ``drop`` (close the connection without an
answer); ``stop()`` (the port refuses connections) and ``restart()`` on the same port;
``refused_url()`` for a port nobody listens on.  ``strict=True`` answers 400, like a careful
receiver, to a request that is not a POST with the protocol headers and a block-snappy
protobuf body.

``ClientCertServer`` is a TLS server that requires a client certificate and shows, on purpose
and every time, one of the ways such servers treat a client that sends none: the alert, or
ending the connection without one (see ``CLIENT_CERT_MODES``).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import pytest

from prometheus_rw_bridge import DecodedRequest, decode_write_request

__all__ = [
    "CLIENT_CERT_MODES",
    "ClientCertServer",
    "FaultReceiver",
    "RecordedRequest",
    "Reply",
    "fault_receiver",
    "refused_url",
]

WRITE_PATH = "/api/v1/write"

_V2_CONTENT_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
_V1_CONTENT_TYPES = ("application/x-protobuf", "application/x-protobuf;proto=prometheus.WriteRequest")


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        status: the HTTP status.
        body: the response body (a str is sent as UTF-8).
        headers: extra response headers, such as ``{"Retry-After": "2"}``.
        delay: seconds to wait before answering (real time; keep it short).
        hang: accept and read the request, then answer nothing until ``release()`` or
            ``stop()``; the connection is then closed without an answer.
        drop: read the request and close the connection at once without an answer.
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


HANG = Reply(hang=True)
"""A reply that never comes (until ``release()``)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the receiver saw it.

    Attributes:
        arrived: ``time.monotonic()`` when the request (headers and body) had been read.
        method: the HTTP method.
        path: the request path.
        headers: header names as sent, with their values.
        body: the raw (compressed) body.
        protocol: ``"2.0"`` if the Content-Type names the 2.0 message, else ``"1.0"``.
        decoded: the decoded request, or None if the body did not decode.
        decode_error: why it did not decode, or None.
        status: the status answered (None for a hang or a drop).
    """

    arrived: float
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    protocol: str
    decoded: DecodedRequest | None
    decode_error: str | None
    status: int | None

    def header(self, name: str) -> str | None:
        """Return a header's value, matching its name case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a sender's lanes connect at once (socketserver's default is 5)
    receiver: FaultReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so stop() really stops every conversation.
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.server.receiver._handle(self)

    do_GET = do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class FaultReceiver:
    """A scripted remote-write receiver on ``127.0.0.1``; see the module docstring.

    Args:
        replies: the first answers, in order; afterwards every request gets ``default``.
        strict: answer 400 to requests that break the protocol (the script is not consumed).
        written_headers: on a 2xx answer to a decodable 2.0 request, send the
            ``X-Prometheus-Remote-Write-*-Written`` counts as a 2.0 receiver must.
        default: the answer once the script is used up.
        ssl_context: serve HTTPS with this server-side context (``base_url`` turns ``https``).
    """

    def __init__(
        self,
        replies: Iterable[Reply | int] = (),
        *,
        strict: bool = False,
        written_headers: bool = True,
        default: Reply = Reply(),  # frozen, so one shared default is safe
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.strict = strict
        self.written_headers = written_headers
        self.default = default
        self._cond = threading.Condition()
        self._script: list[Reply] = []
        self._requests: list[RecordedRequest] = []
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.script(*replies)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FaultReceiver:
        """Listen (on a free port the first time, then on the same port) and serve in a thread."""
        with self._cond:
            if self._server is not None:
                return self
            self._released.clear()
            server = _Server(("127.0.0.1", self.port), _Handler)
            server.receiver = self
            if self.ssl_context is not None:
                server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
            self.port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fault-receiver-{self.port}",
            )
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until ``restart()``."""
        with self._cond:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        self._released.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def restart(self) -> FaultReceiver:
        """Listen again on the same port."""
        self.stop()
        return self.start()

    close = stop

    def __enter__(self) -> FaultReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the port is listening."""
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` with an ``ssl_context``)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The write endpoint, ``http://127.0.0.1:<port>/api/v1/write``."""
        return self.base_url + WRITE_PATH

    # -- script and records ---------------------------------------------------------------

    def script(self, *replies: Reply | int) -> None:
        """Append answers to the script (an int is a bare status)."""
        with self._cond:
            self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    def release(self) -> None:
        """Let every hanging request end (their connections close without an answer)."""
        self._released.set()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests recorded so far, oldest first."""
        with self._cond:
            return list(self._requests)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests have arrived and return them all.

        Raises:
            AssertionError: fewer than ``n`` arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(
                    f"expected {n} requests at {self.url} within {timeout}s, got {len(self._requests)}"
                )
            return list(self._requests)

    # -- serving -----------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        arrived = time.monotonic()
        headers = {name: value for name, value in handler.headers.items()}
        content_type = (handler.headers.get("Content-Type") or "").replace(" ", "")
        protocol = "2.0" if content_type == _V2_CONTENT_TYPE else "1.0"
        decoded, decode_error = _decode(body, protocol)
        problem = self._violation(handler, body, content_type, decode_error) if self.strict else None
        with self._cond:
            if problem is not None:
                reply = Reply(400, problem)
            else:
                reply = self._script.pop(0) if self._script else self.default
            self._requests.append(
                RecordedRequest(
                    arrived=arrived,
                    method=handler.command,
                    path=handler.path,
                    headers=headers,
                    body=body,
                    protocol=protocol,
                    decoded=decoded,
                    decode_error=decode_error,
                    status=None if reply.hang or reply.drop else reply.status,
                )
            )
            self._cond.notify_all()
        if reply.hang or reply.drop:
            if reply.hang:
                self._released.wait()
            handler.close_connection = True
            return
        if reply.delay > 0 and self._released.wait(reply.delay):
            return
        out_headers = dict(reply.headers)
        if self.written_headers and decoded is not None and protocol == "2.0" and 200 <= reply.status < 300:
            for kind in ("samples", "histograms", "exemplars"):
                name = f"X-Prometheus-Remote-Write-{kind.title()}-Written"
                out_headers.setdefault(name, str(_count(decoded, kind)))
        payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        if reply.echo:
            quoted = [handler.path, *(f"{name}: {value}" for name, value in headers.items())]
            payload += ("\n" + "\n".join(quoted)).encode("utf-8", "replace")
        try:
            handler.send_response(reply.status)
            for name, value in out_headers.items():
                handler.send_header(name, value)
            if reply.status not in (204, 304) and not 100 <= reply.status < 200:
                handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if payload and reply.status not in (204, 304):
                handler.wfile.write(payload)
        except OSError:  # the client gave up (timed out) before the answer
            pass

    @staticmethod
    def _violation(handler: _Handler, body: bytes, content_type: str, decode_error: str | None) -> str | None:
        """Say what breaks the remote-write protocol in a request, or None."""
        if handler.command != "POST":
            return f"method {handler.command} not allowed; remote write uses POST"
        if (handler.headers.get("Content-Encoding") or "").strip().lower() != "snappy":
            return "Content-Encoding must be snappy"
        if content_type not in (*_V1_CONTENT_TYPES, _V2_CONTENT_TYPE):
            return f"unsupported Content-Type {handler.headers.get('Content-Type')!r}"
        version = handler.headers.get("X-Prometheus-Remote-Write-Version")
        if not version:
            return "missing X-Prometheus-Remote-Write-Version"
        if not handler.headers.get("User-Agent"):
            return "missing User-Agent"
        if decode_error is not None:
            return decode_error
        return None


def _decode(body: bytes, protocol: str) -> tuple[DecodedRequest | None, str | None]:
    """Decode a body leniently: the decoded request, or why it failed."""
    try:
        return decode_write_request(body, protocol=protocol), None
    except Exception as exc:  # anything undecodable is a recorded fact, not a crash
        return None, f"{type(exc).__name__}: {exc}"


def _count(decoded: DecodedRequest, kind: str) -> int:
    """Count samples, histograms or exemplars in a decoded request."""
    return sum(len(getattr(series, kind)) for series in decoded.series)


CLIENT_CERT_MODES = ("alert", "close-in-handshake", "close-after-handshake", "reset-after-handshake")
"""What ``ClientCertServer`` does to a client without a certificate.

``alert``: fails the handshake with its alert (TLS 1.3: *certificate required*) and lets the
client read it (it reads everything the client sends, so the kernel never resets the
connection and drops the alert unread).  ``close-in-handshake``: reads the ClientHello and
closes (the client's handshake ends at EOF).  ``close-after-handshake``: completes the
handshake, sees no certificate, and closes without a word (no alert, no close_notify).
``reset-after-handshake``: the same, but resets the connection (the client sees a reset or
an EOF, on sending or on reading).
"""


class ClientCertServer:
    """A TLS server on ``127.0.0.1`` wanting a client certificate; see ``CLIENT_CERT_MODES``.

    Serves one connection at a time from a thread and never answers HTTP.

    Args:
        mode: one of ``CLIENT_CERT_MODES``.
        certificate: configures the server's certificate on a context (``trustme``'s
            ``LeafCert.configure_cert``).
        trust: configures the CAs trusted for client certificates (``trustme.CA.configure_trust``).
    """

    def __init__(
        self,
        mode: str,
        certificate: Callable[[ssl.SSLContext], None],
        trust: Callable[[ssl.SSLContext], None],
    ) -> None:
        if mode not in CLIENT_CERT_MODES:
            raise ValueError(f"mode must be one of {CLIENT_CERT_MODES}, got {mode!r}")
        self.mode = mode
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate(self._context)
        trust(self._context)
        # "alert" fails the handshake itself; the others let it finish and then judge.
        self._context.verify_mode = ssl.CERT_REQUIRED if mode == "alert" else ssl.CERT_OPTIONAL
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"client-cert-{mode}", daemon=True)

    @property
    def url(self) -> str:
        """The write endpoint, ``https://127.0.0.1:<port>/api/v1/write``."""
        return f"https://127.0.0.1:{self.port}{WRITE_PATH}"

    def __enter__(self) -> ClientCertServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            conn.settimeout(30)  # a client stuck mid-way must not hang the test for ever
            try:
                self._handle(conn)
            except OSError:
                pass  # the client gave up first: nothing to show it any more
            finally:
                conn.close()

    def _handle(self, conn: socket.socket) -> None:
        if self.mode == "close-in-handshake":
            header = _recv_exactly(conn, 5)  # a TLS record header: type, version, length
            _recv_exactly(conn, int.from_bytes(header[3:5], "big"))  # the ClientHello
            _end(conn)
            return
        tls = self._context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except ssl.SSLError:
            if self.mode != "alert":
                raise
            # OpenSSL has sent the alert; end like the other modes, without a reset.
            _end(tls)
            return
        assert tls.getpeercert() is None, "this server exists for clients without a certificate"
        if self.mode == "reset-after-handshake":
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closing now sends a reset
        _end(tls)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed early")
        data += chunk
    return data


def _end(conn: socket.socket) -> None:
    """Close the sending side (a bare FIN: no TLS close_notify), then read until the client closes.

    Reading everything keeps the kernel from answering unread data with a reset, which could
    discard what was sent before it reaches the client.
    """
    conn.shutdown(socket.SHUT_WR)  # an SSLSocket also forgets its TLS session: reads are raw
    while conn.recv(65536):
        pass


def refused_url() -> str:
    """Return a write URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{WRITE_PATH}"


@pytest.fixture
def fault_receiver() -> Iterator[FaultReceiver]:
    """A running ``FaultReceiver`` answering 204 until a test scripts otherwise."""
    receiver = FaultReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
