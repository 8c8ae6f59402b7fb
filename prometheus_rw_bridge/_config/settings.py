"""Settings: one frozen object per bridge and one per endpoint, resolved in one place.

Every option comes from, in order of precedence: an explicit argument (anything but ``None``),
then the environment variable named by the constant below, then the default.  A malformed value
raises :class:`~prometheus_rw_bridge.ConfigurationError` naming the variable or argument, the
value (masked when secret) and what is allowed.

Formats used by the environment variables:

* *duration*: seconds as a number (``15``, ``0.5``) or Prometheus style (``15s``, ``500ms``,
  ``1m30s``, ``1h``); must be greater than zero.
* *boolean*: ``true``/``false``, ``1``/``0``, ``yes``/``no`` (any case).
* *pairs*: ``name=value,name=value``.  Whitespace around names and values is ignored; a value
  may contain ``=``.  A backslash makes the next character literal, so a comma inside a value
  is written ``\\,`` and a backslash ``\\\\``.
* *size*: bytes as an integer, or with a unit ``KB``/``MB``/``GB`` (powers of 1000) or
  ``KiB``/``MiB``/``GiB`` (powers of 1024).
* *regex*: a Python regular expression matched against the *whole* series name (like a
  Prometheus relabel regex); use ``|`` for alternatives.

Several endpoints (each gets its own queue, retries and self-metrics in the bridge):

* ``PROMETHEUS_REMOTE_WRITE_URL`` may hold several URLs separated by commas or whitespace;
  they share every endpoint option (``_HEADERS``, ``_TENANT``, ``_CA_FILE``, ...).
* For endpoints that differ, name them in ``PROMETHEUS_REMOTE_WRITE_ENDPOINTS=primary,backup``
  and give each its options with the upper-cased name after the prefix:
  ``PROMETHEUS_REMOTE_WRITE_PRIMARY_URL``, ``PROMETHEUS_REMOTE_WRITE_BACKUP_TENANT``, ...
  An option an endpoint does not set falls back to the shared variable, except that the
  credentials (``_USERNAME``, ``_PASSWORD[_FILE]``, ``_BEARER_TOKEN[_FILE]``, ``_SIGV4*``)
  are taken as a group: an endpoint that sets any of them inherits none of the shared ones.
  The name becomes the endpoint's ``remote_name`` (lower-cased).
* In code, ``url=[...]`` or ``endpoints=[EndpointSettings(...) or a dict, ...]``; the shared
  keyword arguments fill in what each endpoint leaves unset.

An explicit ``url`` or ``endpoints`` replaces every URL from the environment.

A ``PROMETHEUS_REMOTE_WRITE_*`` variable that is no option (``..._TIMOUT``, or an endpoint's
variable whose name ``_ENDPOINTS`` does not list) is ignored with a warning naming the closest
option, once per process and variable.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .._exceptions import ConfigurationError
from .._redact import MASK, mask_headers, safe_url
from .parse import (
    RESERVED_HEADERS,
    fail,
    parse_bool,
    parse_duration,
    parse_file,
    parse_headers,
    parse_labels,
    parse_names,
    parse_nonempty,
    parse_positive_int,
    parse_protocol,
    parse_proxy,
    parse_regex,
    parse_secret,
    parse_size,
    parse_text,
    parse_url,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_SAMPLES_PER_SEND",
    "DEFAULT_QUEUE_CAPACITY",
    "DEFAULT_QUEUE_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "ENV_BEARER_TOKEN",
    "ENV_BEARER_TOKEN_FILE",
    "ENV_CA_FILE",
    "ENV_CERT_FILE",
    "ENV_DEBUG",
    "ENV_ENABLED",
    "ENV_ENDPOINTS",
    "ENV_EXTERNAL_LABELS",
    "ENV_HEADERS",
    "ENV_INSECURE_SKIP_VERIFY",
    "ENV_INSTANCE",
    "ENV_INTERVAL",
    "ENV_JOB",
    "ENV_KEY_FILE",
    "ENV_MAX_SAMPLES_PER_SEND",
    "ENV_METRIC_DROP",
    "ENV_METRIC_KEEP",
    "ENV_PASSWORD",
    "ENV_PASSWORD_FILE",
    "ENV_PREFIX",
    "ENV_PROTOCOL",
    "ENV_PROXY",
    "ENV_QUEUE_CAPACITY",
    "ENV_QUEUE_MAX_BYTES",
    "ENV_SELF_METRICS",
    "ENV_SIGV4",
    "ENV_SIGV4_REGION",
    "ENV_STALE_ON_CLOSE",
    "ENV_TENANT",
    "ENV_TIMEOUT",
    "ENV_URL",
    "ENV_USERNAME",
    "RESERVED_HEADERS",
    "EndpointSettings",
    "MetricFilter",
    "Settings",
    "resolve_settings",
]

# --------------------------------------------------------------------------- defaults

DEFAULT_INTERVAL = 15.0
"""Seconds between two collections."""

DEFAULT_TIMEOUT = 30.0
"""Seconds one HTTP request may take (connect, write, read), as Prometheus's ``remote_timeout``."""

