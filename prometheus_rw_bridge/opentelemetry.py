"""OpenTelemetry SDK metrics over remote write: :class:`RemoteWriteMetricExporter`.

Three lines give a ``MeterProvider`` remote write (``pip install 'prometheus-rw-bridge[opentelemetry]'``)::

    from prometheus_rw_bridge.opentelemetry import RemoteWriteMetricExporter

    reader = PeriodicExportingMetricReader(RemoteWriteMetricExporter("http://prometheus:9090/api/v1/write"))
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

Each export is converted as OpenTelemetry's Prometheus compatibility specification says
(``_otel.convert``) and pushed through a :class:`~prometheus_rw_bridge.RemoteWriteBridge` that
has no thread of its own: the reader's thread flushes it, and the bridge's per-endpoint senders
deliver, with the library's retries, ``Retry-After``, negotiation, stale markers, metadata and
self-metrics.  The options, and the ``PROMETHEUS_REMOTE_WRITE_*`` variables, are those of
:func:`~prometheus_rw_bridge.enable_remote_write`, except ``interval``: the reader decides when
to export.  See docs/guides/opentelemetry.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigurationError, MissingDependencyError

try:
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        MetricExporter,
        MetricExportResult,
        MetricsData,
    )
except ImportError as exc:  # the module is the exporter: without the SDK there is nothing to offer
    raise MissingDependencyError(
        "opentelemetry-sdk", "the OpenTelemetry exporter", extra="opentelemetry"
    ) from exc

from ._api import _missing_dependency
from ._delivery.bridge import BridgeStats, RemoteWriteBridge
from ._delivery.setup import build_bridge, resolve
from ._otel.convert import Dropped, convert
from ._otel.feed import Feed, counting_encoders

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.view import Aggregation
    from typing_extensions import Unpack

    from ._options import RemoteWriteOptions

__all__ = ["RemoteWriteMetricExporter"]

logger = logging.getLogger(__name__)

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_INSTRUMENTS = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)

_NATIVE_DISABLED = "native histograms are disabled"
_NATIVE_HINT = (
    "The receiver stores no native histograms, so it refused whole requests holding exponential "
    "histograms: enable them there (Prometheus: --enable-feature=native-histograms; Mimir: "
    "native_histograms_ingestion_enabled) or keep the SDK's explicit-bucket histograms (no "
    "ExponentialBucketHistogramAggregation in preferred_aggregation or views)"
)


class RemoteWriteMetricExporter(MetricExporter):
    """An OpenTelemetry SDK ``MetricExporter`` that pushes over Prometheus remote write.

    Use it with a ``PeriodicExportingMetricReader``.  ``export()`` converts the batch, queues
    it for every endpoint and waits for delivery at most ``timeout_millis``; a batch not
    delivered by then stays queued (bounded, as the bridge's queues are) and ``export()``
    returns ``FAILURE``.  Cumulative temporality makes that safe: the next batch carries every
    count again.  Nothing is ever raised into the SDK; failures are logged and counted
    (:attr:`stats`).

    Without a URL anywhere (argument or ``PROMETHEUS_REMOTE_WRITE_URL``), or with
    ``enabled=False``, the exporter discards every batch (said once, at info) and reports
    ``SUCCESS``.

    Args:
        url: the receiver's remote-write URL, or a list of URLs (each endpoint gets its own
            queue); from ``PROMETHEUS_REMOTE_WRITE_URL`` when not given.
        scope_labels: put ``otel_scope_name``/``otel_scope_version`` on every series and send
            ``otel_scope_info`` for scopes with attributes, as the specification asks.
        target_info: send one ``target_info`` series per resource with the resource
            attributes other than those that make ``job`` and ``instance``.
        preferred_temporality: accepted for symmetry with other exporters: every instrument
            is exported with cumulative temporality, and any other is refused.
        preferred_aggregation: the reader's aggregation per instrument type, e.g.
            ``{Histogram: ExponentialBucketHistogramAggregation()}`` to send native histograms
            (the receiver must store them); the SDK's explicit buckets by default.
        **options: every option of :func:`~prometheus_rw_bridge.enable_remote_write` but
            ``interval`` (the reader's ``export_interval_millis`` decides); each also from its
            ``PROMETHEUS_REMOTE_WRITE_*`` variable.  ``stale_on_close`` applies to ``shutdown()``.

    Raises:
        ConfigurationError: an option is malformed, ``interval`` was given, or a temporality
            other than cumulative was asked for.
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        scope_labels: bool = True,
        target_info: bool = True,
        preferred_temporality: Mapping[type, AggregationTemporality] | None = None,
        preferred_aggregation: Mapping[type, Aggregation] | None = None,
        **options: Unpack[RemoteWriteOptions],
    ) -> None:
        _check_temporality(preferred_temporality)
        if options.get("interval") is not None:
            raise ConfigurationError(
                f"interval={options['interval']!r} does not apply to RemoteWriteMetricExporter: the reader "
                "exports when it collects; set PeriodicExportingMetricReader(export_interval_millis=...)"
            )
        super().__init__(
            preferred_temporality=dict.fromkeys(_INSTRUMENTS, _CUMULATIVE),
            preferred_aggregation=dict(preferred_aggregation) if preferred_aggregation else None,
        )
        self._scope_labels = scope_labels
        self._target_info = target_info
        self._feed = Feed()
        self._pid = os.getpid()
        self._said: set[tuple[int, str]] = set()  # (pid, what) logged once
        settings = resolve(url=url, **options)
        self._discard = not settings.active  # off by configuration: every batch is discarded, successfully
        self._stale_on_close = settings.stale_on_close
        reason = _off_reason(settings)
        if reason is not None:
            self._bridge = RemoteWriteBridge.disabled(reason)
            self._say_once("off", logging.INFO if self._discard else logging.WARNING, reason)
            return
        encoders = counting_encoders(self._feed)
        self._bridge = build_bridge(self._feed, settings, encoder_types=encoders, start=False)

    # -- the MetricExporter interface ------------------------------------------------------

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Push one batch; wait at most ``timeout_millis`` for every endpoint to have it.

        Returns:
            ``SUCCESS`` when every endpoint received it (or the exporter is off by
            configuration); ``FAILURE`` when the time ran out first (the batch stays queued), a
            receiver refused it, or the exporter is shut down.
        """
        try:
            return self._export(metrics_data, _seconds(timeout_millis))
        except Exception:  # never into the SDK
            logger.error("RemoteWriteMetricExporter: the export failed", exc_info=True)
            return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Wait at most ``timeout_millis`` until what earlier exports queued is delivered; tell if it was."""
        try:
            if not self._running():
                return self._discard
            return self._bridge.flush(_seconds(timeout_millis), collect=False)
        except Exception:
            logger.error("RemoteWriteMetricExporter: force_flush failed", exc_info=True)
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """End every series sent with a stale marker (``stale_on_close``), within the timeout.

        Without ``stale_on_close`` the last batch is sent once more instead (receivers take the
        unchanged samples as duplicates).  Idempotent.  The SDK's reader passes its remaining
        time as ``timeout`` (milliseconds), which is honoured too.
        """
        timeout = kwargs.get("timeout", timeout_millis)
        try:
            if self._running():
                if self._stale_on_close:
                    # The bridge's last collection then finds none of the series it sent: each
                    # gets its stale marker there, instead of being sent once more first.
                    self._feed.end()
                self._bridge.close(_seconds(timeout))
        except Exception:
            logger.error("RemoteWriteMetricExporter: shutdown failed", exc_info=True)

    # -- more --------------------------------------------------------------------------------

    @property
    def stats(self) -> BridgeStats:
        """What the exporter has done so far, summed over its endpoints (``BridgeStats``).

        Data points the conversion left out are among ``dropped_by_reason`` under the words of
        ``_otel.convert``'s ``DROP_*`` (``delta_temporality``, ``name_conflict``, ...).
        """
        return self._bridge.stats

    @property
    def endpoints(self) -> list[str]:
        """The endpoints' URLs, credentials removed."""
        return self._bridge.endpoints

    def __repr__(self) -> str:
        return f"<RemoteWriteMetricExporter {self._bridge!r}>"

    # -- internals ---------------------------------------------------------------------------

    def _export(self, data: MetricsData | None, timeout: float) -> MetricExportResult:
        deadline = time.monotonic() + timeout
        if not self._running():
            return MetricExportResult.SUCCESS if self._discard else MetricExportResult.FAILURE
        if data is None:
            return MetricExportResult.SUCCESS
        conversion = convert(data, scope_labels=self._scope_labels, target_info=self._target_info)
        for dropped in conversion.dropped:
            self._say_dropped(dropped)
        self._feed.update(data, conversion)
        delivered = self._bridge.flush(max(0.0, deadline - time.monotonic()))
        if not delivered and _NATIVE_DISABLED in (self._bridge.stats.last_error or ""):
            self._say_once("native", logging.WARNING, _NATIVE_HINT)
        return MetricExportResult.SUCCESS if delivered else MetricExportResult.FAILURE

    def _running(self) -> bool:
        """Tell whether the bridge pushes; say once in a forked child why it does not there."""
        if os.getpid() != self._pid:
            self._say_once(
                "fork",
                logging.INFO,
                f"RemoteWriteMetricExporter: inherited across fork, it exports nothing in this child (pid "
                f"{os.getpid()}), so that two processes never push the same series. Create the MeterProvider "
                "and its exporter in the child (gunicorn: post_fork; give each its own service.instance.id)",
            )
            return False
        return self._bridge.enabled

    def _say_dropped(self, dropped: Dropped) -> None:
        self._say_once(
            f"dropped {dropped.metric} {dropped.reason}",
            logging.WARNING,
            f"OpenTelemetry metric {dropped.metric!r} {dropped.reason}; it is not sent "
            f"(counted as dropped, reason {dropped.kind!r})",
        )

    def _say_once(self, what: str, level: int, message: str) -> None:
        key = (os.getpid(), what)
        if key not in self._said:
            self._said.add(key)
            logger.log(level, "%s", message)


