"""Remote-write 2.0 and ``protocol="auto"`` against real receivers.

Prometheus 2.42 and VictoriaMetrics 1.79 predate 2.0: both answer a 2.0 body with
``204`` and no ``X-Prometheus-Remote-Write-*-Written`` header, and store nothing.  In
``auto`` mode the :class:`Negotiator` must notice and have the same data sent again as 1.0,
so that it ends up stored.  A scripted receiver covers the 415 answer and a receiver that
does speak 2.0.

:func:`push_once` does what the pusher does for one collection; it is the reference for
wiring the negotiator into it.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric
from scrape import NATIVE
from servers import Server, wait_until

from prometheus_rw_bridge import ReceiverError
from prometheus_rw_bridge._delivery.negotiate import Negotiator
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol.encode import Encoder, collect
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge.testing import Receiver, Reply

pytestmark = pytest.mark.integration


class Pusher:
    """One endpoint's encoders, transport and negotiator: the pusher's send step, minimal."""

    def __init__(self, url: str, *, job: str, mode: str = "auto") -> None:
        self.transport = HttpxTransport(url, timeout=10.0)
        self.negotiator = Negotiator(mode)
        self.encoders: dict[str, Any] = {
            "1.0": Encoder(job=job, instance="itest"),
            "2.0": EncoderV2(job=job, instance="itest"),
        }

    def close(self) -> None:
        self.transport.close()

    def _send(self, protocol: str, families: list[Any], ts: int) -> tuple[int, bool]:
        body = _snappy.compress(self.encoders[protocol].encode(families, ts).body())
        try:
            result = self.transport.send(body, protocol=protocol)
        except ReceiverError as exc:
            return exc.status_code, False
        return result.status_code, result.confirms_v2

    def push_once(self, registry: Any, ts: int) -> list[tuple[str, int]]:
        """Send one collection; resend it as 1.0 if the negotiator says so.  Returns (protocol, status)s."""
        families = list(collect(registry))
        protocol = self.negotiator.protocol()
        status, confirmed = self._send(protocol, families, ts)
        sent = [(protocol, status)]
        if self.negotiator.observe(protocol, status_code=status, confirmed_v2=confirmed):
            sent.append(("1.0", self._send("1.0", families, ts)[0]))
        return sent


@pytest.fixture
def web_registry(registry: CollectorRegistry) -> CollectorRegistry:
    counter = Counter("itest_requests", "Requests.", ["code"], registry=registry)
    counter.labels("200").inc(7)
    counter.labels("500").inc(2)
    Gauge("itest_depth", "Depth.", registry=registry).set(3)
    return registry


def _stored(server: Server, promql: str) -> dict[frozenset[tuple[str, str]], float]:
    server.flush()
    return server.query_vector(promql)


@pytest.mark.parametrize(
    "server_fixture",
    [
        pytest.param("prometheus_server", id="prometheus-2.42"),
        pytest.param("victoriametrics_server", id="vm-1.79"),
    ],
)
def test_auto_falls_back_from_silent_204_and_data_is_stored(
    request: pytest.FixtureRequest,
    server_fixture: str,
    web_registry: CollectorRegistry,
    unique_job: str,
    now_ms: int,
) -> None:
    server: Server = request.getfixturevalue(server_fixture)
    pusher = Pusher(server.write_url, job=unique_job)
    try:
        sent = pusher.push_once(web_registry, now_ms)
    finally:
        pusher.close()
    assert sent == [("2.0", 204), ("1.0", 204)], "a 204 without *-Written headers must trigger the 1.0 resend"
    assert pusher.negotiator.protocol() == "1.0"
    stored = wait_until(
        lambda: _stored(server, f'{{job="{unique_job}"}}'), message=f"samples of {unique_job} to be queryable"
    )
    by_name = {
        dict(labels)["__name__"] + dict(labels).get("code", ""): value for labels, value in stored.items()
    }
    assert by_name["itest_requests_total200"] == 7.0
    assert by_name["itest_requests_total500"] == 2.0
    assert by_name["itest_depth"] == 3.0


@pytest.mark.parametrize(
    "server_fixture",
    [
        pytest.param("prometheus_server", id="prometheus-2.42"),
        pytest.param("victoriametrics_server", id="vm-1.79"),
    ],
)
def test_plain_2_0_to_an_old_receiver_stores_nothing(
    request: pytest.FixtureRequest,
    server_fixture: str,
    web_registry: CollectorRegistry,
    unique_job: str,
    now_ms: int,
) -> None:
    """The trap the negotiator exists for: the old receiver says 204 and drops everything."""
    server: Server = request.getfixturevalue(server_fixture)
    pusher = Pusher(server.write_url, job=unique_job, mode="2.0")
    try:
        assert pusher.push_once(web_registry, now_ms) == [("2.0", 204)]
        # A 1.0 marker written afterwards proves the server has ingested everything before it.
        marker = CollectorRegistry()
        Gauge("itest_marker", "Marker.", registry=marker).set(1)
        pusher.negotiator = Negotiator("1.0")
        assert pusher.push_once(marker, now_ms) == [("1.0", 204)]
    finally:
        pusher.close()
    wait_until(lambda: _stored(server, f'itest_marker{{job="{unique_job}"}}'), message="the marker")
    assert _stored(server, f'itest_requests_total{{job="{unique_job}"}}') == {}


def test_415_triggers_resend_as_1_0(fault_receiver: Receiver, web_registry: CollectorRegistry) -> None:
    fault_receiver.script(Reply(415, "unsupported proto"))
    pusher = Pusher(fault_receiver.url, job="j")
    try:
        assert pusher.push_once(web_registry, 1_763_900_000_000) == [("2.0", 415), ("1.0", 204)]
        assert pusher.push_once(web_registry, 1_763_900_015_000) == [("1.0", 204)], "stays on 1.0"
    finally:
        pusher.close()
    first, resend, later = fault_receiver.wait_for_requests(3)
    assert first.protocol == "2.0" and resend.protocol == "1.0" and later.protocol == "1.0"
    assert first.header("Content-Type") == "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    assert first.header("X-Prometheus-Remote-Write-Version") == "2.0.0"
    assert resend.header("X-Prometheus-Remote-Write-Version") == "0.1.0"
    assert first.decoded is not None and resend.decoded is not None
    v2 = {s.name: s.samples[0].value for s in first.decoded.series if s.labels.get("code") != "500"}
    v1 = {s.name: s.samples[0].value for s in resend.decoded.series if s.labels.get("code") != "500"}
    assert v2 == {k: v for k, v in v1.items() if not k.endswith("_created")}, "the same data, resent"


def test_a_2_0_receiver_keeps_auto_on_2_0(
    fault_receiver: Receiver,
    web_registry: CollectorRegistry,
) -> None:
    pusher = Pusher(fault_receiver.url, job="j")
    try:
        assert pusher.push_once(web_registry, 1_763_900_000_000) == [("2.0", 204)]
        assert pusher.push_once(web_registry, 1_763_900_015_000) == [("2.0", 204)]
    finally:
        pusher.close()
    requests = fault_receiver.wait_for_requests(2)
    assert [r.protocol for r in requests] == ["2.0", "2.0"]
    assert pusher.negotiator.confirmed_v2


def test_400_from_an_unconfirmed_receiver_is_retried_as_1_0(
    fault_receiver: Receiver,
    web_registry: CollectorRegistry,
) -> None:
    fault_receiver.script(Reply(400, "cannot decode"))
    pusher = Pusher(fault_receiver.url, job="j")
    try:
        assert pusher.push_once(web_registry, 1_763_900_000_000) == [("2.0", 400), ("1.0", 204)]
    finally:
        pusher.close()


class NativeCollector:
    """A custom collector yielding one native histogram (prometheus_client has no native instrument yet)."""

    def collect(self) -> list[Metric]:
        family = Metric("itest_latency_seconds", "Latency.", "histogram")
        family.add_sample("itest_latency_seconds", {"path": "/"}, 0.0, native_histogram=NATIVE)
        return [family]


def test_native_histogram_stored_by_prometheus_via_auto(
    prometheus_native_server: Server, unique_job: str, now_ms: int
) -> None:
    """Auto against Prometheus 2.42 with native histograms: the 1.0 resend (TimeSeries field 4) is stored."""
    registry = CollectorRegistry()
    registry.register(NativeCollector())
    pusher = Pusher(prometheus_native_server.write_url, job=unique_job)
    try:
        assert pusher.push_once(registry, now_ms) == [("2.0", 204), ("1.0", 204)]
    finally:
        pusher.close()
    selector = f'itest_latency_seconds{{job="{unique_job}"}}'
    count = wait_until(
        lambda: prometheus_native_server.query_vector(f"histogram_count({selector})"),
        message="the native histogram",
    )
    assert list(count.values()) == [7.0]
    (stored,) = prometheus_native_server.query(selector)
    _, histogram = stored["histogram"]
    assert (histogram["count"], histogram["sum"]) == ("7", "12.5")
    # [boundary rule, lower, upper, count]: schema 1, so bucket i ends at 2 ** (i / 2).
    buckets = [(float(lower), float(upper), int(count)) for _, lower, upper, count in histogram["buckets"]]
    expected = [
        (-(2**0.5), -1.0, 1),
        (-0.001, 0.001, 1),
        (2**-0.5, 1.0, 2),
        (1.0, 2**0.5, 1),
        (4.0, 2**2.5, 2),
    ]
    assert [count for *_, count in buckets] == [count for *_, count in expected]
    bounds = [bound for lower, upper, _ in buckets for bound in (lower, upper)]
    assert bounds == pytest.approx([bound for lower, upper, _ in expected for bound in (lower, upper)])
