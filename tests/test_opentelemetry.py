"""RemoteWriteMetricExporter with the real OpenTelemetry SDK, against the scripted receiver.

Every test records with a real ``MeterProvider`` and exports through a real
``PeriodicExportingMetricReader`` (``export_interval_millis=inf``: the test decides when it
collects, with ``force_flush``) or hands the SDK's ``MetricsData`` to ``export()`` itself.
What arrives is decoded and checked; timeouts are proved against a receiver that never
answers, so an export, flush or shutdown that waited for it could not return at all.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from forking import fork_child
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from otel_sdk import SERVICE, record

import prometheus_rw_bridge.opentelemetry
from prometheus_rw_bridge import ConfigurationError, is_stale_nan
from prometheus_rw_bridge._otel.convert import DROP_NAME_CONFLICT
from prometheus_rw_bridge.opentelemetry import RemoteWriteMetricExporter
from prometheus_rw_bridge.testing import HANG, ReceivedRequest, Receiver, Reply

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "opentelemetry.md"
SUCCESS, FAILURE = MetricExportResult.SUCCESS, MetricExportResult.FAILURE
IDENTITY = {"job": "shop/checkout", "instance": "pod-7"}
QUIET = {"self_metrics": False}  # the requests then hold the application's series only


@contextmanager
def pipeline(
    exporter: RemoteWriteMetricExporter, *, resource: dict[str, Any] | None = None, **reader: Any
) -> Iterator[tuple[MeterProvider, Meter]]:
    """A provider whose reader exports to ``exporter`` only when flushed; shut down at the end."""
    reader.setdefault("export_interval_millis", math.inf)
    provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, **reader)],
        resource=Resource.create(resource or SERVICE),
        shutdown_on_exit=False,
    )
    try:
        yield provider, provider.get_meter("shop.checkout", "2.1.0")
    finally:
        provider.shutdown(timeout_millis=10_000)


def by_name(request: ReceivedRequest) -> dict[str, list[Any]]:
    """The series of a decoded request, by name."""
    assert request.decoded is not None, request.decode_error
    found: dict[str, list[Any]] = {}
    for series in request.decoded.series:
        found.setdefault(series.name, []).append(series)
    return found


def value(request: ReceivedRequest, name: str) -> float:
    (series,) = by_name(request)[name]
    (sample,) = series.samples
    return float(sample.value)


# --- set-up and what arrives ----------------------------------------------------------------


def test_a_periodic_reader_pushes_the_sdk_metrics_under_prometheus_names(
    fault_receiver: Receiver,
) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_counter("http.server.requests", unit="{request}").add(3, {"http.route": "/cart"})
        meter.create_histogram("http.server.duration", unit="s").record(0.2)
        assert provider.force_flush(timeout_millis=10_000)
        (request,) = fault_receiver.wait_for_requests(1)
    series = by_name(request)
    (requests,) = series["http_server_requests_total"]
    assert requests.labels == {
        "__name__": "http_server_requests_total",
        **IDENTITY,
        "http_route": "/cart",
        "otel_scope_name": "shop.checkout",
        "otel_scope_version": "2.1.0",
    }
    assert [s.value for s in requests.samples] == [3.0]
    buckets = {s.labels["le"]: s.samples[0].value for s in series["http_server_duration_seconds_bucket"]}
    # The SDK's default bounds (0, 5, 10, ...): 0.2 is in (0, 5], so every bucket from 5 on counts it.
    assert (buckets["0.0"], buckets["5.0"], buckets["10.0"], buckets["+Inf"]) == (0.0, 1.0, 1.0, 1.0)
    assert value(request, "http_server_duration_seconds_count") == 1.0
    assert "target_info" in series
    metadata = {m.metric_family_name: m for m in request.decoded.metadata}  # type: ignore[union-attr]
    assert metadata["http_server_duration_seconds"].type == "histogram"
    assert metadata["http_server_duration_seconds"].unit == "seconds"


def test_the_guide_s_three_line_set_up_pushes(fault_receiver: Receiver) -> None:
    (set_up,) = re.findall(r"## Set-up in three lines.*?```python\n(.*?)```", GUIDE.read_text(), re.S)
    program = set_up.replace("http://prometheus:9090/api/v1/write", fault_receiver.url) + (
        "metrics.get_meter('guide').create_counter('guide.runs').add(1)\n"
        "metrics.get_meter_provider().shutdown()\n"  # what the SDK does at exit: the last export
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_REMOTE_WRITE_")}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    pushed = [r for r in fault_receiver.requests if "guide_runs_total" in by_name(r)]
    assert pushed and value(pushed[0], "guide_runs_total") == 1.0


def test_the_guide_s_example_test_passes(tmp_path: Path) -> None:
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S) if "def test_" in b]
    (tmp_path / "test_example.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_REMOTE_WRITE_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b1 passed\b", done.stdout), done.stdout


def test_the_public_names() -> None:
    assert prometheus_rw_bridge.opentelemetry.__all__ == ["RemoteWriteMetricExporter"]


def test_options_and_the_environment_are_those_of_enable_remote_write(
    fault_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {"URL": fault_receiver.url, "TENANT": "team-a", "HEADERS": "X-Team=checkout"}
    for name, setting in {**environment, "EXTERNAL_LABELS": "region=eu"}.items():
        monkeypatch.setenv(f"PROMETHEUS_REMOTE_WRITE_{name}", setting)
    exporter = RemoteWriteMetricExporter(bearer_token="not-a-real-token", metric_drop="ignored_.*", **QUIET)
    assert exporter.export(record(_counter_and_ignored), timeout_millis=10_000) is SUCCESS
    (request,) = fault_receiver.wait_for_requests(1)
    assert request.header("X-Scope-OrgID") == "team-a"
    assert request.header("X-Team") == "checkout"
    assert request.header("Authorization") == "Bearer not-a-real-token"
    series = by_name(request)
    assert "ignored_total" not in series
    (orders,) = series["orders_total"]
    assert orders.labels["region"] == "eu"
    exporter.shutdown()


def _counter_and_ignored(meter: Meter) -> None:
    meter.create_counter("orders").add(1)
    meter.create_counter("ignored").add(1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"preferred_temporality": {Counter: AggregationTemporality.DELTA}},
            "preferred_temporality={Counter: AggregationTemporality.DELTA}",
            id="delta",
        ),
        pytest.param({"interval": 5}, "export_interval_millis", id="interval"),
        pytest.param({"timeout": "soon"}, "timeout", id="malformed-option"),
        pytest.param({"protocol": "3.0"}, "protocol", id="protocol"),
    ],
)
def test_bad_configuration_fails_in_the_constructor_naming_the_setting(
    fault_receiver: Receiver, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("{", r"\{").replace("}", r"\}")):
        RemoteWriteMetricExporter(fault_receiver.url, **options)


def test_cumulative_temporality_is_asked_of_the_reader(fault_receiver: Receiver) -> None:
    exporter = RemoteWriteMetricExporter(
        fault_receiver.url,
        preferred_temporality={Counter: AggregationTemporality.CUMULATIVE},
        **QUIET,
    )
    assert set(exporter._preferred_temporality.values()) == {AggregationTemporality.CUMULATIVE}
    with pipeline(exporter) as (provider, meter):
        counter = meter.create_counter("orders")
        counter.add(2)
        provider.force_flush()
        counter.add(3)
        provider.force_flush()
        first, second = fault_receiver.wait_for_requests(2)
    assert (value(first, "orders_total"), value(second, "orders_total")) == (2.0, 5.0)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="no-url"),
        pytest.param({"url": "http://127.0.0.1:9/w", "enabled": False}, id="off"),
    ],
)
def test_without_a_url_or_when_disabled_exports_are_discarded_successfully(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PROMETHEUS_REMOTE_WRITE_URL", raising=False)
    caplog.set_level(logging.INFO, logger="prometheus_rw_bridge.opentelemetry")
    exporter = RemoteWriteMetricExporter(**options)
    data = record(lambda meter: meter.create_counter("c").add(1))
    assert [exporter.export(data), exporter.export(data)] == [SUCCESS, SUCCESS]
    assert exporter.force_flush() is True
    exporter.shutdown()
    (said,) = [r for r in caplog.records if r.name == "prometheus_rw_bridge.opentelemetry"]
    assert "every export is discarded" in said.getMessage()


# --- delivery: retries, refusals, timeouts --------------------------------------------------


def test_a_503_then_a_429_with_retry_after_are_retried_as_the_bridge_does(
    fault_receiver: Receiver,
) -> None:
    fault_receiver.script(Reply(503, "busy"), Reply(429, "slow down", headers={"Retry-After": "1"}))
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_counter("orders").add(1)
        provider.force_flush(timeout_millis=30_000)
        assert exporter.force_flush(timeout_millis=0)  # the export was delivered: nothing is left
        first, second, third = fault_receiver.wait_for_requests(3)
        stats = exporter.stats
    assert [r.status for r in (first, second, third)] == [503, 429, 204]
    assert first.body == second.body == third.body
    assert [r.header("Retry-Attempt") for r in (first, second, third)] == [None, "1", "2"]
    assert third.arrived - second.arrived >= 1.0  # Retry-After is a floor
    assert (stats.errors, stats.successes, stats.samples_dropped) == (2, 1, 0)
    assert stats.samples_retried > 0


def test_a_refused_batch_is_dropped_not_retried_and_export_fails(
    fault_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fault_receiver.script(Reply(400, "out of order sample"))
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    data = record(lambda meter: meter.create_counter("orders").add(1))
    assert exporter.export(data, timeout_millis=10_000) is FAILURE
    assert exporter.export(data, timeout_millis=10_000) is SUCCESS  # the next batch carries the counts
    assert [r.status for r in fault_receiver.wait_for_requests(2)] == [400, 204]
    assert exporter.stats.dropped_by_reason["http_400"] > 0
    assert "out of order sample" in caplog.text
    exporter.shutdown()


def test_native_histograms_refused_by_the_receiver_are_not_retried_and_a_hint_is_logged_once(
    fault_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fault_receiver.script(*[Reply(500, "native histograms are disabled")] * 2)
    exporter = RemoteWriteMetricExporter(
        fault_receiver.url,
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()},
        **QUIET,
    )
    with pipeline(exporter) as (provider, meter):
        meter.create_histogram("rpc.latency", unit="s").record(0.3)
        provider.force_flush(timeout_millis=10_000)
        provider.force_flush(timeout_millis=10_000)
        requests = fault_receiver.wait_for_requests(2)
        assert [r.status for r in requests] == [500, 500]  # one request per export: no retries
        assert requests[0].decoded is not None
        assert [s.name for s in requests[0].decoded.series if s.histograms] == ["rpc_latency_seconds"]
    hints = [r for r in caplog.records if "--enable-feature=native-histograms" in r.getMessage()]
    assert len(hints) == 1
    assert exporter.stats.dropped_by_reason["http_500"] > 0


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    """A receiver that reads every request and never answers, until the test ends."""
    receiver = Receiver(default=HANG).start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.stop()


def test_export_force_flush_and_shutdown_keep_their_timeouts_while_the_receiver_hangs(
    hanging: Receiver,
) -> None:
    # Each request may take 10 minutes; only the calls' own timeouts can end them sooner.
    exporter = RemoteWriteMetricExporter(hanging.url, timeout=600, **QUIET)
    data = record(lambda meter: meter.create_counter("orders").add(1))
    assert exporter.export(data, timeout_millis=200) is FAILURE
    assert exporter.force_flush(timeout_millis=200) is False
    exporter.shutdown(timeout_millis=200)
    assert hanging.wait_for_requests(1)[0].status is None  # never answered: nobody waited for it
    assert exporter.export(data) is FAILURE  # shut down


def test_the_sdk_s_flush_and_shutdown_return_while_the_receiver_hangs(hanging: Receiver) -> None:
    exporter = RemoteWriteMetricExporter(hanging.url, timeout=600, **QUIET)
    provider = MeterProvider(
        metric_readers=[
            PeriodicExportingMetricReader(
                exporter, export_interval_millis=math.inf, export_timeout_millis=200
            )
        ],
        shutdown_on_exit=False,
    )
    provider.get_meter("m").create_counter("orders").add(1)
    provider.force_flush(timeout_millis=200)
    provider.shutdown(timeout_millis=200)  # the SDK hands the exporter its remaining time as timeout=
    assert all(r.status is None for r in hanging.wait_for_requests(1))


def test_one_hanging_endpoint_does_not_keep_the_other_from_its_data(
    hanging: Receiver, fault_receiver: Receiver
) -> None:
    exporter = RemoteWriteMetricExporter([hanging.url, fault_receiver.url], timeout=600, **QUIET)
    data = record(lambda meter: meter.create_counter("orders").add(4))
    assert exporter.export(data, timeout_millis=300) is FAILURE  # not everywhere
    (delivered,) = fault_receiver.wait_for_requests(1)
    assert value(delivered, "orders_total") == 4.0
    assert exporter.endpoints == [hanging.url, fault_receiver.url]
    exporter.shutdown(timeout_millis=200)


def test_auto_falls_back_to_1_0_for_a_receiver_that_does_not_speak_2_0() -> None:
    with Receiver(written_headers=False) as receiver:
        exporter = RemoteWriteMetricExporter(receiver.url, protocol="auto", **QUIET)
        data = record(lambda meter: meter.create_counter("orders").add(2))
        assert exporter.export(data, timeout_millis=10_000) is SUCCESS
        first, second = receiver.wait_for_requests(2)
        exporter.shutdown()
    assert (first.protocol, second.protocol) == ("2.0", "1.0")
    assert value(second, "orders_total") == 2.0


def test_exponential_histograms_go_as_native_histograms_over_2_0(fault_receiver: Receiver) -> None:
    exporter = RemoteWriteMetricExporter(
        fault_receiver.url,
        protocol="2.0",
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()},
        **QUIET,
    )
    with pipeline(exporter) as (provider, meter):
        latency = meter.create_histogram("rpc.latency", unit="s")
        for sample in (0.1, 0.2, 0.4):
            latency.record(sample)
        provider.force_flush(timeout_millis=10_000)
        (request,) = fault_receiver.wait_for_requests(1)
    assert request.protocol == "2.0"
    (series,) = by_name(request)["rpc_latency_seconds"]
    (histogram,) = series.histograms
    assert histogram.count_int == 3 and histogram.sum == pytest.approx(0.7)


# --- series that end ------------------------------------------------------------------------


def test_a_vanished_series_gets_a_stale_marker_and_shutdown_ends_them_all(
    fault_receiver: Receiver,
) -> None:
    observed = [("a", 1.0), ("b", 2.0)]

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"queue": name}) for name, v in observed]

    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_observable_gauge("queue.depth", [observe])
        provider.force_flush()
        del observed[1]  # queue b is gone
        provider.force_flush()
    requests = fault_receiver.wait_for_requests(3)
    gone = {s.labels["queue"]: s.samples[-1].value for s in by_name(requests[1])["queue_depth"]}
    assert gone["a"] == 1.0 and is_stale_nan(gone["b"])
    last = by_name(requests[-1])
    assert [s.labels["queue"] for s in last["queue_depth"]] == ["a"]
    assert all(is_stale_nan(s.samples[-1].value) for series in last.values() for s in series)


def test_without_stale_on_close_shutdown_leaves_the_series_alone(fault_receiver: Receiver) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, stale_on_close=False, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_counter("orders").add(1)
        provider.force_flush()
    first, *others = fault_receiver.requests
    assert value(first, "orders_total") == 1.0
    samples = [sample for r in others for series in r.decoded.series for sample in series.samples]  # type: ignore[union-attr]
    assert samples and not any(is_stale_nan(sample.value) for sample in samples)  # the last batch, once more


def test_metadata_goes_with_the_first_push_and_again_only_when_it_changes(
    fault_receiver: Receiver,
) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_counter("orders", description="Orders placed.").add(1)
        provider.force_flush()
        provider.force_flush()
        meter.create_gauge("room.temperature", unit="Cel").set(21)
        provider.force_flush()
        first, second, third = fault_receiver.wait_for_requests(3)
    names = [{m.metric_family_name for m in r.decoded.metadata} for r in (first, second, third)]  # type: ignore[union-attr]
    assert "orders_total" in names[0] and names[1] == set()
    assert {"orders_total", "room_temperature_celsius"} <= names[2]


# --- what cannot be sent, and what must never happen ----------------------------------------


def test_a_dropped_metric_is_logged_once_and_counted_every_export(
    fault_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    with pipeline(exporter) as (provider, meter):
        meter.create_counter("orders").add(1)
        meter.create_gauge("orders_total").set(9)  # the counter's Prometheus name
        provider.force_flush()
        provider.force_flush()
        assert exporter.stats.dropped_by_reason[DROP_NAME_CONFLICT] == 2
    said = [r for r in caplog.records if "'orders_total'" in r.getMessage()]
    assert len(said) == 1 and DROP_NAME_CONFLICT in said[0].getMessage()
    (first, *_) = fault_receiver.requests
    assert value(first, "orders_total") == 1.0


def test_nothing_is_raised_into_the_sdk(fault_receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    assert exporter.export(object()) is FAILURE  # type: ignore[arg-type]
    assert "the export failed" in caplog.text
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    assert exporter.export(record(lambda meter: meter.create_counter("c").add(1))) is FAILURE


def test_self_metrics_carry_the_resource_s_job_and_instance(fault_receiver: Receiver) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url)
    data = record(lambda meter: meter.create_counter("orders").add(1))
    assert exporter.export(data, timeout_millis=10_000) is SUCCESS
    assert exporter.export(data, timeout_millis=10_000) is SUCCESS
    second = fault_receiver.wait_for_requests(2)[1]
    (sent,) = by_name(second)["prometheus_remote_storage_samples_total"]
    assert {k: sent.labels[k] for k in ("job", "instance")} == IDENTITY
    assert sent.samples[0].value > 0
    exporter.shutdown()


def test_without_the_sdk_the_import_says_what_to_install() -> None:
    program = (
        "import sys\n"
        "sys.modules['opentelemetry.sdk.metrics'] = None  # as if opentelemetry-sdk were not installed\n"
        "import prometheus_rw_bridge\n"  # the package itself needs no SDK
        "try:\n"
        "    import prometheus_rw_bridge.opentelemetry\n"
        "except prometheus_rw_bridge.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'prometheus-rw-bridge[opentelemetry]'" in done.stdout


def test_repr_masks_credentials(fault_receiver: Receiver) -> None:
    url = fault_receiver.url.replace("http://", "http://probe:repr-password@")
    exporter = RemoteWriteMetricExporter(url, **QUIET)
    assert "repr-password" not in repr(exporter)
    assert fault_receiver.url in repr(exporter)
    exporter.shutdown()


# --- forks ----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parent_s_exporter_but_may_build_its_own(
    fault_receiver: Receiver,
) -> None:
    exporter = RemoteWriteMetricExporter(fault_receiver.url, **QUIET)
    data = record(lambda meter: meter.create_counter("orders").add(1))
    assert exporter.export(data, timeout_millis=10_000) is SUCCESS

    def child() -> bool:
        inherited = exporter.export(data, timeout_millis=10_000)
        own = RemoteWriteMetricExporter(fault_receiver.url, headers={"X-Child": "yes"}, **QUIET)
        pushed = own.export(data, timeout_millis=10_000)
        own.shutdown(timeout_millis=5_000)
        return inherited is FAILURE and pushed is SUCCESS

    assert fork_child(child) == 0
    assert exporter.export(data, timeout_millis=10_000) is SUCCESS  # the parent goes on
    exporter.shutdown()
    from_child = [r for r in fault_receiver.requests if r.header("X-Child") == "yes"]
    assert len(from_child) == 2  # the child's own push and its stale markers; nothing of the inherited one
    assert len(fault_receiver.requests) == 2 + 3  # the parent: three pushes and its stale markers
