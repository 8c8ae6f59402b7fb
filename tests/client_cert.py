"""A TLS server wanting a client certificate, and showing how such servers treat a client without one.

``ClientCertServer`` shows, on purpose and every time, one of the ways such servers end a
conversation with a client that sends no certificate: the alert, or ending the connection
without one (see ``CLIENT_CERT_MODES``), so the command line's diagnosis of each can be tested.
Not part of the public test double (``prometheus_rw_bridge.testing``): it never answers HTTP.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable

__all__ = ["CLIENT_CERT_MODES", "ClientCertServer"]


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
        return f"https://127.0.0.1:{self.port}/api/v1/write"

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
