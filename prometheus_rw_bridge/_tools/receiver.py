"""A validating remote-write receiver, for the command line, the demo and tests.

:class:`Receiver` listens on a loopback port, accepts ``POST /api/v1/write`` in both
protocols (``application/x-protobuf`` is 1.0, ``;proto=io.prometheus.write.v2.Request`` is
2.0), decodes each request with :func:`prometheus_rw_bridge.decode_write_request`, keeps the
latest value of every series in a :class:`SeriesStore`, and flags every rule of the
remote-write specifications a request breaks, as a :class:`Violation` naming the rule
(the per-request rules live in ``_validate``; ordering across requests is checked here).

A request that cannot be decoded (framed snappy, not snappy, not protobuf) is always answered
400; the text exposition format is always answered 415.  Other violations (labels, ordering,
headers) are answered 400 in strict mode, and otherwise accepted and reported.

It is a debugging aid and a test double, not a storage backend: a ``ThreadingHTTPServer``
in a daemon thread.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .._protocol.decode import DecodedRequest, _escape, _format_value
from .._redact import safe_url
from .validate import RULES, Checked, Violation, answer_for, same_value, series_text, validate

__all__ = [
    "RULES",
    "ReceivedRequest",
    "Receiver",
    "SeriesStore",
    "StoredSeries",
    "Violation",
    "render",
]

logger = logging.getLogger(__name__)

WRITE_PATH = "/api/v1/write"
_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total", "_info", "_gcount", "_gsum")
SeriesKey = tuple[tuple[str, str], ...]


@dataclass(kw_only=True)
class ReceivedRequest(Checked):
    """What the receiver made of one request, and how it answered."""

    number: int
    method: str
    path: str
    headers: dict[str, str]
    body_size: int
    series: list[StoredSeries] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Tell whether the request was answered 2xx."""
        return 200 <= self.status < 300

    def to_text(self) -> str:
        """Render the request's series (the last sample of each) as exposition-format text."""
        return render(sorted(self.series, key=_sort_key))


@dataclass(frozen=True)
class StoredSeries:
    """The latest sample of one series."""

    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_ms: int
    metric_type: str = ""
    family: str = ""

    @property
    def name(self) -> str:
        """The series' ``__name__``."""
        return dict(self.labels).get("__name__", "")

    def to_text(self) -> str:
        """Render as one exposition-format line with a millisecond timestamp."""
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.labels) if k != "__name__")
        name = self.name + (f"{{{inner}}}" if inner else "")
        return f"{name} {_format_value(self.value)} {self.timestamp_ms}"


