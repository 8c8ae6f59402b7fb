"""The direct-read path gives exactly the bytes of the collect() path, whatever happens to the registry.

Random registries of prometheus_client's own metric types (and a custom collector among them)
go through random sequences of mutations; after each one, an encoder fed by ``read()`` (the
direct path) and one fed by ``collect()`` must produce the same body, metadata, sample count
and stale markers, for remote write 1.0 and 2.0.  The tests run on whatever prometheus_client
is installed; tox and ``scripts/run`` run them on the oldest and the newest we support.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client import metrics as pc_metrics
from prometheus_client.core import GaugeMetricFamily

from prometheus_rw_bridge._protocol import direct
from prometheus_rw_bridge._protocol.direct import DirectFamily
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.registry import collect, read

ENCODERS = [pytest.param(Encoder, id="1.0"), pytest.param(EncoderV2, id="2.0")]

# Names that collide once escaped or with a suffix of another family, on purpose.
NAMES = ["req", "req_total", "lat", "lat_seconds", "build", "state", "a_b", "size", "up"]
LABEL_SETS = [(), ("method",), ("method", "code"), ("job",), ("le_x", "instance")]
VALUES = ["GET", "POST", "", "ü", "200", "j"]
KINDS = ["counter", "gauge", "summary", "histogram", "info", "enum"]


class Custom:
    """A hand-written collector yielding a gauge that may collide with a standard metric's series."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 1.0

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(self.name, "custom", labels=["method"])
        family.add_metric(["GET"], self.value)
        yield family

    def describe(self) -> list[Any]:
        return []


def _make(kind: str, name: str, labels: tuple[str, ...], registry: CollectorRegistry, flag: int) -> Any:
    if kind == "counter":
        return Counter(name, f"{name} help", labels, registry=registry, unit="" if flag else "bytes")
    if kind == "gauge":
        return Gauge(name, f"{name} help", labels, registry=registry)
    if kind == "summary":
        return Summary(name, "", labels, registry=registry)
    if kind == "histogram":
        buckets = (0.1, 1.0) if flag else (-1.0, 0.5, float("inf"))
        return Histogram(name, "hist", labels, registry=registry, buckets=buckets)
    if kind == "info":
        return Info(name, "info help", labels, registry=registry)
    return Enum(name, "enum help", labels, registry=registry, states=["a", "b", "c"])


METRIC = st.tuples(
    st.sampled_from(KINDS), st.sampled_from(NAMES), st.sampled_from(LABEL_SETS), st.integers(0, 1)
)
# (operation, metric index, label values index, number)
OPERATION = st.tuples(
    st.sampled_from(["touch", "touch", "touch", "exemplar", "remove", "clear", "created", "custom", "set"]),
    st.integers(0, 5),
    st.integers(0, 7),
    st.sampled_from([0.0, 1.0, 2.5, -3.0, 1e300, float("inf"), float("nan")]),
)


def _label_values(labels: tuple[str, ...], index: int) -> list[str]:
    return [VALUES[(index + offset) % len(VALUES)] for offset in range(len(labels))]


def _child(metric: Any, labels: tuple[str, ...], index: int) -> Any:
    return metric.labels(*_label_values(labels, index)) if labels else metric


def _touch(kind: str, child: Any, number: float, index: int, exemplar: bool) -> None:
    trace = {"trace_id": f"t{index}"} if exemplar else None
    if kind == "counter":
        child.inc(abs(number) if number == number else 1.0, trace)
    elif kind == "gauge":
        child.set(number)
    elif kind == "summary":
        child.observe(number)
    elif kind == "histogram":
        child.observe(number, trace)
    elif kind == "info":
        child.info({"version": VALUES[index % len(VALUES)], "commit": str(index)})
    else:
        child.state("abc"[index % 3])


def _apply(metrics: list[tuple[str, Any, tuple[str, ...]]], registry: CollectorRegistry, op: Any) -> None:
    action, which, index, number = op
    kind, metric, labels = metrics[which % len(metrics)]
    if action in ("touch", "exemplar", "set"):
        _touch(kind, _child(metric, labels, index), number, index, action == "exemplar")
    elif action == "remove" and labels:
        values = _label_values(labels, index)
        if tuple(values) in metric._metrics:
            metric.remove(*values)
    elif action == "clear" and labels:  # 0.17 raises for an unlabelled metric
        metric.clear()
    elif action == "created" and hasattr(pc_metrics, "disable_created_metrics"):
        if pc_metrics._use_created:
            pc_metrics.disable_created_metrics()
        else:
            pc_metrics.enable_created_metrics()
    elif action == "custom":
        registry.register(Custom(NAMES[index % len(NAMES)]))


