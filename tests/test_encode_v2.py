"""The remote-write 2.0 encoder, checked against the 2.0 schema and the 1.0 encoder."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary
from prometheus_client.core import GaugeHistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar
from scrape import NATIVE

from prometheus_rw_bridge import decode_write_request, generate_write_request
from prometheus_rw_bridge._protocol import native as _native
from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol.encode import Encoder, collect
from prometheus_rw_bridge._protocol.encode_v2 import _COMPACT_FLOOR, EncodedCollectionV2, EncoderV2
from prometheus_rw_bridge._protocol.wire import STALE_NAN_BITS

TS = 1_763_900_000_000
CREATED = 1_763_000_000.25  # seconds, as prometheus_client reports _created
CREATED_MS = 1_763_000_000_250

_U64 = struct.Struct("<Q")
_D = struct.Struct("<d")


def check_request(raw: bytes) -> Any:
    """Parse ``raw`` with the 2.0 schema and assert every structural rule of the spec; return the message."""
    message = _schema.V2Request.FromString(raw)
    symbols = list(message.symbols)
    assert symbols, "the symbol table must not be empty"
    assert symbols[0] == "", "symbols[0] must be the empty string"
    assert len(set(symbols)) == len(symbols), "symbols must be deduplicated"
    for ts in message.timeseries:
        refs = list(ts.labels_refs)
        assert refs, "labels_refs must be provided"
        assert len(refs) % 2 == 0, "labels_refs must hold an even number of entries"
        assert all(0 <= r < len(symbols) for r in refs), "every reference must be in range"
        names = [symbols[r] for r in refs[0::2]]
        values = [symbols[r] for r in refs[1::2]]
        assert names == sorted(names), f"label names must be sorted: {names}"
        assert len(set(names)) == len(names), "label names must not repeat"
        assert all(names) and all(values), "no empty label names or values"
        assert "__name__" in names
        assert bool(ts.samples) != bool(ts.histograms), "exactly one of samples and histograms"
        md = ts.metadata
        assert 0 <= md.help_ref < len(symbols) and 0 <= md.unit_ref < len(symbols)
        for ex in ts.exemplars:
            assert len(ex.labels_refs) % 2 == 0
            assert all(0 <= r < len(symbols) for r in ex.labels_refs)
            assert ex.timestamp != 0, "2.0 exemplars must carry a timestamp"
    return message


def series_of(raw: bytes) -> dict[str, Any]:
    """Decode ``raw`` (uncompressed 2.0) and key its series by their rendered labels."""
    decoded = decode_write_request(raw, compressed=False, protocol="2.0")
    return {_key(s.label_pairs): s for s in decoded.series}


def _key(pairs: Iterable[tuple[str, str]]) -> str:
    labels = dict(pairs)
    name = labels.pop("__name__")
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def encode(registry: Any, encoder: EncoderV2 | None = None, ts: int = TS) -> EncodedCollectionV2:
    encoder = encoder or EncoderV2(job="j", instance="i")
    return encoder.encode(collect(registry), ts)


class Families:
    """A collector yielding the families it is given (rebindable between collections)."""

    def __init__(self, *families: Metric) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _fixed_created(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: CREATED)


@pytest.fixture
def web_registry(registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch) -> CollectorRegistry:
    """A registry with one of each common metric type, all created at ``CREATED``."""
    _fixed_created(monkeypatch)
    requests = Counter("http_requests", "Requests served.", ["method", "code"], registry=registry)
    requests.labels("GET", "200").inc(7)
    requests.labels("POST", "500").inc(2)
    latency = Histogram(
        "http_latency", "Latency.", ["method"], unit="seconds", buckets=[0.1, 1.0], registry=registry
    )
    latency.labels("GET").observe(0.5)
    Summary("payload_bytes", "Payload sizes.", registry=registry).observe(512)
    Gauge("queue_depth", "Queued items.", registry=registry).set(3)
    Info("build", "Build information.", registry=registry).info({"version": "1.2.3"})
    monkeypatch.undo()
    return registry


# --- structure ---------------------------------------------------------------------------------


def test_body_obeys_every_symbol_table_rule(web_registry: CollectorRegistry) -> None:
    check_request(encode(web_registry).body())


def test_symbols_are_exactly_the_strings_used(web_registry: CollectorRegistry) -> None:
    message = check_request(encode(web_registry).body())
    used = {0}
    for ts in message.timeseries:
        used.update(ts.labels_refs)
        used.update((ts.metadata.help_ref, ts.metadata.unit_ref))
    assert used == set(range(len(message.symbols))), "a fresh encoder sends no unused symbols"


def test_same_series_and_values_as_1_0_except_created(web_registry: CollectorRegistry) -> None:
    v1 = decode_write_request(
        Encoder(job="j", instance="i").encode(collect(web_registry), TS).body(), compressed=False
    )
    expected = {_key(s.label_pairs): s.samples[0].value for s in v1.series if not s.name.endswith("_created")}
    got = {key: s.samples[0].value for key, s in series_of(encode(web_registry).body()).items()}
    assert got == expected
    assert all(s.samples[0].timestamp_ms == TS for s in series_of(encode(web_registry).body()).values())


_LATENCY = ("Latency.", "seconds")


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        pytest.param(
            "http_requests_total{code=200,instance=i,job=j,method=GET}",
            ("counter", "Requests served.", ""),
            id="counter",
        ),
        pytest.param(
            "http_latency_seconds_bucket{instance=i,job=j,le=0.1,method=GET}",
            ("histogram", *_LATENCY),
            id="bucket",
        ),
        pytest.param(
            "http_latency_seconds_sum{instance=i,job=j,method=GET}", ("histogram", *_LATENCY), id="sum"
        ),
        pytest.param(
            "payload_bytes_count{instance=i,job=j}", ("summary", "Payload sizes.", ""), id="summary"
        ),
        pytest.param("queue_depth{instance=i,job=j}", ("gauge", "Queued items.", ""), id="gauge"),
        pytest.param(
            "build_info{instance=i,job=j,version=1.2.3}", ("gauge", "Build information.", ""), id="info"
        ),
    ],
)
def test_per_series_metadata(
    web_registry: CollectorRegistry, series: str, expected: tuple[str, str, str]
) -> None:
    md = series_of(encode(web_registry).body())[series].metadata
    assert (md.type, md.help, md.unit) == expected


def test_empty_help_and_unit_point_at_symbol_zero(registry: CollectorRegistry) -> None:
    Gauge("bare", "", registry=registry).set(1)
    message = check_request(encode(registry).body())
    (ts,) = message.timeseries
    assert ts.metadata.help_ref == 0 and ts.metadata.unit_ref == 0


def test_target_and_external_labels(registry: CollectorRegistry) -> None:
    Gauge("g", "h", ["job"], registry=registry).labels("own").set(1)
    encoder = EncoderV2(job="default", instance="", external_labels={"region": "eu"})
    assert set(series_of(encoder.encode(collect(registry), TS).body())) == {"g{job=own,region=eu}"}


def test_invalid_external_label_is_refused() -> None:
    with pytest.raises(ValueError, match="external label"):
        EncoderV2(external_labels={"bad-name": "x"})


def test_metric_filter_sees_escaped_names(web_registry: CollectorRegistry) -> None:
    seen: list[str] = []

    def keep(name: str) -> bool:
        seen.append(name)
        return name.startswith("queue")

    body = EncoderV2(job="j", instance="i", metric_filter=keep).encode(collect(web_registry), TS).body()
    assert set(series_of(body)) == {"queue_depth{instance=i,job=j}"}
    assert "http_requests_total" in seen


def test_names_escaped_like_the_text_format(registry: CollectorRegistry) -> None:
    family = Metric("odd.name", "h", "gauge")
    family.add_sample("odd.name", {"a-b": "v"}, 1.0)
    body = encode(Families(family)).body()
    assert set(series_of(body)) == {"odd_name{a_b=v,instance=i,job=j}"}


def test_generate_write_request_speaks_2_0(web_registry: CollectorRegistry) -> None:
    body = generate_write_request(web_registry, timestamp_ms=TS, job="j", instance="i", protocol="2.0")
    raw = _snappy.decompress(body)
    check_request(raw)
    assert raw == EncoderV2(job="j", instance="i").encode(collect(web_registry), TS).body()


# --- start timestamps ----------------------------------------------------------------------------


def test_created_becomes_start_timestamp_and_is_not_sent(web_registry: CollectorRegistry) -> None:
    series = series_of(encode(web_registry).body())
    assert not [key for key in series if "_created" in key]
    for key, s in series.items():
        expected = 0 if key.startswith(("queue_depth", "build_info")) else CREATED_MS
        assert s.samples[0].start_timestamp_ms == expected, key


def test_start_timestamp_matches_labels_of_its_own_child(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = Counter("c", "h", ["k"], registry=registry)
    monkeypatch.setattr("time.time", lambda: 100.0)
    counter.labels("old").inc()
    monkeypatch.setattr("time.time", lambda: 200.5)
    counter.labels("new").inc()
    series = series_of(encode(registry).body())
    assert series["c_total{instance=i,job=j,k=old}"].samples[0].start_timestamp_ms == 100_000
    assert series["c_total{instance=i,job=j,k=new}"].samples[0].start_timestamp_ms == 200_500


def test_summary_quantiles_get_the_start_timestamp() -> None:
    family = Metric("rpc", "h", "summary")
    family.add_sample("rpc", {"quantile": "0.5"}, 3.0)
    family.add_sample("rpc_sum", {}, 9.0)
    family.add_sample("rpc_count", {}, 3.0)
    family.add_sample("rpc_created", {}, CREATED)
    series = series_of(encode(Families(family)).body())
    assert {s.samples[0].start_timestamp_ms for s in series.values()} == {CREATED_MS}
    assert len(series) == 3


def test_a_changed_created_value_is_picked_up(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = Counter("c", "h", ["k"], registry=registry)
    monkeypatch.setattr("time.time", lambda: 100.0)
    counter.labels("a").inc()
    encoder = EncoderV2(job="j", instance="i")
    encode(registry, encoder)
    counter.remove("a")
    monkeypatch.setattr("time.time", lambda: 300.0)
    counter.labels("a").inc()
    series = series_of(encode(registry, encoder, TS + 1).body())
    assert series["c_total{instance=i,job=j,k=a}"].samples[0].start_timestamp_ms == 300_000


def test_created_disabled_sends_neither_series_nor_start(
    web_registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    series = series_of(encode(web_registry).body())
    assert not [key for key in series if "_created" in key]
    assert {s.samples[0].start_timestamp_ms for s in series.values()} == {0}


def test_gauge_histogram_keeps_gauge_semantics() -> None:
    family = GaugeHistogramMetricFamily("waiting", "h", buckets=[("1.0", 2.0), ("+Inf", 3.0)], gsum_value=4.0)
    series = series_of(encode(Families(family)).body())
    assert series["waiting_gsum{instance=i,job=j}"].metadata.type == "gauge"
    assert series["waiting_bucket{instance=i,job=j,le=1.0}"].metadata.type == "histogram"
    assert {s.samples[0].start_timestamp_ms for s in series.values()} == {0}


# --- timestamps, exemplars, bad values -----------------------------------------------------------


def test_own_timestamps_and_exemplars(registry: CollectorRegistry) -> None:
    family = Metric("jobs", "h", "counter")
    family.add_sample(
        "jobs_total",
        {},
        5.0,
        timestamp=1_700_000_000.5,
        exemplar=Exemplar({"trace_id": "abc"}, 1.0, 1_700_000_000.0),
    )
    family.add_sample("jobs_created", {}, CREATED)
    plain = Metric("other", "h", "counter")
    plain.add_sample("other_total", {}, 1.0, exemplar=Exemplar({"trace_id": "def", "span_id": "1"}, 2.0))
    message = check_request(encode(Families(family, plain)).body())
    series = series_of(message.SerializeToString())
    jobs = series["jobs_total{instance=i,job=j}"]
    assert jobs.samples[0].timestamp_ms == 1_700_000_000_500
    assert jobs.samples[0].start_timestamp_ms == CREATED_MS
    assert [(e.labels, e.value, e.timestamp_ms) for e in jobs.exemplars] == [
        ({"trace_id": "abc"}, 1.0, 1_700_000_000_000)
    ]
    other = series["other_total{instance=i,job=j}"]
    assert other.exemplars[0].labels == {"span_id": "1", "trace_id": "def"}
    assert other.exemplars[0].timestamp_ms == TS, "an exemplar without a timestamp takes the collection's"


def test_exemplar_families_switch_back_to_the_fast_path(registry: CollectorRegistry) -> None:
    counter = Counter("c", "h", registry=registry)
    counter.inc(exemplar={"trace_id": "1"})
    encoder = EncoderV2(job="j", instance="i")
    assert series_of(encode(registry, encoder).body())["c_total{instance=i,job=j}"].exemplars
    registry_2 = Families(*[f for f in collect(registry)])
    for family in registry_2.families:
        family.samples = [s._replace(exemplar=None) for s in family.samples]
    series = series_of(encoder.encode(registry_2.collect(), TS + 1).body())
    assert not series["c_total{instance=i,job=j}"].exemplars
    assert series["c_total{instance=i,job=j}"].samples[0].value == 1.0


def test_bad_value_drops_only_that_series(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("g", "h", "gauge")
    family.add_sample("g", {"k": "ok"}, 1.0)
    family.add_sample("g", {"k": "bad"}, "not a number")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        result = encode(Families(family))
    check_request(result.body())
    assert set(series_of(result.body())) == {"g{instance=i,job=j,k=ok}"}
    assert result.samples == 1
    assert "cannot be encoded" in caplog.text


def test_empty_metric_name_drops_the_series_counts_it_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    family = Metric("custom", "h", "gauge")
    family.add_sample("custom", {"k": "kept"}, 1.0)
    family.add_sample("", {"k": "lost"}, 2.0)
    encoder = EncoderV2(job="j", instance="i")
    with caplog.at_level(logging.WARNING):
        results = [encode(Families(family), encoder, TS + n) for n in range(3)]
    for result in results:
        check_request(result.body())  # no empty label value, __name__'s included
        assert set(series_of(result.body())) == {"custom{instance=i,job=j,k=kept}"}
        assert result.dropped == {"empty_metric_name": 1}
    assert caplog.text.count("yields a sample with an empty name") == 1


def test_bad_value_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("g", "h", "gauge")
    family.add_sample("g", {"k": "ok"}, 1.0)
    family.add_sample("g", {"k": "bad"}, "not a number")  # type: ignore[arg-type]
    assert encode(Families(family)).dropped == {"invalid_sample": 1}


def test_duplicate_series_is_sent_once(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("g", "h", "gauge")
    family.add_sample("g", {"k": "v"}, 1.0)
    family.add_sample("g", {"k": "v"}, 2.0)
    with caplog.at_level(logging.WARNING):
        result = encode(Families(family))
    assert result.samples == 1
    assert "twice" in caplog.text


def test_special_values_are_bit_exact() -> None:
    family = Metric("g", "h", "gauge")
    for name, value in [("inf", math.inf), ("ninf", -math.inf), ("nan", math.nan), ("zero", -0.0)]:
        family.add_sample("g", {"k": name}, value)
    message = check_request(encode(Families(family)).body())
    got = {}
    for ts in message.timeseries:
        refs = list(ts.labels_refs)
        pairs = [(message.symbols[refs[n]], message.symbols[refs[n + 1]]) for n in range(0, len(refs), 2)]
        got[_key(pairs)] = _D.pack(ts.samples[0].value)
    assert got["g{instance=i,job=j,k=inf}"] == _D.pack(math.inf)
    assert got["g{instance=i,job=j,k=zero}"] == _D.pack(-0.0)
    assert math.isnan(_D.unpack(got["g{instance=i,job=j,k=nan}"])[0])


# --- template reuse ------------------------------------------------------------------------------


def test_steady_state_encodes_new_values_and_timestamps(registry: CollectorRegistry) -> None:
    gauge = Gauge("g", "h", ["k"], registry=registry)
    gauge.labels("a").set(1)
    encoder = EncoderV2(job="j", instance="i")
    first = encode(registry, encoder)
    gauge.labels("a").set(2)
    second = encode(registry, encoder, TS + 15_000)
    assert series_of(second.body())["g{instance=i,job=j,k=a}"].samples[0].value == 2.0
    assert series_of(second.body())["g{instance=i,job=j,k=a}"].samples[0].timestamp_ms == TS + 15_000
    assert len(second.body()) == len(first.body())
    gauge.labels("b").set(3)
    third = encode(registry, encoder, TS + 30_000)
    check_request(third.body())
    assert set(series_of(third.body())) == {"g{instance=i,job=j,k=a}", "g{instance=i,job=j,k=b}"}


def test_timestamp_width_change_rebuilds_templates(registry: CollectorRegistry) -> None:
    Gauge("g", "h", registry=registry).set(1)
    encoder = EncoderV2(job="j", instance="i")
    encode(registry, encoder, 1)
    series = series_of(encode(registry, encoder, TS).body())
    assert series["g{instance=i,job=j}"].samples[0].timestamp_ms == TS


def test_symbol_table_stays_bounded_under_label_churn(registry: CollectorRegistry) -> None:
    gauge = Gauge("g", "h", ["request_id"], registry=registry)
    encoder = EncoderV2(job="j", instance="i")
    sizes = []
    for step in range(200):
        gauge.clear()
        for n in range(10):
            gauge.labels(f"{step}-{n}").set(n)
        result = encode(registry, encoder, TS + step)
        message = check_request(result.body())
        assert len(message.timeseries) == 10
        sizes.append(len(message.symbols))
    # 10 live series need ~25 symbols; the table is rebuilt once it passes the floor of 256.
    assert max(sizes) <= _COMPACT_FLOOR + 12, "dead symbols are dropped once the table outgrows its bound"
    assert min(sizes[30:]) < 50, "the table was rebuilt at least once"


def test_stale_markers_name_the_gone_series_across_symbol_table_rebuilds(
    registry: CollectorRegistry,
) -> None:
    """A gone series' identity is read back through its template's own table, even a replaced one."""
    gauge = Gauge("g", "h", ["request_id"], registry=registry)
    encoder = EncoderV2(job="j", instance="i", track_staleness=True)
    rebuilt = False
    previous: set[str] = set()
    for step in range(120):
        gauge.clear()
        live = {f"{step}-{n}" for n in range(10)}
        for request_id in live:
            gauge.labels(request_id).set(1)
        table = encoder._symbols
        message = check_request(encode(registry, encoder, TS + step).body())
        rebuilt = rebuilt or encoder._symbols is not table
        symbols = list(message.symbols)
        stale, fresh = set(), set()
        for ts in message.timeseries:
            names, values = ts.labels_refs[0::2], ts.labels_refs[1::2]
            labels = dict(zip(_symbols_at(symbols, names), _symbols_at(symbols, values), strict=True))
            (stale if _stale(ts) else fresh).add(labels["request_id"])
        assert fresh == live and stale == previous
        previous = live
    assert rebuilt, "the symbol table was replaced at least once"


def _symbols_at(symbols: list[str], refs: Any) -> list[str]:
    return [symbols[ref] for ref in refs]


# --- splitting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_samples", [pytest.param(n, id=str(n)) for n in (1, 2, 3, 7, 1000)])
def test_split_requests_are_self_contained(web_registry: CollectorRegistry, max_samples: int) -> None:
    result = encode(web_registry)
    pieces = result.split(max_samples)
    assert all(count <= max_samples for _, count in pieces)
    assert sum(count for _, count in pieces) == result.samples
    merged: dict[str, Any] = {}
    for body, count in pieces:
        message = check_request(body)
        assert len(message.timeseries) == count
        merged.update(series_of(body))
    whole = series_of(result.body())
    assert {k: (s.samples, s.metadata) for k, s in merged.items()} == {
        k: (s.samples, s.metadata) for k, s in whole.items()
    }


def test_split_carries_only_the_symbols_needed_so_far(registry: CollectorRegistry) -> None:
    for n in range(4):
        Gauge(f"g{n}", f"help {n}", registry=registry).set(n)
    first, *_ = encode(registry).split(1)
    message = check_request(first[0])
    assert "help 3" not in message.symbols


def test_split_rejects_zero(web_registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError):
        encode(web_registry).split(0)


def test_empty_collection_is_a_valid_request(registry: CollectorRegistry) -> None:
    result = encode(registry)
    assert result.samples == 0 and result.split(10) == []
    assert list(check_request(result.body()).symbols) == [""]


# --- staleness -----------------------------------------------------------------------------------


def _stale(series: Any) -> bool:
    return bool(_U64.unpack(_D.pack(series.samples[0].value))[0] == STALE_NAN_BITS)


def test_gone_series_get_stale_markers(registry: CollectorRegistry) -> None:
    gauge = Gauge("g", "h", ["k"], registry=registry)
    gauge.labels("a").set(1)
    gauge.labels("b").set(2)
    encoder = EncoderV2(job="j", instance="i", track_staleness=True)
    encode(registry, encoder)
    gauge.remove("b")
    result = encode(registry, encoder, TS + 1)
    check_request(result.body())
    series = series_of(result.body())
    assert result.stale_markers == 1
    assert _stale(series["g{instance=i,job=j,k=b}"]) and not _stale(series["g{instance=i,job=j,k=a}"])
    assert series["g{instance=i,job=j,k=b}"].metadata.type == "gauge"


def test_stale_all_marks_everything_and_forgets(web_registry: CollectorRegistry) -> None:
    encoder = EncoderV2(job="j", instance="i", track_staleness=True)
    sent = set(series_of(encode(web_registry, encoder).body()))
    result = encoder.stale_all(TS + 1)
    check_request(result.body())
    series = series_of(result.body())
    assert set(series) == sent and all(_stale(s) for s in series.values())
    assert encoder.stale_all(TS + 2).samples == 0


def test_no_stale_markers_without_tracking(registry: CollectorRegistry) -> None:
    gauge = Gauge("g", "h", ["k"], registry=registry)
    gauge.labels("a").set(1)
    encoder = EncoderV2(job="j", instance="i")
    encode(registry, encoder)
    gauge.remove("a")
    assert encode(registry, encoder, TS + 1).stale_markers == 0


# --- native histograms ---------------------------------------------------------------------------


def native_family(gauge: bool = False, created: bool = True, exemplars: bool = False) -> Metric:
    native = (
        NATIVE._replace(nh_exemplars=[Exemplar({"trace_id": "t1"}, 0.7, 1_700_000_000.0)])
        if exemplars
        else NATIVE
    )
    family = Metric("latency_seconds", "Latency.", "gaugehistogram" if gauge else "histogram")
    family.add_sample("latency_seconds", {"path": "/"}, 0.0, native_histogram=native)
    if created:
        family.add_sample("latency_seconds_created", {"path": "/"}, CREATED)
    return family


def test_native_histogram_goes_into_histograms_field() -> None:
    message = check_request(encode(Families(native_family(exemplars=True))).body())
    (ts,) = message.timeseries
    (hist,) = ts.histograms
    assert hist.count_int == 7 and hist.sum == 12.5 and hist.schema == 1 and hist.zero_count_int == 1
    assert [(s.offset, s.length) for s in hist.positive_spans] == [(0, 2), (3, 1)]
    assert list(hist.positive_deltas) == [2, -1, 1] and list(hist.negative_deltas) == [1]
    assert hist.timestamp == TS and hist.start_timestamp == CREATED_MS
    assert hist.reset_hint == 0
    assert message.symbols[ts.metadata.help_ref] == "Latency." and ts.metadata.type == 3
    (ex,) = ts.exemplars
    assert [message.symbols[r] for r in ex.labels_refs] == ["trace_id", "t1"]


def test_native_histogram_body_is_the_1_0_one_plus_start() -> None:
    """2.0 and 1.0 share the Histogram message: the bodies differ only by field 17."""
    v2 = check_request(encode(Families(native_family())).body()).timeseries[0].histograms[0]
    v1_raw = Encoder(job="j", instance="i").encode(Families(native_family()).collect(), TS).body()
    v1 = _schema.WriteRequest.FromString(v1_raw).timeseries[0].histograms[0]
    v2.ClearField("start_timestamp")
    assert v2.SerializeToString() == v1.SerializeToString()
    assert v2.SerializeToString() == _native.histogram_body(NATIVE, TS)


def test_gauge_native_histogram_has_gauge_reset_hint_and_no_start() -> None:
    message = check_request(encode(Families(native_family(gauge=True))).body())
    hist = next(h for ts in message.timeseries for h in ts.histograms)
    assert hist.reset_hint == 3 and hist.start_timestamp == 0


# --- properties ----------------------------------------------------------------------------------

_label_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=8
)


@settings(max_examples=60, deadline=None)
@given(
    children=st.dictionaries(
        st.tuples(_label_text, _label_text), st.floats(allow_nan=False, width=64), min_size=0, max_size=12
    )
)
def test_any_label_values_round_trip(children: dict[tuple[str, str], float]) -> None:
    family = Metric("m", "help text", "gauge")
    for (a, b), value in children.items():
        family.add_sample("m", {"a": a, "b": b}, value)
    result = EncoderV2(job="j", instance="i").encode(Families(family).collect(), TS)
    message = check_request(result.body())
    decoded = decode_write_request(message.SerializeToString(), compressed=False, protocol="2.0")
    got = {(s.labels.get("a", ""), s.labels.get("b", "")): s.samples[0].value for s in decoded.series}
    assert got == children
    for body, _ in result.split(5):
        check_request(body)


# --- reviewer regressions ------------------------------------------------------------------------


def test_timestamp_outside_int64_drops_only_that_sample(caplog: pytest.LogCaptureFixture) -> None:
    good = Metric("good", "h", "gauge")
    good.add_sample("good", {}, 5.0)
    bad = Metric("bad", "h", "gauge")
    bad.add_sample("bad", {}, 1.0, timestamp=1.2e18)
    encoder = EncoderV2(job="j", instance="i")
    for ts in (TS, TS + 1):
        series = series_of(check_request(encoder.encode([good, bad], ts).body()).SerializeToString())
        assert set(series) == {"good{instance=i,job=j}"}
    assert caplog.text.count("outside the int64") == 1


def test_created_outside_int64_sends_the_series_without_start(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("c", "h", "counter")
    family.add_sample("c_total", {}, 3.0)
    family.add_sample("c_created", {}, 1.18e18)
    encoder = EncoderV2(job="j", instance="i")
    for ts in (TS, TS + 1):
        series = series_of(check_request(encoder.encode([family], ts).body()).SerializeToString())
        (sample,) = series["c_total{instance=i,job=j}"].samples
        assert (sample.value, sample.timestamp_ms, sample.start_timestamp_ms) == (3.0, ts, 0)
    assert caplog.text.count("no start timestamp") == 1


def test_native_histogram_delta_outside_int64_drops_only_that_histogram(
    caplog: pytest.LogCaptureFixture,
) -> None:
    family = native_family()
    family.samples[0] = family.samples[0]._replace(native_histogram=NATIVE._replace(pos_deltas=[2**70, 1, 1]))
    gauge = Metric("g", "h", "gauge")
    gauge.add_sample("g", {}, 1.0)
    series = series_of(check_request(encode(Families(family, gauge)).body()).SerializeToString())
    assert set(series) == {"g{instance=i,job=j}"}
    assert "cannot be encoded" in caplog.text


def test_native_histogram_with_float_counts_is_a_float_histogram() -> None:
    family = native_family()
    family.samples[0] = family.samples[0]._replace(native_histogram=NATIVE._replace(count_value=7.5))
    message = check_request(encode(Families(family)).body())
    (hist,) = message.timeseries[0].histograms
    assert hist.WhichOneof("count") == "count_float" and hist.WhichOneof("zero_count") == "zero_count_float"
    assert list(hist.positive_counts) == [2.0, 1.0, 2.0] and not hist.positive_deltas
    assert hist.start_timestamp == CREATED_MS


class _ReusedDict:
    """A collector that mutates and re-yields one labels dict."""

    def __init__(self) -> None:
        self.labels = {"a": "1"}
        self.value = 1.0

    def collect(self) -> list[Metric]:
        family = Metric("m", "h", "gauge")
        family.add_sample("m", self.labels, self.value)
        return [family]


def test_a_mutated_and_reused_labels_dict_is_noticed() -> None:
    collector = _ReusedDict()
    encoder = EncoderV2(job="j", instance="i")
    encoder.encode(collector.collect(), TS)
    collector.labels["a"] = "2"
    collector.value = 2.0
    series = series_of(encoder.encode(collector.collect(), TS + 1).body())
    assert set(series) == {"m{a=2,instance=i,job=j}"}
    assert series["m{a=2,instance=i,job=j}"].samples[0].value == 2.0


@pytest.mark.parametrize(
    ("family", "kwargs"),
    [
        pytest.param(
            Metric("g", "h", "gauge"), {"metric_filter": lambda name: name != "g"}, id="filtered-family"
        ),
        pytest.param(Metric("c", "h", "counter"), {}, id="counter-with-only-created"),
    ],
)
def test_a_family_with_nothing_to_send_is_cached_quietly(
    family: Metric, kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    if family.type == "counter":
        family.add_sample("c_created", {}, CREATED)
    else:
        family.add_sample("g", {}, 1.0)
        family.add_sample("g", {"a": "b"}, 2.0)
    other = Metric("h", "h", "gauge")
    other.add_sample("h", {}, 3.0)
    encoder = EncoderV2(job="j", instance="i", **kwargs)
    with caplog.at_level(logging.DEBUG, logger="prometheus_rw_bridge"):
        encoder.encode([family, other], TS)
        templates = dict(encoder._templates)
        series = series_of(encoder.encode([family, other], TS + 1).body())
    assert set(series) == {"h{instance=i,job=j}"}
    assert caplog.records == []
    assert encoder._templates[(family.name, family.type, 0)] is templates[(family.name, family.type, 0)]


def test_job_among_external_labels_is_used() -> None:
    registry = CollectorRegistry()
    Gauge("g", "d", registry=registry).set(1)
    raw = generate_write_request(registry, external_labels={"job": "api"}, instance="i", protocol="2.0")
    (series,) = decode_write_request(raw, protocol="2.0").series
    assert series.labels["job"] == "api" and series.labels["instance"] == "i"


def test_same_series_from_two_families_is_sent_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    first = Gauge("a.b", "d", registry=registry)
    first.set(1)
    Gauge("a_b", "d", registry=registry).set(2)
    encoder = EncoderV2(job="j", instance="i", track_staleness=True)
    for ts in (TS, TS + 1):
        series = series_of(check_request(encode(registry, encoder, ts).body()).SerializeToString())
        assert list(series) == ["a_b{instance=i,job=j}"]
        assert series["a_b{instance=i,job=j}"].samples[0].value == 1.0
    assert caplog.text.count("already sends") == 1
    registry.unregister(first)
    result = encode(registry, encoder, TS + 2)
    series = series_of(result.body())
    assert list(series) == ["a_b{instance=i,job=j}"] and result.stale_markers == 0
    assert series["a_b{instance=i,job=j}"].samples[0].value == 2.0


def test_bad_exemplars_drop_only_the_exemplar(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("c", "h", "counter")
    family.add_sample("c_total", {"k": "1"}, 1.0, exemplar=Exemplar({"trace_id": "\ud800"}, 0.5))
    family.add_sample("c_total", {"k": "2"}, 2.0, exemplar=Exemplar({"trace_id": "t"}, 0.5, 1e18))
    message = check_request(encode(Families(family)).body())
    assert [len(ts.exemplars) for ts in message.timeseries] == [0, 0]
    assert [ts.samples[0].value for ts in message.timeseries] == [1.0, 2.0]
    assert "\ud800" not in list(message.symbols)
    assert "the exemplar is dropped" in caplog.text


def test_exemplar_on_a_native_histogram_sample_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    family = native_family()
    family.samples[0] = family.samples[0]._replace(exemplar=Exemplar({"t": "x"}, 1.0))
    message = check_request(encode(Families(family)).body())
    assert len(message.timeseries[0].histograms) == 1 and not message.timeseries[0].exemplars
    assert "exemplar on a native histogram" in caplog.text
