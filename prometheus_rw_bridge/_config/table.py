"""The option table: every option, declared once, as a field of ``Settings`` or ``EndpointSettings``.

A field declared with :func:`~.option.option` is an option: its name is the keyword argument
(and, upper-cased, the environment variable's suffix, unless ``env=`` says otherwise), its class
the scope (``Settings``: bridge-wide; ``EndpointSettings``: per endpoint, where the shared value
fills in what an endpoint leaves unset), the declaration its kind (parser, accepted types,
masking), default, credential group and reference section, and the docstring under it its one
doc line (Markdown).  From this table come the environment resolution (:mod:`.settings`), the
misspelt-variable warning (:mod:`.unknown`), and, written by ``python -m
prometheus_rw_bridge._config.reference --write`` (a test fails while they differ), the ``ENV_*``
constants (:mod:`.env`), the typed keyword options (``prometheus_rw_bridge._options``) and the
tables of ``docs/configuration.md``.

Adding an option, when its behaviour lands (never before: a setting that does nothing is a defect):

1. a field here, in ``EndpointSettings`` or ``Settings``, and its docstring (one or more lines
   of Markdown, ending with a full stop) under it, for example
   ``max_shards: int = option(COUNT, default=DEFAULT_MAX_SHARDS, section="delivery")``;
2. ``python -m prometheus_rw_bridge._config.reference --write``;
3. its use (``endpoint.max_shards``), and a cross-field rule, if any, in
   ``settings._check_endpoint``; ``tests/test_table.py`` then checks it resolves from its
   argument, its variable and an endpoint's own variable, and is masked if secret (an option
   valid only beside another gets that other in the test's ``COMPANIONS``).

The kinds are in :mod:`.option`; a new kind of value is a new :class:`~.option.Kind` there (a
parser raising ``ConfigurationError`` through ``parse.fail``, what code may pass, the format's
name) and a sample value in ``tests/test_table.py``.  For the options on their way:

* delivery (issue 14): ``sample_age_limit`` (``DURATION``), ``spool_dir`` (a directory kind),
  ``spool_max_bytes`` and ``max_bytes_per_send`` (``SIZE``), ``max_shards`` (``COUNT``), all
  ``section="delivery"``; ``tenant_header`` (a header-name kind, ``section="auth"``), which
  ``request_headers`` below and the ``X-Scope-OrgID`` rule of ``_check_endpoint`` then use;
* http (issue 16): ``auth`` (code only, ``env=None``, a kind accepting an ``httpx.Auth``),
  ``oauth2_client_id``, ``oauth2_client_secret`` (``SECRET``), ``oauth2_client_secret_file``
  (``FILE``), ``oauth2_token_url`` (``URL``), ``oauth2_scopes`` (a list kind),
  ``oauth2_endpoint_params`` (``LABELS``-like pairs), ``sigv4_role_arn``, ``sigv4_service``
  (``NAME``, default ``"aps"``): all ``credential=True, section="auth"`` in ``EndpointSettings``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._protocol.relabel import RelabelRules
from .option import (
    AGE_LIMIT,
    AUTH,
    BOOLEAN,
    COUNT,
    DIRECTORY,
    DURATION,
    ENDPOINTS,
    FILE,
    HEADER_NAME,
    HEADERS,
    HTTP_CLIENT,
    LABELS,
    NAME,
    PARAMS,
    PROTOCOL,
    PROXY,
    REGEX,
    RELABEL_FILE,
    RELABEL_RULES,
    SCOPES,
    SECRET,
    SIZE,
    TEXT,
    URL,
    Option,
    declared_options,
    option,
    settings_class,
    settings_repr,
)

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_SAMPLES_PER_SEND",
    "DEFAULT_MAX_SHARDS",
    "DEFAULT_QUEUE_CAPACITY",
    "DEFAULT_QUEUE_MAX_BYTES",
    "DEFAULT_SAMPLE_AGE_LIMIT",
    "DEFAULT_SPOOL_MAX_BYTES",
    "DEFAULT_TENANT_HEADER",
    "DEFAULT_TIMEOUT",
    "OPTIONS",
    "EndpointSettings",
    "MetricFilter",
    "Settings",
]

DEFAULT_INTERVAL = 15.0
"""Seconds between two collections."""

DEFAULT_TIMEOUT = 30.0
"""Seconds one HTTP request may take (connect, write, read), as Prometheus's ``remote_timeout``."""

DEFAULT_MAX_SAMPLES_PER_SEND = 10_000
"""Samples per request; a larger snapshot is split.  vmagent's default; Prometheus's is 2,000.  In a
Python process every request costs about 0.35 ms of CPU in httpx alone, tripled beside a busy
application thread, so five times fewer requests halve what a push costs the application
(docs/performance.md, "CPU")."""

