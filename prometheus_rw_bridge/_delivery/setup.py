"""Assemble a running bridge from resolved :class:`~prometheus_rw_bridge._config.Settings`.

The one place where configuration meets the moving parts: encoder(s), one transport and
sender per endpoint, self-metrics.  Kept apart from ``_api`` so the public functions read as
policy, not plumbing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._config.settings import EndpointSettings, Settings, resolve_settings
from .._protocol.encode import Encoder
from .bridge import RemoteWriteBridge
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


def build_bridge(
    registry: Any,
    settings: Settings,
    *,
    encoder_types: Mapping[str, Callable[..., Any]] | None = None,
    start: bool = True,
) -> RemoteWriteBridge:
    """Build a bridge for ``registry`` as ``settings`` describe, and start it unless told not to.

    Args:
        registry: what the bridge collects (anything with ``collect()``).
        settings: the resolved settings.
        encoder_types: the encoder to build for each protocol (``"1.0"``, ``"2.0"``), called
            with the encoders' keyword options; ``_protocol``'s ``Encoder`` and ``EncoderV2``
            by default.
        start: start the collector thread; without it the bridge pushes only when flushed
            (the OpenTelemetry exporter, whose reader has its own thread).
    """

    warned: set[tuple[str, str]] = set()  # the 1.0 and 2.0 encoders see the same problems: log each once
    types: dict[str, Callable[..., Any]] = {"1.0": Encoder}
    if settings.protocol != "1.0":
        from .._protocol.encode_v2 import EncoderV2

        types["2.0"] = EncoderV2
    types.update(encoder_types or {})

    def encoder_of(protocol: str) -> Any:
        return types[protocol](
            job=settings.job,
            instance=settings.instance,
            external_labels=settings.external_labels,
            track_staleness=True,
            metric_filter=settings.metric_filter,
            warned=warned,
        )

    encoder = encoder_of("1.0")
    encoder_v2 = encoder_of("2.0") if settings.protocol != "1.0" else None
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
        encoder=encoder,
        encoder_v2=encoder_v2,
        interval=settings.interval,
        max_samples_per_send=settings.max_samples_per_send,
        stale_on_close=settings.stale_on_close,
        debug=settings.debug,
        start=False,
    )
    if settings.self_metrics:
        bridge.register_self_metrics()
    if start:
        bridge.start()
    return bridge