DEFAULT_MAX_SAMPLES_PER_SEND = 2000
"""Samples per request; a larger snapshot is split (Prometheus's own default)."""

DEFAULT_QUEUE_CAPACITY = 80
"""Snapshots queued per endpoint while it is unreachable: 20 minutes at the default interval."""

DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 * 1024
"""Bytes (compressed bodies) queued per endpoint before the oldest snapshots are dropped."""

# --------------------------------------------------------------------------- environment names

ENV_PREFIX = "PROMETHEUS_REMOTE_WRITE_"
"""Prefix of every environment variable read by this package."""

ENV_URL = "PROMETHEUS_REMOTE_WRITE_URL"
"""Remote-write endpoint URL(s), ``http://`` or ``https://``; several separated by commas or
whitespace.  Credentials in the URL (``https://user:pass@host/...``) are used as basic auth.
Default: none; with no URL anywhere the bridge logs that once and does nothing."""

ENV_ENDPOINTS = "PROMETHEUS_REMOTE_WRITE_ENDPOINTS"
"""Names of endpoints configured one by one (comma or whitespace separated, ``[A-Za-z][A-Za-z0-9_]*``);
endpoint ``primary`` reads ``PROMETHEUS_REMOTE_WRITE_PRIMARY_URL`` and so on (see the module
documentation).  Default: none."""

ENV_ENABLED = "PROMETHEUS_REMOTE_WRITE_ENABLED"
"""Boolean; ``false`` turns the bridge into a no-op without touching the code.  Default: true."""

ENV_INTERVAL = "PROMETHEUS_REMOTE_WRITE_INTERVAL"
"""Duration between two collections and pushes.  Default: ``15s``."""

ENV_JOB = "PROMETHEUS_REMOTE_WRITE_JOB"
"""Value of the ``job`` label added to series without one; empty for none.
Default: the program's name."""

ENV_INSTANCE = "PROMETHEUS_REMOTE_WRITE_INSTANCE"
"""Value of the ``instance`` label added to series without one; empty for none.
Default: the host name."""

ENV_EXTERNAL_LABELS = "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS"
"""Pairs ``name=value,...`` of further labels added to every series that lacks them.  Names follow
``[a-zA-Z_][a-zA-Z0-9_]*``, may not start with ``__`` and may not be ``job`` or ``instance``
(use ``_JOB`` / ``_INSTANCE``).  Default: none."""

ENV_HEADERS = "PROMETHEUS_REMOTE_WRITE_HEADERS"
"""Pairs ``Name=value,...`` of extra HTTP headers sent with every request (backslash escapes a
comma).  The protocol's own headers (:data:`RESERVED_HEADERS`) are refused.  Values of headers
that look secret are masked everywhere.  Default: none."""

ENV_USERNAME = "PROMETHEUS_REMOTE_WRITE_USERNAME"
"""Basic-auth user name.  Default: none."""

ENV_PASSWORD = "PROMETHEUS_REMOTE_WRITE_PASSWORD"
"""Basic-auth password (secret; needs ``_USERNAME``).  Default: none."""

ENV_PASSWORD_FILE = "PROMETHEUS_REMOTE_WRITE_PASSWORD_FILE"
"""Path of a file holding the basic-auth password; re-read when it changes.  Default: none."""

ENV_BEARER_TOKEN = "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN"
"""Bearer token sent as ``Authorization: Bearer ...`` (secret).  Default: none."""

ENV_BEARER_TOKEN_FILE = "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN_FILE"
"""Path of a file holding the bearer token; re-read when it changes, so rotated tokens work
without a restart.  Default: none."""

ENV_TENANT = "PROMETHEUS_REMOTE_WRITE_TENANT"
"""Tenant sent as the ``X-Scope-OrgID`` header (Mimir, Cortex, Loki-style multi-tenancy).
Default: none."""

ENV_CA_FILE = "PROMETHEUS_REMOTE_WRITE_CA_FILE"
"""Path of a PEM file of CA certificates that replace the default trust store for ``https``.
Default: the trust store httpx uses (certifi)."""

