"""What a receiver's answer to a remote-write request means, in plain words, and the fix.

Used by ``prometheus-rw-bridge check``; each diagnosis is also listed, with its fix, in the
troubleshooting page of the documentation.  Pure functions: an HTTP status and message, or a
transport error and its cause chain, in; a :class:`Diagnosis` out.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import causes
from .._http.errors import ended_without_answer

__all__ = ["AuthUsed", "Diagnosis", "auth_used", "diagnose_answer", "diagnose_transport_error"]


@dataclass
class Diagnosis:
    """What an answer (or the lack of one) means, and what to do about it."""

    ok: bool
    summary: str
    hints: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Render as the lines ``check`` prints."""
        mark = "OK" if self.ok else "FAILED"
        return "\n".join([f"{mark}: {self.summary}", *(f"  - {hint}" for hint in self.hints)])


@dataclass(frozen=True)
class AuthUsed:
    """Which credentials and TLS files were in play, so diagnoses can name them."""

    username: str | None = None
    password_file: str | None = None
    bearer_token: bool = False
    bearer_token_file: str | None = None
    tenant: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False

    @property
    def credentials(self) -> str | None:
        if self.bearer_token_file:
            return f"the bearer token in {self.bearer_token_file}"
        if self.bearer_token:
            return "the bearer token from PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN"
        if self.username:
            where = f" with the password in {self.password_file}" if self.password_file else ""
            return f"basic auth as user {self.username!r}{where}"
        return None


