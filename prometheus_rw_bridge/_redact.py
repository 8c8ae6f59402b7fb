"""Masking secrets: the one place that decides what may be shown in logs, reprs, errors and labels.

What counts as a secret:

* in a URL, the user info (dropped), and after ``?`` everything but the parameter names: every
  query value, every bare query item and the fragment are shown as ``***``.  Receivers take
  credentials under any name (``?api_key=``, ``?token=``, ``?code=``, ``?sig=``,
  ``?X-Amz-Signature=``, InfluxDB's ``?p=``), so no name is trusted to be harmless.  A secret
  in the URL's *path* cannot be told apart from the path, and is shown.
* a header's value when its name looks secret (:func:`is_secret_header`);
* every string the sending code knows it sends: passwords, tokens, ``Basic`` credentials, AWS
  secret keys and session tokens, proxy passwords, and the endpoint URL's query values of
  :data:`MIN_HUNTED_LENGTH` characters or more (:func:`url_secrets`).  :func:`scrub` replaces
  them, and their percent-encoded and escaped forms (:func:`secret_forms`), wherever they
  appear; :func:`scrub_exception_chain` does it to the errors chained under ours.

The libraries under the transport log what they see: httpx every request's URL at INFO,
httpcore connection details and response headers at DEBUG, botocore the canonical request
(session token included) and the signature at DEBUG.  While, and only while, the library
sends a request of its own, :func:`masking_logs` marks that span on the sending thread, and a
filter on those loggers (:data:`SCRUBBED_LOGGERS`) rewrites every record made inside it:
message, arguments, exception and stack text are scrubbed, and botocore's signing details, the
STS requests it sends and the bodies of their answers (a role's new credentials) dropped.
Records of the host application's own httpx or botocore clients are left alone.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping

from ._exceptions import causes

__all__ = [
    "MASK",
    "MIN_HUNTED_LENGTH",
    "SCRUBBED_LOGGERS",
    "basic_auth_secrets",
    "header_secrets",
    "is_secret_header",
    "mask_headers",
    "masking_logs",
    "safe_url",
    "scrub",
    "scrub_exception_chain",
    "secret_forms",
    "url_secrets",
    "userinfo_secrets",
]

MASK = "***"
"""What a secret is shown as."""

MIN_HUNTED_LENGTH = 4
"""Query values shorter than this are masked in URLs but not searched for in other text.

