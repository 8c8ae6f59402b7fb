"""The connection options ``check`` and ``forward`` share, resolved like the library's own.

Each option not given on the command line is read from its ``PROMETHEUS_REMOTE_WRITE_*``
variable, by the same resolution the library uses, so the command sees what the application
would.
"""

from __future__ import annotations

import argparse
import os

from .._config.settings import ENV_TIMEOUT, EndpointSettings, resolve_settings
from .command import pairs, positive_float

__all__ = ["add_connection_options", "endpoint"]


def add_connection_options(parser: argparse.ArgumentParser, *, default_timeout: float) -> None:
    """Add the authentication, TLS, header and timeout options to ``parser``."""
    group = parser.add_argument_group("connection (also from PROMETHEUS_REMOTE_WRITE_* variables)")
    group.add_argument("--username", help="basic-auth user name")
    group.add_argument("--password-file", help="file holding the basic-auth password")
    group.add_argument("--bearer-token-file", help="file holding a bearer token")
    group.add_argument("--tenant", help="tenant, sent as X-Scope-OrgID")
    group.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="extra HTTP header (repeatable)"
    )
    group.add_argument("--ca-file", help="PEM CA certificates to verify the server with")
    group.add_argument("--cert-file", help="PEM client certificate (mutual TLS)")
    group.add_argument("--key-file", help="PEM key of --cert-file, if separate")
    group.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        default=None,
        help="do not verify the server's certificate",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        help=f"seconds per request (default: PROMETHEUS_REMOTE_WRITE_TIMEOUT, else {default_timeout:g})",
    )
    parser.set_defaults(default_timeout=default_timeout)


def endpoint(args: argparse.Namespace, url: str) -> EndpointSettings:
    """Resolve the connection options (command line, then environment) into endpoint settings.

    Sets ``args.timeout`` to the timeout resolved.
    """
    headers = pairs(args.header, "--header")
    timeout = args.timeout
    if timeout is None and ENV_TIMEOUT not in os.environ:
        timeout = args.default_timeout
    settings = resolve_settings(
        url=url,
        headers=headers or None,
        username=args.username,
        password_file=args.password_file,
        bearer_token_file=args.bearer_token_file,
        tenant=args.tenant,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        insecure_skip_verify=args.insecure_skip_verify,
        timeout=timeout,
    )
    resolved = settings.endpoints[0]
    args.timeout = resolved.timeout
    return resolved
