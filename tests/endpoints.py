"""An endpoint built from options, and a body sent through it as the bridge sends it."""

from __future__ import annotations

from typing import Any

from prometheus_rw_bridge._config.settings import EndpointSettings, resolve_settings
from prometheus_rw_bridge._http.client import endpoint_transport
from prometheus_rw_bridge._http.transport import SendResult

__all__ = ["BODY", "endpoint_for", "post"]

BODY = b"\x00payload"


def endpoint_for(url: str, **options: Any) -> EndpointSettings:
    """Resolve the settings of one endpoint from ``options`` alone (no environment)."""
    settings = resolve_settings(url=url, **options, environ={})
    assert len(settings.endpoints) == 1
    return settings.endpoints[0]


def post(endpoint: EndpointSettings, body: bytes = BODY) -> SendResult:
    """Send ``body`` once through the endpoint's own transport."""
    with endpoint_transport(endpoint) as transport:
        return transport.send(body)
