"""The environment variables' names: one constant per option that has one, with its meaning and default.

The constants below the prefix are generated from the option table (:mod:`.table`): edit the
table, then run ``python -m prometheus_rw_bridge._config.reference --write``.  An endpoint named
in ``PROMETHEUS_REMOTE_WRITE_ENDPOINTS`` reads its own options from the same names with its
upper-cased name after the prefix (``PROMETHEUS_REMOTE_WRITE_PRIMARY_TENANT``).
"""

from __future__ import annotations

ENV_PREFIX = "PROMETHEUS_REMOTE_WRITE_"
"""Prefix of every environment variable read by this package."""

# BEGIN generated: ENV_* constants
ENV_URL = "PROMETHEUS_REMOTE_WRITE_URL"
"""Remote-write endpoint(s), ``http://`` or ``https://``. Several separated by commas or whitespace (or a list
in code). ``https://user:pass@host/...`` is used as basic auth. Value: URL. Default: none (bridge off). Scope:
endpoint."""

ENV_USERNAME = "PROMETHEUS_REMOTE_WRITE_USERNAME"
"""Basic-auth user name. Value: text. Default: none. Scope: endpoint, credential."""

ENV_PASSWORD = "PROMETHEUS_REMOTE_WRITE_PASSWORD"
"""Basic-auth password (needs ``username``). Value: text, secret. Default: none. Scope: endpoint,
credential."""

ENV_PASSWORD_FILE = "PROMETHEUS_REMOTE_WRITE_PASSWORD_FILE"
"""File holding the basic-auth password; re-read when it changes. Value: file. Default: none. Scope: endpoint,
credential."""

ENV_BEARER_TOKEN = "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN"
"""Sent as ``Authorization: Bearer ...``. Value: text, secret. Default: none. Scope: endpoint, credential."""

ENV_BEARER_TOKEN_FILE = "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN_FILE"
"""File holding the bearer token; re-read when it changes, so rotated tokens work without a restart. Value:
file. Default: none. Scope: endpoint, credential."""

ENV_TENANT = "PROMETHEUS_REMOTE_WRITE_TENANT"
"""Sent in the ``tenant_header`` (Mimir, Cortex: ``X-Scope-OrgID``; Thanos Receive: ``THANOS-TENANT``). Value:
text. Default: none. Scope: endpoint."""

ENV_TENANT_HEADER = "PROMETHEUS_REMOTE_WRITE_TENANT_HEADER"
"""The header ``tenant`` is sent in; Thanos Receive reads ``THANOS-TENANT``. Value: header name. Default:
``X-Scope-OrgID``. Scope: endpoint."""

ENV_HEADERS = "PROMETHEUS_REMOTE_WRITE_HEADERS"
"""Extra HTTP headers (``Name=value,...``); values of headers that look secret are masked everywhere. The
protocol's own headers (``Content-Type``, ``Content-Encoding``, ``User-Agent``,
``X-Prometheus-Remote-Write-Version``, ``Content-Length``, ``Host``, ...) are refused with an error naming the
header. Value: *pairs*. Default: none. Scope: endpoint."""

ENV_SIGV4 = "PROMETHEUS_REMOTE_WRITE_SIGV4"
"""Sign requests with AWS SigV4 (Amazon Managed Service for Prometheus) using botocore's credential chain.
Needs ``pip install 'prometheus-rw-bridge[aws]'``. Value: *boolean*. Default: ``false``. Scope: endpoint,
credential."""

ENV_SIGV4_REGION = "PROMETHEUS_REMOTE_WRITE_SIGV4_REGION"
"""AWS region for SigV4; taken from an ``aps-workspaces.<region>.amazonaws.com`` URL, else botocore's
configured region (``AWS_DEFAULT_REGION``, the profile), else ``AWS_REGION``. Value: text. Default: from the
URL. Scope: endpoint, credential."""

