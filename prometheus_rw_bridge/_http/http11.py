"""An httpx transport that speaks HTTP/1.1 through the standard library's ``http.client``.

Why: the pusher makes a handful of POSTs per interval, and all of them run Python while the
application wants the GIL.  Through an ``httpx.Client``, a 2,000-sample POST costs about
0.7 ms of CPU on this transport against 0.93-0.99 ms on httpcore + h11, measured interleaved on a
small machine (``benchmarks/bench_encode.py`` prints it; ``docs/performance.md`` has a run).
httpx stays in charge of everything above the wire: auth flows (basic, bearer, SigV4),
default headers, cookies, timeouts, and proxies (a configured proxy mounts httpx's own
transport; with an environment proxy set, ``direct_transport`` leaves the client on httpx's
default transport, because httpx ignores those variables for a client given a transport).

What it does: one keep-alive connection per origin, taken exclusively for a request and
put back when the response was read to its end.  Like httpcore, it forgets connections idle
for more than 5 s (a NAT may have dropped them without a word) and notices before reuse an
idle connection the server closed.  A request whose sending fails on a reused connection
(the server closed it just then, so it cannot have been processed) is sent once more on a
fresh one; any other failure is the caller's to retry.  Errors are httpx's
(``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), raised with the OS or TLS
error as ``__cause__``, where httpcore would raise them.

It serves remote-write answers, not downloads: it reads at most 64 KiB of a response body
(the rest is cut, and that connection closed), and it sends only bodies of known length.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["Http11Transport", "direct_transport"]

# A response body longer than this is not read to its end; its connection is closed instead.
# Remote-write answers are empty or a short error message.
_MAX_READ = 64 * 1024

# Seconds an idle connection is kept, as httpcore's default keepalive_expiry.
_KEEPALIVE_EXPIRY = 5.0

_Key = tuple[str, str, int]


def direct_transport(
    ssl_context: ssl.SSLContext | None = None, *, https: bool = False
) -> Http11Transport | None:
    """An ``Http11Transport`` for a new ``httpx.Client``, or None when environment proxies apply.

    httpx reads ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` only for a client built without a
    transport of its own, so with any of them set, the client keeps httpx's default transport
    and the proxies behave exactly as httpx documents.

    With ``https`` and no ``ssl_context``, httpx's default trust store is loaded now: on the
    first connection it would import certifi in the sending thread, which must not import
    (docs/architecture.md, "Forks").
    """
    proxies = urllib.request.getproxies()  # what httpx itself consults
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    if ssl_context is None and https:
        ssl_context = httpx.create_ssl_context()
    return Http11Transport(ssl_context)


class _Stale(Exception):
    """Sending failed on a reused connection: the server had closed it, so nothing was processed."""


class Http11Transport(httpx.BaseTransport):
    """HTTP/1.1 over ``http.client`` with keep-alive; see the module docstring.

    Args:
        ssl_context: the context for ``https`` origins; httpx's default trust store if None.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Key, tuple[http.client.HTTPConnection, float]] = {}
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.")
        if "Transfer-Encoding" in request.headers:
            raise httpx.LocalProtocolError("Http11Transport sends only bodies of known length")
        # The ASCII (IDNA) host, as httpcore uses it, for DNS and for the TLS server name.
        key = (url.scheme, url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        body = request.read()
        conn = self._take(key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = self._connect(key, timeouts.get("connect"))
            try:
                response, reusable = self._exchange(conn, request, body, timeouts, reused=reused)
            except _Stale:
                conn.close()
                conn = None  # once more, on a fresh connection
                continue
            except BaseException:
                conn.close()  # idempotent; the failure paths close it already
                raise
            if reusable:
                self._give_back(key, conn)
            else:
                conn.close()
            return response

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle.values()), {}
        for conn, _ in idle:
            conn.close()

    # -- internals -------------------------------------------------------------------------

    def _take(self, key: _Key) -> http.client.HTTPConnection | None:
        """Take the idle connection to ``key``, unless the server has closed it meanwhile."""
        with self._lock:
            conn, since = self._idle.pop(key, (None, 0.0))
        if conn is None:
            return None
        if time.monotonic() - since > _KEEPALIVE_EXPIRY or conn.sock is None or _readable(conn.sock):
            # An idle HTTP/1.1 connection has nothing to read unless the server closed it.
            conn.close()
            return None
        return conn

    def _give_back(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and key not in self._idle:
                self._idle[key] = (conn, time.monotonic())
                return
        conn.close()

    def _connect(self, key: _Key, timeout: float | None) -> http.client.HTTPConnection:
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])  # as httpcore offers it
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        failure: httpx.TransportError
        try:
            conn.connect()
            return conn
        except TimeoutError as exc:
            failure = httpx.ConnectTimeout(f"timed out connecting to {host}:{port}")
            cause: BaseException = exc
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            failure = httpx.ConnectError(str(exc) or type(exc).__name__)
            cause = exc
        conn.close()
        raise failure from cause

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, Any],
        *,
        reused: bool,
    ) -> tuple[httpx.Response, bool]:
        """Send ``request`` on ``conn``; return the answer and whether ``conn`` can be reused.

        Raises ``_Stale`` when sending fails on a reused connection: the server closed it, and
        cannot have processed the request.  A receiver may also answer early (a 413, say) and
        close before the whole body is sent; as httpcore does, that answer is still read.
        """
        failure: httpx.TransportError | None = None
        cause: BaseException | None = None
        send_error: OSError | None = None
        response: http.client.HTTPResponse | None = None
        try:
            assert conn.sock is not None
            conn.sock.settimeout(timeouts.get("write"))
            conn.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                conn.putheader(name, value)
            conn.endheaders()
            _send_all(conn.sock, body)
        except TimeoutError as exc:
            failure, cause = httpx.WriteTimeout("timed out sending the request"), exc
        except OSError as exc:
            if reused:
                raise _Stale from None
            send_error = exc
        except ValueError:  # http.client refuses a header name or value (CR/LF): don't echo it
            failure = httpx.LocalProtocolError("a request header has an illegal name or value")
        if failure is None:
            try:
                conn.sock.settimeout(timeouts.get("read"))
                response = conn.getresponse()
                if 100 <= response.status < 200:
                    # http.client skips only 100 Continue; it cannot read past other 1xx answers.
                    raise http.client.HTTPException(f"unexpected informational answer {response.status}")
                content = response.read(_MAX_READ)
            except (OSError, http.client.HTTPException) as exc:
                failure, cause = _read_failure(exc, send_error)
        if failure is not None:
            if response is not None:
                response.close()  # it holds the socket too
            conn.close()
            failure.request = request
            raise failure from cause
        assert response is not None
        answer = httpx.Response(
            response.status,
            # http.client decodes header bytes as latin-1; give httpx the bytes back.
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.getheaders()],
            stream=_Body(content),
            extensions={
                "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
            request=request,
        )
        # Reusable when the body was read to its end, the server keeps the connection, and
        # the request went out whole.
        return answer, response.isclosed() and not response.will_close and send_error is None


def _send_all(sock: socket.socket, body: bytes) -> None:
    """Send ``body``; the socket's timeout applies to each ``send``, as in httpcore."""
    view = memoryview(body)
    while view:
        sent = sock.send(view)
        view = view[sent:]


def _read_failure(
    exc: BaseException, send_error: OSError | None
) -> tuple[httpx.TransportError, BaseException | None]:
    """Map a failure to read the answer (after ``send_error``, if sending failed) to httpx's error."""
    if send_error is not None:
        return httpx.WriteError(str(send_error) or type(send_error).__name__), send_error
    if isinstance(exc, http.client.RemoteDisconnected):
        return httpx.RemoteProtocolError("Server disconnected without sending a response."), None
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout("timed out waiting for the response"), exc
    if isinstance(exc, http.client.HTTPException):
        text = str(exc) or type(exc).__name__  # may be the receiver's bytes: show them safely
        return httpx.RemoteProtocolError(f"malformed answer: {text[:200]!r}"), exc
    return httpx.ReadError(str(exc) or type(exc).__name__), exc


class _Body(httpx.SyncByteStream):
    """A body already read off the wire, handed out as a stream (as httpcore's are, unread)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __iter__(self) -> Iterator[bytes]:
        if self._content:
            yield self._content


def _readable(sock: socket.socket) -> bool:
    """Tell whether ``sock`` has something to read (for an idle connection: EOF or garbage)."""
    try:
        if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