DEFAULT_QUEUE_CAPACITY = 80
"""Snapshots queued per endpoint while it is unreachable: 20 minutes at the default interval."""

DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 * 1024
"""Bytes (compressed bodies) queued per endpoint before the oldest snapshots are dropped."""

DEFAULT_MAX_SHARDS = 8
"""Requests of one collection in flight at once per endpoint.  A 1 M-sample push is 100 requests
of 10,000 samples: over a 100 ms link one lane needs 10 s, eight need about 1.3 s, well within the
default 15 s interval; with Prometheus's 2,000 per request, 500 requests, 50 s and 6 s."""

DEFAULT_SAMPLE_AGE_LIMIT = 1800.0
"""Seconds after which queued or retried data is dropped instead of sent (30 minutes).  Longer than
the 20 minutes the default queue holds, so no outage the queue survives loses data to it; shorter
than the hour a Prometheus-TSDB receiver (Prometheus, Mimir, Cortex, Thanos Receive) still accepts
behind its newest sample, so the bridge does not keep retrying what such a receiver refuses."""

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
"""Bound of each endpoint's disk spool: a day and more of a 10 k-sample app every 15 s."""

DEFAULT_TENANT_HEADER = "X-Scope-OrgID"
"""The header ``tenant`` is sent in (Mimir, Cortex, Loki); Thanos Receive reads ``THANOS-TENANT``."""


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@settings_class
class EndpointSettings:
    """Where and how to send: one remote-write endpoint; each field is the option of that name.

    Build one directly (``EndpointSettings(url=..., tenant=...)``) to pass in ``endpoints=``;
    :func:`~.settings.resolve_settings` validates it.  ``repr()`` masks every secret.
    ``name`` is the ``remote_name`` label of this endpoint's self-metrics and log lines.
    """

    url: str = option(URL, default_text="none (bridge off)")
    """Remote-write endpoint(s), `http://` or `https://`. Several separated by commas or whitespace (or a list
    in code). `https://user:pass@host/...` is used as basic auth."""
    name: str = ""
    username: str | None = option(NAME, default=None, credential=True, section="auth")
    """Basic-auth user name."""
    password: str | None = option(SECRET, default=None, credential=True, section="auth")
    """Basic-auth password (needs `username`)."""
    password_file: str | None = option(FILE, default=None, credential=True, section="auth")
    """File holding the basic-auth password; re-read when it changes."""
    bearer_token: str | None = option(SECRET, default=None, credential=True, section="auth")
    """Sent as `Authorization: Bearer ...`."""
    bearer_token_file: str | None = option(FILE, default=None, credential=True, section="auth")
    """File holding the bearer token; re-read when it changes, so rotated tokens work without a restart."""
    tenant: str | None = option(NAME, default=None, section="auth")
    """Sent in the `tenant_header` (Mimir, Cortex: `X-Scope-OrgID`; Thanos Receive: `THANOS-TENANT`)."""
    tenant_header: str = option(HEADER_NAME, default=DEFAULT_TENANT_HEADER, section="auth")
    """The header `tenant` is sent in; Thanos Receive reads `THANOS-TENANT`."""
    headers: Mapping[str, str] = option(HEADERS, factory=_empty, section="auth")
    """Extra HTTP headers (`Name=value,...`); values of headers that look secret are masked everywhere. The
    protocol's own headers (`Content-Type`, `Content-Encoding`, `User-Agent`,
    `X-Prometheus-Remote-Write-Version`, `Content-Length`, `Host`, ...) are refused with an error naming the
    header."""
    sigv4: bool = option(BOOLEAN, default=False, credential=True, section="auth")
    """Sign requests with AWS SigV4 (Amazon Managed Service for Prometheus) using botocore's credential chain.
    Needs `pip install 'prometheus-rw-bridge[aws]'`."""
    sigv4_region: str | None = option(
        NAME, default=None, credential=True, section="auth", default_text="from the URL"
    )
    """AWS region for SigV4; taken from an `aps-workspaces.<region>.amazonaws.com` URL, else botocore's
    configured region (`AWS_DEFAULT_REGION`, the profile), else `AWS_REGION`."""
    sigv4_role_arn: str | None = option(NAME, default=None, credential=True, section="auth")
    """An IAM role to assume through STS (botocore, from the credential chain's credentials) and sign with;
    the role's credentials are refreshed before they expire. Needs `sigv4`. See [Auth](auth.md#sigv4)."""
    sigv4_service: str | None = option(
        NAME, default=None, credential=True, section="auth", default_text="`aps`"
    )
    """The service name SigV4 signs for: `aps` (Amazon Managed Service for Prometheus) unless the receiver
    behind the signature wants another. Needs `sigv4`."""
    oauth2_client_id: str | None = option(NAME, default=None, credential=True, section="auth")
    """OAuth2 client-credentials grant, as Prometheus's `oauth2` block: the client ID. Needs
    `oauth2_token_url`. The token is fetched on first use, cached, and fetched again shortly before it
    expires and after a 401. See [Auth](auth.md#oauth2)."""
    oauth2_client_secret: str | None = option(SECRET, default=None, credential=True, section="auth")
    """The OAuth2 client secret."""
    oauth2_client_secret_file: str | None = option(FILE, default=None, credential=True, section="auth")
    """File holding the OAuth2 client secret; re-read when it changes."""
    oauth2_token_url: str | None = option(URL, default=None, credential=True, section="auth")
    """The OAuth2 token endpoint the token is fetched from. Needs `oauth2_client_id`."""
    oauth2_scopes: tuple[str, ...] | None = option(SCOPES, default=None, credential=True, section="auth")
    """Scopes asked for in the token request (separated by commas or spaces; a list in code)."""
    oauth2_endpoint_params: Mapping[str, str] | None = option(
        PARAMS, default=None, credential=True, section="auth"
    )
    """Further parameters of the token request (`audience=...,resource=...`)."""
    auth: Any = option(AUTH, default=None, credential=True, section="auth", env=None)
    """Any `httpx.Auth`, for a scheme the library does not ship (a signed header, a token broker); not with
    the other auth options. Code only. See [Auth](auth.md#your-own-auth)."""
    ca_file: str | None = option(
        FILE, default=None, section="tls", default_text="httpx's trust store (certifi)"
    )
    """PEM file of CA certificates that replace the default trust store."""
    cert_file: str | None = option(FILE, default=None, section="tls")
    """PEM client certificate for mutual TLS (may also hold the key)."""
    key_file: str | None = option(FILE, default=None, section="tls")
    """PEM private key of `cert_file` when it is a separate file."""
    insecure_skip_verify: bool = option(BOOLEAN, default=False, section="tls")
    """`true` does **not** verify the server's certificate or host name. For testing only."""
    proxy: str | None = option(PROXY, default=None, section="tls")
    """Proxy URL (`http://`, `https://`, `socks5://`). Without it the standard `HTTPS_PROXY` / `HTTP_PROXY` /
    `NO_PROXY` variables are honoured."""
    http_client: Any = option(HTTP_CLIENT, default=None, section="tls", env=None)
    """An `httpx.Client` to send through (its transport, proxy, TLS, pool settings, default headers and auth
    apply), for `httpx.MockTransport`, a corporate proxy or custom TLS. The bridge adds, per request, the
    protocol's headers, `headers`, `tenant`, its own auth options (which win over the client's auth) and
    `timeout`; masks what the client sends like its own secrets; and never closes it. Not with `ca_file`,
    `cert_file`, `key_file`, `insecure_skip_verify` or `proxy`: the client has its own. Code only."""
    timeout: float = option(DURATION, default=DEFAULT_TIMEOUT, section="delivery")
    """How long one HTTP request may take (connect, write, read), as Prometheus's `remote_timeout`. For
    `push_to_remote_write()` it bounds the whole push, retries included."""
    max_shards: int = option(COUNT, default=DEFAULT_MAX_SHARDS, section="delivery")
    """Requests in flight at once per endpoint. One collection's requests go out side by side (each series is
    in one of them); the next collection waits until they are done, so every series stays in order."""
    sample_age_limit: float = option(AGE_LIMIT, default=DEFAULT_SAMPLE_AGE_LIMIT, section="delivery")
    """Data older than this is dropped (reason `too_old`) instead of sent or retried, so a lasting 429 or 503
    costs old data, not new; `0` keeps retrying for ever. See [delivery guarantees](delivery.md)."""
    write_relabel_configs: RelabelRules | None = option(
        RELABEL_RULES, default=None, env="RELABEL_CONFIG_FILE", env_kind=RELABEL_FILE, section="filters"
    )
    """Prometheus relabel rules applied to every series sent to this endpoint: in code a list of mappings
    (`source_labels`, `regex`, `action`, ...), in the variable the path of a YAML or JSON file of them. See
    [Relabelling](relabelling.md)."""

    def __repr__(self) -> str:
        return settings_repr(self)

    @property
    def request_headers(self) -> dict[str, str]:
        """The headers this endpoint adds to every request: ``headers``, ``tenant`` as ``tenant_header``."""
        result = dict(self.headers)
        if self.tenant:
            result[self.tenant_header] = self.tenant
        return result


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


