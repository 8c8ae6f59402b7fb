"""The keyword options of the public functions, typed, so that editors and type checkers show them.

``enable_remote_write(url, *, registry, **options: Unpack[RemoteWriteOptions])`` (and
``push_to_remote_write``) take every option of the configuration reference; the adapters pass
the same on (:class:`AdapterOptions`, :class:`UrlOptions`).  Every value may also be ``None``,
which means "not given": the environment variable, else the default, applies.

The keys of :class:`RemoteWriteOptions` are generated from the option table
(``prometheus_rw_bridge/_config/table.py``) by ``python -m prometheus_rw_bridge._config.reference
--write``; a test fails while they differ.  This module is not in ``_config`` because it names
``httpx`` types, which the configuration layer may not import; it imports nothing at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import datetime
    import os
    import re
    from collections.abc import Mapping, Sequence

    import httpx

    from ._config.settings import EndpointSettings
    from ._protocol.relabel import RelabelRules

__all__ = ["AdapterOptions", "RemoteWriteOptions", "UrlOptions"]


class RemoteWriteOptions(TypedDict, total=False):
    """Every option of ``enable_remote_write()`` and ``push_to_remote_write()`` but ``url``."""

    # BEGIN generated: RemoteWriteOptions
    username: str | None
    """Basic-auth user name. Value: text. Default: none. Scope: endpoint, credential."""
    password: str | None
    """Basic-auth password (needs ``username``). Value: text, secret. Default: none. Scope: endpoint,
    credential."""
    password_file: str | os.PathLike[str] | None
    """File holding the basic-auth password; re-read when it changes. Value: file. Default: none. Scope:
    endpoint, credential."""
    bearer_token: str | None
    """Sent as ``Authorization: Bearer ...``. Value: text, secret. Default: none. Scope: endpoint,
    credential."""
    bearer_token_file: str | os.PathLike[str] | None
    """File holding the bearer token; re-read when it changes, so rotated tokens work without a restart.
    Value: file. Default: none. Scope: endpoint, credential."""
    tenant: str | None
    """Sent in the ``tenant_header`` (Mimir, Cortex: ``X-Scope-OrgID``; Thanos Receive: ``THANOS-TENANT``).
    Value: text. Default: none. Scope: endpoint."""
    tenant_header: str | None
    """The header ``tenant`` is sent in; Thanos Receive reads ``THANOS-TENANT``. Value: header name. Default:
    ``X-Scope-OrgID``. Scope: endpoint."""
    headers: Mapping[str, str] | str | None
    """Extra HTTP headers (``Name=value,...``); values of headers that look secret are masked everywhere. The
    protocol's own headers (``Content-Type``, ``Content-Encoding``, ``User-Agent``,
    ``X-Prometheus-Remote-Write-Version``, ``Content-Length``, ``Host``, ...) are refused with an error naming
    the header. Value: *pairs*. Default: none. Scope: endpoint."""
    sigv4: bool | str | None
    """Sign requests with AWS SigV4 (Amazon Managed Service for Prometheus) using botocore's credential chain.
    Needs ``pip install 'prometheus-rw-bridge[aws]'``. Value: *boolean*. Default: ``false``. Scope: endpoint,
    credential."""
    sigv4_region: str | None
    """AWS region for SigV4; taken from an ``aps-workspaces.<region>.amazonaws.com`` URL, else botocore's
    configured region (``AWS_DEFAULT_REGION``, the profile), else ``AWS_REGION``. Value: text. Default: from
    the URL. Scope: endpoint, credential."""
    sigv4_role_arn: str | None
    """An IAM role to assume through STS (botocore, from the credential chain's credentials) and sign with;
    the role's credentials are refreshed before they expire. Needs ``sigv4``. See Auth. Value: text. Default:
    none. Scope: endpoint, credential."""
    sigv4_service: str | None
    """The service name SigV4 signs for: ``aps`` (Amazon Managed Service for Prometheus) unless the receiver
    behind the signature wants another. Needs ``sigv4``. Value: text. Default: ``aps``. Scope: endpoint,
    credential."""
    oauth2_client_id: str | None
    """OAuth2 client-credentials grant, as Prometheus's ``oauth2`` block: the client ID. Needs
    ``oauth2_token_url``. The token is fetched on first use, cached, and fetched again shortly before it
    expires and after a 401. See Auth. Value: text. Default: none. Scope: endpoint, credential."""
    oauth2_client_secret: str | None
    """The OAuth2 client secret. Value: text, secret. Default: none. Scope: endpoint, credential."""
    oauth2_client_secret_file: str | os.PathLike[str] | None
    """File holding the OAuth2 client secret; re-read when it changes. Value: file. Default: none. Scope:
    endpoint, credential."""
    oauth2_token_url: str | None
    """The OAuth2 token endpoint the token is fetched from. Needs ``oauth2_client_id``. Value: URL. Default:
    none. Scope: endpoint, credential."""
    oauth2_scopes: Sequence[str] | str | None
    """Scopes asked for in the token request (separated by commas or spaces; a list in code). Value: words.
    Default: none. Scope: endpoint, credential."""
    oauth2_endpoint_params: Mapping[str, str] | str | None
    """Further parameters of the token request (``audience=...,resource=...``). Value: *pairs*. Default: none.
    Scope: endpoint, credential."""
    auth: httpx.Auth | None
    """Any ``httpx.Auth``, for a scheme the library does not ship (a signed header, a token broker); not with
    the other auth options. Code only. See Auth. Value: ``httpx.Auth``. Default: none. Scope: endpoint,
    credential."""
    ca_file: str | os.PathLike[str] | None
    """PEM file of CA certificates that replace the default trust store. Value: file. Default: httpx's trust
    store (certifi). Scope: endpoint."""
    cert_file: str | os.PathLike[str] | None
    """PEM client certificate for mutual TLS (may also hold the key). Value: file. Default: none. Scope:
    endpoint."""
    key_file: str | os.PathLike[str] | None
    """PEM private key of ``cert_file`` when it is a separate file. Value: file. Default: none. Scope:
    endpoint."""
    insecure_skip_verify: bool | str | None
    """``true`` does **not** verify the server's certificate or host name. For testing only. Value: *boolean*.
    Default: ``false``. Scope: endpoint."""
    proxy: str | None
    """Proxy URL (``http://``, ``https://``, ``socks5://``). Without it the standard ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` / ``NO_PROXY`` variables are honoured. Value: URL. Default: none. Scope: endpoint."""
    http_client: httpx.Client | None
    """An ``httpx.Client`` to send through (its transport, proxy, TLS, pool settings, default headers and auth
    apply), for ``httpx.MockTransport``, a corporate proxy or custom TLS. The bridge adds, per request, the
    protocol's headers, ``headers``, ``tenant``, its own auth options (which win over the client's auth) and
    ``timeout``; masks what the client sends like its own secrets; and never closes it. Not with ``ca_file``,
    ``cert_file``, ``key_file``, ``insecure_skip_verify`` or ``proxy``: the client has its own. Code only.
    Value: ``httpx.Client``. Default: none. Scope: endpoint."""
    timeout: float | str | datetime.timedelta | None
    """How long one HTTP request may take (connect, write, read), as Prometheus's ``remote_timeout``. For
    ``push_to_remote_write()`` it bounds the whole push, retries included. Value: *duration*. Default:
    ``30s``. Scope: endpoint."""
    max_shards: int | str | None
    """Requests in flight at once per endpoint. One collection's requests go out side by side (each series is
    in one of them); the next collection waits until they are done, so every series stays in order. Value:
    integer > 0. Default: ``8``. Scope: endpoint."""
    sample_age_limit: float | str | datetime.timedelta | None
    """Data older than this is dropped (reason ``too_old``) instead of sent or retried, so a lasting 429 or
    503 costs old data, not new; ``0`` keeps retrying for ever. See delivery guarantees. Value: *duration*,
    ``0`` for none. Default: ``1800s``. Scope: endpoint."""
    write_relabel_configs: Sequence[Mapping[str, Any]] | RelabelRules | None
    """Prometheus relabel rules applied to every series sent to this endpoint: in code a list of mappings
    (``source_labels``, ``regex``, ``action``, ...), in the variable the path of a YAML or JSON file of them.
    See Relabelling. Value: relabel rules; the variable: file. Default: none. Scope: endpoint."""
    endpoints: Sequence[EndpointSettings | Mapping[str, Any] | str] | None
    """Endpoints configured one by one, see several endpoints. Value: names (in code, a list). Default: none.
    Scope: bridge."""
    enabled: bool | str | None
    """``false`` makes the bridge a no-op without touching the code. Value: *boolean*. Default: ``true``.
    Scope: bridge."""
    interval: float | str | datetime.timedelta | None
    """How long between two collections and pushes. Value: *duration*. Default: ``15s``. Scope: bridge."""
    job: str | None
    """``job`` label added to series without one; empty for none. Value: text. Default: the program's name.
    Scope: bridge."""
    instance: str | None
    """``instance`` label added to series without one; empty for none. Value: text. Default: the host name.
    Scope: bridge."""
    external_labels: Mapping[str, str] | str | None
    """Labels added to every series that lacks them. Names follow ``[a-zA-Z_][a-zA-Z0-9_]*``, may not start
    with ``__`` and may not be ``job`` or ``instance`` (use those options). Value: *pairs*. Default: none.
    Scope: bridge."""
    protocol: str | None
    """``1.0``, ``2.0``, or ``auto`` (2.0, falling back to 1.0 when the receiver answers 415). See Remote
    write 2.0. Value: ``1.0``, ``2.0``, ``auto``. Default: ``1.0``. Scope: bridge."""
    debug: bool | str | None
    """Also log every push as ``/metrics``-style text with its sequence number. Secrets are never logged.
    Value: *boolean*. Default: ``false``. Scope: bridge."""
    max_samples_per_send: int | str | None
    """The most samples in one request; larger collections are split. Value: integer > 0. Default: ``10000``.
    Scope: bridge."""
    max_bytes_per_send: int | str | None
    """No request body on the wire is larger: requests are cut before they are sent. A single series that
    cannot fit is dropped (reason ``too_large``). Set it below the receiver's or its proxy's body limit.
    Value: *size*. Default: no limit. Scope: bridge."""
    queue_capacity: int | str | None
    """Collections queued per endpoint while it is unreachable (20 minutes at the default interval); beyond it
    the oldest are dropped and counted. Value: integer > 0. Default: ``80``. Scope: bridge."""
    queue_max_bytes: int | str | None
    """Memory bound of each endpoint's queue (compressed bodies); beyond it the oldest collections are
    dropped. Value: *size*. Default: ``64MiB``. Scope: bridge."""
    spool_dir: str | os.PathLike[str] | None
    """Keep every request on disk, in a directory per endpoint, from before it is sent until it is answered,
    so a restart or a crash loses nothing queued; it is sent first at the next start. One process per
    directory. See delivery guarantees. Value: directory. Default: none (memory only). Scope: bridge."""
    spool_max_bytes: int | str | None
    """Disk bound of each endpoint's spool; beyond it the oldest requests are dropped (reason ``spool_full``).
    Value: *size*. Default: ``256MiB``. Scope: bridge."""
    stale_on_close: bool | str | None
    """On ``close()`` (and at exit) end every series sent with a stale marker. Value: *boolean*. Default:
    ``true``. Scope: bridge."""
    self_metrics: bool | str | None
    """Add the ``prometheus_remote_storage_*`` metrics (named like Prometheus's own sender, so its dashboards
    and alerts work) to the pushed registry: they are pushed too, and shown on ``/metrics`` when that registry
    is served. Value: *boolean*. Default: ``true``. Scope: bridge."""
    metric_keep: str | Sequence[str] | re.Pattern[str] | None
    """Send only series whose name matches entirely (in code also a list of regexes). Value: *regex*. Default:
    every series. Scope: bridge."""
    metric_drop: str | Sequence[str] | re.Pattern[str] | None
    """Never send series whose name matches entirely, applied after ``metric_keep``. Example:
    ``python_gc_.*|process_.*``. Value: *regex*. Default: none. Scope: bridge."""
    # END generated: RemoteWriteOptions

    environ: Mapping[str, object] | None
    """Read the ``PROMETHEUS_REMOTE_WRITE_*`` variables from this mapping instead of ``os.environ``
    (the Flask extension passes ``app.config`` over the environment)."""


class UrlOptions(RemoteWriteOptions, total=False):
    """The options and the URL(s): what ``gunicorn.configure()`` and ``celery.connect()`` pass on."""

    url: str | Sequence[str] | None
    """The receiver's remote-write URL, or a list of URLs (each endpoint gets its own queue)."""


class AdapterOptions(UrlOptions, total=False):
    """The options, the URL(s) and the registry: what the Flask and FastAPI adapters pass on."""

    registry: Any
    """Any ``Collector`` (an object with ``collect()``); prometheus_client's ``REGISTRY`` by default."""