ENV_SIGV4_ROLE_ARN = "PROMETHEUS_REMOTE_WRITE_SIGV4_ROLE_ARN"
"""An IAM role to assume through STS (botocore, from the credential chain's credentials) and sign with; the
role's credentials are refreshed before they expire. Needs ``sigv4``. See Auth. Value: text. Default: none.
Scope: endpoint, credential."""

ENV_SIGV4_SERVICE = "PROMETHEUS_REMOTE_WRITE_SIGV4_SERVICE"
"""The service name SigV4 signs for: ``aps`` (Amazon Managed Service for Prometheus) unless the receiver
behind the signature wants another. Needs ``sigv4``. Value: text. Default: ``aps``. Scope: endpoint,
credential."""

ENV_OAUTH2_CLIENT_ID = "PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_ID"
"""OAuth2 client-credentials grant, as Prometheus's ``oauth2`` block: the client ID. Needs
``oauth2_token_url``. The token is fetched on first use, cached, and fetched again shortly before it expires
and after a 401. See Auth. Value: text. Default: none. Scope: endpoint, credential."""

ENV_OAUTH2_CLIENT_SECRET = "PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_SECRET"
"""The OAuth2 client secret. Value: text, secret. Default: none. Scope: endpoint, credential."""

ENV_OAUTH2_CLIENT_SECRET_FILE = "PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_SECRET_FILE"
"""File holding the OAuth2 client secret; re-read when it changes. Value: file. Default: none. Scope:
endpoint, credential."""

ENV_OAUTH2_TOKEN_URL = "PROMETHEUS_REMOTE_WRITE_OAUTH2_TOKEN_URL"
"""The OAuth2 token endpoint the token is fetched from. Needs ``oauth2_client_id``. Value: URL. Default: none.
Scope: endpoint, credential."""

ENV_OAUTH2_SCOPES = "PROMETHEUS_REMOTE_WRITE_OAUTH2_SCOPES"
"""Scopes asked for in the token request (separated by commas or spaces; a list in code). Value: words.
Default: none. Scope: endpoint, credential."""

ENV_OAUTH2_ENDPOINT_PARAMS = "PROMETHEUS_REMOTE_WRITE_OAUTH2_ENDPOINT_PARAMS"
"""Further parameters of the token request (``audience=...,resource=...``). Value: *pairs*. Default: none.
Scope: endpoint, credential."""

ENV_CA_FILE = "PROMETHEUS_REMOTE_WRITE_CA_FILE"
"""PEM file of CA certificates that replace the default trust store. Value: file. Default: httpx's trust store
(certifi). Scope: endpoint."""

ENV_CERT_FILE = "PROMETHEUS_REMOTE_WRITE_CERT_FILE"
"""PEM client certificate for mutual TLS (may also hold the key). Value: file. Default: none. Scope:
endpoint."""

ENV_KEY_FILE = "PROMETHEUS_REMOTE_WRITE_KEY_FILE"
"""PEM private key of ``cert_file`` when it is a separate file. Value: file. Default: none. Scope:
endpoint."""

ENV_INSECURE_SKIP_VERIFY = "PROMETHEUS_REMOTE_WRITE_INSECURE_SKIP_VERIFY"
"""``true`` does **not** verify the server's certificate or host name. For testing only. Value: *boolean*.
Default: ``false``. Scope: endpoint."""

ENV_PROXY = "PROMETHEUS_REMOTE_WRITE_PROXY"
"""Proxy URL (``http://``, ``https://``, ``socks5://``). Without it the standard ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` variables are honoured. Value: URL. Default: none. Scope: endpoint."""

ENV_TIMEOUT = "PROMETHEUS_REMOTE_WRITE_TIMEOUT"
"""How long one HTTP request may take (connect, write, read), as Prometheus's ``remote_timeout``. For
``push_to_remote_write()`` it bounds the whole push, retries included. Value: *duration*. Default: ``30s``.
Scope: endpoint."""