def _build(specs: list[Any]) -> tuple[CollectorRegistry, list[tuple[str, Any, tuple[str, ...]]]]:
    registry = CollectorRegistry()
    metrics = []
    for index, (kind, name, labels, flag) in enumerate(specs):
        try:
            metric = _make(kind, name, labels, registry, flag)
        except ValueError:  # a name the registry already has, or one this type refuses
            continue
        metrics.append((kind, metric, labels))
        _child(metric, labels, index)  # every metric starts with a series, so families differ
    if not metrics:
        metrics.append(("gauge", Gauge("fallback", "h", registry=registry), ()))
    return registry, metrics


def _same(a: Any, b: Any) -> None:
    assert a.body() == b.body()
    assert a.body(metadata=False) == b.body(metadata=False)
    counts = (a.samples, a.stale_markers, a.metadata_changed)
    assert counts == (b.samples, b.stale_markers, b.metadata_changed)


@pytest.fixture(autouse=True)
def _restore_created() -> Iterator[None]:
    before = pc_metrics._use_created
    yield
    pc_metrics._use_created = before


@pytest.mark.parametrize("encoder_class", ENCODERS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(METRIC, min_size=1, max_size=6),
    operations=st.lists(st.lists(OPERATION, max_size=6), min_size=1, max_size=6),
    filtered=st.booleans(),
)
def test_direct_reads_give_the_bytes_of_collect(
    encoder_class: Any, specs: list[Any], operations: list[list[Any]], filtered: bool
) -> None:
    registry, metrics = _build(specs)
    options: dict[str, Any] = {"job": "j", "instance": "i", "track_staleness": True}
    if filtered:
        options["metric_filter"] = lambda name: not name.endswith("_sum")
    fast, slow = encoder_class(**options), encoder_class(**options)
    for step, batch in enumerate(operations):
        for op in batch:
            _apply(metrics, registry, op)
        ts = 1_700_000_000_000 + step * 1000
        _same(fast.encode(read(registry), ts), slow.encode(collect(registry), ts))
        cold_options = {k: v for k, v in options.items() if k != "track_staleness"}
        cold = encoder_class(**cold_options).encode(read(registry), ts)
        _same(cold, encoder_class(**cold_options).encode(collect(registry), ts))
    _same(fast.stale_all(ts + 1), slow.stale_all(ts + 1))


def test_standard_metrics_are_read_directly_and_custom_ones_collected() -> None:
    registry = CollectorRegistry()
    Counter("c", "h", registry=registry).inc()
    Histogram("h", "h", ["a"], registry=registry).labels("x").observe(1)
    registry.register(Custom("g"))
    kinds = [type(family) for family in read(registry)]
    assert kinds[:2] == [DirectFamily, DirectFamily] and kinds[2] is not DirectFamily


def test_set_function_gauge_and_subclasses_are_collected() -> None:
    class MyCounter(Counter):
        pass

    registry = CollectorRegistry()
    Gauge("g", "h", registry=registry).set_function(lambda: 7.0)
    MyCounter("c", "h", registry=registry).inc()
    families = list(read(registry))
    assert [type(f) is DirectFamily for f in families] == [False, False]
    assert families[0].samples[0].value == 7.0


def test_an_unchecked_prometheus_client_version_is_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    Counter("c", "h", registry=registry).inc()
    monkeypatch.setattr(direct, "_CHECKED", False)
    assert [type(f) is DirectFamily for f in read(registry)] == [False]


def test_the_installed_version_is_one_we_checked() -> None:
    """CI runs the oldest and the newest supported versions: both must take the direct path."""
    major, minor = (int(p) for p in prometheus_client_version().split(".")[:2])
    assert direct.CHECKED_VERSIONS[0] <= (major, minor) <= direct.CHECKED_VERSIONS[1]
    assert direct.enabled()


def prometheus_client_version() -> str:
    from importlib import metadata

    return metadata.version("prometheus_client")


def test_multiprocess_values_are_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus_client.values, "ValueClass", object)
    assert not direct.enabled()


def test_reading_keeps_nothing_on_the_applications_metrics() -> None:
    """Reading must not make CPython materialise the children's ``__dict__`` (or keep anything)."""
    import gc
    import tracemalloc

    registry = CollectorRegistry()
    counter = Counter("c", "h", ["a"], registry=registry)
    for index in range(1000):
        counter.labels(str(index)).inc()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        families = list(read(registry))
        assert [type(f) for f in families] == [DirectFamily]
        del families
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 10_000  # a dict per child would be over 100 kB
