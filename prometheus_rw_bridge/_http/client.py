"""The client factory: the ``httpx.Client`` and the transport of one endpoint, from its settings.

:func:`make_client` gives the client what is the client's business: TLS (an ``ssl.SSLContext``
with the CA file, the client certificate, or no verification), the proxy, the timeout, no
redirects.  What the bridge adds to every request (the protocol's headers, the endpoint's
headers and tenant, its auth) is the transport's, per request, so that a client the user gives
(``http_client=``) gets exactly the same.  :func:`endpoint_transport` puts the two together.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from typing import Any

import httpx

from .._config.settings import EndpointSettings
from .._exceptions import ConfigurationError
from .._redact import safe_url, userinfo_secrets
from .auth import BasicAuth, BearerTokenAuth, FileBasicAuth
from .errors import DEFAULT_TRUST_STORE
from .oauth2 import OAuth2Auth
from .sigv4 import SigV4Auth
from .transport import HttpxTransport

__all__ = ["auth_of", "endpoint_transport", "make_client", "make_ssl_context"]

logger = logging.getLogger(__name__)

# httpx 0.26 added ``proxy=``; 0.28 removed ``proxies=``.
_PROXY_KWARG = "proxy" if "proxy" in inspect.signature(httpx.Client.__init__).parameters else "proxies"


def make_ssl_context(endpoint: EndpointSettings) -> ssl.SSLContext | bool:
    """Return the ``verify`` argument for httpx: ``True`` (httpx's default) or a context.

    Raises:
        ConfigurationError: the CA file, certificate or key cannot be loaded; names the file.
    """
    if not (endpoint.ca_file or endpoint.cert_file or endpoint.insecure_skip_verify):
        return True
    if endpoint.ca_file:
        try:
            context = ssl.create_default_context(cafile=endpoint.ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(
                f"ca_file {endpoint.ca_file!r} is not valid: expected PEM CA certificates ({exc})"
            ) from None
    else:
        context = httpx.create_ssl_context()  # the trust store httpx uses by default
    if endpoint.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.cert_file:
        try:
            context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        except (ssl.SSLError, OSError) as exc:
            files = f"cert_file {endpoint.cert_file!r}" + (
                f" and key_file {endpoint.key_file!r}" if endpoint.key_file else ""
            )
            raise ConfigurationError(
                f"{files} are not valid: expected a PEM client certificate and its unencrypted key ({exc})"
            ) from None
    return context


def make_client(endpoint: EndpointSettings) -> httpx.Client:
    """Build the ``httpx.Client`` for one endpoint: TLS, proxy, timeout; redirects not followed.

    The standard ``HTTPS_PROXY`` / ``NO_PROXY`` variables apply unless a proxy is configured.
    An ``https`` client loads its trust store here, not on its first connection (which would
    import certifi in the sending thread, where nothing may be imported: docs/architecture.md,
    "Forks").

    Args:
        endpoint: the resolved settings of the endpoint.

    Returns:
        A new client; the caller closes it.

    Raises:
        ConfigurationError: a TLS file cannot be loaded.
    """
    verify = make_ssl_context(endpoint)
    if endpoint.insecure_skip_verify:
        logger.warning(
            "TLS certificate verification is off for %s (insecure_skip_verify); use it for testing only",
            safe_url(endpoint.url),
        )
    kwargs: dict[str, Any] = {}
    if endpoint.proxy:
        kwargs[_PROXY_KWARG] = endpoint.proxy
    return httpx.Client(
        verify=verify, timeout=httpx.Timeout(endpoint.timeout), follow_redirects=False, **kwargs
    )


def auth_of(endpoint: EndpointSettings) -> httpx.Auth | None:
    """Return the httpx auth the endpoint's settings ask for, or None for none.

    Raises:
        ConfigurationError: SigV4 finds no region or no credentials.
        MissingDependencyError: SigV4 is asked for and botocore is not installed.
    """
    if endpoint.auth is not None:
        auth: httpx.Auth = endpoint.auth
        return auth
    if endpoint.sigv4:
        return SigV4Auth(
            region=endpoint.sigv4_region,
            service=endpoint.sigv4_service or "aps",
            role_arn=endpoint.sigv4_role_arn,
            timeout=endpoint.timeout,
        )
    if endpoint.oauth2_client_id is not None and endpoint.oauth2_token_url is not None:
        return OAuth2Auth(
            client_id=endpoint.oauth2_client_id,
            token_url=endpoint.oauth2_token_url,
            client_secret=endpoint.oauth2_client_secret,
            client_secret_file=endpoint.oauth2_client_secret_file,
            scopes=endpoint.oauth2_scopes or (),
            endpoint_params=endpoint.oauth2_endpoint_params or {},
        )
    if endpoint.bearer_token is not None or endpoint.bearer_token_file is not None:
        return BearerTokenAuth(endpoint.bearer_token, token_file=endpoint.bearer_token_file)
    if endpoint.password_file is not None:
        return FileBasicAuth(endpoint.username or "", endpoint.password_file)
    if endpoint.username is not None:
        return BasicAuth(endpoint.username, endpoint.password or "")
    return None


def endpoint_transport(endpoint: EndpointSettings) -> HttpxTransport:
    """Build the transport of one endpoint: its client (the given ``http_client``, or ours) and auth.

    A given client is used as it is and never closed by the transport; the endpoint's headers,
    tenant and auth are added to each request on top of the client's own.

    Raises:
        ConfigurationError: a TLS file cannot be loaded, ``http_client`` is no ``httpx.Client``,
            or SigV4 finds no region or credentials.
        MissingDependencyError: SigV4 is asked for and botocore is not installed.
    """
    auth = auth_of(endpoint)
    given = endpoint.http_client
    if given is not None:
        client, trust_store = given, None
    else:
        client = make_client(endpoint)
        trust_store = f"CA file {endpoint.ca_file}" if endpoint.ca_file else DEFAULT_TRUST_STORE
    try:
        return HttpxTransport(
            endpoint.url,
            client=client,
            timeout=endpoint.timeout,
            headers=endpoint.request_headers,
            remote_name=endpoint.name or None,
            auth=auth,
            owns_client=given is None,
            secrets=_endpoint_secrets(endpoint),
            trust_store=trust_store,
        )
    except BaseException:
        if given is None:
            client.close()
        raise


def _endpoint_secrets(endpoint: EndpointSettings) -> tuple[str, ...]:
    """The secrets of an endpoint's settings that no auth reports: the proxy URL's password."""
    return userinfo_secrets(endpoint.proxy) if endpoint.proxy else ()