Replacing ``1`` or ``ms`` everywhere would garble every message, and no credential is that short.
"""

SCRUBBED_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "botocore.auth",
    "botocore.credentials",
    "botocore.endpoint",
    "botocore.parsers",
)
"""The third-party loggers whose records made while the library sends are scrubbed."""

_SECRET_HEADER_RE = re.compile(
    r"auth|token|secret|password|passwd|key|cookie|session|credential|signature", re.IGNORECASE
)

# A URL in free text: scheme, "://", then anything up to whitespace, a quote or an angle bracket.
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
# Punctuation that ends a sentence rather than the URL before it.
_TRAILING = ".,;:!?)"

# Records dropped whole, by logger and how their message starts.  botocore.auth's of the signing
# itself: the canonical request holds the session token and the query string, the signature lets
# anyone replay the request for minutes.  botocore.endpoint's of a request it sends (an STS
# AssumeRole): its signed headers.  botocore.parsers' of an answer's body: an AssumeRole answer
# holds the role's new secret key and session token, before anyone could know them as secrets.
_DROPPED = {
    "botocore.auth": ("CanonicalRequest", "StringToSign", "Signature"),
    "botocore.endpoint": ("Sending http request",),
    "botocore.parsers": ("Response body",),
}


def is_secret_header(name: str) -> bool:
    """Tell whether a header's value must be masked (``Authorization``, ``X-Api-Key``, ...)."""
    return _SECRET_HEADER_RE.search(name) is not None


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` with the value of every secret-looking header masked."""
    return {name: MASK if is_secret_header(name) else value for name, value in headers.items()}


def safe_url(url: str) -> str:
    """Return ``url`` without user info, with every query value and the fragment masked.

    Parameter names stay, as written: ``https://host/w?api_key=***&extra_label=***``.
    Safe for logs, reprs, exception messages and self-metric labels.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(_mask_query_item(item) for item in parts.query.split("&")) if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _mask_query_item(item: str) -> str:
    """Mask one ``name=value`` (the value) or bare item (all of it) of a query string."""
    name, equals, value = item.partition("=")
    if equals:
        return f"{name}={MASK}" if value else item
    return MASK if item else item


def url_secrets(url: str) -> tuple[str, ...]:
    """Return what ``url`` carries that must not be shown anywhere: its password, query values, fragment.

    Query values and the fragment count from :data:`MIN_HUNTED_LENGTH` characters; a
    password at any length.  Raw and decoded forms are both given.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ()
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    password = userinfo.partition(":")[2] if at else ""
    if password:
        found += [password, urllib.parse.unquote(password)]
    values = [item.partition("=")[2] if "=" in item else item for item in parts.query.split("&")]
    for value in [*values, parts.fragment]:
        if len(value) >= MIN_HUNTED_LENGTH:
            found += [value, urllib.parse.unquote_plus(value)]
    return tuple(dict.fromkeys(value for value in found if value))


def basic_auth_secrets(username: str, password: str) -> tuple[str, ...]:
    """Return the password and the ``Basic`` credential that encodes it."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return (password, encoded) if password else (encoded,)


def userinfo_secrets(url: str) -> tuple[str, ...]:
    """Return :func:`url_secrets` and, for a URL with ``user:password@``, the ``Basic`` credential it becomes.

    httpx sends a URL's user info as basic auth (a proxy URL's as ``Proxy-Authorization``).
    """
    found = url_secrets(url)
    try:
        userinfo, at, _ = urllib.parse.urlsplit(url).netloc.rpartition("@")
    except ValueError:
        return found
    if not at:
        return found
    user, _, password = userinfo.partition(":")
    decoded = basic_auth_secrets(urllib.parse.unquote(user), urllib.parse.unquote(password))
    return tuple(dict.fromkeys((*found, *decoded)))


# A word this long in a secret header's value is a secret on its own: the token of "Bearer <token>".
_MIN_SECRET_WORD = 8


def header_secrets(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Return the value of every secret-looking header, and each word of it that is a secret alone.

    ``Authorization: Bearer <token>`` gives the whole value and the token, so that a receiver
    quoting only the token is masked too.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: list[str] = []
    for name, value in items:
        if value and is_secret_header(name):
            found.append(value)
            found.extend(word for word in value.split() if len(word) >= _MIN_SECRET_WORD)
    return tuple(dict.fromkeys(found))


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Return each secret with the forms it may be shown in, longest first, so none is half-masked.

    Percent-encoded (in URLs) and escaped as in a ``repr`` of the text or of its UTF-8 bytes
    (in error messages: ``Illegal header value b'...'``).
    """
    found: set[str] = set()
    for secret in secrets:
        if secret:
            found.update(
                (
                    secret,
                    urllib.parse.quote(secret, safe=""),
                    urllib.parse.quote_plus(secret, safe=""),
                    repr(secret)[1:-1],
                    repr(secret.encode())[2:-1],
                )
            )
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every URL in it shown as :func:`safe_url` shows it and each secret masked.

    Args:
        text: any text: a message, a receiver's answer, a formatted traceback.
        secrets: strings to replace by ``***`` wherever they appear (pass them through
            :func:`secret_forms` to catch their encoded forms too).
    """
    text = _URL_RE.sub(_safe_url_in_text, text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrub_exception_chain(error: BaseException, secrets: Iterable[str]) -> None:
    """Scrub, in place, the messages of ``error`` and of every exception chained under it.

    A traceback prints the whole chain, and the errors of httpx, h11 or ``http.client`` under
    ours may quote what was sent (``Illegal header value b'...'``).  ``OSError`` messages are
    the operating system's or OpenSSL's words, never request data, and are left alone.
    """
    secrets = tuple(secrets)
    for current in causes(error):
        if not isinstance(current, OSError):
            args = tuple(scrub(arg, secrets) if isinstance(arg, str) else arg for arg in current.args)
            if args != current.args:
                current.args = args


def _safe_url_in_text(match: re.Match[str]) -> str:
    found = match.group()
    url = found.rstrip(_TRAILING)
    return safe_url(url) + found[len(url) :]


# -- third-party log records -------------------------------------------------------------------

_scope: contextvars.ContextVar[Callable[[], Iterable[str]] | None] = contextvars.ContextVar(
    "prometheus_rw_bridge_log_secrets", default=None
)


@contextlib.contextmanager
def masking_logs(secrets: Callable[[], Iterable[str]]) -> Iterator[None]:
    """Scrub the records :data:`SCRUBBED_LOGGERS` make inside this block, on this thread.

    Args:
        secrets: returns the secrets to mask; called for each record, so a token read from a
            file during the request is known by the time httpx logs it.  Nested blocks mask
            the secrets of every enclosing block too.
    """
    _install_filter()
    outer = _scope.get()
    combined = secrets if outer is None else (lambda: (*outer(), *secrets()))
    token = _scope.set(combined)
    try:
        yield
    finally:
        _scope.reset(token)


class _ScrubInScope(logging.Filter):
    """Rewrite a record made while the library sends, so that it shows none of its secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets_of = _scope.get()
        if secrets_of is None:
            return True  # not our request: the host's own clients log as they always did
        dropped = _DROPPED.get(record.name)
        if dropped is not None and str(record.msg).startswith(dropped):
            return False
        try:
            _scrub_record(record, secret_forms(secrets_of()))
        except Exception:  # a filter must never break the request that logs; drop rather than leak
            return False
        return True


_FILTER = _ScrubInScope()
_LOGGERS = tuple(logging.getLogger(name) for name in SCRUBBED_LOGGERS)  # never replaced by logging


def _install_filter() -> None:
    """Put the scrubbing filter on every logger in :data:`SCRUBBED_LOGGERS` that lacks it.

    Checked at every send, so a host that resets a logger's filters gets it back at once.
    """
    for logger in _LOGGERS:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _scrub_record(record: logging.LogRecord, secrets: tuple[str, ...]) -> None:
    """Replace the record's message, arguments, exception and stack text by scrubbed text."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed format: show the template and arguments, scrubbed
        message = f"{record.msg} {record.args!r}"
    record.msg = scrub(message, secrets)
    record.args = ()
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # formatters print exc_text instead; the exception object may hold secrets
    if record.exc_text:
        record.exc_text = scrub(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info, secrets)
