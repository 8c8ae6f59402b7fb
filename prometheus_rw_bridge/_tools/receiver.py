"""The validating remote-write receiver: the public test double, ``receive`` and the demo's receiver.

:class:`Receiver` listens on a loopback port (a free one unless told), accepts
``POST /api/v1/write`` in both protocols (``application/x-protobuf`` is 1.0,
``;proto=io.prometheus.write.v2.Request`` is 2.0), checks every rule of the specifications
(``validate``), records every request and keeps the latest value of every series it accepts
(``store``).  Its answers are a real receiver's unless a test scripts them with :class:`Reply`:
any status, body and headers (``Retry-After``), a delay, a hang until :meth:`Receiver.release`,
a dropped connection, or an echo of what was sent.  It stops and restarts on the same port, so
a test can take the receiver away and bring it back.

A debugging aid and a test double, not a storage backend: a ``ThreadingHTTPServer`` speaking
HTTP/1.1 (keep-alive, as senders expect) from daemon threads.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from .._redact import safe_url
from .serving import HANG, WRITE_PATH, Handler, Reply, Server, path_of
from .store import ReceivedRequest, SeriesStore, StoredSeries, render
from .validate import Checked, Violation, answer_for, validate

__all__ = ["HANG", "WRITE_PATH", "Receiver", "Reply", "refused_url"]

logger = logging.getLogger(__name__)


class Receiver:
    """A validating remote-write receiver on a loopback port, served from daemon threads.

    Args:
        replies: the first answers, in order (an int is a bare status); then ``default``.
        host: the address to listen on.
        port: the port; 0 picks a free one (kept across :meth:`restart`).
        strict: answer 400 (415 for a body that is not remote write) to any request breaking a
            rule, before any scripted reply, as a careful receiver does.
        default: the answer once the script is used up, to every request whatever it holds;
            None (the default) answers as a real receiver: 204 (1.0) or 200 (2.0) when the body
            decodes, 400 or 415 when it does not, 404 off the write path.
        written_headers: on a 2xx answer to a 2.0 request, send the
            ``X-Prometheus-Remote-Write-*-Written`` counts, as a 2.0 receiver must.
        ssl_context: serve HTTPS with this server-side context.
        on_request: called with each :class:`ReceivedRequest` once its answer is decided, before
            it is sent (from the server's thread; an exception it raises is logged).
        keep_requests: how many of the most recent requests :attr:`requests` keeps.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Raises:
        OSError: the port cannot be listened on.
    """

    def __init__(
        self,
        replies: Iterable[Reply | int] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        strict: bool = False,
        default: Reply | None = None,
        written_headers: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        on_request: Callable[[ReceivedRequest], None] | None = None,
        keep_requests: int = 10_000,
    ) -> None:
        self.strict = strict
        self.default = default
        self.written_headers = written_headers
        self.on_request = on_request
        self._ssl_context = ssl_context
        self._store = SeriesStore(keep_requests=keep_requests)
        self._script: deque[Reply] = deque()
        self._script_lock = threading.Lock()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: Server | None = self._listen(host, port)
        self._host = host
        self._port = int(self._server.server_address[1])
        self.script(*replies)

    # -- where ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on."""
        return self._port

    @property
    def base_url(self) -> str:
        """The receiver's root, for example ``http://127.0.0.1:40123`` (``https`` with TLS)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def write_url(self) -> str:
        """The remote-write endpoint to push to: :attr:`base_url` plus ``/api/v1/write``."""
        return self.base_url + WRITE_PATH

    @property
    def url(self) -> str:
        """The same as :attr:`write_url`."""
        return self.write_url

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Receiver:
        """Serve from a daemon thread (listening again on the same port after :meth:`stop`)."""
        with self._lock:
            if self._thread is None:
                if self._server is None:
                    self._server = self._listen(self._host, self.port)
                self._released.clear()
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"prometheus-rw-bridge-receiver:{self.port}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end hanging replies and hang up on every connection (idempotent).

        Connections to the port are refused until :meth:`start` or :meth:`restart`.
        """
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        self._released.set()
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            thread.join()
        server.server_close()
        server.close_connections()

    def restart(self) -> Receiver:
        """Stop, then listen again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the script -----------------------------------------------------------------------------

    def script(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests, in order (an int is a bare status)."""
        with self._script_lock:
            self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    def release(self) -> None:
        """End every hanging reply now and later ones at once (until the next :meth:`start`)."""
        self._released.set()

    # -- what arrived ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests received so far (the most recent ``keep_requests``), oldest first."""
        return self._store.requests

    def wait_for_requests(
        self, count: int, timeout: float = 10.0, *, accepted: bool = False
    ) -> list[ReceivedRequest]:
        """Wait until ``count`` requests (only 2xx-answered ones if ``accepted``) have arrived.

        Returns:
            The requests received so far (the accepted ones if ``accepted``), oldest first.

        Raises:
            AssertionError: fewer arrived within ``timeout`` seconds.
        """
        arrived = self._store.wait_for(count, timeout, accepted=accepted)
        requests = [r for r in self.requests if r.accepted or not accepted]
        if not arrived:
            kind = "accepted requests" if accepted else "requests"
            raise AssertionError(
                f"expected {count} {kind} at {self.write_url} within {timeout}s, got {len(requests)}"
            )
        return requests

    def series(self, name: str | None = None, **labels: str) -> list[StoredSeries]:
        """The latest sample of every series accepted (named ``name``, with all of ``labels``).

        Sorted by family, name and labels (``le`` numerically).
        """
        return self._store.series(name, **labels)

    def get(self, name: str, **labels: str) -> StoredSeries | None:
        """Return the first series named ``name`` that has all of ``labels``, or None."""
        found = self.series(name, **labels)
        return found[0] if found else None

    def value(self, name: str, **labels: str) -> float:
        """Return the latest value of the one series named ``name`` with all of ``labels``.

        Raises:
            AssertionError: no series, or more than one, matches (the message lists what arrived),
                or the series has ended with a stale marker.
        """
        found = self.series(name, **labels)
        wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        if len(found) == 1 and found[0].stale:
            raise AssertionError(
                f"{found[0].to_text()}: the series ended with a stale marker (the bridge was closed): "
                "read values before close(), or pass stale_on_close=False"
            )
        if len(found) == 1:
            return found[0].value
        if found:
            matches = "\n".join(one.to_text() for one in found)
            raise AssertionError(f"{len(found)} series match {wanted}; add labels to pick one:\n{matches}")
        raise AssertionError(f"no series matches {wanted}; received:\n{self.to_text() or '(nothing)'}")

    @property
    def violations(self) -> list[Violation]:
        """Every rule broken by the requests kept, oldest first."""
        return [v for r in self.requests for v in r.violations]

    @property
    def samples_received(self) -> int:
        """The number of samples in accepted requests."""
        return self._store.samples_received

    def to_text(self) -> str:
        """Render every stored series as exposition-format text with ``# TYPE`` lines."""
        return render(self.series())

    def clear(self) -> None:
        """Forget every stored series and request (order checks start afresh)."""
        self._store.clear()

    # -- serving --------------------------------------------------------------------------------

    def _listen(self, host: str, port: int) -> Server:
        server = Server((host, port), Handler)
        server.receiver = self
        if self._ssl_context is not None:
            # The handshake happens in the connection's own thread (_Handler.setup), so a
            # client that never completes it does not hold up the others.
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        return server

    def _receive(self, target: str, headers: Mapping[str, str], body: bytes) -> tuple[ReceivedRequest, Reply]:
        """Validate, record and store one POST, and decide its answer (what the handler calls)."""
        received = ReceivedRequest(
            number=self._store.next_number(),
            arrived=time.monotonic(),
            method="POST",
            path=target,
            headers=dict(headers),
            body=body,
        )
        on_path = path_of(target) == WRITE_PATH
        # Off the write path, only a scripted receiver takes what it is sent (it may be a proxy).
        checked = validate(_Caseless(headers), body) if on_path or self._scripted() else Checked()
        received.take(checked)
        chosen: list[Reply] = []

        def answer(received: ReceivedRequest) -> None:
            reply = self._choose(received, checked, on_path=on_path)
            received.status = reply.status if reply.answers else None
            received.answer = reply.text
            chosen.append(reply)

        self._store.apply(received, answer)
        if self.on_request is not None:
            try:
                self.on_request(received)
            except Exception:
                logger.exception("on_request callback failed")
        return received, chosen[0]

    def _scripted(self) -> bool:
        with self._script_lock:
            return self.default is not None or bool(self._script)

    def _choose(self, received: ReceivedRequest, checked: Checked, *, on_path: bool) -> Reply:
        """Pick the answer: strict refusals, then the script, then the default, then a real one."""
        refusal = None
        if checked.refused is not None:
            refusal = Reply(checked.refused, answer_for(received.violations[-1:]))
        if self.strict and (refusal or received.violations):
            return refusal or Reply(400, answer_for(received.violations))
        with self._script_lock:
            if self._script:
                return self._script.popleft()
        if self.default is not None:
            return self.default
        if not on_path:
            return Reply(404, f"not found: this receiver takes remote write at POST {WRITE_PATH}\n")
        return refusal or Reply(200 if received.protocol == "2.0" else 204)

    def _headers_for(self, received: ReceivedRequest, reply: Reply) -> dict[str, str]:
        """Return the answer's headers: the reply's, plus the 2.0 written counts on success."""
        headers = dict(reply.headers)
        if self.written_headers and received.protocol == "2.0" and received.accepted and received.decoded:
            for kind in ("samples", "histograms", "exemplars"):
                name = f"X-Prometheus-Remote-Write-{kind.title()}-Written"
                headers.setdefault(name, str(getattr(received, kind)))
        return headers

    def _wait_released(self, timeout: float | None) -> bool:
        return self._released.wait(timeout)

    def _page(self) -> str:
        return self.to_text()

    def _log_request(self, client: str, text: str, error: BaseException | None = None) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            # The request target may carry the sender's credentials in its query string.
            for word in text.split():
                if "?" in word or "#" in word:
                    text = text.replace(word, safe_url(word))
            logger.debug("%s %s", client, text, exc_info=error)


class _Caseless(dict[str, str]):
    """Header lookup that ignores case."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def refused_url() -> str:
    """Return a write URL on a loopback port nobody listens on, so connections are refused.

    The port was free a moment ago; another program could take it, which on a test machine is
    rare enough.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{WRITE_PATH}"