ENV_CERT_FILE = "PROMETHEUS_REMOTE_WRITE_CERT_FILE"
"""Path of a PEM client certificate for mutual TLS (may also hold the key).  Default: none."""

ENV_KEY_FILE = "PROMETHEUS_REMOTE_WRITE_KEY_FILE"
"""Path of the PEM private key of ``_CERT_FILE`` when it is a separate file.  Default: none."""

ENV_INSECURE_SKIP_VERIFY = "PROMETHEUS_REMOTE_WRITE_INSECURE_SKIP_VERIFY"
"""Boolean; ``true`` skips verifying the server's certificate and host name (insecure: for
testing only).  Default: false."""

ENV_PROXY = "PROMETHEUS_REMOTE_WRITE_PROXY"
"""Proxy URL (``http://``, ``https://``, ``socks5://``) for every request.  Default: none, but
the standard ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables are honoured."""

ENV_TIMEOUT = "PROMETHEUS_REMOTE_WRITE_TIMEOUT"
"""Duration one HTTP request may take.  Default: ``30s``."""

ENV_DEBUG = "PROMETHEUS_REMOTE_WRITE_DEBUG"
"""Boolean; ``true`` also logs every push as ``/metrics``-style text with its sequence number
(secrets are never logged).  Default: false."""

ENV_PROTOCOL = "PROMETHEUS_REMOTE_WRITE_PROTOCOL"
"""Remote-write protocol: ``1.0``, ``2.0``, or ``auto`` (2.0, falling back to 1.0 when the
receiver answers 415).  Default: ``1.0``."""

ENV_MAX_SAMPLES_PER_SEND = "PROMETHEUS_REMOTE_WRITE_MAX_SAMPLES_PER_SEND"
"""Positive integer: the most samples in one request; larger snapshots are split.
Default: 2000."""

ENV_QUEUE_CAPACITY = "PROMETHEUS_REMOTE_WRITE_QUEUE_CAPACITY"
"""Positive integer: snapshots queued per endpoint while it is unreachable; beyond it the oldest
are dropped and counted.  Default: 80 (20 minutes at the default interval)."""

ENV_QUEUE_MAX_BYTES = "PROMETHEUS_REMOTE_WRITE_QUEUE_MAX_BYTES"
"""Size: memory bound of each endpoint's queue; beyond it the oldest snapshots are dropped.
Default: ``64MiB``."""

ENV_STALE_ON_CLOSE = "PROMETHEUS_REMOTE_WRITE_STALE_ON_CLOSE"
"""Boolean; on close, end every series sent with a stale marker.  Default: true."""

ENV_SELF_METRICS = "PROMETHEUS_REMOTE_WRITE_SELF_METRICS"
"""Boolean; register the ``prometheus_remote_storage_*`` self-metrics.  Default: true."""

ENV_METRIC_KEEP = "PROMETHEUS_REMOTE_WRITE_METRIC_KEEP"
"""Regex: send only series whose name matches it entirely.  Default: every series."""

ENV_METRIC_DROP = "PROMETHEUS_REMOTE_WRITE_METRIC_DROP"
"""Regex: never send series whose name matches it entirely (applied after ``_METRIC_KEEP``),
for example ``python_gc_.*``.  Default: none."""

ENV_SIGV4 = "PROMETHEUS_REMOTE_WRITE_SIGV4"
"""Boolean; sign requests with AWS SigV4 (Amazon Managed Service for Prometheus) using
botocore's credential chain.  Needs the ``aws`` extra.  Default: false."""

ENV_SIGV4_REGION = "PROMETHEUS_REMOTE_WRITE_SIGV4_REGION"
"""AWS region for SigV4.  Default: taken from an ``aps-workspaces.<region>.amazonaws.com`` URL,
else botocore's configured region (``AWS_REGION``, profile)."""

# --------------------------------------------------------------------------- value objects


@dataclasses.dataclass(frozen=True)
class MetricFilter:
    """Keep or drop series by name; regular expressions must match the whole name.

    Attributes:
        keep: if set, only names it matches are sent.
        drop: names it matches are never sent.
    """

    keep: re.Pattern[str] | None = None
    drop: re.Pattern[str] | None = None

    def __call__(self, name: str) -> bool:
        """Tell whether the series called ``name`` is sent."""
        if self.keep is not None and self.keep.fullmatch(name) is None:
            return False
        return self.drop is None or self.drop.fullmatch(name) is None


