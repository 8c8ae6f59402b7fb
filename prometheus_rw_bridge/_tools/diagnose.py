"""What a receiver's answer to a remote-write request means, in plain words, and the fix.

Used by ``prometheus-rw-bridge check``; each diagnosis is also listed, with its fix, in the
troubleshooting page of the documentation.  Pure functions: an HTTP status and message in, a
:class:`Diagnosis` out (``no_answer`` explains transport errors).  Each kind of answer has a
rule of its own, tried in order; the first that recognises the answer explains it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from .._config.settings import EndpointSettings
from .._redact import safe_url

__all__ = ["Diagnosis", "credentials", "diagnose_answer", "failed"]


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


def failed(summary: str, *hints: str) -> Diagnosis:
    """Return a failed diagnosis."""
    return Diagnosis(False, summary, list(hints))


def credentials(used: EndpointSettings) -> str | None:
    """Name the credentials sent, or None."""
    if used.auth is not None:
        return f"the httpx.Auth {type(used.auth).__name__} given as auth="
    if used.sigv4:
        role = f" as role {used.sigv4_role_arn}" if used.sigv4_role_arn else ""
        return f"a SigV4 signature for service {used.sigv4_service or 'aps'}{role}"
    if used.oauth2_client_id:
        token_url = safe_url(used.oauth2_token_url or "")
        return f"an OAuth2 token of client {used.oauth2_client_id!r} from {token_url}"
    if used.bearer_token_file:
        return f"the bearer token in {os.fspath(used.bearer_token_file)}"
    if used.bearer_token:
        return "the bearer token from PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN"
    if used.username:
        where = f" with the password in {os.fspath(used.password_file)}" if used.password_file else ""
        return f"basic auth as user {used.username!r}{where}"
    return None


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class _Answer:
    """A receiver's answer, with what its rules need to explain it."""

    status: int
    message: str
    url: str
    protocol: str
    used: EndpointSettings

    @property
    def lowered(self) -> str:
        return self.message.lower()

    @property
    def quoted(self) -> str:
        text = self.message.strip()
        return f'the receiver said: "{text}"' if text else "the receiver sent no message"


def diagnose_answer(
    status: int, message: str, *, url: str, protocol: str = "1.0", used: EndpointSettings | None = None
) -> Diagnosis:
    """Explain a receiver's non-2xx answer to the probe in plain words.

    Args:
        status: the HTTP status.
        message: the receiver's response body.
        url: the endpoint (without credentials).
        protocol: the protocol the probe was sent with.
        used: the endpoint's settings (its credentials and TLS files), for naming them.

    Returns:
        The diagnosis; ``ok`` is always false.
    """
    answer = _Answer(status, message, url, protocol, used or EndpointSettings(url=url))
    for rule in _ANSWER_RULES:
        diagnosis = rule(answer)
        if diagnosis is not None:
            return diagnosis
    host = urllib.parse.urlsplit(url).netloc
    return failed(f"{url} answered {status}.", answer.quoted, f"host: {host}")


def _receiver_off(answer: _Answer) -> Diagnosis | None:
    if answer.status != 404 or not any(
        w in answer.lowered for w in ("remote-write-receiver", "remote write receiver")
    ):
        return None
    return failed(
        f"{answer.url} is a Prometheus whose remote-write receiver is off (404).",
        "start Prometheus with --web.enable-remote-write-receiver "
        "(Prometheus 2.25 to 2.32: --enable-feature=remote-write-receiver)",
        answer.quoted,
    )


def _wrong_path(answer: _Answer) -> Diagnosis | None:
    # VictoriaMetrics (and vmagent) answer an unknown path with 400 "unsupported path requested".
    if answer.status == 404:
        also = (
            "if this is Prometheus, it also answers 404 when started without "
            "--web.enable-remote-write-receiver"
        )
    elif answer.status == 400 and "unsupported path" in answer.lowered:
        also = (
            "this answer is VictoriaMetrics': single-node and vmagent take /api/v1/write, a "
            "cluster's vminsert /insert/<accountID>/prometheus/api/v1/write"
        )
    else:
        return None
    return failed(
        f"nothing at {answer.url} takes remote write ({answer.status}): the path is probably wrong.",
        "Prometheus and VictoriaMetrics: /api/v1/write; Mimir and Cortex: /api/v1/push; "
        "Thanos Receive: /api/v1/receive; Grafana Cloud: the URL ending in /api/prom/push",
        also,
        answer.quoted,
    )


