"""Why no answer came to a remote-write request, in plain words, and the fix.

Used by ``prometheus-rw-bridge check`` with :mod:`.diagnose` (which explains answers): a
transport error and its cause chain in, a :class:`~.diagnose.Diagnosis` out.  Refused, not
resolvable, TLS (an unverified certificate, a refused or ended handshake, no TLS at all) and
timeouts each have a rule, tried in order.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from .._config.settings import EndpointSettings
from .._exceptions import causes
from .._http.errors import ended_without_answer
from .diagnose import Diagnosis, failed

__all__ = ["diagnose_transport_error"]


@dataclass(frozen=True)
class _Failure:
    """A transport error, with what its rules need to explain it."""

    error: BaseException
    chain: list[BaseException]
    scheme: str
    host: str
    port: int
    used: EndpointSettings

    @property
    def text(self) -> str:
        return " ".join(str(exc) for exc in self.chain).lower()

    @property
    def said(self) -> str:
        return f"(error: {self.error})"

    @property
    def tls(self) -> bool:
        """Tell whether the chain holds a TLS error, or its words do."""
        return (
            any(isinstance(e, ssl.SSLError) for e in self.chain) or "ssl" in self.text or "tls" in self.text
        )


def diagnose_transport_error(
    error: BaseException, *, url: str, used: EndpointSettings | None = None
) -> Diagnosis:
    """Explain why no answer came: refused, unresolvable, TLS, timeout.

    Args:
        error: the ``TransportError`` (its cause chain is inspected).
        url: the endpoint (without credentials).
        used: the endpoint's settings (its credentials and TLS files), for naming them.

    Returns:
        The diagnosis; ``ok`` is always false.
    """
    parts = urllib.parse.urlsplit(url)
    failure = _Failure(
        error,
        list(causes(error)),
        parts.scheme,
        parts.hostname or "?",
        parts.port or (443 if parts.scheme == "https" else 80),
        used or EndpointSettings(url=url),
    )
    for rule in _FAILURE_RULES:
        diagnosis = rule(failure)
        if diagnosis is not None:
            return diagnosis
    hints = [failure.said]
    hung_up = ("without sending a response", "disconnected", "connection reset")
    if failure.scheme == "http" and any(phrase in failure.text for phrase in hung_up):
        hints.insert(0, "the server hung up without answering: if it speaks https at this port, use https://")
    return failed(f"no answer from {failure.host}:{failure.port}.", *hints)


def _unverified(failure: _Failure) -> Diagnosis | None:
    verify = next((e for e in failure.chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is None:
        return None
    reason = (verify.verify_message or verify.reason or str(verify)).lower()
    ca_file = failure.used.ca_file
    if "hostname" in reason or "ip address mismatch" in reason:
        hints = [f"the server's certificate is not issued for {failure.host!r}: connect by a name it lists"]
    elif "expired" in reason:
        hints = ["the server's certificate has expired: renew it"]
    elif ca_file:
        hints = [
            f"the server's certificate is not signed by a CA in --ca-file {os.fspath(ca_file)}: "
            "use the CA that issued it"
        ]
    else:
        hints = [
            "the server's certificate is not signed by a CA this machine trusts "
            "(self-signed or a private CA): pass --ca-file with that CA's certificate",
            "--insecure-skip-verify turns verification off (for testing only)",
        ]
    return failed(
        f"TLS: the certificate of {failure.host}:{failure.port} could not be verified.", *hints, failure.said
    )


def _handshake_refused(failure: _Failure) -> Diagnosis | None:
    if not failure.tls:
        return None
    text, where = failure.text, f"{failure.host}:{failure.port}"
    if "wrong version number" in text or "record layer failure" in text or "http request" in text:
        return failed(
            f"{where} does not speak TLS there.",
            "use http:// for this port, or the port where the receiver serves https",
            failure.said,
        )
    alerts = ("certificate required", "handshake failure", "bad certificate", "unknown ca")
    if not any(alert in text for alert in alerts):
        return None
    cert_file = failure.used.cert_file
    if cert_file:
        hint = (
            f"the server refused the client certificate --cert-file {os.fspath(cert_file)}: "
            "is it issued by the CA the server trusts for clients, and not expired?"
        )
    else:
        hint = "the server wants a client certificate (mutual TLS): pass --cert-file and --key-file"
    return failed(f"TLS: {where} refused the handshake.", hint, failure.said)


def _ended_in_handshake(failure: _Failure) -> Diagnosis | None:
    if failure.scheme != "https" or not ended_without_answer(failure.error):
        return None
    # Under TLS 1.3 the server checks the client certificate after the client has finished
    # its handshake; its alert is then often lost when it closes, so "ended" is all we see.
    cert_file = failure.used.cert_file
    if cert_file:
        hint = (
            f"the server may have refused the client certificate --cert-file {os.fspath(cert_file)}: "
            "is it issued by the CA the server trusts for clients, and not expired?"
        )
    else:
        hint = (
            "no client certificate was sent, and the server may require one (mutual TLS): "
            "pass --cert-file and --key-file (PROMETHEUS_REMOTE_WRITE_CERT_FILE and "
            "PROMETHEUS_REMOTE_WRITE_KEY_FILE)"
        )
    return failed(
        f"TLS: {failure.host}:{failure.port} ended the connection during or right after the handshake, "
        "without an answer.",
        hint,
        "if not, the server's log says why it closed the connection",
        failure.said,
    )


def _other_tls(failure: _Failure) -> Diagnosis | None:
    if not failure.tls:
        return None
    return failed(f"TLS: the handshake with {failure.host}:{failure.port} failed.", failure.said)


def _unreachable(failure: _Failure) -> Diagnosis | None:
    chain, text, where = failure.chain, failure.text, f"{failure.host}:{failure.port}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return failed(
            f"nothing is listening at {where} (connection refused).",
            "is the receiver running, and is the host and port right?",
            failure.said,
        )
    if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in text:
        return failed(
            f"cannot resolve the host name {failure.host!r}.",
            "check the URL's host name and DNS",
            failure.said,
        )
    if "timed out" in text or "no response within" in text:
        return failed(
            f"{where} did not answer in time.",
            "a firewall may drop the packets, or the receiver is overloaded; --timeout sets the wait",
            failure.said,
        )
    return None


_FAILURE_RULES: tuple[Callable[[_Failure], Diagnosis | None], ...] = (
    _unverified,
    _handshake_refused,
    _ended_in_handshake,
    _other_tls,
    _unreachable,
)