def _repr(obj: Any, secrets: frozenset[str]) -> str:
    """Build a dataclass repr with secrets, URL credentials and secret headers masked."""
    shown = []
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name in secrets:
            text = repr(MASK) if value is not None else "None"
        elif field.name in ("url", "proxy") and isinstance(value, str):
            text = repr(safe_url(value))
        elif field.name == "headers":
            text = repr(mask_headers(value))
        elif isinstance(value, MappingProxyType):
            text = repr(dict(value))
        elif isinstance(value, re.Pattern):
            text = repr(value.pattern)
        else:
            text = repr(value)
        shown.append(f"{field.name}={text}")
    return f"{type(obj).__name__}({', '.join(shown)})"


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class EndpointSettings:
    """Where and how to send: one remote-write endpoint.

    Build one directly (``EndpointSettings(url=..., tenant=...)``) to pass in ``endpoints=``;
    :func:`resolve_settings` validates it.  ``repr()`` masks every secret.

    Attributes:
        url: the endpoint, ``http://`` or ``https://``, without credentials.
        name: the ``remote_name`` label of this endpoint's self-metrics and log lines.
        headers: extra HTTP headers (never a :data:`RESERVED_HEADERS` one).
        username: basic-auth user name.
        password: basic-auth password.
        password_file: file holding the basic-auth password, re-read when it changes.
        bearer_token: bearer token.
        bearer_token_file: file holding the bearer token, re-read when it changes.
        tenant: sent as ``X-Scope-OrgID``.
        ca_file: PEM CA certificates replacing the default trust store.
        cert_file: PEM client certificate for mutual TLS.
        key_file: PEM key of ``cert_file`` if separate.
        insecure_skip_verify: do not verify the server's certificate (testing only).
        proxy: proxy URL.
        timeout: seconds one request may take.
        sigv4: sign requests with AWS SigV4.
        sigv4_region: the AWS region for SigV4.
    """

    url: str
    name: str = ""
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    tenant: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    proxy: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    sigv4: bool = False
    sigv4_region: str | None = None

    def __repr__(self) -> str:
        return _repr(self, frozenset({"password", "bearer_token"}))

    @property
    def request_headers(self) -> dict[str, str]:
        """The headers this endpoint adds to every request: ``headers`` plus ``X-Scope-OrgID``."""
        result = dict(self.headers)
        if self.tenant:
            result["X-Scope-OrgID"] = self.tenant
        return result


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Settings:
    """Everything a bridge needs, resolved and validated.

    Attributes:
        endpoints: where to send; empty when no URL is configured anywhere.
        enabled: false turns the bridge into a no-op.
        interval: seconds between two collections.
        job: the ``job`` label (``None``: the program's name; ``""``: none).
        instance: the ``instance`` label (``None``: the host name; ``""``: none).
        external_labels: further labels added to every series lacking them.
        debug: log every push as text.
        protocol: ``"1.0"``, ``"2.0"`` or ``"auto"``.
        max_samples_per_send: the most samples in one request.
        queue_capacity: snapshots queued per endpoint.
        queue_max_bytes: memory bound of each endpoint's queue.
        stale_on_close: end every series with a stale marker on close.
        self_metrics: register the ``prometheus_remote_storage_*`` metrics.
        metric_filter: which series to send, or ``None`` for all.
    """

    endpoints: tuple[EndpointSettings, ...] = ()
    enabled: bool = True
    interval: float = DEFAULT_INTERVAL
    job: str | None = None
    instance: str | None = None
    external_labels: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    debug: bool = False
    protocol: str = "1.0"
    max_samples_per_send: int = DEFAULT_MAX_SAMPLES_PER_SEND
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY
    queue_max_bytes: int = DEFAULT_QUEUE_MAX_BYTES
    stale_on_close: bool = True
    self_metrics: bool = True
    metric_filter: MetricFilter | None = None

    def __repr__(self) -> str:
        return _repr(self, frozenset())

    @property
    def urls(self) -> tuple[str, ...]:
        """The endpoints' URLs (without credentials)."""
        return tuple(endpoint.url for endpoint in self.endpoints)

    @property
    def active(self) -> bool:
        """Whether there is anything to do: enabled, with at least one endpoint."""
        return self.enabled and bool(self.endpoints)


# --------------------------------------------------------------------------- option tables

_Parser = Callable[[object, str], Any]

