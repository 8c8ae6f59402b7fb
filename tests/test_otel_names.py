"""_otel.names: OpenTelemetry names, units and attributes as the Prometheus compatibility spec says."""

from __future__ import annotations

from typing import Any

import pytest

from prometheus_rw_bridge._otel.names import (
    attribute_value,
    label_name,
    labels_from_attributes,
    metric_name,
    unit_word,
)


@pytest.mark.parametrize(
    ("unit", "gauge", "word"),
    [
        pytest.param("s", False, "seconds", id="seconds"),
        pytest.param("ms", False, "milliseconds", id="milliseconds"),
        pytest.param("By", False, "bytes", id="bytes"),
        pytest.param("KiBy", False, "kibibytes", id="kibibytes"),
        pytest.param("Cel", True, "celsius", id="celsius"),
        pytest.param("%", True, "percent", id="percent"),
        pytest.param("{requests}", False, "", id="annotation-only-is-unitless"),
        pytest.param("1", True, "ratio", id="one-on-a-gauge-is-ratio"),
        pytest.param("1", False, "", id="one-elsewhere-is-unitless"),
        pytest.param("By/s", False, "bytes_per_second", id="per-unit"),
        pytest.param("m/s", False, "meters_per_second", id="meters-per-second"),
        pytest.param("1/s", False, "per_second", id="one-per-second"),
        pytest.param("{packet}/s", False, "per_second", id="annotation-per-second"),
        pytest.param("ms/{request}", False, "milliseconds", id="per-annotation-is-dropped"),
        pytest.param("By/mo", False, "bytes_per_month", id="per-month"),
        pytest.param("widgets/s", False, "widgets_per_second", id="unknown-numerator"),
        pytest.param("km h", False, "km_h", id="unknown-unit-sanitised"),
        pytest.param("", False, "", id="empty"),
        pytest.param(None, False, "", id="none"),
    ],
)
def test_unit_word(unit: str | None, gauge: bool, word: str) -> None:
    assert unit_word(unit, gauge=gauge) == word


@pytest.mark.parametrize(
    ("name", "unit", "counter", "expected"),
    [
        pytest.param(
            "http.server.duration", "seconds", False, ("http_server_duration_seconds", "seconds"), id="spec"
        ),
        pytest.param("http.requests", "", True, ("http_requests", ""), id="counter-no-unit"),
        pytest.param("http.requests.total", "", True, ("http_requests", ""), id="counter-total-stripped"),
        pytest.param(
            "latency_seconds", "seconds", False, ("latency_seconds", "seconds"), id="unit-already-suffix"
        ),
        pytest.param("bytes.sent", "bytes", True, ("bytes_sent", ""), id="unit-inside-name-no-unit-metadata"),
        pytest.param("a..b--c", "", False, ("a_b_c", ""), id="runs-of-underscores-collapse"),
        pytest.param(
            "io.rate", "bytes_per_second", False, ("io_rate_bytes_per_second", "bytes_per_second"), id="multi"
        ),
        pytest.param(
            "x_bytes_per_second",
            "bytes_per_second",
            False,
            ("x_bytes_per_second", "bytes_per_second"),
            id="m2",
        ),
        pytest.param("ns:metric", "", False, ("ns:metric", ""), id="colon-kept"),
        pytest.param("9lives", "", False, ("_lives", ""), id="leading-digit"),
        pytest.param("total", "", True, ("total", ""), id="bare-total-kept"),
    ],
)
def test_metric_name(name: str, unit: str, counter: bool, expected: tuple[str, str]) -> None:
    assert metric_name(name, unit, counter=counter) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("GET", "GET", id="string"),
        pytest.param(True, "true", id="bool"),
        pytest.param(404, "404", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param(("a", "b"), '["a","b"]', id="sequence-as-json"),
        pytest.param([1, 2], "[1,2]", id="list"),
        pytest.param("日本", "日本", id="unicode"),
    ],
)
def test_attribute_values_become_strings(value: Any, text: str) -> None:
    assert attribute_value(value) == text


def test_label_names_are_sanitised_and_underscore_runs_collapse() -> None:
    assert label_name("http.request.method") == "http_request_method"
    assert label_name("a..b") == "a_b"
    assert label_name("__reserved") == "_reserved"
    assert label_name("") == ""


def test_colliding_keys_join_their_values_in_key_order() -> None:
    labels = labels_from_attributes({"http.method": "GET", "http-method": "x", "http_method": "y", "ok": 1})
    # Sorted by the original keys: "http-method" < "http.method" < "http_method".
    assert labels == {"http_method": "x;GET;y", "ok": "1"}


def test_skipped_and_empty_keys_are_left_out() -> None:
    assert labels_from_attributes({"service.name": "a", "": "b", "c": "d"}, skip=["service.name"]) == {
        "c": "d"
    }
    assert labels_from_attributes(None) == {}