@settings_class
class Settings:
    """Everything one bridge needs; each field is the bridge-wide option of that name.

    Build it with :func:`~.settings.resolve_settings`.  ``endpoints`` is empty when no URL is
    configured anywhere; ``job`` and ``instance`` are ``None`` for their defaults (the program's
    and the host's name) and ``""`` for no label.
    """

    endpoints: tuple[EndpointSettings, ...] = option(ENDPOINTS, default=())
    """Endpoints configured one by one, see [several endpoints](#several-endpoints)."""
    enabled: bool = option(BOOLEAN, default=True)
    """`false` makes the bridge a no-op without touching the code."""
    interval: float = option(DURATION, default=DEFAULT_INTERVAL)
    """How long between two collections and pushes."""
    job: str | None = option(TEXT, default=None, default_text="the program's name", empty_is_value=True)
    """`job` label added to series without one; empty for none."""
    instance: str | None = option(TEXT, default=None, default_text="the host name", empty_is_value=True)
    """`instance` label added to series without one; empty for none."""
    external_labels: Mapping[str, str] = option(LABELS, factory=_empty)
    """Labels added to every series that lacks them. Names follow `[a-zA-Z_][a-zA-Z0-9_]*`, may not start with
    `__` and may not be `job` or `instance` (use those options)."""
    protocol: str = option(PROTOCOL, default="1.0")
    """`1.0`, `2.0`, or `auto` (2.0, falling back to 1.0 when the receiver answers 415). See [Remote write
    2.0](protocol-2.0.md)."""
    debug: bool = option(BOOLEAN, default=False)
    """Also log every push as `/metrics`-style text with its sequence number. Secrets are never logged."""
    max_samples_per_send: int = option(COUNT, default=DEFAULT_MAX_SAMPLES_PER_SEND, section="delivery")
    """The most samples in one request; larger collections are split."""
    max_bytes_per_send: int | None = option(SIZE, default=None, section="delivery", default_text="no limit")
    """No request body on the wire is larger: requests are cut before they are sent. A single series that
    cannot fit is dropped (reason `too_large`). Set it below the receiver's or its proxy's body limit."""
    queue_capacity: int = option(COUNT, default=DEFAULT_QUEUE_CAPACITY, section="delivery")
    """Collections queued per endpoint while it is unreachable (20 minutes at the default interval); beyond it
    the oldest are dropped and counted."""
    queue_max_bytes: int = option(SIZE, default=DEFAULT_QUEUE_MAX_BYTES, section="delivery")
    """Memory bound of each endpoint's queue (compressed bodies); beyond it the oldest collections are
    dropped."""
    spool_dir: str | None = option(
        DIRECTORY, default=None, section="delivery", default_text="none (memory only)"
    )
    """Keep every request on disk, in a directory per endpoint, from before it is sent until it is
    answered, so a restart or a crash loses nothing queued; it is sent first at the next start. One process
    per directory. See [delivery guarantees](delivery.md)."""
    spool_max_bytes: int = option(SIZE, default=DEFAULT_SPOOL_MAX_BYTES, section="delivery")
    """Disk bound of each endpoint's spool; beyond it the oldest requests are dropped (reason
    `spool_full`)."""
    stale_on_close: bool = option(BOOLEAN, default=True, section="delivery")
    """On `close()` (and at exit) end every series sent with a stale marker."""
    self_metrics: bool = option(BOOLEAN, default=True, section="delivery")
    """Add the `prometheus_remote_storage_*` metrics (named like Prometheus's own sender, so its dashboards
    and alerts work) to the pushed registry: they are pushed too, and shown on `/metrics` when that registry
    is served."""
    metric_keep: re.Pattern[str] | None = option(
        REGEX, default=None, section="filters", default_text="every series"
    )
    """Send only series whose name matches entirely (in code also a list of regexes)."""
    metric_drop: re.Pattern[str] | None = option(REGEX, default=None, section="filters")
    """Never send series whose name matches entirely, applied after `metric_keep`. Example:
    `python_gc_.*|process_.*`."""

    def __repr__(self) -> str:
        return settings_repr(self)

    @property
    def metric_filter(self) -> MetricFilter | None:
        """Which series to send, or ``None`` for all."""
        if self.metric_keep is None and self.metric_drop is None:
            return None
        return MetricFilter(keep=self.metric_keep, drop=self.metric_drop)

    @property
    def urls(self) -> tuple[str, ...]:
        """The endpoints' URLs (without credentials)."""
        return tuple(endpoint.url for endpoint in self.endpoints)

    @property
    def active(self) -> bool:
        """Whether there is anything to do: enabled, with at least one endpoint."""
        return self.enabled and bool(self.endpoints)


OPTIONS: tuple[Option, ...] = (
    *declared_options(EndpointSettings, endpoint=True),
    *declared_options(Settings, endpoint=False),
)
"""Every option, the per-endpoint ones first, each in the order of its class."""