_BRIDGE_OPTIONS: dict[str, tuple[str, _Parser]] = {
    "enabled": (ENV_ENABLED, parse_bool),
    "interval": (ENV_INTERVAL, parse_duration),
    "job": (ENV_JOB, parse_text),
    "instance": (ENV_INSTANCE, parse_text),
    "external_labels": (ENV_EXTERNAL_LABELS, parse_labels),
    "debug": (ENV_DEBUG, parse_bool),
    "protocol": (ENV_PROTOCOL, parse_protocol),
    "max_samples_per_send": (ENV_MAX_SAMPLES_PER_SEND, parse_positive_int),
    "queue_capacity": (ENV_QUEUE_CAPACITY, parse_positive_int),
    "queue_max_bytes": (ENV_QUEUE_MAX_BYTES, parse_size),
    "stale_on_close": (ENV_STALE_ON_CLOSE, parse_bool),
    "self_metrics": (ENV_SELF_METRICS, parse_bool),
    "metric_keep": (ENV_METRIC_KEEP, parse_regex),
    "metric_drop": (ENV_METRIC_DROP, parse_regex),
}

_ENDPOINT_OPTIONS: dict[str, tuple[str, _Parser]] = {
    "headers": (ENV_HEADERS, parse_headers),
    "username": (ENV_USERNAME, parse_nonempty),
    "password": (ENV_PASSWORD, parse_secret),
    "password_file": (ENV_PASSWORD_FILE, parse_file),
    "bearer_token": (ENV_BEARER_TOKEN, parse_secret),
    "bearer_token_file": (ENV_BEARER_TOKEN_FILE, parse_file),
    "tenant": (ENV_TENANT, parse_nonempty),
    "ca_file": (ENV_CA_FILE, parse_file),
    "cert_file": (ENV_CERT_FILE, parse_file),
    "key_file": (ENV_KEY_FILE, parse_file),
    "insecure_skip_verify": (ENV_INSECURE_SKIP_VERIFY, parse_bool),
    "proxy": (ENV_PROXY, parse_proxy),
    "timeout": (ENV_TIMEOUT, parse_duration),
    "sigv4": (ENV_SIGV4, parse_bool),
    "sigv4_region": (ENV_SIGV4_REGION, parse_nonempty),
}

_AUTH_OPTIONS = (
    "username",
    "password",
    "password_file",
    "bearer_token",
    "bearer_token_file",
    "sigv4",
    "sigv4_region",
)

# A layer maps option names to (raw value, where); ``where`` names the source in messages.
_Layer = dict[str, tuple[object, str]]


def _env_where(variable: str, option: str) -> str:
    return f"{variable} ({option})"


def _is_set(raw: object) -> bool:
    """Tell whether an environment value counts: ``None`` and blank strings do not."""
    return raw is not None and not (isinstance(raw, str) and not raw.strip())


def _words(raw: object) -> list[object]:
    """Split a comma/whitespace separated list; a list given as such (``app.config``) stays one."""
    if isinstance(raw, str):
        return list(raw.replace(",", " ").split())
    if isinstance(raw, (list, tuple)):
        return list(raw)
    return [] if raw is None else [raw]


def _env_layer(
    environ: Mapping[str, object], table: Mapping[str, tuple[str, _Parser]], infix: str = ""
) -> _Layer:
    layer: _Layer = {}
    for option, (variable, _parser) in table.items():
        if infix:
            variable = f"{ENV_PREFIX}{infix}_{variable[len(ENV_PREFIX) :]}"
        raw = environ.get(variable)
        # An empty variable counts as unset, except where empty has a meaning of its own.
        if _is_set(raw) or (raw == "" and option in ("job", "instance")):
            layer[option] = (raw, _env_where(variable, option))
    return layer


def _arg_layer(arguments: Mapping[str, object], table: Mapping[str, object]) -> _Layer:
    return {name: (value, name) for name, value in arguments.items() if name in table and value is not None}


def _sets_credentials(layer: _Layer) -> bool:
    """Tell whether a layer sets any credential (``sigv4`` turned off does not count)."""
    for name in _AUTH_OPTIONS:
        if name in layer:
            raw = layer[name][0]
            off = raw is False or (isinstance(raw, str) and raw.strip().lower() in ("false", "0", "no"))
            if not (name == "sigv4" and off):
                return True
    return False


def _resolve(layers: Sequence[_Layer], table: Mapping[str, tuple[str, _Parser]]) -> dict[str, Any]:
    """Parse each option from the first layer that has it; credentials come as a group."""
    auth_layer = next((layer for layer in layers if _sets_credentials(layer)), None)
    values: dict[str, Any] = {}
    for option, (_variable, parser) in table.items():
        candidates = [auth_layer] if option in _AUTH_OPTIONS and auth_layer is not None else layers
        for layer in candidates:
            if option in layer:
                raw, where = layer[option]
                values[option] = parser(raw, where)
                break
    return values