ENV_MAX_SHARDS = "PROMETHEUS_REMOTE_WRITE_MAX_SHARDS"
"""Requests in flight at once per endpoint. One collection's requests go out side by side (each series is in
one of them); the next collection waits until they are done, so every series stays in order. Value: integer >
0. Default: ``8``. Scope: endpoint."""

ENV_SAMPLE_AGE_LIMIT = "PROMETHEUS_REMOTE_WRITE_SAMPLE_AGE_LIMIT"
"""Data older than this is dropped (reason ``too_old``) instead of sent or retried, so a lasting 429 or 503
costs old data, not new; ``0`` keeps retrying for ever. See delivery guarantees. Value: *duration*, ``0`` for
none. Default: ``1800s``. Scope: endpoint."""

ENV_RELABEL_CONFIG_FILE = "PROMETHEUS_REMOTE_WRITE_RELABEL_CONFIG_FILE"
"""Prometheus relabel rules applied to every series sent to this endpoint: in code a list of mappings
(``source_labels``, ``regex``, ``action``, ...), in the variable the path of a YAML or JSON file of them. See
Relabelling. Value: relabel rules; the variable: file. Default: none. Scope: endpoint."""

ENV_ENDPOINTS = "PROMETHEUS_REMOTE_WRITE_ENDPOINTS"
"""Endpoints configured one by one, see several endpoints. Value: names (in code, a list). Default: none.
Scope: bridge."""

ENV_ENABLED = "PROMETHEUS_REMOTE_WRITE_ENABLED"
"""``false`` makes the bridge a no-op without touching the code. Value: *boolean*. Default: ``true``. Scope:
bridge."""

ENV_INTERVAL = "PROMETHEUS_REMOTE_WRITE_INTERVAL"
"""How long between two collections and pushes. Value: *duration*. Default: ``15s``. Scope: bridge."""

ENV_JOB = "PROMETHEUS_REMOTE_WRITE_JOB"
"""``job`` label added to series without one; empty for none. Value: text. Default: the program's name. Scope:
bridge."""

ENV_INSTANCE = "PROMETHEUS_REMOTE_WRITE_INSTANCE"
"""``instance`` label added to series without one; empty for none. Value: text. Default: the host name. Scope:
bridge."""

ENV_EXTERNAL_LABELS = "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS"
"""Labels added to every series that lacks them. Names follow ``[a-zA-Z_][a-zA-Z0-9_]*``, may not start with
``__`` and may not be ``job`` or ``instance`` (use those options). Value: *pairs*. Default: none. Scope:
bridge."""

ENV_PROTOCOL = "PROMETHEUS_REMOTE_WRITE_PROTOCOL"
"""``1.0``, ``2.0``, or ``auto`` (2.0, falling back to 1.0 when the receiver answers 415). See Remote write
2.0. Value: ``1.0``, ``2.0``, ``auto``. Default: ``1.0``. Scope: bridge."""

ENV_DEBUG = "PROMETHEUS_REMOTE_WRITE_DEBUG"
"""Also log every push as ``/metrics``-style text with its sequence number. Secrets are never logged. Value:
*boolean*. Default: ``false``. Scope: bridge."""

ENV_MAX_SAMPLES_PER_SEND = "PROMETHEUS_REMOTE_WRITE_MAX_SAMPLES_PER_SEND"
"""The most samples in one request; larger collections are split. Value: integer > 0. Default: ``10000``.
Scope: bridge."""

ENV_MAX_BYTES_PER_SEND = "PROMETHEUS_REMOTE_WRITE_MAX_BYTES_PER_SEND"
"""No request body on the wire is larger: requests are cut before they are sent. A single series that cannot
fit is dropped (reason ``too_large``). Set it below the receiver's or its proxy's body limit. Value: *size*.
Default: no limit. Scope: bridge."""

ENV_QUEUE_CAPACITY = "PROMETHEUS_REMOTE_WRITE_QUEUE_CAPACITY"
"""Collections queued per endpoint while it is unreachable (20 minutes at the default interval); beyond it the
oldest are dropped and counted. Value: integer > 0. Default: ``80``. Scope: bridge."""