def _seconds(millis: float) -> float:
    return max(0.0, float(millis) / 1000.0)


def _check_temporality(preferred: Mapping[type, AggregationTemporality] | None) -> None:
    """Refuse any temporality but cumulative, naming the setting and the instrument."""
    for instrument, temporality in (preferred or {}).items():
        if temporality is not _CUMULATIVE:
            name = getattr(instrument, "__name__", repr(instrument))
            given = f"AggregationTemporality.{getattr(temporality, 'name', temporality)}"
            raise ConfigurationError(
                f"preferred_temporality={{{name}: {given}}} is not supported: remote write needs "
                "cumulative temporality (Prometheus series are cumulative; a missed delta would lose "
                "counts). Allowed: AggregationTemporality.CUMULATIVE, the default"
            )


def _off_reason(settings: Any) -> str | None:
    """Say why an exporter with these settings cannot push, or None when it can."""
    if not settings.enabled:
        return "RemoteWriteMetricExporter: disabled by configuration; every export is discarded"
    if not settings.endpoints:
        return (
            "RemoteWriteMetricExporter: no remote-write URL given (argument or PROMETHEUS_REMOTE_WRITE_URL); "
            "every export is discarded"
        )
    missing = _missing_dependency()
    if missing is not None:
        return f"RemoteWriteMetricExporter: remote write is off: {missing}"
    return None
