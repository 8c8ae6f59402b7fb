"""generate_write_request: every family type arrives under its scrape name, with its scrape value.

The oracle is ``prometheus_client.generate_latest`` text, parsed; bodies are decoded with the
protobuf schema.  The property-based test at the end builds random registries.
"""

from __future__ import annotations

import math
import string
import sys
import time
import types
from typing import Any

import cramjam
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.samples import Timestamp
from scrape import (
    assert_matches_scrape,
    bits,
    key,
    message,
    same_value,
    scrape_text,
    scraped_metadata,
    written,
    written_list,
    written_metadata,
)

from prometheus_rw_bridge import (
    STALE_NAN,
    STALE_NAN_BITS,
    ConfigurationError,
    decode_write_request,
    generate_write_request,
    is_stale_nan,
)
from prometheus_rw_bridge._protocol.names import default_instance, default_job

TS = 1_700_000_000_123


class Families:
    """A collector yielding fixed families (a custom collector, as users write them)."""

    def __init__(self, *families: Any) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def body_of(registry: Any, **kwargs: Any) -> bytes:
    kwargs.setdefault("timestamp_ms", TS)
    kwargs.setdefault("job", "j")
    kwargs.setdefault("instance", "i")
    return generate_write_request(registry, **kwargs)


def test_counter_total_and_created(registry: CollectorRegistry) -> None:
    c = Counter("requests", "Requests served.", ["path"], registry=registry)
    c.labels("/a").inc(3)
    c.labels("/b").inc(0.5)
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("requests_total", {"path": "/a"})].value == 3.0
    assert key("requests_created", {"path": "/b"}) in got


def test_gauge(registry: CollectorRegistry) -> None:
    Gauge("temperature", "Temperature.", ["room"], registry=registry).labels("k").set(-3.25)
    Gauge("plain", "No labels.", registry=registry).set(7)
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("temperature", {"room": "k"})].value == -3.25


def test_histogram_le_spelled_like_the_scrape_text(registry: CollectorRegistry) -> None:
    h = Histogram(
        "latency_seconds", "Latency.", ["op"], buckets=[1e-7, 0.005, 0.1, 1, 2.5, 10], registry=registry
    )
    h.labels("get").observe(0.3)
    h.labels("get").observe(20)
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    les = sorted(dict(k[1])["le"] for k in got if k[0] == "latency_seconds_bucket")
    # Spelled exactly as generate_latest spells them (floatToGoString), "+Inf" included.
    assert les == sorted(["1e-07", "0.005", "0.1", "1.0", "2.5", "10.0", "+Inf"])
    assert got[key("latency_seconds_bucket", {"op": "get", "le": "+Inf"})].value == 2.0
    assert got[key("latency_seconds_count", {"op": "get"})].value == 2.0
    assert got[key("latency_seconds_sum", {"op": "get"})].value == 20.3


def test_summary_and_custom_collector_quantiles(registry: CollectorRegistry) -> None:
    Summary("work_seconds", "Work.", registry=registry).observe(1.5)
    custom = SummaryMetricFamily("rpc_seconds", "RPC latency.", labels=["svc"])
    custom.add_metric(["a"], count_value=10, sum_value=2.5)
    custom.add_sample("rpc_seconds", {"svc": "a", "quantile": "0.5"}, 0.2)
    custom.add_sample("rpc_seconds", {"svc": "a", "quantile": "0.99"}, 0.9)
    registry.register(Families(custom))
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("rpc_seconds", {"svc": "a", "quantile": "0.99"})].value == 0.9
    assert got[key("work_seconds_count", {})].value == 1.0


def test_gauge_histogram_gsum_gcount(registry: CollectorRegistry) -> None:
    gh = GaugeHistogramMetricFamily("queue_size", "Queue.", buckets=[("1.0", 4), ("+Inf", 6)], gsum_value=9)
    registry.register(Families(gh))
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("queue_size_gcount", {})].value == 6.0
    assert got[key("queue_size_gsum", {})].value == 9.0
    assert got[key("queue_size_bucket", {"le": "+Inf"})].value == 6.0


