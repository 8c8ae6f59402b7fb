"""Encoder: bad input, bit-exact values, template reuse, split(), staleness and collect()."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Exemplar, NativeHistogram, Timestamp
from scrape import Point, bits, key, message, written, written_list, written_metadata

from prometheus_rw_bridge import STALE_NAN
from prometheus_rw_bridge._protocol.encode import EncodedCollection, Encoder, collect, to_millis

TS = 1_700_000_000_000


class Families:
    """A custom collector yielding whatever families it is given."""

    def __init__(self, *families: Any) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Any]:
        return iter(self.families)

    def describe(self) -> list[Any]:
        return []


class Broken:
    """A collector whose collect() raises."""

    def collect(self) -> Iterator[Any]:
        raise RuntimeError("backend down")

    def describe(self) -> list[Any]:
        return []


def raw(name: str, *samples: tuple[dict[str, Any], Any], mtype: str = "gauge") -> Metric:
    """A family with arbitrary (labels, value) samples, unchecked, as a hand-written collector makes."""
    family = Metric(name, "help", mtype)
    for labels, value in samples:
        family.add_sample(name, labels, value)
    return family


def encoder(**kwargs: Any) -> Encoder:
    kwargs.setdefault("job", "j")
    kwargs.setdefault("instance", "i")
    return Encoder(**kwargs)


def encode(families: Any, ts: int = TS, **kwargs: Any) -> EncodedCollection:
    return encoder(**kwargs).encode(families, ts)


def body(result: EncodedCollection, *, metadata: bool = True) -> bytes:
    return result.body(metadata=metadata)


def series_of(result: EncodedCollection) -> dict[Any, Point]:
    return written(body(result), compressed=False)


# --- bad input: valid output plus a logged warning, never a malformed request ------------------


def test_empty_label_name_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    result = encode([raw("g", ({"": "x", "a": "b"}, 1.0))])
    assert series_of(result) == {key("g", {"a": "b"}): Point(1.0, TS)}
    assert "empty name" in caplog.text and "'g'" in caplog.text


def test_empty_metric_name_drops_the_series_counts_it_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Both specs: label values (__name__'s too) MUST NOT be empty.  A hand-written collector
    # can yield a sample named "" (prometheus_client checks family names, not sample names).
    family = raw("custom", ({"k": "kept"}, 1.0))
    family.add_sample("", {"k": "lost"}, 2.0)
    enc = encoder()
    for n in range(3):
        result = enc.encode([family], TS + n)
        assert series_of(result) == {key("custom", {"k": "kept"}): Point(1.0, TS + n)}
        assert result.dropped == {"empty_metric_name": 1}
    assert caplog.text.count("yields a sample with an empty name") == 1


@pytest.mark.parametrize(
    ("family", "reason"),
    [
        pytest.param(
            raw("g", ({"a.b": "x", "a-b": "y"}, 1.0), ({"c": "ok"}, 2.0)), "invalid_labels", id="labels"
        ),
        pytest.param(raw("g", ({"a": "\ud800"}, 1.0), ({"a": "ok"}, 2.0)), "invalid_labels", id="utf-8"),
        pytest.param(raw("g", ({"n": "1"}, 1.0), ({"n": "2"}, "x")), "invalid_sample", id="value"),
    ],
)
def test_every_unsendable_series_is_counted_by_reason(family: Metric, reason: str) -> None:
    enc = encoder()
    for n in range(2):  # counted every collection, though the template is reused
        assert enc.encode([family], TS + n).dropped == {reason: 1}


def test_a_family_that_cannot_be_encoded_counts_all_its_samples() -> None:
    class Exploding:
        """A duck-typed family whose help text cannot be read."""

        name, type, unit = "g", "gauge", ""
        samples = raw("g", ({"n": "1"}, 1.0), ({"n": "2"}, 2.0)).samples

        @property
        def documentation(self) -> str:
            raise RuntimeError("no docs")

    assert encode([Exploding()]).dropped == {"encoding_error": 2}


def test_illegal_label_name_characters_are_escaped() -> None:
    result = encode([raw("g", ({"a.b": "x", "ü": "y"}, 1.0))])
    assert set(series_of(result)) == {key("g", {"a_b": "x", "_": "y"})}


def test_labels_that_collide_once_escaped_drop_the_series(caplog: pytest.LogCaptureFixture) -> None:
    result = encode([raw("g", ({"a.b": "x", "a-b": "y"}, 1.0), ({"c": "ok"}, 2.0))])
    assert set(series_of(result)) == {key("g", {"c": "ok"})}
    assert "both 'a_b'" in caplog.text


def test_illegal_metric_name_is_escaped() -> None:
    result = encode([raw("my-metric.v2", ({}, 1.0))])
    assert set(series_of(result)) == {key("my_metric_v2", {})}


def test_ten_thousand_character_label_value_is_kept_whole() -> None:
    value = "é" + "x" * 9_999
    result = encode([raw("g", ({"long": value}, 1.0))])
    (series,) = written_list(body(result), compressed=False)
    assert series.labels["long"] == value


def test_raising_collector_costs_only_its_own_families(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    Gauge("before", "b", registry=registry).set(1)
    registry.register(Broken())
    registry.register(Families(raw("after", ({}, 2.0))))
    result = encode(collect(registry))
    assert set(series_of(result)) == {key("before", {}), key("after", {})}
    assert "Broken" in caplog.text and "backend down" in caplog.text


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("abc", id="string"),
        pytest.param(None, id="none"),
        pytest.param(object(), id="object"),
        pytest.param(10**400, id="int-too-big-for-a-double"),
    ],
)
def test_non_numeric_value_drops_only_that_sample(bad: Any, caplog: pytest.LogCaptureFixture) -> None:
    family = raw("g", ({"n": "1"}, 1.0), ({"n": "bad"}, bad), ({"n": "3"}, 3.0))
    result = encode([family])
    assert series_of(result) == {key("g", {"n": "1"}): Point(1.0, TS), key("g", {"n": "3"}): Point(3.0, TS)}
    assert result.samples == 2
    assert "'g'" in caplog.text and "dropped" in caplog.text


def test_non_numeric_value_with_a_timestamp_drops_only_that_sample(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("g", "h", "gauge")
    family.add_sample("g", {"n": "1"}, 1.0, timestamp=1.5)
    family.add_sample("g", {"n": "2"}, "nope", timestamp=1.5)
    assert series_of(encode([family])) == {key("g", {"n": "1"}): Point(1.0, 1500)}
    assert "dropped" in caplog.text


def test_duplicate_series_keeps_the_first(caplog: pytest.LogCaptureFixture) -> None:
    result = encode([raw("g", ({"a": "1"}, 1.0), ({"a": "1"}, 2.0))])
    assert series_of(result) == {key("g", {"a": "1"}): Point(1.0, TS)}
    assert "twice" in caplog.text


def test_name_label_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    result = encode([raw("g", ({"__name__": "evil", "a": "1"}, 1.0))])
    assert set(series_of(result)) == {key("g", {"a": "1"})}
    assert "__name__" in caplog.text


def test_label_value_that_is_not_utf8_drops_the_series(caplog: pytest.LogCaptureFixture) -> None:
    result = encode([raw("g", ({"a": "\ud800"}, 1.0), ({"a": "ok"}, 2.0))])
    assert set(series_of(result)) == {key("g", {"a": "ok"})}
    assert "UTF-8" in caplog.text


def test_non_string_label_value_is_stringified() -> None:
    result = encode([raw("g", ({"port": 8080}, 1.0))])
    assert set(series_of(result)) == {key("g", {"port": "8080"})}


def test_malformed_family_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class NotAFamily:
        name = "broken"

    result = encode([NotAFamily(), raw("ok", ({}, 1.0))])
    assert set(series_of(result)) == {key("ok", {})}
    assert "broken" in caplog.text


def test_each_problem_is_logged_once_per_encoder(caplog: pytest.LogCaptureFixture) -> None:
    enc = encoder()
    for ts in range(1, 4):
        enc.encode([raw("g", ({"": "x"}, float(ts)))], ts)
    assert caplog.text.count("empty name") == 1


def test_bad_input_output_always_parses() -> None:
    families = [
        raw("a", ({"": "x"}, "nan?"), ({"k": "v"}, math.nan)),
        raw("b b", ({"a.b": "1", "a-b": "2"}, 1.0)),
        raw("c", ({"__name__": "x"}, None)),
        raw("d", ({"v": '\n\\"' * 3000}, math.inf)),
    ]
    result = encode(families)
    msg = message(body(result), compressed=False)
    assert len(msg.timeseries) == result.samples == 2


# --- values and timestamps -------------------------------------------------------------------


SPECIAL = [
    pytest.param(STALE_NAN, id="stale-nan"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000123))[0], id="negative-nan-payload"),
    pytest.param(math.inf, id="+inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(-0.0, id="-0.0"),
    pytest.param(5e-324, id="subnormal"),
    pytest.param(1e308, id="huge"),
]


@pytest.mark.parametrize("value", SPECIAL)
@pytest.mark.parametrize(
    "own_timestamp", [pytest.param(None, id="template-path"), pytest.param(2.0, id="general-path")]
)
def test_values_are_bit_exact(value: float, own_timestamp: float | None) -> None:
    family = Metric("g", "h", "gauge")
    family.add_sample("g", {}, value, timestamp=own_timestamp)
    enc = encoder()
    for ts in (TS, TS + 1):  # the second encode reuses the template
        (series,) = written_list(body(enc.encode([family], ts)), compressed=False)
        assert bits(series.points[0].value) == bits(value)


def test_stale_nan_set_on_a_gauge_stays_bit_exact() -> None:
    registry = CollectorRegistry()
    Gauge("g", "h", registry=registry).set(STALE_NAN)
    (series,) = written_list(body(encode(collect(registry))), compressed=False)
    assert bits(series.points[0].value) == 0x7FF0000000000002


def test_integer_values_become_doubles() -> None:
    assert series_of(encode([raw("g", ({}, 2**53 + 1))]))[key("g", {})].value == float(2**53 + 1)


@pytest.mark.parametrize(
    ("stamp", "millis"),
    [
        pytest.param(1.5, 1500, id="float"),
        pytest.param(1_700_000_000.123, 1_700_000_000_123, id="float-ms"),
        # The text exposition's int(float(ts) * 1000), float rounding included.
        pytest.param(Timestamp(1_700_000_000, 999_999_999), 1_700_000_001_000, id="Timestamp-rounds"),
        pytest.param(Timestamp(1, 3_000_000), 1002, id="Timestamp-float-rounding"),
        pytest.param(Timestamp(-1, 500_000_001), -1500, id="Timestamp-negative"),
        pytest.param(-(2**63) / 1000, -(2**63), id="int64-min"),
        pytest.param(0, 0, id="epoch"),
    ],
)
def test_to_millis(stamp: Any, millis: int) -> None:
    assert to_millis(stamp) == millis


def test_exemplar_without_timestamp_gets_the_collection_timestamp() -> None:
    family = Metric("c", "h", "counter")
    family.add_sample("c_total", {}, 1.0, exemplar=Exemplar({"trace_id": "t", "empty": ""}, 0.5))
    (series,) = written_list(body(encode([family])), compressed=False)
    (ex,) = series.exemplars
    assert ex.timestamp == TS
    assert [(lab.name, lab.value) for lab in ex.labels] == [("trace_id", "t")]


# --- template reuse ---------------------------------------------------------------------------


def _fresh_body(families: list[Any], ts: int, **kwargs: Any) -> bytes:
    return encoder(**kwargs).encode(families, ts).body()


def test_template_reuse_matches_a_fresh_encoder_through_every_kind_of_change() -> None:
    registry = CollectorRegistry()
    g = Gauge("g", "Gauge.", ["k"], registry=registry)
    c = Counter("c", "Counter.", ["k"], registry=registry)
    extra = Families()
    registry.register(extra)
    enc = encoder(track_staleness=False)
    steps: list[tuple[int, Any]] = [
        (1, lambda: g.labels("a").set(1)),
        (2, lambda: g.labels("a").set(2)),  # values only: the template path
        (127, lambda: g.labels("b").set(3)),  # a series appears
        (128, lambda: c.labels("x").inc()),  # timestamp varint grows a byte
        (2**35, lambda: g.remove("a")),  # a series disappears
        (2**35 + 1, lambda: [g.labels(v).set(i) for i, v in enumerate(["a\\b", "a\nb", 'a"b', "a\\nb"])]),
        (2**35 + 2, lambda: extra.families.append(raw("r", ({"x": "1"}, 1.0)))),  # a family appears
        (2**35 + 3, lambda: extra.families.clear()),  # and goes again
        (2**35 + 4, lambda: setattr(g, "_documentation", "Changed help.")),
        (3, lambda: g.labels("zzz").set(math.nan)),  # timestamp shrinks again
    ]
    for ts, change in steps:
        change()
        families = list(collect(registry))
        assert enc.encode(families, ts).body() == _fresh_body(families, ts), ts


def test_label_values_differing_only_in_escaped_characters_stay_distinct() -> None:
    values = ["a\\b", "a\nb", 'a"b', "a\\nb", 'a\\"b', "a b"]
    family = raw("g", *[({"v": v}, float(i)) for i, v in enumerate(values)])
    enc = encoder()
    for ts in (TS, TS + 1):
        got = series_of(enc.encode([family], ts))
        assert {dict(k[1])["v"]: p.value for k, p in got.items()} == {
            v: float(i) for i, v in enumerate(values)
        }


def test_changed_label_set_with_the_same_length_is_noticed() -> None:
    enc = encoder()
    enc.encode([raw("g", ({"k": "a"}, 1.0))], TS)
    assert set(series_of(enc.encode([raw("g", ({"k": "b"}, 1.0))], TS + 1))) == {key("g", {"k": "b"})}


def test_metadata_changed_flag() -> None:
    enc = encoder()
    assert enc.encode([raw("g", ({}, 1.0))], 1).metadata_changed
    assert not enc.encode([raw("g", ({}, 2.0))], 2).metadata_changed
    changed = raw("g", ({}, 2.0))
    changed.documentation = "new help"
    assert enc.encode([changed], 3).metadata_changed
    assert written_metadata(enc.encode([changed], 4).body(), compressed=False) == {"g": ("gauge", "new help")}


def test_metric_filter_sees_escaped_names() -> None:
    seen: list[str] = []

    def keep(name: str) -> bool:
        seen.append(name)
        return not name.startswith("drop")

    result = encode([raw("drop.me", ({}, 1.0)), raw("keep.me", ({}, 2.0))], metric_filter=keep)
    assert set(series_of(result)) == {key("keep_me", {})}
    assert sorted(seen) == ["drop_me", "keep_me"]


def test_same_family_twice_in_one_collection() -> None:
    result = encode([raw("g", ({"a": "1"}, 1.0)), raw("g", ({"a": "2"}, 2.0))])
    assert set(series_of(result)) == {key("g", {"a": "1"}), key("g", {"a": "2"})}


# --- body() and split() -----------------------------------------------------------------------


def test_body_without_metadata() -> None:
    result = encode([raw("g", ({}, 1.0))])
    assert len(message(result.body(metadata=False), compressed=False).metadata) == 0
    assert len(message(result.body(), compressed=False).metadata) == 1


@pytest.mark.parametrize("max_samples", [1, 2, 3, 4, 7, 15, 16, 100])
def test_split_cuts_between_series_only(max_samples: int) -> None:
    families = [raw(f"f{i}", *[({"n": str(j)}, float(j)) for j in range(i + 1)]) for i in range(5)]
    result = encode(families)
    assert result.samples == 15
    pieces = result.split(max_samples)
    assert b"".join(piece for piece, _ in pieces) == result.body(metadata=False)
    assert sum(count for _, count in pieces) == 15
    assert len(pieces) == math.ceil(15 / max_samples)
    for piece, count in pieces:
        msg = message(piece, compressed=False)
        assert len(msg.timeseries) == count <= max_samples
        assert len(msg.metadata) == 0


def test_split_of_an_empty_collection() -> None:
    assert encode([]).split(10) == []


def test_split_refuses_zero() -> None:
    with pytest.raises(ValueError, match="max_samples"):
        encode([]).split(0)


# --- staleness --------------------------------------------------------------------------------


def _stale(result: EncodedCollection) -> dict[Any, int]:
    """Return ``{series key: timestamp}`` of the stale markers in ``result``."""
    out = {}
    for series in written_list(result.body(), compressed=False):
        (point,) = series.points
        if bits(point.value) == 0x7FF0000000000002:
            out[key(series.labels["__name__"], series.labels, ("job", "instance"))] = point.timestamp_ms
    return out


def test_removed_child_gets_a_stale_marker_at_the_new_timestamp() -> None:
    registry = CollectorRegistry()
    g = Gauge("g", "h", ["k"], registry=registry)
    g.labels("a").set(1)
    g.labels("b").set(2)
    enc = encoder(track_staleness=True)
    assert enc.encode(collect(registry), TS).stale_markers == 0
    g.remove("a")
    result = enc.encode(collect(registry), TS + 15_000)
    assert _stale(result) == {key("g", {"k": "a"}): TS + 15_000}
    assert result.stale_markers == 1
    assert series_of(result)[key("g", {"k": "b"})] == Point(2.0, TS + 15_000)
    (stale_series,) = [s for s in written_list(result.body(), compressed=False) if s.labels.get("k") == "a"]
    assert stale_series.labels == {"__name__": "g", "instance": "i", "job": "j", "k": "a"}
    # Said once: the next collection has nothing more to retract.
    assert enc.encode(collect(registry), TS + 30_000).stale_markers == 0


def test_vanished_family_gets_stale_markers_for_every_series() -> None:
    registry = CollectorRegistry()
    extra = Families(raw("r", ({"x": "1"}, 1.0), ({"x": "2"}, 2.0)))
    registry.register(extra)
    Gauge("stay", "h", registry=registry).set(1)
    enc = encoder(track_staleness=True)
    enc.encode(collect(registry), TS)
    registry.unregister(extra)
    result = enc.encode(collect(registry), TS + 1)
    assert _stale(result) == {key("r", {"x": "1"}): TS + 1, key("r", {"x": "2"}): TS + 1}


def test_series_moving_to_another_family_is_not_stale() -> None:
    enc = encoder(track_staleness=True)
    enc.encode([raw("g", ({"k": "a"}, 1.0))], TS)
    moved = raw("g", ({"k": "a"}, 1.0), mtype="unknown")
    assert enc.encode([moved], TS + 1).stale_markers == 0


def test_no_stale_markers_without_tracking() -> None:
    enc = encoder(track_staleness=False)
    enc.encode([raw("g", ({"k": "a"}, 1.0))], TS)
    assert enc.encode([], TS + 1).stale_markers == 0


def test_stale_all_retracts_everything_once() -> None:
    registry = CollectorRegistry()
    Gauge("g", "h", ["k"], registry=registry).labels("a").set(1)
    Counter("c", "h", registry=registry).inc()
    enc = encoder(track_staleness=True)
    enc.encode(collect(registry), TS)
    result = enc.stale_all(TS + 5)
    assert set(_stale(result)) == {key("g", {"k": "a"}), key("c_total", {}), key("c_created", {})}
    assert set(_stale(result).values()) == {TS + 5}
    assert result.stale_markers == result.samples == 3
    assert enc.stale_all(TS + 6).stale_markers == 0
    # After stale_all the encoder starts afresh: the series come back, nothing is stale.
    again = enc.encode(collect(registry), TS + 7)
    assert again.stale_markers == 0 and again.samples == 3


# --- PROMETHEUS_DISABLE_CREATED_SERIES, target labels, collect() -------------------------------


def test_created_switch_is_read_when_the_encoder_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    Counter("c", "h", registry=registry).inc()
    before = encoder()
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    after = encoder()
    assert key("c_created", {}) in series_of(before.encode(collect(registry), TS))
    assert set(series_of(after.encode(collect(registry), TS))) == {key("c_total", {})}


def test_target_labels_property() -> None:
    assert Encoder(job="j", instance="", external_labels={"dc": "x", "e": ""}).target_labels == {
        "job": "j",
        "dc": "x",
    }


@pytest.mark.parametrize("name", [pytest.param("1abc", id="leading-digit"), pytest.param("a.b", id="dot")])
def test_external_label_names_are_validated(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Encoder(external_labels={name: "v"})


def test_collect_accepts_any_object_with_collect() -> None:
    fam = GaugeMetricFamily("g", "h", value=1)
    assert list(collect(Families(fam))) == [fam]


def test_collect_includes_target_info() -> None:
    registry = CollectorRegistry(target_info={"service": "api"})
    assert [f.name for f in collect(registry)] == ["target"]


def test_collect_logs_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    registry.register(Broken())
    with caplog.at_level(logging.WARNING, logger="prometheus_rw_bridge"):
        assert list(collect(registry)) == []
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is not None


# --- property-based: one long-lived encoder always equals a fresh one --------------------------

_LABEL_POOL = st.sampled_from(["a", "b", 'q"', "x\\y", "n\nl", "ü", ""])
_COLLECTION = st.lists(
    st.tuples(
        st.sampled_from(["g1", "g2", "c"]),  # family
        st.dictionaries(st.sampled_from(["k", "l"]), _LABEL_POOL, max_size=2),  # labels
        st.one_of(st.floats(width=64), st.just(STALE_NAN)),  # value
        st.one_of(st.none(), st.just(1.5)),  # own timestamp, sometimes
    ),
    max_size=8,
)


def _families(collection: list[tuple[str, dict[str, str], float, float | None]]) -> list[Metric]:
    families: dict[str, Metric] = {}
    for name, labels, value, stamp in collection:
        family = families.setdefault(name, Metric(name, f"help {name}", "gauge"))
        family.add_sample(name, labels, value, timestamp=stamp)
    return list(families.values())


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_COLLECTION, st.integers(min_value=0, max_value=2**45)), min_size=1, max_size=5))
def test_long_lived_encoder_equals_a_fresh_one_and_retracts_exactly_what_went(
    collections: list[tuple[list[Any], int]],
) -> None:
    enc = encoder(track_staleness=True)
    previous: set[Any] = set()
    for collection, ts in collections:
        families = _families(collection)
        result = enc.encode(families, ts)
        fresh = encoder().encode(families, ts)
        stale_part = result.body(metadata=False)[len(fresh.body(metadata=False)) :]
        assert result.body(metadata=False).startswith(fresh.body(metadata=False))
        assert result.metadata == fresh.metadata
        current = {key(s.labels["__name__"], s.labels) for s in written_list(fresh.body(), compressed=False)}
        stale = written_list(stale_part, compressed=False)
        assert {key(s.labels["__name__"], s.labels) for s in stale} == previous - current
        assert all(
            bits(s.points[0].value) == 0x7FF0000000000002 and s.points[0].timestamp_ms == ts for s in stale
        )
        assert result.stale_markers == len(stale)
        previous = current


# --- reviewer regressions ---------------------------------------------------------------------


class _Stamped:
    """A collector yielding a good gauge and one sample with the given own timestamp."""

    def __init__(self, stamp: Any) -> None:
        self.stamp = stamp

    def collect(self) -> list[Metric]:
        good = Metric("good", "h", "gauge")
        good.add_sample("good", {}, 5.0)
        bad = Metric("bad", "h", "gauge")
        bad.add_sample("bad", {}, 1.0, timestamp=self.stamp)
        bad.add_sample("bad", {"ok": "yes"}, 2.0, timestamp=1.5)
        return [good, bad]


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(1.2e18, id="beyond-int64-ms"),
        pytest.param(-1.2e18, id="below"),
        pytest.param(math.inf, id="inf"),
    ],
)
def test_timestamp_outside_int64_drops_only_that_sample(
    stamp: float, caplog: pytest.LogCaptureFixture
) -> None:
    enc = encoder()
    for ts in (TS, TS + 1):
        series = series_of(enc.encode(_Stamped(stamp).collect(), ts))  # parses: the request is not corrupt
        assert series == {key("good", {}): Point(5.0, ts), key("bad", {"ok": "yes"}): Point(2.0, 1500)}
    assert caplog.text.count("cannot be encoded") == 1


def test_exemplar_timestamp_outside_int64_drops_only_the_exemplar(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("c", "h", "counter")
    family.add_sample("c_total", {}, 1.0, exemplar=Exemplar({"trace_id": "t"}, 0.5, 1e18))
    (series,) = written_list(body(encode([family])), compressed=False)
    assert series.points == [Point(1.0, TS)] and series.exemplars == []
    assert "the exemplar is dropped" in caplog.text


def test_exemplar_label_value_not_utf8_drops_only_the_exemplar(caplog: pytest.LogCaptureFixture) -> None:
    family = Metric("c", "h", "counter")
    family.add_sample("c_total", {}, 1.0, exemplar=Exemplar({"trace_id": "\ud800"}, 0.5))
    enc = encoder()
    for ts in (TS, TS + 1):
        (series,) = written_list(body(enc.encode([family], ts)), compressed=False)
        assert series.points == [Point(1.0, ts)] and series.exemplars == []
    assert caplog.text.count("the exemplar is dropped") == 1


class _ReusedDict:
    """A collector that mutates and re-yields one labels dict, as some hand-written ones do."""

    def __init__(self, *, own_timestamp: bool = False) -> None:
        self.labels = {"a": "1"}
        self.value = 1.0
        self.own_timestamp = own_timestamp

    def collect(self) -> list[Metric]:
        family = Metric("m", "h", "gauge")
        family.add_sample("m", self.labels, self.value, timestamp=12.0 if self.own_timestamp else None)
        return [family]


@pytest.mark.parametrize(
    "own_timestamp", [pytest.param(False, id="plain"), pytest.param(True, id="own-timestamp")]
)
def test_a_mutated_and_reused_labels_dict_is_noticed(own_timestamp: bool) -> None:
    collector = _ReusedDict(own_timestamp=own_timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    enc = encoder()
    enc.encode(collect(registry), TS)
    collector.labels["a"] = "2"
    collector.value = 2.0
    sent = series_of(enc.encode(collect(registry), TS + 1))
    assert set(sent) == {key("m", {"a": "2"})} and sent[key("m", {"a": "2"})].value == 2.0
    assert 'm{a="2"} 2.0' in generate_latest(registry).decode()


@pytest.mark.parametrize(
    ("kwargs", "job", "instance"),
    [
        pytest.param({"external_labels": {"job": "api", "instance": "h:1"}}, "api", "h:1", id="external"),
        pytest.param({"job": "arg", "external_labels": {"job": "api"}}, "arg", None, id="argument-wins"),
        pytest.param({"job": "", "external_labels": {"job": "api"}}, None, None, id="empty-argument-wins"),
    ],
)
def test_job_and_instance_among_external_labels(
    kwargs: dict[str, Any], job: str | None, instance: str | None
) -> None:
    enc = Encoder(**kwargs)
    target = enc.target_labels
    assert target.get("job") == job
    if instance is not None:
        assert target["instance"] == instance
    (series,) = written_list(body(enc.encode([raw("g", ({}, 1.0))], TS)), compressed=False)
    assert series.labels.get("job") == job


def test_same_series_from_two_families_is_sent_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    Gauge("a.b", "d", registry=registry).set(1)
    Gauge("a_b", "d", registry=registry).set(2)
    enc = encoder()
    for ts in (TS, TS + 1, TS + 2):
        # written() asserts every series is there once; a scrape keeps the first of two.
        assert series_of(enc.encode(collect(registry), ts)) == {key("a_b", {}): Point(1.0, ts)}
    assert caplog.text.count("already sends") == 1


def test_a_dropped_duplicate_is_sent_once_its_first_family_goes() -> None:
    registry = CollectorRegistry()
    first = Gauge("a.b", "d", registry=registry)
    first.set(1)
    Gauge("a_b", "d", registry=registry).set(2)
    enc = encoder(track_staleness=True)
    enc.encode(collect(registry), TS)
    registry.unregister(first)
    result = enc.encode(collect(registry), TS + 1)
    assert series_of(result) == {key("a_b", {}): Point(2.0, TS + 1)}
    assert result.stale_markers == 0


def test_a_duplicate_in_an_earlier_family_takes_the_series_over() -> None:
    later = Families(raw("a_b", ({}, 2.0)))
    enc = encoder(track_staleness=True)
    first = raw("a.b", ({}, 1.0))
    enc.encode([first, *later.collect()], TS)
    result = enc.encode([*later.collect(), first], TS + 1)
    assert series_of(result) == {key("a_b", {}): Point(2.0, TS + 1)}
    assert result.stale_markers == 0
    assert series_of(enc.encode([*later.collect(), first], TS + 2)) == {key("a_b", {}): Point(2.0, TS + 2)}


def test_exemplar_on_a_native_histogram_sample_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    native = NativeHistogram(count_value=1, sum_value=1.0, schema=0, zero_threshold=0.0, zero_count=0)
    family = Metric("h", "d", "histogram")
    family.add_sample("h", {}, 0.0, exemplar=Exemplar({"t": "x"}, 1.0), native_histogram=native)
    enc = encoder()
    for ts in (TS, TS + 1):
        (series,) = message(body(enc.encode([family], ts)), compressed=False).timeseries
        assert len(series.histograms) == 1 and not series.exemplars
    assert caplog.text.count("exemplar on a native histogram") == 1