ENV_QUEUE_MAX_BYTES = "PROMETHEUS_REMOTE_WRITE_QUEUE_MAX_BYTES"
"""Memory bound of each endpoint's queue (compressed bodies); beyond it the oldest collections are dropped.
Value: *size*. Default: ``64MiB``. Scope: bridge."""

ENV_SPOOL_DIR = "PROMETHEUS_REMOTE_WRITE_SPOOL_DIR"
"""Keep every request on disk, in a directory per endpoint, from before it is sent until it is answered, so a
restart or a crash loses nothing queued; it is sent first at the next start. One process per directory. See
delivery guarantees. Value: directory. Default: none (memory only). Scope: bridge."""

ENV_SPOOL_MAX_BYTES = "PROMETHEUS_REMOTE_WRITE_SPOOL_MAX_BYTES"
"""Disk bound of each endpoint's spool; beyond it the oldest requests are dropped (reason ``spool_full``).
Value: *size*. Default: ``256MiB``. Scope: bridge."""

ENV_STALE_ON_CLOSE = "PROMETHEUS_REMOTE_WRITE_STALE_ON_CLOSE"
"""On ``close()`` (and at exit) end every series sent with a stale marker. Value: *boolean*. Default:
``true``. Scope: bridge."""

ENV_SELF_METRICS = "PROMETHEUS_REMOTE_WRITE_SELF_METRICS"
"""Add the ``prometheus_remote_storage_*`` metrics (named like Prometheus's own sender, so its dashboards and
alerts work) to the pushed registry: they are pushed too, and shown on ``/metrics`` when that registry is
served. Value: *boolean*. Default: ``true``. Scope: bridge."""

ENV_METRIC_KEEP = "PROMETHEUS_REMOTE_WRITE_METRIC_KEEP"
"""Send only series whose name matches entirely (in code also a list of regexes). Value: *regex*. Default:
every series. Scope: bridge."""

ENV_METRIC_DROP = "PROMETHEUS_REMOTE_WRITE_METRIC_DROP"
"""Never send series whose name matches entirely, applied after ``metric_keep``. Example:
``python_gc_.*|process_.*``. Value: *regex*. Default: none. Scope: bridge."""

__all__ = [
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
    "ENV_MAX_BYTES_PER_SEND",
    "ENV_MAX_SAMPLES_PER_SEND",
    "ENV_MAX_SHARDS",
    "ENV_METRIC_DROP",
    "ENV_METRIC_KEEP",
    "ENV_OAUTH2_CLIENT_ID",
    "ENV_OAUTH2_CLIENT_SECRET",
    "ENV_OAUTH2_CLIENT_SECRET_FILE",
    "ENV_OAUTH2_ENDPOINT_PARAMS",
    "ENV_OAUTH2_SCOPES",
    "ENV_OAUTH2_TOKEN_URL",
    "ENV_PASSWORD",
    "ENV_PASSWORD_FILE",
    "ENV_PREFIX",
    "ENV_PROTOCOL",
    "ENV_PROXY",
    "ENV_QUEUE_CAPACITY",
    "ENV_QUEUE_MAX_BYTES",
    "ENV_RELABEL_CONFIG_FILE",
    "ENV_SAMPLE_AGE_LIMIT",
    "ENV_SELF_METRICS",
    "ENV_SIGV4",
    "ENV_SIGV4_REGION",
    "ENV_SIGV4_ROLE_ARN",
    "ENV_SIGV4_SERVICE",
    "ENV_SPOOL_DIR",
    "ENV_SPOOL_MAX_BYTES",
    "ENV_STALE_ON_CLOSE",
    "ENV_TENANT",
    "ENV_TENANT_HEADER",
    "ENV_TIMEOUT",
    "ENV_URL",
    "ENV_USERNAME",
]
# END generated: ENV_* constants