def test_info_enum_stateset_unknown(registry: CollectorRegistry) -> None:
    Info("build", "Build.", registry=registry).info({"version": "1.2", "commit": "abc"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("down")
    registry.register(
        Families(
            StateSetMetricFamily("feature", "Flags.", value={"a": True, "b": False}),
            UnknownMetricFamily("mystery", "Untyped.", value=42),
            InfoMetricFamily("custom", "Custom info.", value={"k": "v"}),
        )
    )
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("build_info", {"version": "1.2", "commit": "abc"})].value == 1.0
    assert got[key("state", {"state": "down"})].value == 1.0
    assert got[key("feature", {"feature": "b"})].value == 0.0
    assert got[key("mystery", {})].value == 42.0
    assert key("custom_info", {"k": "v"}) in got


def test_disable_created_series(registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    Counter("c", "c", registry=registry).inc()
    Histogram("h", "h", registry=registry).observe(1)
    Summary("s", "s", registry=registry).observe(1)
    names = {k[0] for k in written(body_of(registry))}
    assert "c_total" in names and "h_count" in names and "s_sum" in names
    assert not [n for n in names if n.endswith("_created")]
    assert not [n for n in written_metadata(body_of(registry)) if n.endswith("_created")]


def test_metadata_matches_help_and_type_lines(registry: CollectorRegistry) -> None:
    Counter("c", 'A counter\\with "odd"\nhelp.', registry=registry).inc()
    Gauge("g", "A gauge.", registry=registry).set(1)
    Histogram("h", "A histogram.", registry=registry).observe(1)
    Summary("s", "A summary.", registry=registry).observe(1)
    Info("i", "Info.", registry=registry).info({"a": "b"})
    Enum("e", "Enum.", states=["x"], registry=registry)
    registry.register(
        Families(
            GaugeHistogramMetricFamily("gh", "GH.", buckets=[("+Inf", 1)], gsum_value=1),
            UnknownMetricFamily("u", "Unknown.", value=1),
        )
    )
    assert written_metadata(body_of(registry)) == scraped_metadata(registry)


def test_metadata_carries_unit(registry: CollectorRegistry) -> None:
    Gauge("disk_bytes", "Disk.", unit="bytes", registry=registry).set(1)
    (md,) = message(body_of(registry)).metadata
    assert (md.metric_family_name, md.unit, md.help) == ("disk_bytes", "bytes", "Disk.")


def test_exemplars_with_millisecond_timestamps(registry: CollectorRegistry) -> None:
    c = Counter("hits", "Hits.", registry=registry)
    c.inc(exemplar={"trace_id": "abc"})
    h = Histogram("lat", "Lat.", buckets=[1, 2], registry=registry)
    h.observe(1.5, exemplar={"trace_id": "def", "span": "s1"})
    series = {s.labels["__name__"] + s.labels.get("le", ""): s for s in written_list(body_of(registry))}
    expected = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.exemplar is not None:
                expected[sample.name + sample.labels.get("le", "")] = sample.exemplar
    assert set(expected) == {"hits_total", "lat_bucket2.0"}
    for name, ex in expected.items():
        (got,) = series[name].exemplars
        assert {lab.name: lab.value for lab in got.labels} == ex.labels
        assert [lab.name for lab in got.labels] == sorted(ex.labels)
        assert got.value == ex.value
        assert got.timestamp == int(ex.timestamp * 1000)
        assert abs(got.timestamp - time.time() * 1000) < 600_000
    assert not series["lat_bucket1.0"].exemplars


def test_utf8_names_escaped_like_generate_latest(registry: CollectorRegistry) -> None:
    c = Counter("http.requests", "Dotted.", ["route.name", "ünï"], registry=registry)
    c.labels("/x", "y").inc()
    Gauge("temp.°C", "Degrees.", registry=registry).set(1)
    registry.register(Families(GaugeMetricFamily("9lives", "Leading digit.", value=9)))
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert key("http_requests_total", {"route_name": "/x", "_n_": "y"}) in got
    assert key("temp__C", {}) in got
    assert key("_lives", {}) in got
    assert set(written_metadata(body_of(registry))) == set(scraped_metadata(registry))


def test_labels_sorted_unique_name_present_no_empty_values(registry: CollectorRegistry) -> None:
    g = Gauge("g", "g", ["zeta", "alpha", "mid", "blank"], registry=registry)
    g.labels("z", "a", "m", "").set(1)
    (series,) = written_list(body_of(registry, external_labels={"region": "eu", "aaa": "x"}))
    names = [name for name, _ in series.label_pairs]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert series.labels["__name__"] == "g"
    assert "blank" not in series.labels
    assert all(value for _, value in series.label_pairs)
    assert series.labels == {
        "__name__": "g",
        "aaa": "x",
        "alpha": "a",
        "instance": "i",
        "job": "j",
        "mid": "m",
        "region": "eu",
        "zeta": "z",
    }


def test_own_timestamps_kept_others_share_the_collection_timestamp(registry: CollectorRegistry) -> None:
    g = GaugeMetricFamily("stamped", "Own timestamps.", labels=["n"])
    g.add_metric(["float"], 1, timestamp=1_600_000_000.5)
    g.add_metric(["ts"], 2, timestamp=Timestamp(1_600_000_001, 250_000_000))
    g.add_metric(["none"], 3)
    registry.register(Families(g))
    Counter("plain", "p", registry=registry).inc()
    got = assert_matches_scrape(body_of(registry), registry, timestamp_ms=TS)
    assert got[key("stamped", {"n": "float"})].timestamp_ms == 1_600_000_000_500
    assert got[key("stamped", {"n": "ts"})].timestamp_ms == 1_600_000_001_250
    assert got[key("stamped", {"n": "none"})].timestamp_ms == TS
    assert got[key("plain_total", {})].timestamp_ms == TS


@pytest.mark.parametrize(
    ("value", "expected_bits"),
    [
        pytest.param(float("nan"), 0x7FF8000000000000, id="nan"),
        pytest.param(math.inf, 0x7FF0000000000000, id="+inf"),
        pytest.param(-math.inf, 0xFFF0000000000000, id="-inf"),
        pytest.param(-0.0, 0x8000000000000000, id="-0.0"),
        pytest.param(5e-324, 0x0000000000000001, id="min-subnormal"),
        pytest.param(2.2250738585072009e-308, 0x000FFFFFFFFFFFFF, id="max-subnormal"),
        pytest.param(1.7976931348623157e308, 0x7FEFFFFFFFFFFFFF, id="max-double"),
    ],
)
def test_special_values_bit_exact(registry: CollectorRegistry, value: float, expected_bits: int) -> None:
    Gauge("g", "g", registry=registry).set(value)
    (series,) = written_list(body_of(registry))
    assert bits(series.points[0].value) == expected_bits


def test_job_and_instance_defaults() -> None:
    registry = CollectorRegistry()
    Gauge("g", "g", registry=registry).set(1)
    (series,) = written_list(generate_write_request(registry, timestamp_ms=TS))
    assert series.labels["job"] == default_job()
    assert series.labels["instance"] == default_instance()


@pytest.mark.parametrize(
    ("own", "job", "external", "expected"),
    [
        pytest.param({}, "app", {}, {"job": "app", "instance": "i"}, id="added"),
        pytest.param({"job": "mine"}, "app", {}, {"job": "mine", "instance": "i"}, id="own-job-wins"),
        pytest.param({"instance": "me"}, "app", {}, {"job": "app", "instance": "me"}, id="own-instance-wins"),
        pytest.param({}, "", {}, {"instance": "i"}, id="empty-job-means-none"),
        pytest.param({"job": ""}, "app", {}, {"job": "app", "instance": "i"}, id="own-empty-job-is-no-job"),
        pytest.param(
            {"dc": "own"},
            "app",
            {"dc": "ext"},
            {"job": "app", "instance": "i", "dc": "own"},
            id="own-ext-wins",
        ),
        pytest.param(
            {}, "app", {"dc": "ext"}, {"job": "app", "instance": "i", "dc": "ext"}, id="external-added"
        ),
        pytest.param({}, "app", {"dc": ""}, {"job": "app", "instance": "i"}, id="empty-external-means-none"),
    ],
)
def test_job_instance_external_labels(
    registry: CollectorRegistry,
    own: dict[str, str],
    job: str,
    external: dict[str, str],
    expected: dict[str, str],
) -> None:
    g = GaugeMetricFamily("g", "g", labels=list(own))
    g.add_metric(list(own.values()), 1)
    registry.register(Families(g))
    (series,) = written_list(body_of(registry, job=job, instance="i", external_labels=external))
    assert series.labels == {"__name__": "g", **expected}


def test_instance_empty_means_none(registry: CollectorRegistry) -> None:
    Gauge("g", "g", registry=registry).set(1)
    (series,) = written_list(body_of(registry, job="", instance=""))
    assert series.labels == {"__name__": "g"}


@pytest.mark.parametrize(
    "name", [pytest.param("bad-name", id="dash"), pytest.param("__name__", id="dunder-name")]
)
def test_invalid_external_label_name_raises(registry: CollectorRegistry, name: str) -> None:
    with pytest.raises(ValueError, match="external label"):
        body_of(registry, external_labels={name: "x"})


def test_body_is_block_snappy_not_framed(registry: CollectorRegistry) -> None:
    Gauge("g", "g", registry=registry).set(1)
    body = body_of(registry)
    assert not body.startswith(b"\xff\x06\x00\x00sNaPpY")
    raw = bytes(cramjam.snappy.decompress_raw(body))
    assert message(raw, compressed=False).timeseries[0].labels[0].name == "__name__"


def test_empty_registry_gives_a_valid_empty_request(registry: CollectorRegistry) -> None:
    msg = message(body_of(registry))
    assert len(msg.timeseries) == 0 and len(msg.metadata) == 0


def test_protocol_is_checked(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="protocol"):
        body_of(registry, protocol="3.0")


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_write_relabel_configs_apply_to_every_series(registry: CollectorRegistry, protocol: str) -> None:
    requests = Counter("requests", "R.", ["path", "request_id"], registry=registry)
    requests.labels("/a", "r1").inc()
    Gauge("python_gc_objects", "G.", registry=registry).set(1)
    rules = [
        {"regex": "request_id", "action": "labeldrop"},
        {"source_labels": ["__name__"], "regex": "python_gc_.*", "action": "drop"},
        {"target_label": "cluster", "replacement": "eu"},
    ]
    body = body_of(registry, job="j", instance="i", protocol=protocol, write_relabel_configs=rules)
    series = decode_write_request(body, protocol=protocol).series
    created = {"requests_created"} if protocol == "1.0" else set()  # 2.0: the start timestamp
    assert {s.name for s in series} == {"requests_total", *created}
    expected = {"job": "j", "instance": "i", "path": "/a", "cluster": "eu"}
    assert all(s.labels == {"__name__": s.name, **expected} for s in series)


def test_a_bad_relabel_rule_names_its_index_and_field(registry: CollectorRegistry) -> None:
    with pytest.raises(ConfigurationError, match=r"write_relabel_configs\[0\]\.regex='\('"):
        body_of(registry, write_relabel_configs=[{"regex": "("}])


def test_target_info_is_sent(registry: CollectorRegistry) -> None:
    registry.set_target_info({"service": "api"})
    assert key("target_info", {"service": "api"}) in written(body_of(registry))


# --- property-based: random registries round-trip --------------------------------------------

_NAME_CHARS = string.ascii_letters + string.digits + "_:.-é°✓"
_LABEL_CHARS = string.ascii_letters + string.digits + "_.-ü"
_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.sampled_from([-0.0, 5e-324, math.inf, -math.inf]),
)
_LABEL_VALUES = st.text(min_size=0, max_size=12)
_TYPES = ["counter", "gauge", "histogram", "summary", "info", "stateset", "unknown", "gaugehistogram", "raw"]


def _escape(name: str, metric: bool) -> str:
    """The escaping generate_latest applies (its UNDERSCORES scheme), restated independently."""
    allowed = string.ascii_letters + "_" + (":" if metric else "")
    return "".join(
        ch if ch in allowed or (ch in string.digits and i > 0) else "_" for i, ch in enumerate(name)
    )


@st.composite
def _label_names(draw: st.DrawFn, reserved: frozenset[str]) -> list[str]:
    names = draw(
        st.lists(
            # Names starting "__" are reserved to Prometheus itself; the scrape parser refuses them.
            st.text(alphabet=_LABEL_CHARS, min_size=1, max_size=6).filter(
                lambda n: not _escape(n, False).startswith("__")
            ),
            max_size=3,
            unique_by=lambda n: _escape(n, False),
        )
    )
    return [n for n in names if _escape(n, False) not in reserved]


@st.composite
def _family(draw: st.DrawFn, index: int) -> Any:
    mtype = draw(st.sampled_from(_TYPES))
    name = f"f{index}_" + draw(st.text(alphabet=_NAME_CHARS, max_size=8))
    labelnames = draw(
        _label_names(frozenset({"le", "quantile", "job", "instance", "extra", _escape(name, False)}))
    )
    children = draw(
        st.lists(st.tuples(*[_LABEL_VALUES for _ in labelnames]), max_size=3, unique=True)
        if labelnames
        else st.just([()])
    )
    value = draw(_VALUES)
    stamp = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=4e9, allow_nan=False)))
    if mtype == "counter":
        fam: Any = CounterMetricFamily(name, "help", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), abs(value) if not math.isnan(value) else value, timestamp=stamp)
    elif mtype == "gauge":
        fam = GaugeMetricFamily(name, "help ✓", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), value, timestamp=stamp)
    elif mtype == "unknown":
        fam = UnknownMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), value)
    elif mtype == "histogram":
        fam = HistogramMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), buckets=[("0.5", 1), ("1.0", 2), ("+Inf", 3)], sum_value=value)
    elif mtype == "gaugehistogram":
        fam = GaugeHistogramMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), buckets=[("1e-05", 1), ("+Inf", 4)], gsum_value=value)
    elif mtype == "summary":
        fam = SummaryMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), count_value=3, sum_value=value)
            fam.add_sample(name, {**dict(zip(labelnames, child, strict=True)), "quantile": "0.5"}, value)
    elif mtype == "info":
        fam = InfoMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), {"extra": "x"})
    elif mtype == "stateset":
        fam = StateSetMetricFamily(name, "h", labels=labelnames)
        for child in children:
            fam.add_metric(list(child), {"on": True, "off": False})
    else:  # a raw Metric with arbitrary samples, as hand-written collectors build them
        fam = Metric(name, "h", "gauge")
        for child in children:
            fam.add_sample(name, dict(zip(labelnames, child, strict=True)), value, stamp)
    return fam