def _wrong_format(answer: _Answer) -> Diagnosis | None:
    words = ("text/plain", "unsupported media type", "content-type")
    if answer.status != 415 and not any(word in answer.lowered for word in words):
        return None
    hints = [
        "remote write takes a snappy-compressed protobuf body (Content-Type: application/x-protobuf), "
        "not the text exposition format",
        "the classic mistake is POSTing prometheus_client.generate_latest() output to /api/v1/write; "
        "use prometheus_rw_bridge.enable_remote_write() or push_to_remote_write() instead",
        answer.quoted,
    ]
    if answer.protocol == "2.0":
        hints.insert(
            0, "this probe was remote-write 2.0, which this receiver does not take: retry with --protocol 1.0"
        )
    return failed(f"{answer.url} refused the format of the request ({answer.status}).", *hints)


def _not_snappy(answer: _Answer) -> Diagnosis | None:
    if answer.status != 400 or "snappy" not in answer.lowered:
        return None
    return failed(
        f"{answer.url} could not decompress the body (400, snappy).",
        "the body must use snappy's block format; the framed (streaming) format gives "
        '"snappy: corrupt input" (python-snappy: use snappy.compress, not StreamCompressor; '
        "cramjam: snappy.compress_raw, not snappy.compress)",
        "this probe is block format, so if you see this here, something between you and the "
        "receiver (a proxy, a gateway) re-encodes request bodies",
        answer.quoted,
    )


def _refused_credentials(answer: _Answer) -> Diagnosis | None:
    if answer.status not in (401, 403):
        return None
    if answer.status == 401:
        creds = credentials(answer.used)
        summary = f"{answer.url} did not accept the credentials (401)."
        hints = [
            f"sent {creds}: check the user name, the password or token, and that the file holds "
            "nothing but the secret"
            if creds
            else "no credentials were sent: pass --username with --password-file, or --bearer-token-file"
        ]
    else:
        summary = f"{answer.url} accepted the credentials but refused to let them write (403)."
        hints = ["check that the token or user may write (not just read) to this endpoint"]
    tenant = answer.used.tenant
    if tenant:
        hints.append(f"tenant {tenant!r} was sent as X-Scope-OrgID: check it is the right one")
    else:
        hints.append("multi-tenant receivers (Mimir, Cortex) want a tenant: pass --tenant")
    return failed(summary, *hints, answer.quoted)


def _by_status(answer: _Answer) -> Diagnosis | None:
    """Explain a redirect, 413, 429 and 5xx, whatever the message."""
    status, url = answer.status, answer.url
    if 300 <= status < 400:
        return failed(
            f"{url} redirects ({status}); remote write does not follow redirects.",
            "use the final URL (often https:// instead of http://, or a trailing slash)",
            answer.quoted,
        )
    if status == 413:
        return failed(
            f"{url} says the request is too large (413).", "lower max_samples_per_send", answer.quoted
        )
    if status == 429:
        return failed(
            f"{url} is rate-limiting this sender (429).",
            "the bridge retries 429 with backoff; raise the tenant's ingestion limits if it persists",
            answer.quoted,
        )
    if status >= 500:
        return failed(
            f"{url} failed internally ({status}).",
            "the bridge retries 5xx with backoff; check the receiver's logs",
            answer.quoted,
        )
    return None


def _invalid(answer: _Answer) -> Diagnosis | None:
    if answer.status != 400:
        return None
    hints = [answer.quoted]
    lowered = answer.lowered
    if "out of bounds" in lowered or "too old" in lowered or "too far" in lowered:
        hints.insert(
            0, "the receiver thinks the sample's timestamp is out of range: check this machine's clock"
        )
    elif "out of order" in lowered or "duplicate sample" in lowered:
        hints.insert(
            0, "another sender writes the same series: give each process its own job/instance labels"
        )
    return failed(f"{answer.url} rejected the probe as invalid (400).", *hints)


_ANSWER_RULES: tuple[Callable[[_Answer], Diagnosis | None], ...] = (
    _receiver_off,
    _wrong_path,
    _wrong_format,
    _not_snappy,
    _refused_credentials,
    _by_status,
    _invalid,
)
