"""A family's metadata entries, and how they follow the names relabelling gives its series."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from scrape import written_metadata

from prometheus_rw_bridge import decode_write_request
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.metadata import renamed_metadata
from prometheus_rw_bridge._protocol.registry import collect, read
from prometheus_rw_bridge._protocol.relabel import compile_rules

SOURCES = [pytest.param(read, id="direct"), pytest.param(collect, id="collected")]


def rename(regex: str, new: str) -> dict[str, Any]:
    return {
        "source_labels": ["__name__"],
        "regex": regex,
        "target_label": "__name__",
        "replacement": new,
    }


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("legacy_orders", "Orders placed.", ["shop"], registry=registry).labels("north").inc(3)
    Histogram("legacy_latency_seconds", "Latency.", registry=registry, buckets=[0.1, 1]).observe(0.5)
    Summary("legacy_size_bytes", "Sizes.", registry=registry).observe(10)
    Gauge("temperature_celsius", "Temperature.", unit="celsius", registry=registry).set(21.5)
    return registry


def metadata_with(rules: list[dict[str, Any]] | None, source: Any = read) -> dict[str, tuple[str, str]]:
    relabel = None if rules is None else compile_rules(rules).apply
    encoded = Encoder(job="j", instance="i", relabel=relabel).encode(source(registry()), 1)
    return written_metadata(encoded.body(), compressed=False)


@pytest.mark.parametrize("source", SOURCES)
def test_rules_that_rename_nothing_leave_the_metadata_as_it_was(source: Any) -> None:
    rules = [{"target_label": "cluster", "replacement": "eu"}, {"regex": "pod_uid", "action": "labeldrop"}]

    assert metadata_with(rules, source) == metadata_with(None, source)


@pytest.mark.parametrize("source", SOURCES)
def test_renamed_families_send_their_metadata_under_the_new_names(source: Any) -> None:
    metadata = metadata_with([rename("legacy_(.*)", "app_${1}")], source)

    assert metadata == {
        "app_orders_total": ("counter", "Orders placed."),
        "app_orders_created": ("gauge", "Orders placed."),
        "app_latency_seconds": ("histogram", "Latency."),
        "app_latency_seconds_created": ("gauge", "Latency."),
        "app_size_bytes": ("summary", "Sizes."),
        "app_size_bytes_created": ("gauge", "Sizes."),
        "temperature_celsius": ("gauge", "Temperature."),
    }


def test_a_family_split_by_renaming_some_of_its_series_has_an_entry_per_name() -> None:
    metadata = metadata_with([rename("legacy_latency_seconds_bucket", "latency_buckets_bucket")])

    assert metadata["latency_buckets"] == ("histogram", "Latency.")  # from the buckets
    assert metadata["legacy_latency_seconds"] == ("histogram", "Latency.")  # _sum and _count kept it
    assert metadata["legacy_latency_seconds_created"] == ("gauge", "Latency.")


def test_families_whose_series_are_all_dropped_send_no_metadata() -> None:
    keep = [
        {"source_labels": ["__name__"], "regex": "legacy_orders_.*|temperature_celsius", "action": "keep"}
    ]

    assert set(metadata_with(keep)) == {"legacy_orders_total", "legacy_orders_created", "temperature_celsius"}


def test_the_2_0_series_keep_their_metadata_under_their_new_name() -> None:
    relabel = compile_rules([rename("legacy_(.*)", "app_${1}")]).apply
    encoded = EncoderV2(job="j", instance="i", relabel=relabel).encode(read(registry()), 1)
    series = decode_write_request(encoded.body(), compressed=False, protocol="2.0").series
    by_name = {s.name: s.metadata for s in series}

    assert by_name["app_orders_total"] is not None
    assert (by_name["app_orders_total"].type, by_name["app_orders_total"].help) == (
        "counter",
        "Orders placed.",
    )
    assert by_name["app_latency_seconds_bucket"] is not None
    assert by_name["app_latency_seconds_bucket"].type == "histogram"
    assert by_name["temperature_celsius"] is not None
    assert by_name["temperature_celsius"].unit == "celsius"


@pytest.mark.parametrize(
    ("renamed", "expected"),
    [
        pytest.param(
            [("foo_bucket", "bar_bucket"), ("foo_sum", "bar_sum")], [("bar", "histogram")], id="suffix-kept"
        ),
        pytest.param([("foo_bucket", "bar")], [("bar", "histogram")], id="suffix-dropped"),
        pytest.param([("foo_bucket", "_bucket")], [("_bucket", "histogram")], id="only-the-suffix-left"),
        pytest.param(
            [("foo_sum", "foo_sum"), ("foo_created", "x_created")],
            [("foo", "histogram"), ("x_created", "gauge")],
            id="entry-of-its-own-name",
        ),
        pytest.param([], [], id="nothing-sent"),
    ],
)
def test_renamed_metadata(renamed: list[tuple[str, str]], expected: list[tuple[str, str]]) -> None:
    entries = [("foo", "histogram"), ("foo_created", "gauge")]

    assert renamed_metadata(entries, renamed) == expected