@st.composite
def _registries(draw: st.DrawFn) -> CollectorRegistry:
    count = draw(st.integers(min_value=0, max_value=6))
    families = [draw(_family(index)) for index in range(count)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(*families))
    return registry


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_registries(), st.integers(min_value=0, max_value=2**62))
def test_random_registries_round_trip(registry: CollectorRegistry, timestamp_ms: int) -> None:
    note(scrape_text(registry))
    expected = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = {_escape(k, False): v for k, v in sample.labels.items()}
            k = key(_escape(sample.name, True), labels)
            ts = timestamp_ms if sample.timestamp is None else int(float(sample.timestamp) * 1000)
            expected[k] = (float(sample.value), ts)
    body = generate_write_request(registry, timestamp_ms=timestamp_ms, job="", instance="")
    got = written(body, drop=())
    assert set(got) == set(expected)
    for k, (value, ts) in expected.items():
        assert bits(got[k].value) == bits(value) or (math.isnan(value) and math.isnan(got[k].value)), k
        assert got[k].timestamp_ms == ts, k
        assert same_value(got[k].value, value)
    # And the scrape text agrees on every name, label, value and timestamp.
    assert_matches_scrape(body, registry, timestamp_ms=timestamp_ms)


def test_stale_nan_through_generate_and_decode(registry: CollectorRegistry) -> None:
    Gauge("g", "g", registry=registry).set(STALE_NAN)
    (series,) = decode_write_request(body_of(registry)).series
    (sample,) = series.samples
    assert is_stale_nan(sample.value) and bits(sample.value) == STALE_NAN_BITS


@pytest.mark.parametrize(
    ("argv", "job"),
    [
        pytest.param(["/srv/app/nightly_export.py", "--x"], "nightly_export", id="script"),
        pytest.param(["-"], "python", id="stdin"),
        pytest.param(["-c"], "python", id="command"),
        pytest.param([], "python", id="no-argv"),
    ],
)
def test_default_job_is_the_program_name(monkeypatch: pytest.MonkeyPatch, argv: list[str], job: str) -> None:
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    monkeypatch.setattr(sys, "argv", argv)
    assert default_job() == job


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_a_sample_with_an_empty_name_is_left_out_with_one_warning_per_process(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    family_name = f"exposition_empty_{protocol.replace('.', '_')}"  # the warning is once per process

    class EmptyNamed:
        def collect(self) -> Any:
            family = Metric(family_name, "h", "gauge")
            family.add_sample(family_name, {}, 1.0)
            family.add_sample("", {}, 2.0)
            yield family

    bodies = [generate_write_request(EmptyNamed(), protocol=protocol) for _ in range(2)]

    for body in bodies:
        decoded = decode_write_request(body, protocol=protocol)
        assert [series.name for series in decoded.series] == [family_name]
    assert caplog.text.count("yields a sample with an empty name") == 1
