"""OpenTelemetry SDK metrics, converted for remote write.

``convert`` turns the SDK's ``MetricsData`` into prometheus_client metric families, as
OpenTelemetry's Prometheus compatibility specification says, so that the 1.0 and 2.0 encoders
of ``_protocol`` send them like any registry's.  Pure, like ``_protocol``: no I/O, no threads.
Needs the ``opentelemetry`` extra (``opentelemetry-sdk``).
"""