def diagnose_answer(
    status: int, message: str, *, url: str, protocol: str = "1.0", used: Any = None
) -> Diagnosis:
    """Explain a receiver's non-2xx answer to the probe in plain words.

    Args:
        status: the HTTP status.
        message: the receiver's response body.
        url: the endpoint (without credentials).
        protocol: the protocol the probe was sent with.
        used: the credentials and TLS files in play (an ``AuthUsed``), for naming them.

    Returns:
        The diagnosis; ``ok`` is always false.
    """
    auth: AuthUsed = used if used is not None else AuthUsed()
    lowered = message.lower()
    quoted = f'the receiver said: "{message.strip()}"' if message.strip() else "the receiver sent no message"
    host = urllib.parse.urlsplit(url).netloc
    if status == 404 and ("remote-write-receiver" in lowered or "remote write receiver" in lowered):
        return Diagnosis(
            False,
            f"{url} is a Prometheus whose remote-write receiver is off (404).",
            [
                "start Prometheus with --web.enable-remote-write-receiver "
                "(Prometheus 2.25 to 2.32: --enable-feature=remote-write-receiver)",
                quoted,
            ],
        )
    # VictoriaMetrics (and vmagent) answer an unknown path with 400 "unsupported path requested".
    if status == 404 or (status == 400 and "unsupported path" in lowered):
        hints = [
            "Prometheus and VictoriaMetrics: /api/v1/write; Mimir and Cortex: /api/v1/push; "
            "Thanos Receive: /api/v1/receive; Grafana Cloud: the URL ending in /api/prom/push"
        ]
        if status == 404:
            hints.append(
                "if this is Prometheus, it also answers 404 when started without "
                "--web.enable-remote-write-receiver"
            )
        else:
            hints.append(
                "this answer is VictoriaMetrics': single-node and vmagent take /api/v1/write, a "
                "cluster's vminsert /insert/<accountID>/prometheus/api/v1/write"
            )
        return Diagnosis(
            False,
            f"nothing at {url} takes remote write ({status}): the path is probably wrong.",
            [*hints, quoted],
        )
    if (
        status == 415
        or "text/plain" in lowered
        or "unsupported media type" in lowered
        or "content-type" in lowered
    ):
        hints = [
            "remote write takes a snappy-compressed protobuf body (Content-Type: application/x-protobuf), "
            "not the text exposition format",
            "the classic mistake is POSTing prometheus_client.generate_latest() output to /api/v1/write; "
            "use prometheus_rw_bridge.enable_remote_write() or push_to_remote_write() instead",
        ]
        if protocol == "2.0":
            hints.insert(
                0,
                "this probe was remote-write 2.0, which this receiver does not take: "
                "retry with --protocol 1.0",
            )
        hints.append(quoted)
        return Diagnosis(False, f"{url} refused the format of the request ({status}).", hints)
    if status == 400 and "snappy" in lowered:
        return Diagnosis(
            False,
            f"{url} could not decompress the body (400, snappy).",
            [
                "the body must use snappy's block format; the framed (streaming) format gives "
                '"snappy: corrupt input" (python-snappy: use snappy.compress, not StreamCompressor; '
                "cramjam: snappy.compress_raw, not snappy.compress)",
                "this probe is block format, so if you see this here, something between you and the "
                "receiver (a proxy, a gateway) re-encodes request bodies",
                quoted,
            ],
        )
    if status in (401, 403):
        creds = auth.credentials
        if status == 401:
            summary = f"{url} did not accept the credentials (401)."
            hints = [
                f"sent {creds}: check the user name, the password or token, and that the file holds "
                "nothing but the secret"
                if creds
                else "no credentials were sent: pass --username with --password-file, or --bearer-token-file"
            ]
        else:
            summary = f"{url} accepted the credentials but refused to let them write (403)."
            hints = ["check that the token or user may write (not just read) to this endpoint"]
        if auth.tenant:
            hints.append(f"tenant {auth.tenant!r} was sent as X-Scope-OrgID: check it is the right one")
        else:
            hints.append("multi-tenant receivers (Mimir, Cortex) want a tenant: pass --tenant")
        hints.append(quoted)
        return Diagnosis(False, summary, hints)
    if 300 <= status < 400:
        return Diagnosis(
            False,
            f"{url} redirects ({status}); remote write does not follow redirects.",
            ["use the final URL (often https:// instead of http://, or a trailing slash)", quoted],
        )
    if status == 413:
        return Diagnosis(
            False, f"{url} says the request is too large (413).", ["lower max_samples_per_send", quoted]
        )
    if status == 429:
        return Diagnosis(
            False,
            f"{url} is rate-limiting this sender (429).",
            [
                "the bridge retries 429 with backoff; raise the tenant's ingestion limits if it persists",
                quoted,
            ],
        )
    if status >= 500:
        return Diagnosis(
            False,
            f"{url} failed internally ({status}).",
            ["the bridge retries 5xx with backoff; check the receiver's logs", quoted],
        )
    if status == 400:
        hints = [quoted]
        if "out of bounds" in lowered or "too old" in lowered or "too far" in lowered:
            hints.insert(
                0, "the receiver thinks the sample's timestamp is out of range: check this machine's clock"
            )
        elif "out of order" in lowered or "duplicate sample" in lowered:
            hints.insert(
                0, "another sender writes the same series: give each process its own job/instance labels"
            )
        return Diagnosis(False, f"{url} rejected the probe as invalid (400).", hints)
    return Diagnosis(False, f"{url} answered {status}.", [quoted, f"host: {host}"])