class SeriesStore:
    """Thread-safe store of the latest value per series and of the requests seen.

    Waiters use :meth:`wait_for_requests` (or :meth:`wait_until`), which sleep on a
    condition variable notified after every request.
    """

    def __init__(self, *, keep_requests: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._latest: dict[SeriesKey, StoredSeries] = {}
        self._types: dict[str, str] = {}
        self._requests: deque[ReceivedRequest] = deque(maxlen=keep_requests)
        self._count = 0
        self._handled = 0
        self._accepted = 0
        self._samples = 0

    def next_number(self) -> int:
        """Reserve the sequence number of a new request."""
        with self._cond:
            self._count += 1
            return self._count

    def apply(self, received: ReceivedRequest, strict: bool) -> None:
        """Check ordering against what is stored, then store ``received`` unless it is rejected.

        Runs under the store's lock, so ordering checks and updates are atomic across
        concurrent requests.
        """
        with self._cond:
            decoded = received.decoded
            if decoded is not None and received.status == 0:
                received.violations.extend(self._ordering(decoded))
                received.series = self._series_of(decoded)
                if strict and received.violations:
                    received.status = 400
                    received.answer = answer_for(received.violations)
                else:
                    self._store(received.series)
                    received.status = 200 if received.protocol == "2.0" else 204
                    self._accepted += 1
                    self._samples += received.samples
            self._requests.append(received)
            self._handled += 1
            self._cond.notify_all()

    def _ordering(self, decoded: DecodedRequest) -> list[Violation]:
        found: list[Violation] = []
        # A series may appear more than once in one request; order holds across all of them.
        last: dict[SeriesKey, tuple[int, float]] = {}
        for series in decoded.series:
            key = _key(series.label_pairs)
            previous = self._latest.get(key)
            last_ts: int | None
            last_ts, last_value = (previous.timestamp_ms, previous.value) if previous else (None, 0.0)
            if key in last:
                last_ts, last_value = last[key]
            for sample in series.samples:
                if last_ts is not None and sample.timestamp_ms < last_ts:
                    found.append(
                        Violation(
                            "out-of-order",
                            f"{series_text(key)}: sample at {sample.timestamp_ms} ms is older than "
                            f"the one already received at {last_ts} ms",
                        )
                    )
                elif last_ts == sample.timestamp_ms and not same_value(sample.value, last_value):
                    found.append(
                        Violation(
                            "duplicate-timestamp",
                            f"{series_text(key)}: two values ({_format_value(last_value)} and "
                            f"{_format_value(sample.value)}) at {last_ts} ms",
                        )
                    )
                if last_ts is None or sample.timestamp_ms >= last_ts:
                    last_ts, last_value = sample.timestamp_ms, sample.value
            if last_ts is not None:
                last[key] = (last_ts, last_value)
        return found

    def _series_of(self, decoded: DecodedRequest) -> list[StoredSeries]:
        """Return the last sample of each series in ``decoded``, typed by all metadata seen so far."""
        self._types.update((md.metric_family_name, md.type) for md in decoded.metadata)
        latest: dict[SeriesKey, StoredSeries] = {}
        for series in decoded.series:
            key = _key(series.label_pairs)
            family = _family_of(series.name, self._types)
            metric_type = self._types.get(family, "")
            if series.metadata is not None and series.metadata.type != "unknown":
                metric_type = series.metadata.type
                family = _v2_family(series.name, metric_type)
            for sample in series.samples:
                previous = latest.get(key)
                if previous is None or sample.timestamp_ms > previous.timestamp_ms:
                    latest[key] = StoredSeries(key, sample.value, sample.timestamp_ms, metric_type, family)
        return list(latest.values())

    def _store(self, series: list[StoredSeries]) -> None:
        for one in series:
            previous = self._latest.get(one.labels)
            if previous is None or one.timestamp_ms > previous.timestamp_ms:
                self._latest[one.labels] = one

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` (called under the lock) is true; False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_requests(self, count: int, timeout: float | None = None, *, accepted: bool = False) -> bool:
        """Wait until ``count`` requests (only accepted ones if ``accepted``) have been handled."""
        return self.wait_until(lambda: (self._accepted if accepted else self._handled) >= count, timeout)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests handled so far (the most recent ``keep_requests``), oldest first."""
        with self._cond:
            return list(self._requests)

    @property
    def violations(self) -> list[Violation]:
        """Every violation flagged so far, oldest first."""
        with self._cond:
            return [v for r in self._requests for v in r.violations]

    @property
    def samples_received(self) -> int:
        """The number of samples in accepted requests."""
        with self._cond:
            return self._samples

    def series(self) -> list[StoredSeries]:
        """The latest sample of every series, sorted by name and labels."""
        with self._cond:
            return sorted(self._latest.values(), key=_sort_key)

    def get(self, name: str, **labels: str) -> StoredSeries | None:
        """Return the first series named ``name`` that has all of ``labels``, or None."""
        for series in self.series():
            have = dict(series.labels)
            if series.name == name and all(have.get(k) == v for k, v in labels.items()):
                return series
        return None

    def to_text(self) -> str:
        """Render every stored series as exposition-format text with ``# TYPE`` lines."""
        return render(self.series())

    def clear(self) -> None:
        """Forget every stored series and request (ordering checks start afresh)."""
        with self._cond:
            self._latest.clear()
            self._requests.clear()


Responder = Callable[[Mapping[str, str], bytes], "tuple[int, str] | None"]
"""A hook deciding the answer to a request before validation: ``(status, body)`` or None."""


class Receiver:
    """A validating remote-write receiver on a loopback port, served from a daemon thread.

    Args:
        host: the address to listen on.
        port: the port; 0 picks a free one.
        strict: answer 400 to any request breaking a rule, instead of accepting and reporting it.
        on_request: called with each :class:`ReceivedRequest` once it is answered (from the
            server's thread; it must not raise).
        responder: called with the headers and body of each write request before anything
            else; a ``(status, body)`` it returns is the answer, for scripted faults.
        ssl_context: serve HTTPS with this server-side context (for TLS tests).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        strict: bool = False,
        on_request: Callable[[ReceivedRequest], None] | None = None,
        responder: Responder | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.strict = strict
        self.on_request = on_request
        self.responder = responder
        self.store = SeriesStore()
        self._server = _Server((host, port), _Handler)
        self._server.receiver = self
        self._scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, for example ``http://127.0.0.1:40123``."""
        host = str(self._server.server_address[0])
        return f"{self._scheme}://{host}:{self.port}"

    @property
    def write_url(self) -> str:
        """The remote-write endpoint: :attr:`url` plus ``/api/v1/write``."""
        return self.url + WRITE_PATH

    def start(self) -> Receiver:
        """Start serving in a daemon thread (idempotent) and return self."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.1},
                    name=f"prometheus-rw-bridge-receiver:{self.port}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._server.shutdown()
                thread.join()
            self._server.server_close()
            self._server.close_connections()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> ReceivedRequest:
        """Validate, store and answer one request (what the HTTP handler calls)."""
        received = ReceivedRequest(
            number=self.store.next_number(),
            method=method,
            path=path,
            headers=dict(headers),
            body_size=len(body),
        )
        if self.responder is not None:
            scripted = self.responder(headers, body)
            if scripted is not None:
                received.status, received.answer = scripted
        if received.status == 0:
            validate(received, headers, body, strict=self.strict)
        self.store.apply(received, self.strict)
        if self.on_request is not None:
            try:
                self.on_request(received)
            except Exception:
                logger.exception("on_request callback failed")
        return received


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: Receiver

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
        # A client hanging up mid-request is its business; keep stderr clean.
        logger.debug("error handling a request from %s", client_address, exc_info=sys.exc_info())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = self.path.split("?", 1)[0]
        if path != WRITE_PATH:
            self._send(404, f"not found: this receiver takes remote write at POST {WRITE_PATH}\n")
            return
        headers = {k: v for k, v in self.headers.items()}
        received = self.server.receiver.handle("POST", path, _Caseless(headers), body)
        extra = {}
        if received.protocol == "2.0":
            written = received.accepted
            extra = {
                "X-Prometheus-Remote-Write-Samples-Written": str(received.samples if written else 0),
                "X-Prometheus-Remote-Write-Histograms-Written": str(received.histograms if written else 0),
                "X-Prometheus-Remote-Write-Exemplars-Written": str(received.exemplars if written else 0),
            }
        self._send(received.status, received.answer, extra)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/metrics"):
            self._send(200, self.server.receiver.store.to_text())
        elif path == WRITE_PATH:
            self._send(405, f"remote write takes POST, not GET, at {WRITE_PATH}\n", {"Allow": "POST"})
        else:
            self._send(404, "not found\n")

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
            self._send(411, "a Content-Length header is required\n")
            return None
        return self.rfile.read(int(length))

    def _send(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            text = format % args
            # The request target may carry the sender's credentials in its query string.
            for word in getattr(self, "requestline", "").split():
                if "?" in word or "#" in word:
                    text = text.replace(word, safe_url(word))
            logger.debug("%s %s", self.address_string(), text)


class _Caseless(dict[str, str]):
    """Header lookup that ignores case."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _key(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> SeriesKey:
    return tuple(sorted(pairs))


def render(series: Iterable[StoredSeries]) -> str:
    """Render ``series`` (already in order) as exposition-format text with ``# TYPE`` lines."""
    lines: list[str] = []
    last_family = None
    for one in series:
        family = one.family or one.name
        if one.metric_type and family != last_family:
            lines.append(f"# TYPE {family} {one.metric_type}")
        last_family = family
        lines.append(one.to_text())
    return "\n".join(lines) + ("\n" if lines else "")


def _v2_family(name: str, metric_type: str) -> str:
    """Return the family of a 2.0 series, whose metadata gives a type but no family name."""
    if metric_type in ("histogram", "gaugehistogram", "summary"):
        for suffix in ("_bucket", "_count", "_sum", "_gcount", "_gsum"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return name


def _family_of(name: str, known: Mapping[str, str]) -> str:
    """Return the metric family ``name`` belongs to: a known family, else ``name`` less a known suffix."""
    if name in known:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return name


def _sort_key(series: StoredSeries) -> tuple[str, str, tuple[tuple[str, str], ...], float]:
    """Order by family, name, then labels other than ``le``, then ``le`` numerically."""
    labels = tuple(p for p in series.labels if p[0] != "le")
    le = dict(series.labels).get("le")
    try:
        bound = float(le) if le is not None else 0.0
    except ValueError:
        bound = 0.0
    return (series.family or series.name, series.name, labels, bound)
