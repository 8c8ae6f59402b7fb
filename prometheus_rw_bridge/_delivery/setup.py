"""Assemble a running bridge from resolved :class:`~prometheus_rw_bridge._config.Settings`.

The one place where configuration meets the moving parts: one transport and sender per
endpoint, encoders per group of endpoints with equal relabel rules (``groups``), self-metrics.
Kept apart from ``_api`` so the public functions read as policy, not plumbing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._config.settings import EndpointSettings, Settings, resolve_settings
from .bridge import RemoteWriteBridge
from .groups import EncoderGroup, group_by_rules, make_encoders
from .sender import EndpointSender

__all__ = ["build_bridge", "make_transport", "make_transports", "resolve"]


def resolve(**kwargs: Any) -> Settings:
    """Resolve settings from explicit arguments, then the environment, then defaults."""
    return resolve_settings(**kwargs)


def make_transport(endpoint: EndpointSettings) -> Any:
    """Build the transport for one endpoint: its HTTP client (``http_client`` or its own), auth, headers.

    The transport is warmed up here, in the building thread, so that the thread that later
    sends through it imports nothing (docs/architecture.md, "Forks").
    """
    from .._http.client import endpoint_transport

    transport = endpoint_transport(endpoint)
    transport.warm_up()
    return transport


def make_transports(endpoints: Sequence[EndpointSettings]) -> list[Any]:
    """Build every endpoint's transport, or none: on a failure the ones made are closed.

    A bad endpoint (say, an unreadable CA file) thus fails before any thread starts.
    """
    transports: list[Any] = []
    try:
        for endpoint in endpoints:
            transports.append(make_transport(endpoint))
    except BaseException:
        for transport in transports:
            transport.close()
        raise
    return transports


def build_bridge(registry: Any, settings: Settings) -> RemoteWriteBridge:
    """Start a bridge for ``registry`` as ``settings`` describe."""
    warned: set[tuple[str, str]] = set()  # every encoder sees the same problems: log each once
    encoders = [
        (indices, make_encoders(settings, rules, warned=warned, track_staleness=True))
        for rules, indices in group_by_rules(settings.endpoints)
    ]
    transports = make_transports(settings.endpoints)
    senders = []
    for index, transport in enumerate(transports):
        negotiator = None
        if settings.protocol != "1.0":
            from .negotiate import Negotiator

            negotiator = Negotiator(settings.protocol)
        senders.append(
            EndpointSender(
                transport,
                max_pending_collections=settings.queue_capacity,
                max_pending_bytes=settings.queue_max_bytes,
                negotiator=negotiator,
                thread_name=f"prometheus-rw-bridge-send-{index}",
            )
        )
    bridge = RemoteWriteBridge(
        registry,
        senders,
        groups=[EncoderGroup([senders[i] for i in indices], *pair) for indices, pair in encoders],
        interval=settings.interval,
        max_samples_per_send=settings.max_samples_per_send,
        stale_on_close=settings.stale_on_close,
        debug=settings.debug,
        start=False,
    )
    if settings.self_metrics:
        bridge.register_self_metrics()
    bridge.start()
    return bridge