# --------------------------------------------------------------------------- unknown variables

_SHARED_SUFFIXES = frozenset(
    variable[len(ENV_PREFIX) :]
    for variable in (
        ENV_URL,
        ENV_ENDPOINTS,
        *(v for v, _ in (*_BRIDGE_OPTIONS.values(), *_ENDPOINT_OPTIONS.values())),
    )
)
# What may follow an endpoint's name: PROMETHEUS_REMOTE_WRITE_<NAME>_<suffix>.
_ENDPOINT_SUFFIXES = frozenset({"URL", *(v[len(ENV_PREFIX) :] for v, _ in _ENDPOINT_OPTIONS.values())})

_said_unknown: set[str] = set()
_said_unknown_lock = threading.Lock()


def _warn_unknown_variables(environ: Mapping[str, object]) -> None:
    """Warn once per process about each ``PROMETHEUS_REMOTE_WRITE_*`` key that is no option."""
    names = [
        str(n).upper() for n in _words(environ.get(ENV_ENDPOINTS)) if re.fullmatch(r"[A-Za-z]\w*", str(n))
    ]
    known = set(_SHARED_SUFFIXES)
    known.update(f"{name}_{suffix}" for name in names for suffix in _ENDPOINT_SUFFIXES)
    unknown = sorted(
        key
        for key in environ
        if isinstance(key, str) and key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :] not in known
    )
    for variable in unknown:
        with _said_unknown_lock:
            if variable in _said_unknown:
                continue
            _said_unknown.add(variable)
        logger.warning(
            "prometheus-rw-bridge: %s is not an option and is ignored; %s",
            variable,
            _closest(variable, known, names),
        )


def _closest(variable: str, known: set[str], endpoint_names: list[str]) -> str:
    """Say which option ``variable`` probably means."""
    suffix = variable[len(ENV_PREFIX) :]
    hints = []
    # Suffixes only: the long shared prefix would make every name look alike.
    match = difflib.get_close_matches(suffix, sorted(known), n=1, cutoff=0.6)
    if match:
        hints.append(f"did you mean {ENV_PREFIX}{match[0]}?")
    head, _, tail = suffix.partition("_")
    if tail in _ENDPOINT_SUFFIXES and head not in endpoint_names:
        listed = ", ".join(name.lower() for name in endpoint_names) or "none"
        hints.append(
            f"{'or, ' if match else ''}if {head.lower()!r} is an endpoint, list it in {ENV_ENDPOINTS} "
            f"(it lists {listed})"
        )
    return " ".join(hints) or "see the configuration reference for the options"


# --------------------------------------------------------------------------- resolution

_AMP_HOST_RE = re.compile(r"aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def _endpoint(
    url_raw: object, url_where: str, name: str, values: dict[str, Any], wheres: _Wheres
) -> EndpointSettings:
    url = parse_url(url_raw, url_where)
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if any(values.get(option) is not None for option in _AUTH_OPTIONS):
            raise ConfigurationError(
                f"{url_where}={safe_url(url)!r} is not valid: credentials in the URL and in other options "
                "(username, password, bearer token, sigv4) cannot be combined"
            )
        from_url = f"credentials in {url_where}"
        wheres.overrides.update(username=from_url, password=from_url)
        values["username"] = urllib.parse.unquote(user)
        if has_password:
            values["password"] = urllib.parse.unquote(password)
        url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    _check_endpoint(values, wheres)
    if values.get("sigv4") and not values.get("sigv4_region"):
        match = _AMP_HOST_RE.search(parts.hostname or "")
        if match:
            values["sigv4_region"] = match.group(1)
    return EndpointSettings(url=url, name=name, **values)


class _Wheres:
    """Name each option of one endpoint as its winning source does, for cross-field messages."""

    def __init__(self, layers: Sequence[_Layer]) -> None:
        self._layers = layers
        self.overrides: dict[str, str] = {}

    def __call__(self, option: str) -> str:
        if option in self.overrides:
            return self.overrides[option]
        for layer in self._layers:
            if option in layer:
                return layer[option][1]
        return option


