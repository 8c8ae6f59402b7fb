"""OpenTelemetry SDK metrics, converted for remote write.

``convert`` turns the SDK's ``MetricsData`` into prometheus_client metric families, as
OpenTelemetry's Prometheus compatibility specification says (``points`` converts each data
point, ``names`` the names, units and attributes), so that the 1.0 and 2.0 encoders of
``_protocol`` send them like any registry's; ``feed`` is what the exporter's bridge collects.
Pure, like ``_protocol``: no I/O, no threads.  The exporter is ``prometheus_rw_bridge.opentelemetry``.
Needs the ``opentelemetry`` extra (``opentelemetry-sdk``).
"""