def diagnose_transport_error(error: BaseException, *, url: str, used: Any = None) -> Diagnosis:
    """Explain why no answer came: refused, unresolvable, TLS, timeout.

    Args:
        error: the ``TransportError`` (its cause chain is inspected).
        url: the endpoint (without credentials).
        used: the credentials and TLS files in play (an ``AuthUsed``), for naming them.

    Returns:
        The diagnosis; ``ok`` is always false.
    """
    auth: AuthUsed = used if used is not None else AuthUsed()
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    chain = list(causes(error))
    text = " ".join(str(exc) for exc in chain).lower()
    said = f"(error: {error})"
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        reason = (verify.verify_message or verify.reason or str(verify)).lower()
        if "hostname" in reason or "ip address mismatch" in reason:
            hints = [f"the server's certificate is not issued for {host!r}: connect by a name it lists"]
        elif "expired" in reason:
            hints = ["the server's certificate has expired: renew it"]
        elif auth.ca_file:
            hints = [
                f"the server's certificate is not signed by a CA in --ca-file {auth.ca_file}: "
                "use the CA that issued it"
            ]
        else:
            hints = [
                "the server's certificate is not signed by a CA this machine trusts "
                "(self-signed or a private CA): pass --ca-file with that CA's certificate",
                "--insecure-skip-verify turns verification off (for testing only)",
            ]
        return Diagnosis(
            False, f"TLS: the certificate of {host}:{port} could not be verified.", [*hints, said]
        )
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None or "ssl" in text or "tls" in text:
        if "wrong version number" in text or "record layer failure" in text or "http request" in text:
            return Diagnosis(
                False,
                f"{host}:{port} does not speak TLS there.",
                ["use http:// for this port, or the port where the receiver serves https", said],
            )
        if (
            "certificate required" in text
            or "handshake failure" in text
            or "bad certificate" in text
            or ("unknown ca" in text)
        ):
            if auth.cert_file:
                hint = (
                    f"the server refused the client certificate --cert-file {auth.cert_file}: "
                    "is it issued by the CA the server trusts for clients, and not expired?"
                )
            else:
                hint = "the server wants a client certificate (mutual TLS): pass --cert-file and --key-file"
            return Diagnosis(False, f"TLS: {host}:{port} refused the handshake.", [hint, said])
    if parts.scheme == "https" and ended_without_answer(error):
        # Under TLS 1.3 the server checks the client certificate after the client has finished
        # its handshake; its alert is then often lost when it closes, so "ended" is all we see.
        if auth.cert_file:
            hint = (
                f"the server may have refused the client certificate --cert-file {auth.cert_file}: "
                "is it issued by the CA the server trusts for clients, and not expired?"
            )
        else:
            hint = (
                "no client certificate was sent, and the server may require one (mutual TLS): "
                "pass --cert-file and --key-file (PROMETHEUS_REMOTE_WRITE_CERT_FILE and "
                "PROMETHEUS_REMOTE_WRITE_KEY_FILE)"
            )
        return Diagnosis(
            False,
            f"TLS: {host}:{port} ended the connection during or right after the handshake, "
            "without an answer.",
            [hint, "if not, the server's log says why it closed the connection", said],
        )
    if tls is not None or "ssl" in text or "tls" in text:
        return Diagnosis(False, f"TLS: the handshake with {host}:{port} failed.", [said])
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return Diagnosis(
            False,
            f"nothing is listening at {host}:{port} (connection refused).",
            ["is the receiver running, and is the host and port right?", said],
        )
    if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in text:
        return Diagnosis(
            False, f"cannot resolve the host name {host!r}.", ["check the URL's host name and DNS", said]
        )
    if "timed out" in text or "no response within" in text:
        return Diagnosis(
            False,
            f"{host}:{port} did not answer in time.",
            ["a firewall may drop the packets, or the receiver is overloaded; --timeout sets the wait", said],
        )
    hints = [said]
    hung_up = ("without sending a response", "disconnected", "connection reset")
    if parts.scheme == "http" and any(phrase in text for phrase in hung_up):
        hints.insert(0, "the server hung up without answering: if it speaks https at this port, use https://")
    return Diagnosis(False, f"no answer from {host}:{port}.", hints)


def auth_used(endpoint: Any) -> AuthUsed:
    """Describe the credentials and TLS files of resolved endpoint settings."""
    return AuthUsed(
        username=endpoint.username,
        password_file=_str_or_none(endpoint.password_file),
        bearer_token=bool(endpoint.bearer_token),
        bearer_token_file=_str_or_none(endpoint.bearer_token_file),
        tenant=endpoint.tenant,
        ca_file=_str_or_none(endpoint.ca_file),
        cert_file=_str_or_none(endpoint.cert_file),
        key_file=_str_or_none(endpoint.key_file),
        insecure_skip_verify=bool(endpoint.insecure_skip_verify),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else os.fspath(value)