def _check_endpoint(values: Mapping[str, Any], where: _Wheres) -> None:
    def conflict(first: str, second: str, why: str) -> ConfigurationError:
        return ConfigurationError(f"{where(first)} and {where(second)} cannot both be set: {why}")

    def given(option: str) -> bool:
        return values.get(option) not in (None, False)

    pairs = [
        ("password", "password_file", "give the password once"),
        ("bearer_token", "bearer_token_file", "give the token once"),
    ]
    for first, second, why in pairs:
        if given(first) and given(second):
            raise conflict(first, second, why)
    basic = next((o for o in ("password", "password_file", "username") if given(o)), None)
    bearer = next((o for o in ("bearer_token", "bearer_token_file") if given(o)), None)
    if basic and bearer:
        raise conflict(basic, bearer, "choose basic auth or a bearer token")
    if given("sigv4") and (basic or bearer):
        raise conflict("sigv4", basic or bearer or "", "SigV4 signs the request itself")
    if (given("password") or given("password_file")) and not given("username"):
        raise ConfigurationError(
            f"{where('password' if given('password') else 'password_file')} needs a username"
        )
    if given("sigv4_region") and not given("sigv4"):
        raise ConfigurationError(
            f"{where('sigv4_region')} needs sigv4 turned on (sigv4=True or {ENV_SIGV4}=true)"
        )
    if given("key_file") and not given("cert_file"):
        raise ConfigurationError(f"{where('key_file')} needs a cert_file (the client certificate)")
    headers = {name.lower() for name in values.get("headers", {})}
    if "authorization" in headers and (basic or bearer or given("sigv4")):
        raise conflict("headers", basic or bearer or "sigv4", "an Authorization header and an auth option")
    if "x-scope-orgid" in headers and given("tenant"):
        raise conflict("headers", "tenant", "tenant is sent as X-Scope-OrgID")


def _endpoint_layer(item: object, where: str) -> _Layer:
    """Turn one item of ``endpoints=`` (EndpointSettings, mapping, or URL) into a layer."""
    if isinstance(item, str):
        return {"url": (item, where)}
    if isinstance(item, EndpointSettings):
        defaults = EndpointSettings(url="")
        fields = {
            f.name: getattr(item, f.name)
            for f in dataclasses.fields(item)
            if f.name == "url" or getattr(item, f.name) != getattr(defaults, f.name)
        }
    elif isinstance(item, Mapping):
        fields = dict(item)
    else:
        raise fail(where, item, "expected a URL, an EndpointSettings or a mapping of its fields")
    unknown = set(fields) - set(_ENDPOINT_OPTIONS) - {"url", "name"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown endpoint option(s) {', '.join(sorted(unknown))}")
    if "url" not in fields:
        raise ConfigurationError(f"{where}: an endpoint needs a url")
    return {name: (value, f"{where}.{name}") for name, value in fields.items() if value is not None}


def _unique_names(endpoints: list[EndpointSettings]) -> tuple[EndpointSettings, ...]:
    """Give every endpoint a distinct name: its own, or host[:port] of its URL."""
    seen: set[str] = set()
    result = []
    for endpoint in endpoints:
        base = endpoint.name or urllib.parse.urlsplit(endpoint.url).netloc
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name)
        result.append(dataclasses.replace(endpoint, name=name))
    return tuple(result)


