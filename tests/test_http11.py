"""The http.client transport: keep-alive, reconnection, and httpx's errors where httpcore raises them.

A raw socket server scripts what happens on the wire per request (answer and keep the
connection, answer and close it, close it without answering, hang) and records which
connection each request came on, so connection reuse is asserted, not assumed.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from prometheus_rw_bridge._http import http11 as _http11
from prometheus_rw_bridge._http.http11 import Http11Transport
from prometheus_rw_bridge.testing import Receiver, Reply

OK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Wire:
    """A one-request-at-a-time HTTP/1.1 server on 127.0.0.1 driven by a list of actions.

    Actions, one per request: ``"ok"`` (204, keep the connection), ``"ok-close"`` (204, then
    close the connection, without saying so), ``"drop"`` (close without answering), ``"hang"``
    (answer nothing until the test ends), or raw response bytes (sent, connection kept).
    After the script, every request gets ``"ok"``.
    """

    actions: list[str | bytes]
    requests: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (connection, head, body)
    connections: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1/write?x=1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        stream = conn.makefile("rb")
        with conn, stream:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    0,
                )
                body = stream.read(length)
                if len(body) < length:  # the client gave up mid-request
                    return
                self.requests.append((number, head, body))
                action = self.actions.pop(0) if self.actions else "ok"
                if action == "hang":
                    self.done.wait()
                    return
                if action == "drop":
                    return
                conn.sendall(OK if action in ("ok", "ok-close") else action)  # type: ignore[arg-type]
                if action == "ok-close":
                    conn.shutdown(socket.SHUT_RDWR)
                    self.closed.set()
                    return

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    server = Wire([])
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=Http11Transport(), timeout=5) as c:
        yield c


def test_requests_share_one_keep_alive_connection(wire: Wire, client: httpx.Client) -> None:
    for n in range(3):
        response = client.post(wire.url, content=b"body %d" % n, headers={"X-Test": "yes"})
        assert response.status_code == 204
    assert [number for number, _, _ in wire.requests] == [1, 1, 1]
    _, head, body = wire.requests[2]
    assert head.startswith(b"POST /api/v1/write?x=1 HTTP/1.1\r\n")
    assert b"\r\nX-Test: yes\r\n" in head and f"\r\nHost: 127.0.0.1:{wire.port}\r\n".encode() in head
    assert body == b"body 2"


def test_an_idle_connection_the_server_closed_is_replaced_before_use(
    wire: Wire, client: httpx.Client
) -> None:
    wire.actions = ["ok-close"]
    assert client.post(wire.url, content=b"a").status_code == 204
    assert wire.closed.wait(5)
    assert client.post(wire.url, content=b"b").status_code == 204
    assert [(number, body) for number, _, body in wire.requests] == [(1, b"a"), (2, b"b")]


def test_a_reused_connection_that_fails_while_sending_is_replaced_and_the_request_sent_once(
    wire: Wire, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server closed the connection just as it was taken: the send fails, so the request
    # cannot have been processed, and it goes out once more on a fresh connection.
    calls = []

    def send_all(sock: socket.socket, body: bytes) -> None:
        calls.append(body)
        if len(calls) == 2:
            raise BrokenPipeError(32, "Broken pipe")
        sock.sendall(body)

    monkeypatch.setattr(_http11, "_send_all", send_all)
    assert client.post(wire.url, content=b"a").status_code == 204
    assert client.post(wire.url, content=b"b").status_code == 204
    assert [(number, body) for number, _, body in wire.requests] == [(1, b"a"), (2, b"b")]


def test_a_reused_connection_closed_after_the_request_is_not_resent(wire: Wire, client: httpx.Client) -> None:
    # The server may have processed it: retrying is the caller's decision (the sender's policy).
    wire.actions = ["ok", "drop"]
    assert client.post(wire.url, content=b"a").status_code == 204
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(wire.url, content=b"b")
    assert [(number, body) for number, _, body in wire.requests] == [(1, b"a"), (1, b"b")]


def test_a_connection_idle_too_long_is_not_reused(
    wire: Wire, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NAT may drop an idle connection without a word; like httpcore, forget it after a while.
    monkeypatch.setattr(_http11, "_KEEPALIVE_EXPIRY", -1.0)
    client.post(wire.url, content=b"a")
    client.post(wire.url, content=b"b")
    assert [number for number, _, _ in wire.requests] == [1, 2]


def test_a_fresh_connection_closed_without_an_answer_is_a_protocol_error(
    wire: Wire, client: httpx.Client
) -> None:
    wire.actions = ["drop"]
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.post(wire.url, content=b"a")
    assert len(wire.requests) == 1  # not sent twice


def test_no_answer_in_time_is_a_read_timeout(wire: Wire) -> None:
    wire.actions = ["hang"]
    with httpx.Client(transport=Http11Transport()) as client, pytest.raises(httpx.ReadTimeout) as caught:
        client.post(wire.url, content=b"a", timeout=httpx.Timeout(5, read=0.05))
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_a_refused_connection_is_a_connect_error_caused_by_the_os_error(client: httpx.Client) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as caught:
        client.post(f"http://127.0.0.1:{port}/", content=b"a")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_status_headers_and_body_come_back_and_a_long_body_closes_the_connection(
    wire: Wire, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http11, "_MAX_READ", 8)
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\nX-Why: because\r\n\r\nout of order sample!"
    wire.actions = [answer]
    first = client.post(wire.url, content=b"a")
    assert (first.status_code, first.reason_phrase, first.headers["x-why"]) == (400, "Bad Request", "because")
    assert first.text == "out of o"  # cut at _MAX_READ, and the rest left unread ...
    client.post(wire.url, content=b"b")
    client.post(wire.url, content=b"c")
    assert [number for number, _, _ in wire.requests] == [1, 2, 2]  # ... so that connection was closed


def test_a_chunked_answer_is_read_and_the_connection_kept(wire: Wire, client: httpx.Client) -> None:
    wire.actions = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"]
    assert client.post(wire.url, content=b"a").text == "hello"
    client.post(wire.url, content=b"b")
    assert [number for number, _, _ in wire.requests] == [1, 1]


def test_close_closes_idle_connections(wire: Wire) -> None:
    transport = Http11Transport()
    with httpx.Client(transport=transport) as client:
        client.post(wire.url, content=b"a")
        ((conn, _),) = transport._idle.values()
    assert conn.sock is None  # closed with the client
    assert transport._idle == {}


def test_https_verifies_against_the_given_context() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with Receiver(ssl_context=server_context, default=Reply()) as receiver:
        with httpx.Client(transport=Http11Transport(trusting)) as client:
            assert client.post(receiver.url, content=b"a").status_code == 204
        stranger = ssl.create_default_context()
        trustme.CA().configure_trust(stranger)
        with (
            httpx.Client(transport=Http11Transport(stranger)) as client,
            pytest.raises(httpx.ConnectError) as caught,
        ):
            client.post(receiver.url, content=b"a")
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_an_unsupported_scheme_is_refused() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        Http11Transport().handle_request(httpx.Request("POST", "ftp://example.com/"))


def test_an_answer_that_came_before_the_body_was_sent_is_still_read(
    wire: Wire, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a receiver that answers 413 early and resets the connection: the send fails, the
    # answer is already there.  (A real reset may discard it, so the failure is simulated.)
    wire.actions = [
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"
    ]

    def send_then_break(sock: socket.socket, body: bytes) -> None:
        sock.sendall(body)
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_http11, "_send_all", send_then_break)
    response = client.post(wire.url, content=b"a")
    assert (response.status_code, response.text) == (413, "too big!")


def test_a_failed_send_without_an_answer_is_a_write_error(
    wire: Wire, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(sock: socket.socket, body: bytes) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(_http11, "_send_all", broken)
    with pytest.raises(httpx.WriteError) as caught:
        client.post(wire.url, content=b"a", timeout=httpx.Timeout(5, read=0.1))
    assert isinstance(caught.value.__cause__, ConnectionResetError)


def test_latin_1_header_values_in_an_answer_come_through(wire: Wire, client: httpx.Client) -> None:
    wire.actions = ["HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-Note: café\r\n\r\n".encode("latin-1")]
    response = client.post(wire.url, content=b"a")
    assert response.headers.raw[-1] == (b"X-Note", "café".encode("latin-1"))
    client.post(wire.url, content=b"b")
    assert [number for number, _, _ in wire.requests] == [1, 1]


def test_an_informational_answer_other_than_100_is_a_protocol_error(wire: Wire, client: httpx.Client) -> None:
    wire.actions = [b"HTTP/1.1 103 Early Hints\r\n\r\n" + OK]
    with pytest.raises(httpx.RemoteProtocolError, match="103"):
        client.post(wire.url, content=b"a")


def test_a_malformed_answer_is_quoted_not_echoed(wire: Wire, client: httpx.Client) -> None:
    wire.actions = [b"FOO\r\nBAR\r\n\r\n"]
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        client.post(wire.url, content=b"a")
    assert "\n" not in str(caught.value) and "FOO" in str(caught.value)


def test_an_illegal_header_value_is_refused_without_echoing_it(wire: Wire, client: httpx.Client) -> None:
    with pytest.raises(httpx.LocalProtocolError) as caught:
        client.post(wire.url, content=b"a", headers={"Authorization": "Bearer s3cret\r\nX-Evil: 1"})
    assert "s3cret" not in str(caught.value)
    assert wire.requests == []


def test_a_body_of_unknown_length_is_refused(client: httpx.Client, wire: Wire) -> None:
    with pytest.raises(httpx.LocalProtocolError, match="known length"):
        client.post(wire.url, content=iter([b"a", b"b"]))
