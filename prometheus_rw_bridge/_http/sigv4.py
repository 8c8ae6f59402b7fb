"""AWS Signature Version 4 on each request, signed by botocore (the ``aws`` extra), optionally as a role.

Credentials come from botocore's usual chain (environment, profile, SSO, instance or task role)
and are refreshed by botocore when they expire.  With ``role_arn``, those credentials are only
used to assume the role through STS (``AssumeRole``, botocore's own fetcher); requests are
signed with the role's temporary credentials, which botocore fetches on first use and again
before they expire.

Nothing here retries on its own or waits longer than the endpoint's timeout: the STS client
makes one attempt per call, and a failure becomes the package's error (``TransportError`` with
no answer, ``RetryableReceiverError`` for a 5xx or throttling, ``NonRetryableReceiverError``
for a refusal), so the sender's retry loop retries an STS endpoint as it retries a receiver.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import httpx

from .._exceptions import (
    ConfigurationError,
    MissingDependencyError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    SendError,
    TransportError,
)
from .._redact import safe_url, scrub, secret_forms

__all__ = ["SigV4Auth"]

# Headers a proxy or the HTTP stack may change or drop; signing them would break the signature.
_UNSIGNED_HEADERS = frozenset(
    {"accept", "accept-encoding", "connection", "expect", "transfer-encoding", "user-agent"}
)

_SESSION_NAME = "prometheus-rw-bridge"
_THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


class SigV4Auth(httpx.Auth):
    """AWS Signature Version 4 on each request, signed by botocore (the ``aws`` extra).

    Args:
        region: the AWS region; by default botocore's configured region.
        service: the signing name; ``aps`` for Amazon Managed Service for Prometheus.
        credentials: botocore credentials to use instead of the default chain.
        role_arn: an IAM role to assume (through STS, with those credentials) and sign as.
        timeout: seconds an STS request may take.

    Raises:
        MissingDependencyError: botocore is not installed.
        ConfigurationError: no region or no credentials can be found.
    """

    requires_request_body = True

    def __init__(
        self,
        *,
        region: str | None = None,
        service: str = "aps",
        credentials: Any = None,
        role_arn: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        try:
            import botocore.auth
            import botocore.awsrequest
            import botocore.credentials
            import botocore.exceptions
            import botocore.session
        except ImportError as exc:
            raise MissingDependencyError("botocore", "SigV4 signing", extra="aws") from exc
        self._signer_class = botocore.auth.SigV4Auth
        self._request_class = botocore.awsrequest.AWSRequest
        self._errors = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
        session = botocore.session.get_session() if credentials is None or region is None else None
        # botocore's configured region reads AWS_DEFAULT_REGION and the profile, not AWS_REGION,
        # which the AWS SDKs and Lambda set: take it too.
        configured = session.get_config_variable("region") if session is not None else None
        self.region = region or configured or os.environ.get("AWS_REGION") or None
        if not self.region:
            raise ConfigurationError(
                "sigv4_region: no AWS region given and none configured; set sigv4_region, "
                "PROMETHEUS_REMOTE_WRITE_SIGV4_REGION, AWS_REGION or AWS_DEFAULT_REGION (or a region "
                "in the AWS profile)"
            )
        self.service = service
        self.role_arn = role_arn
        source = credentials if credentials is not None else session.get_credentials()  # type: ignore[union-attr]
        if source is None:
            raise ConfigurationError(
                "sigv4: no AWS credentials found (environment, shared config/credentials file, "
                "SSO, or instance/task role)"
            )
        # Values known without asking botocore to refresh anything (which may mean I/O).
        plain = type(source) is botocore.credentials.Credentials
        self._known: list[Any] = [source.get_frozen_credentials()] if plain else []
        self._sts: Any = None
        self._credentials = source
        if role_arn is not None:
            self._credentials = self._assuming(session or botocore.session.get_session(), source, timeout)

    def _assuming(self, session: Any, source: Any, timeout: float) -> Any:
        """Credentials of ``role_arn``, fetched through STS on first use and refreshed before they expire."""
        import botocore.config
        import botocore.credentials

        # One attempt per call, bounded by the endpoint's timeout: retrying is the sender's job.
        config = botocore.config.Config(
            retries={"total_max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout
        )
        # Built here, where importing is safe; the endpoint comes from botocore's configuration
        # (AWS_ENDPOINT_URL_STS, a profile's services section), else STS in the region.
        self._sts = session.create_client("sts", region_name=self.region, config=config)
        fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
            client_creator=lambda *args, **kwargs: self._sts,  # signs with the session's own chain
            source_credentials=source,
            role_arn=self.role_arn,
            extra_args={"RoleSessionName": _SESSION_NAME},
        )
        return botocore.credentials.DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )

    def __repr__(self) -> str:
        role = f", role_arn={self.role_arn!r}" if self.role_arn else ""
        return f"SigV4Auth(region={self.region!r}, service={self.service!r}{role})"

    def secrets(self) -> tuple[str, ...]:
        """The secret keys and session tokens signed with so far, to be masked wherever they come back.

        Never asks botocore for credentials: that could refresh them, with I/O, from a log filter.
        """
        return tuple(
            value for known in list(self._known) for value in (known.secret_key, known.token) if value
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        credentials = self._frozen()
        signed = self._request_class(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() not in _UNSIGNED_HEADERS},
        )
        self._signer_class(credentials, self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request

    def warm_up(self) -> None:
        """Sign once as a send would, in the calling thread, without fetching a role's credentials.

        A role's first STS call waits on the network, which the thread that builds the bridge
        (an application's) must not; its client was built when this auth was.
        """
        if self.role_arn is None:
            try:
                self._frozen()  # may refresh credentials now (a credential_process), as a send would
            except SendError:
                pass  # send() reports it
        self._signer_class(_placeholder(), self.service, self.region).add_auth(
            self._request_class(method="POST", url="https://warm-up.invalid/", data=b"", headers={})
        )

    def _frozen(self) -> Any:
        """The credentials to sign with now; a failure to get them is a ``SendError``."""
        try:
            credentials = self._credentials.get_frozen_credentials()
        except self._errors as exc:
            raise self._failure(exc) from exc
        if not self._known or self._known[-1] != credentials:
            self._known = [*self._known[-3:], credentials]
        return credentials

    def _failure(self, exc: Exception) -> SendError:
        """Translate botocore's failure to get credentials (an STS call, a credential process)."""
        secrets = secret_forms(self.secrets())
        response = getattr(exc, "response", None)
        if self._sts is None or not isinstance(response, dict):
            what = f"assume role {self.role_arn}" if self.role_arn else "get AWS credentials"
            return TransportError(scrub(f"cannot {what}: {exc}", secrets))
        where = safe_url(self._sts.meta.endpoint_url)
        message = scrub(f"assuming role {self.role_arn}: {exc}", secrets)
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = response.get("Error", {}).get("Code", "")
        if status >= 500 or status == 429 or code in _THROTTLING:
            return RetryableReceiverError(status or 429, message, where)
        return NonRetryableReceiverError(status or 400, message, where)


def _placeholder() -> Any:
    """Credentials that sign nothing real, for the warm-up (an identifier, not a secret)."""
    import botocore.credentials

    return botocore.credentials.Credentials("AKIDWARMUP", "warm-up", None)