def resolve_settings(
    *,
    url: str | Sequence[str] | None = None,
    endpoints: Sequence[EndpointSettings | Mapping[str, Any] | str] | None = None,
    enabled: bool | str | None = None,
    interval: float | str | None = None,
    job: str | None = None,
    instance: str | None = None,
    external_labels: Mapping[str, str] | str | None = None,
    debug: bool | str | None = None,
    protocol: str | None = None,
    max_samples_per_send: int | str | None = None,
    queue_capacity: int | str | None = None,
    queue_max_bytes: int | str | None = None,
    stale_on_close: bool | str | None = None,
    self_metrics: bool | str | None = None,
    metric_keep: str | Sequence[str] | re.Pattern[str] | None = None,
    metric_drop: str | Sequence[str] | re.Pattern[str] | None = None,
    headers: Mapping[str, str] | str | None = None,
    username: str | None = None,
    password: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
    bearer_token: str | None = None,
    bearer_token_file: str | os.PathLike[str] | None = None,
    tenant: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    insecure_skip_verify: bool | str | None = None,
    proxy: str | None = None,
    timeout: float | str | None = None,
    sigv4: bool | str | None = None,
    sigv4_region: str | None = None,
    environ: Mapping[str, object] | None = None,
) -> Settings:
    """Resolve settings from explicit arguments, then the environment, then defaults.

    Every argument left ``None`` is taken from its ``PROMETHEUS_REMOTE_WRITE_*`` variable (see the
    constants of this module), else from its default.  The endpoint options (``headers`` to
    ``sigv4_region``) apply to every endpoint that does not set its own.

    Args:
        url: one endpoint URL or several.
        endpoints: endpoints given one by one: URLs, :class:`EndpointSettings`, or mappings of
            their fields.  Together with ``url`` they replace every URL from the environment.
        enabled: false makes the bridge a no-op.
        interval: seconds between collections (or a duration string such as ``"15s"``).
        job: the ``job`` label; ``""`` for none.
        instance: the ``instance`` label; ``""`` for none.
        external_labels: labels added to every series lacking them.
        debug: log every push as text.
        protocol: ``"1.0"``, ``"2.0"`` or ``"auto"``.
        max_samples_per_send: the most samples in one request.
        queue_capacity: snapshots queued per endpoint while it is down.
        queue_max_bytes: memory bound of each endpoint's queue.
        stale_on_close: end every series with a stale marker on close.
        self_metrics: register the self-metrics.
        metric_keep: send only series whose whole name matches (a regex, or a list of them).
        metric_drop: never send series whose whole name matches.
        headers: extra HTTP headers.
        username: basic-auth user.
        password: basic-auth password.
        password_file: file holding the password.
        bearer_token: bearer token.
        bearer_token_file: file holding the bearer token.
        tenant: sent as ``X-Scope-OrgID``.
        ca_file: CA certificates replacing the default trust store.
        cert_file: client certificate (mutual TLS).
        key_file: key of the client certificate.
        insecure_skip_verify: skip verifying the server certificate.
        proxy: proxy URL.
        timeout: seconds one request may take.
        sigv4: sign with AWS SigV4.
        sigv4_region: AWS region for SigV4.
        environ: the environment to read; ``os.environ`` by default.  Values other than
            strings are taken as they are (``app.config`` may hold ``5`` or a list of URLs).

    Returns:
        The validated, frozen :class:`Settings`; with no URL anywhere, its ``endpoints`` is empty.

    Raises:
        ConfigurationError: a value is malformed or options contradict each other.
    """
    arguments = dict(locals())
    env: Mapping[str, object] = os.environ if environ is None else environ
    _warn_unknown_variables(env)
    bridge = _resolve(
        [_arg_layer(arguments, _BRIDGE_OPTIONS), _env_layer(env, _BRIDGE_OPTIONS)],
        _BRIDGE_OPTIONS,
    )
    keep, drop = bridge.pop("metric_keep", None), bridge.pop("metric_drop", None)
    if keep is not None or drop is not None:
        bridge["metric_filter"] = MetricFilter(keep=keep, drop=drop)

    shared_args = _arg_layer(arguments, _ENDPOINT_OPTIONS)
    shared_env = _env_layer(env, _ENDPOINT_OPTIONS)
    # Malformed shared values are errors even when no endpoint ends up using them.
    _resolve([shared_args], _ENDPOINT_OPTIONS)
    _resolve([shared_env], _ENDPOINT_OPTIONS)
    # (url raw value, url where, name, layers most specific first)
    planned: list[tuple[object, str, str, list[_Layer]]] = []
    if url is not None or endpoints is not None:
        urls = [url] if isinstance(url, str) else list(url or ())
        for index, one_url in enumerate(urls):
            where = "url" if isinstance(url, str) else f"url[{index}]"
            planned.append((one_url, where, "", [shared_args, shared_env]))
        for index, endpoint in enumerate(endpoints or ()):
            layer = _endpoint_layer(endpoint, f"endpoints[{index}]")
            url_raw, url_where = layer.pop("url")
            name_raw, name_where = layer.pop("name", ("", "name"))
            planned.append(
                (url_raw, url_where, parse_text(name_raw, name_where), [layer, shared_args, shared_env])
            )
    else:
        for raw in _words(env.get(ENV_URL)):
            planned.append((raw, _env_where(ENV_URL, "url"), "", [shared_args, shared_env]))
        names = _words(env.get(ENV_ENDPOINTS))
        if names:
            for name in parse_names(" ".join(map(str, names)), _env_where(ENV_ENDPOINTS, "endpoints")):
                variable = f"{ENV_PREFIX}{name.upper()}_URL"
                if not _is_set(env.get(variable)):
                    raise ConfigurationError(
                        f"{variable} is not set: endpoint {name!r} of {ENV_ENDPOINTS} needs a URL"
                    )
                layer = _env_layer(env, _ENDPOINT_OPTIONS, name.upper())
                planned.append(
                    (
                        env[variable],
                        _env_where(variable, "url"),
                        name.lower(),
                        [shared_args, layer, shared_env],
                    )
                )

    resolved = [
        _endpoint(url_raw, url_where, name, _resolve(layers, _ENDPOINT_OPTIONS), _Wheres(layers))
        for url_raw, url_where, name, layers in planned
    ]
    return Settings(endpoints=_unique_names(resolved), **bridge)
