"""Assemble a running bridge from resolved :class:`~prometheus_rw_bridge._config.Settings`.

The one place where configuration meets the moving parts: one transport and sender per
endpoint, encoders per group of endpoints with equal relabel rules (``groups``), self-metrics.
Kept apart from ``_api`` so the public functions read as policy, not plumbing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._config.settings import EndpointSettings, Settings, resolve_settings
from .._exceptions import ConfigurationError
from .bridge import RemoteWriteBridge
from .groups import EncoderGroup, group_by_rules, make_encoders
from .sender import EndpointSender

if TYPE_CHECKING:
    from .spool import Spool

__all__ = ["build_bridge", "make_spools", "make_transport", "make_transports", "resolve"]


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


def make_spools(settings: Settings, transports: Sequence[Any]) -> list[Spool | None]:
    """Open (and own) every endpoint's spool under ``spool_dir``, or none: on a failure the ones
    opened, and ``transports``, are closed.

    Raises:
        SpoolLockedError: another process owns an endpoint's spool directory (the error names it).
        ConfigurationError: ``spool_dir`` cannot be created or read.
    """
    if settings.spool_dir is None:
        return [None] * len(settings.endpoints)
    from .spooled import open_spool

    spools: list[Spool | None] = []
    try:
        for endpoint in settings.endpoints:
            try:
                spools.append(
                    open_spool(settings.spool_dir, endpoint.url, endpoint.tenant, settings.spool_max_bytes)
                )
            except OSError as exc:
                raise ConfigurationError(
                    f"spool_dir={settings.spool_dir!r} cannot be used for {endpoint.url}: {exc}"
                ) from exc
    except BaseException:
        for spool in spools:
            if spool is not None:
                spool.close()
        for transport in transports:
            transport.close()
        raise
    return spools


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

    warned: set[tuple[str, str]] = set()  # every encoder sees the same problems: log each once
    encoders = [
        (indices, make_encoders(settings, rules, warned=warned, track_staleness=True, types=encoder_types))
        for rules, indices in group_by_rules(settings.endpoints)
    ]
    transports = make_transports(settings.endpoints)
    spools = make_spools(settings, transports)
    senders = []
    for index, (endpoint, transport) in enumerate(zip(settings.endpoints, transports, strict=True)):
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
                max_shards=endpoint.max_shards,
                sample_age_limit=endpoint.sample_age_limit,
                max_bytes_per_send=settings.max_bytes_per_send,
                spool=spools[index],
                thread_name=f"prometheus-rw-bridge-send-{index}",
            )
        )
    bridge = RemoteWriteBridge(
        registry,
        senders,
        groups=[EncoderGroup([senders[i] for i in indices], *pair) for indices, pair in encoders],
        interval=settings.interval,
        stale_on_close=settings.stale_on_close,
        debug=settings.debug,
        start=False,
        # What each collection is cut into:
        max_samples_per_send=settings.max_samples_per_send,
        max_bytes_per_send=settings.max_bytes_per_send,
    )
    if settings.self_metrics:
        bridge.register_self_metrics()
    if start:
        bridge.start()
    return bridge
