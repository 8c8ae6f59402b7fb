"""The relabel engine against Prometheus's own relabel tests (model/relabel/relabel_test.go, 2.55
and 3.x with the legacy name validation scheme) and config/testdata/*.bad.yml, plus Go's
Regexp.Expand rules and labels.Builder ordering."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prometheus_rw_bridge import ConfigurationError
from prometheus_rw_bridge._protocol.relabel import ACTIONS, RelabelRules, compile_rules

Rules = list[dict[str, Any]]


def relabel(labels: dict[str, str], rules: Rules) -> dict[str, str] | None:
    """Apply ``rules`` to ``labels`` plus a ``__name__``, and return the result without it."""
    result = compile_rules(rules).apply({"__name__": "m", **labels})
    if result is None:
        return None
    assert result.pop("__name__") == "m"
    return result


# TestRelabel, case by case (fields Go's test leaves empty take the defaults, as there).
PROMETHEUS_CASES = [
    pytest.param(
        {"a": "foo", "b": "bar", "c": "baz"},
        [{"source_labels": ["a"], "regex": "f(.*)", "target_label": "d", "replacement": "ch${1}-ch${1}"}],
        {"a": "foo", "b": "bar", "c": "baz", "d": "choo-choo"},
        id="replace-braced-groups",
    ),
    pytest.param(
        {"a": "foo", "b": "bar", "c": "baz"},
        [
            {
                "source_labels": ["a", "b"],
                "regex": "f(.*);(.*)r",
                "target_label": "a",
                "replacement": "b${1}${2}m",
            },
            {
                "source_labels": ["c", "a"],
                "regex": "(b).*b(.*)ba(.*)",
                "target_label": "d",
                "replacement": "$1$2$2$3",
            },
        ],
        {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"},
        id="replace-chained-sees-earlier-result",
    ),
    pytest.param(
        {"a": "foo"},
        [
            {"source_labels": ["a"], "regex": ".*o.*", "action": "drop"},
            {"source_labels": ["a"], "regex": "f(.*)", "target_label": "d", "replacement": "ch$1-ch$1"},
        ],
        None,
        id="drop-stops-processing",
    ),
    pytest.param(
        {"a": "foo", "b": "bar"},
        [{"source_labels": ["a"], "regex": ".*o.*", "action": "drop"}],
        None,
        id="drop",
    ),
    pytest.param(
        {"a": "abc"},
        [{"source_labels": ["a"], "regex": ".*(b).*", "target_label": "d", "replacement": "$1"}],
        {"a": "abc", "d": "b"},
        id="replace-inner-group",
    ),
    pytest.param(
        {"a": "foo"},
        [{"source_labels": ["a"], "regex": "no-match", "action": "drop"}],
        {"a": "foo"},
        id="drop-no-match",
    ),
    pytest.param(
        {"a": "foo"},
        [{"source_labels": ["a"], "regex": "f|o", "action": "drop"}],
        {"a": "foo"},
        id="drop-is-anchored",
    ),
    pytest.param(
        {"a": "foo"},
        [{"source_labels": ["a"], "regex": "no-match", "action": "keep"}],
        None,
        id="keep-no-match",
    ),
    pytest.param(
        {"a": "foo"},
        [{"source_labels": ["a"], "regex": "f.*", "action": "keep"}],
        {"a": "foo"},
        id="keep-match",
    ),
    pytest.param(
        {"a": "boo"},
        [{"source_labels": ["a"], "regex": "f", "target_label": "b", "replacement": "bar"}],
        {"a": "boo"},
        id="replace-no-match-no-change",
    ),
    pytest.param(
        {"a": "foo", "f": "baz"},
        [{"source_labels": ["a"], "regex": "(f).*", "target_label": "$1", "replacement": "$2"}],
        {"a": "foo"},
        id="replace-blank-deletes",
    ),
    pytest.param(
        {"a": "foo", "b": "bar", "c": "baz"},
        [{"source_labels": ["c"], "target_label": "d", "action": "hashmod", "modulus": 1000}],
        {"a": "foo", "b": "bar", "c": "baz", "d": "976"},
        id="hashmod",
    ),
    pytest.param(
        {"a": "foo\nbar"},
        [{"source_labels": ["a"], "target_label": "b", "action": "hashmod", "modulus": 1000}],
        {"a": "foo\nbar", "b": "734"},
        id="hashmod-newline",
    ),
    pytest.param(
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [{"regex": "(b.*)", "replacement": "bar_${1}", "action": "labelmap"}],
        {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"},
        id="labelmap",
    ),
    pytest.param(
        {"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"},
        [{"regex": "__meta_(my.*)", "replacement": "${1}", "action": "labelmap"}],
        {
            "a": "foo",
            "__meta_my_bar": "aaa",
            "__meta_my_baz": "bbb",
            "__meta_other": "ccc",
            "my_bar": "aaa",
            "my_baz": "bbb",
        },
        id="labelmap-meta",
    ),
    pytest.param(
        {"a": "some-name-value"},
        [
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)-([^,]+)",
                "replacement": "${2}",
                "target_label": "${1}",
            }
        ],
        {"a": "some-name-value", "name": "value"},
        id="replace-target-from-group",
    ),
    pytest.param(
        {"a": "some-name-value"},
        [
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)-([^,]+)",
                "replacement": "${3}",
                "target_label": "${1}",
            }
        ],
        {"a": "some-name-value"},
        id="replace-missing-group-deletes-absent-label",
    ),
    pytest.param(
        {"a": "some-name-0"},
        [
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)-([^,]+)",
                "replacement": "${1}",
                "target_label": "${3}",
            },
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)-([^,]+)",
                "replacement": "${1}",
                "target_label": "${3}",
            },
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)(-[^,]+)",
                "replacement": "${1}",
                "target_label": "${3}",
            },
        ],
        {"a": "some-name-0"},
        id="replace-invalid-expanded-target-skipped",
    ),
    pytest.param(
        {"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar"},
        [
            {
                "source_labels": ["__meta_sd_tags"],
                "regex": "(?:.+,|^)path:(/[^,]+).*",
                "replacement": "${1}",
                "target_label": "__metrics_path__",
            },
            {
                "source_labels": ["__meta_sd_tags"],
                "regex": "(?:.+,|^)job:([^,]+).*",
                "replacement": "${1}",
                "target_label": "job",
            },
            {
                "source_labels": ["__meta_sd_tags"],
                "regex": "(?:.+,|^)label:([^=]+)=([^,]+).*",
                "replacement": "${2}",
                "target_label": "${1}",
            },
        ],
        {
            "__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar",
            "__metrics_path__": "/secret",
            "job": "some-job",
            "foo": "bar",
        },
        id="real-life-tags",
    ),
    pytest.param(
        {
            "__meta_kubernetes_pod_container_port_name": "foo",
            "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
        },
        [
            {"regex": "^__meta_kubernetes_pod_container_port_name$", "action": "labeldrop"},
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_XXX_metrics_port"],
                "regex": "(.+)",
                "replacement": "metrics",
                "target_label": "__meta_kubernetes_pod_container_port_name",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "^metrics$",
                "action": "keep",
            },
        ],
        {
            "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
            "__meta_kubernetes_pod_container_port_name": "metrics",
        },
        id="issue-12283-set-after-delete",
    ),
    pytest.param(
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [{"regex": "(b.*)", "action": "labelkeep"}],
        None,  # Prometheus keeps b1, b2; here __name__ goes too, and a series without a name is dropped
        id="labelkeep-drops-name",
    ),
    pytest.param(
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [{"regex": "(b.*)|__name__", "action": "labelkeep"}],
        {"b1": "bar", "b2": "baz"},
        id="labelkeep",
    ),
    pytest.param(
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [{"regex": "(b.*)", "action": "labeldrop"}],
        {"a": "foo"},
        id="labeldrop",
    ),
    pytest.param(
        {"foo": "bAr123Foo"},
        [
            {"source_labels": ["foo"], "action": "uppercase", "target_label": "foo_uppercase"},
            {"source_labels": ["foo"], "action": "lowercase", "target_label": "foo_lowercase"},
        ],
        {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"},
        id="uppercase-lowercase",
    ),
    pytest.param(
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port1"}],
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        id="keepequal-equal",
    ),
    pytest.param(
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [{"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port1"}],
        None,
        id="dropequal-equal",
    ),
    pytest.param(
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [{"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port2"}],
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        id="dropequal-different",
    ),
    pytest.param(
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port2"}],
        None,
        id="keepequal-different",
    ),
    # Cases added in Prometheus 3.x (those that need UTF-8 names are validation cases below).
    pytest.param(
        {"a": "line1\nline2", "b": "bar", "c": "baz"},
        [{"source_labels": ["a"], "regex": "line1.*line2", "target_label": "d", "replacement": "match${1}"}],
        {"a": "line1\nline2", "b": "bar", "c": "baz", "d": "match"},
        id="dot-matches-newline",
    ),
    pytest.param(
        {"a": "line1\nline2", "b": "bar", "c": "baz"},
        [
            {
                "source_labels": ["a"],
                "regex": "(line1).*(?<second>line2)",
                "target_label": "label1_${1}",
                "replacement": "val_${second}",
            },
            {
                "source_labels": ["a"],
                "regex": "(line1).*(?<second>line2)",
                "target_label": "label2_$1",
                "replacement": "val_$second",
            },
        ],
        {
            "a": "line1\nline2",
            "b": "bar",
            "c": "baz",
            "label1_line1": "val_line2",
            "label2_line1": "val_line2",
        },
        id="named-groups-both-styles",
    ),
    pytest.param(
        {"__name__": "http_requests_total"},
        [
            {
                "source_labels": ["__name__"],
                "regex": ".*_total$",
                "target_label": "__type__",
                "replacement": "counter",
            }
        ],
        {"__name__": "http_requests_total", "__type__": "counter"},
        id="type-label",
    ),
    pytest.param(
        {"__name__": "disk_usage_bytes"},
        [
            {
                "source_labels": ["__name__"],
                "regex": ".*_bytes$",
                "target_label": "__unit__",
                "replacement": "bytes",
            }
        ],
        {"__name__": "disk_usage_bytes", "__unit__": "bytes"},
        id="unit-label",
    ),
]


@pytest.mark.parametrize(("labels", "rules", "expected"), PROMETHEUS_CASES)
def test_prometheus_relabel_cases(
    labels: dict[str, str], rules: Rules, expected: dict[str, str] | None
) -> None:
    if "__name__" in labels:
        assert compile_rules(rules).apply(labels) == expected
    else:
        assert relabel(labels, rules) == expected


# BenchmarkRelabel's configurations, from Prometheus's relabel_test.go (its config/testdata/conf.good.yml).
EXAMPLE_RULES: Rules = [
    {
        "source_labels": ["job", "__meta_dns_name"],
        "regex": "(.*)some-[regex]",
        "target_label": "job",
        "replacement": "foo-${1}",
    },
    {"source_labels": ["abc"], "target_label": "cde"},
    {"replacement": "static", "target_label": "abc"},
    {"regex": None, "replacement": "static", "target_label": "abc"},
]


def test_benchmark_example_config() -> None:
    labels = {"__meta_dns_name": "example-some-x.com", "abc": "def", "job": "foo"}
    assert relabel(labels, EXAMPLE_RULES) == {
        "__meta_dns_name": "example-some-x.com",
        "abc": "static",
        "cde": "def",
        "job": "foo",
    }
    # The regex matches a value that ends in "some-" and one of r, e, g, x.
    assert relabel({"job": "foo", "__meta_dns_name": "a.some-x"}, EXAMPLE_RULES[:1]) == {
        "job": "foo-foo;a.",
        "__meta_dns_name": "a.some-x",
    }


def test_benchmark_static_label_pair_config() -> None:
    rules: Rules = [
        {"replacement": "wwwwww", "target_label": "wwwwww"},
        {"replacement": "yyyyyyyyyyyy", "target_label": "xxxxxxxxx"},
        {"replacement": "xxxxxxxxx", "target_label": "yyyyyyyyyyyy"},
        {"source_labels": ["something"], "target_label": "with_source_labels", "replacement": "value"},
        {"replacement": "dropped", "target_label": "${0}"},
        {"replacement": "${0}", "target_label": "dropped"},
    ]
    labels = {"job": "foo", "dropped": "x"}
    assert relabel(labels, rules) == {
        "job": "foo",
        "wwwwww": "wwwwww",
        "xxxxxxxxx": "yyyyyyyyyyyy",
        "yyyyyyyyyyyy": "xxxxxxxxx",
        "with_source_labels": "value",
    }


KUBERNETES_RULES: Rules = [
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": ".*-metrics", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_label_name"], "action": "drop", "regex": ""},
    {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Succeeded|Failed", "action": "drop"},
    {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "regex": "false",
        "action": "drop",
    },
    {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"],
        "target_label": "__scheme__",
        "regex": "(https?)",
        "replacement": "$1",
        "action": "replace",
    },
    {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
        "target_label": "__metrics_path__",
        "regex": "(.+)",
        "replacement": "$1",
        "action": "replace",
    },
    {
        "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
        "target_label": "__address__",
        "regex": r"(.+?)(\:\d+)?;(\d+)",
        "replacement": "$1:$3",
        "action": "replace",
    },
    {
        "regex": "__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)",
        "replacement": "__param_$1",
        "action": "labelmap",
    },
    {"regex": "__meta_kubernetes_pod_label_prometheus_io_label_(.+)", "action": "labelmap"},
    {"regex": "__meta_kubernetes_pod_annotation_prometheus_io_label_(.+)", "action": "labelmap"},
    {
        "source_labels": ["__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_name"],
        "separator": "/",
        "target_label": "job",
        "replacement": "$1",
        "action": "replace",
    },
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace", "action": "replace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod", "action": "replace"},
    {
        "source_labels": ["__meta_kubernetes_pod_container_name"],
        "target_label": "container",
        "action": "replace",
    },
    {
        "source_labels": [
            "__meta_kubernetes_pod_name",
            "__meta_kubernetes_pod_container_name",
            "__meta_kubernetes_pod_container_port_name",
        ],
        "separator": ":",
        "target_label": "instance",
        "action": "replace",
    },
    {"target_label": "cluster", "replacement": "dev-us-central-0"},
    {"source_labels": ["__meta_kubernetes_namespace"], "regex": "hosted-grafana", "action": "drop"},
    {"source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 3, "action": "hashmod"},
    {"source_labels": ["__tmp_hash"], "regex": "^0$", "action": "keep"},
    {"regex": "__tmp_hash", "action": "labeldrop"},
]
KUBERNETES_LABELS = {
    "__address__": "10.132.183.40:80",
    "__meta_kubernetes_namespace": "loki-boltdb-shipper",
    "__meta_kubernetes_pod_annotation_promtail_loki_boltdb_shipper_hash": "50523b9759094a144adcec2eae0aa4ad",
    "__meta_kubernetes_pod_annotationpresent_promtail_loki_boltdb_shipper_hash": "true",
    "__meta_kubernetes_pod_container_init": "false",
    "__meta_kubernetes_pod_container_name": "promtail",
    "__meta_kubernetes_pod_container_port_name": "http-metrics",
    "__meta_kubernetes_pod_container_port_number": "80",
    "__meta_kubernetes_pod_container_port_protocol": "TCP",
    "__meta_kubernetes_pod_controller_kind": "DaemonSet",
    "__meta_kubernetes_pod_controller_name": "promtail-loki-boltdb-shipper",
    "__meta_kubernetes_pod_host_ip": "10.128.0.178",
    "__meta_kubernetes_pod_ip": "10.132.183.40",
    "__meta_kubernetes_pod_label_controller_revision_hash": "555b77cd7d",
    "__meta_kubernetes_pod_label_name": "promtail-loki-boltdb-shipper",
    "__meta_kubernetes_pod_label_pod_template_generation": "45",
    "__meta_kubernetes_pod_labelpresent_controller_revision_hash": "true",
    "__meta_kubernetes_pod_labelpresent_name": "true",
    "__meta_kubernetes_pod_labelpresent_pod_template_generation": "true",
    "__meta_kubernetes_pod_name": "promtail-loki-boltdb-shipper-jgtr7",
    "__meta_kubernetes_pod_node_name": "gke-dev-us-central-0-main-n2s8-2-14d53341-9hkr",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_ready": "true",
    "__meta_kubernetes_pod_uid": "4c586419-7f6c-448d-aeec-ca4fa5b05e60",
    "__metrics_path__": "/metrics",
    "__scheme__": "http",
    "__scrape_interval__": "15s",
    "__scrape_timeout__": "10s",
    "job": "kubernetes-pods",
}


@pytest.mark.parametrize("address", ["10.132.183.40:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"])
def test_benchmark_kubernetes_config(address: str) -> None:
    labels = {**KUBERNETES_LABELS, "__address__": address}
    shard = int.from_bytes(hashlib.md5(address.encode()).digest()[8:], "big") % 3
    result = relabel(labels, KUBERNETES_RULES)
    if shard != 0:
        assert result is None
        return
    assert result == {
        **labels,
        "job": "loki-boltdb-shipper/promtail-loki-boltdb-shipper",
        "namespace": "loki-boltdb-shipper",
        "pod": "promtail-loki-boltdb-shipper-jgtr7",
        "container": "promtail",
        "instance": "promtail-loki-boltdb-shipper-jgtr7:promtail:http-metrics",
        "cluster": "dev-us-central-0",
    }


def test_kubernetes_config_rewrites_annotations() -> None:
    labels = {
        **KUBERNETES_LABELS,
        "__address__": "10.0.0.6:80",  # rewritten to 10.0.0.6:9102, which is in shard 0 of 3
        "__meta_kubernetes_pod_annotation_prometheus_io_port": "9102",
        "__meta_kubernetes_pod_annotation_prometheus_io_scheme": "https",
        "__meta_kubernetes_pod_annotation_prometheus_io_param_format": "prometheus",
        "__meta_kubernetes_pod_label_prometheus_io_label_team": "obs",
    }
    result = relabel(labels, KUBERNETES_RULES)
    assert result is not None
    assert result["__address__"] == "10.0.0.6:9102"
    assert result["__scheme__"] == "https"
    assert result["__param_format"] == "prometheus"
    assert result["team"] == "obs"


# TestRelabelValidate and config/testdata/*.bad.yml: (rule, the field named, Prometheus's message).
INVALID_RULES = [
    pytest.param({"action": None}, "action", "relabel action cannot be empty", id="empty-action"),
    pytest.param(
        {"action": "replace"}, "target_label", "requires 'target_label' value", id="replace-no-target"
    ),
    pytest.param(
        {"action": "lowercase"}, "target_label", "requires 'target_label' value", id="lowercase-no-target"
    ),
    pytest.param(
        {"action": "lowercase", "source_labels": ["__name__"]},
        "target_label",
        "relabel configuration for lowercase action requires 'target_label' value",
        id="lowercase.bad.yml",
    ),
    pytest.param(
        {"action": "uppercase", "source_labels": ["__name__"]},
        "target_label",
        "relabel configuration for uppercase action requires 'target_label' value",
        id="uppercase.bad.yml",
    ),
    pytest.param(
        {"action": "lowercase", "target_label": "${3}"},
        "target_label",
        "\"${3}\" is invalid 'target_label' for lowercase action",
        id="lowercase-target-with-var",
    ),
    pytest.param(
        {
            "source_labels": ["a"],
            "regex": "some-([^-]+)-([^,]+)",
            "replacement": "${1}",
            "target_label": "0${3}",
        },
        "target_label",
        "\"0${3}\" is invalid 'target_label'",
        id="replace-target-leading-digit",
    ),
    pytest.param(
        {
            "source_labels": ["a"],
            "regex": "some-([^-]+)-([^,]+)",
            "replacement": "${1}",
            "target_label": "-${3}",
        },
        "target_label",
        "\"-${3}\" is invalid 'target_label' for replace action",
        id="replace-target-dash",
    ),
    pytest.param(
        {"source_labels": ["a"], "target_label": "utf-8.label"},
        "target_label",
        "\"utf-8.label\" is invalid 'target_label' for replace action",
        id="replace-utf8-target-legacy",
    ),
    pytest.param(
        {"source_labels": ["a"], "target_label": "utf-8.label${1}"},
        "target_label",
        "is invalid 'target_label' for replace action",
        id="replace-utf8-target-with-var-legacy",
    ),
    pytest.param(
        {"source_labels": ["utf-8.label"], "target_label": "d"},
        "source_labels",
        "'utf-8.label' is not a valid label name",
        id="utf8-source-label-legacy",
    ),
    pytest.param(
        {"regex": "abc(def"}, "regex", "error parsing regexp: missing closing )", id="regex.bad.yml"
    ),
    pytest.param(
        {"regex": "abcdef", "action": "hashmod"},
        "modulus",
        "relabel configuration for hashmod requires non-zero modulus",
        id="modulus_missing.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["__address__"], "modulus": 8, "action": "hashmod"},
        "target_label",
        "relabel configuration for hashmod action requires 'target_label' value",
        id="target_label_hashmod_missing.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["a"], "modulus": 8, "action": "hashmod", "target_label": "$1"},
        "target_label",
        "\"$1\" is invalid 'target_label' for hashmod action",
        id="hashmod-target-with-var",
    ),
    pytest.param(
        {"regex": "abcdef"},
        "target_label",
        "relabel configuration for replace action requires 'target_label' value",
        id="target_label_missing.bad.yml",
    ),
    pytest.param(
        {
            "action": "lowercase",
            "source_labels": ["__name__"],
            "target_label": "__name__",
            "replacement": "bar",
        },
        "replacement",
        "'replacement' can not be set for lowercase action",
        id="lowercase3.bad.yml",
    ),
    pytest.param(
        {
            "action": "uppercase",
            "source_labels": ["__name__"],
            "target_label": "__name__",
            "replacement": "bar",
        },
        "replacement",
        "'replacement' can not be set for uppercase action",
        id="uppercase3.bad.yml",
    ),
    pytest.param(
        {"action": "keepequal", "source_labels": ["a"], "target_label": "b", "replacement": ""},
        "replacement",
        "'replacement' can not be set for keepequal action",
        id="keepequal-replacement",
    ),
    pytest.param(
        {"source_labels": ["abcdef"], "action": "dropequal"},
        "target_label",
        "relabel configuration for dropequal action requires 'target_label' value",
        id="dropequal.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["abcdef"], "action": "dropequal", "regex": "foo", "target_label": "bar"},
        "regex",
        "dropequal action requires only 'source_labels' and `target_label`, and no other fields",
        id="dropequal1.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["abcdef"], "action": "keepequal"},
        "target_label",
        "relabel configuration for keepequal action requires 'target_label' value",
        id="keepequal.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["abcdef"], "action": "keepequal", "regex": "foo", "target_label": "bar"},
        "regex",
        "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
        id="keepequal1.bad.yml",
    ),
    pytest.param(
        {"source_labels": ["a"], "action": "keepequal", "regex": "(.*)", "target_label": "bar"},
        "regex",
        "keepequal action requires only 'source_labels' and `target_label`",
        id="keepequal-default-regex-given",
    ),
    pytest.param(
        {"source_labels": ["a"], "action": "keepequal", "separator": ",", "target_label": "bar"},
        "separator",
        "keepequal action requires only 'source_labels' and `target_label`",
        id="keepequal-separator",
    ),
    pytest.param(
        {"source_labels": ["a"], "action": "dropequal", "modulus": 3, "target_label": "bar"},
        "modulus",
        "dropequal action requires only 'source_labels' and `target_label`",
        id="dropequal-modulus",
    ),
    *(
        pytest.param(
            {field: value, "action": action},
            field,
            f"{action} action requires only 'regex', and no other fields",
            id=f"{action}{suffix}.bad.yml",
        )
        for action in ("labeldrop", "labelkeep")
        for suffix, field, value in (
            ("", "source_labels", ["abcdef"]),
            ("2", "modulus", 8),
            ("3", "separator", ","),
            ("4", "replacement", "yolo-{1}"),
            ("5", "target_label", "yolo"),
        )
    ),
    pytest.param(
        {"regex": "a", "action": "labeldrop", "source_labels": []},
        "source_labels",
        "labeldrop action requires only 'regex'",
        id="labeldrop-empty-source-list",
    ),
    pytest.param(
        {"action": "labelmap", "replacement": "-$1"},
        "replacement",
        "\"-$1\" is invalid 'replacement' for labelmap action",
        id="labelmap-invalid-replacement",
    ),
    pytest.param(
        {"action": "labelmap", "replacement": ""},
        "replacement",
        "\"\" is invalid 'replacement' for labelmap action",
        id="labelmap-empty-replacement",
    ),
    pytest.param({"action": "foo"}, "action", "unknown relabel action", id="unknown-action"),
    pytest.param({"action": ""}, "action", "unknown relabel action", id="blank-action"),
    pytest.param({"action": 3}, "action", "unknown relabel action", id="action-not-string"),
    pytest.param({"target_label": "a", "regexp": "x"}, "regexp", "unknown field", id="unknown-field"),
    pytest.param(
        {"target_label": "a", "source_labels": "a"}, "source_labels", "list of label names", id="sources-str"
    ),
    pytest.param({"target_label": "a", "separator": 1}, "separator", "expected a string", id="separator-int"),
    pytest.param({"target_label": "a", "regex": 200}, "regex", "expected a string", id="regex-int"),
    pytest.param({"target_label": 5}, "target_label", "expected a string", id="target-int"),
    pytest.param(
        {"target_label": "a", "replacement": b"x"}, "replacement", "expected a string", id="replacement-bytes"
    ),
    pytest.param(
        {"target_label": "a", "action": "hashmod", "modulus": -1},
        "modulus",
        "positive integer",
        id="modulus-negative",
    ),
    pytest.param(
        {"target_label": "a", "action": "hashmod", "modulus": True},
        "modulus",
        "positive integer",
        id="modulus-bool",
    ),
    pytest.param(
        {"target_label": "a", "action": "hashmod", "modulus": 2**64},
        "modulus",
        "positive integer",
        id="modulus-big",
    ),
    pytest.param(
        {"target_label": "a", "action": "hashmod", "modulus": 1.5},
        "modulus",
        "positive integer",
        id="modulus-float",
    ),
]


@pytest.mark.parametrize(("rule", "field", "message"), INVALID_RULES)
def test_invalid_rules_are_configuration_errors_naming_index_and_field(
    rule: dict[str, Any], field: str, message: str
) -> None:
    good = {"target_label": "x", "replacement": "y"}
    with pytest.raises(ConfigurationError) as caught:
        compile_rules([good, rule], where="endpoint.write_relabel_configs")
    text = str(caught.value)
    assert text.startswith(f"endpoint.write_relabel_configs[1].{field}=")
    assert message in text


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        pytest.param(
            [None], "write_relabel_configs[0]=None is not valid: expected a relabel rule", id="null-rule"
        ),
        pytest.param(["drop"], "write_relabel_configs[0]='drop' is not valid", id="string-rule"),
        pytest.param("drop", "write_relabel_configs='drop' is not valid: expected a list", id="string"),
        pytest.param({"action": "drop"}, "write_relabel_configs=", id="mapping"),
        pytest.param(3, "write_relabel_configs=3", id="number"),
    ],
)
def test_configs_must_be_a_list_of_mappings(configs: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        compile_rules(configs)


VALID_RULES = [
    pytest.param(
        {
            "source_labels": ["a"],
            "regex": "some-([^-]+)-([^,]+)",
            "replacement": "${1}",
            "target_label": "${3}",
        },
        id="replace-target-var",
    ),
    pytest.param(
        {"regex": "__meta_kubernetes_pod_label_(strimzi_io_.+)", "action": "labelmap", "replacement": "$1"}
    ),
    pytest.param({"regex": "__meta_(.+)", "action": "labelmap", "replacement": "${1}"}),
    pytest.param(
        {"action": "KeepEqual", "source_labels": ["a"], "target_label": "b", "separator": ";"}, id="caps"
    ),
    pytest.param({"action": "keepequal", "source_labels": ["a"], "target_label": "b", "replacement": "$1"}),
    pytest.param(
        {"action": "labeldrop", "regex": "a", "source_labels": None, "target_label": ""}, id="nulls"
    ),
    pytest.param(
        {"action": "drop", "target_label": "-ignored-", "replacement": "x"}, id="drop-ignores-target"
    ),
    pytest.param({"action": "hashmod", "target_label": "a", "modulus": "8"}, id="modulus-yaml-string"),
    pytest.param({"action": "hashmod", "target_label": "a", "modulus": 2**64 - 1}, id="modulus-max"),
    pytest.param({"target_label": "a", "regex": "a)|(b"}, id="regex-valid-only-inside-anchors"),
]


@pytest.mark.parametrize("rule", VALID_RULES)
def test_valid_rules_compile(rule: dict[str, Any]) -> None:
    rules = compile_rules([rule])
    assert len(rules) == 1


# TestTargetLabelLegacyValidity.
TARGET_VALIDITY = [
    ("-label", False),
    ("label", True),
    ("label${1}", True),
    ("${1}label", True),
    ("${1}", True),
    ("${", False),
    ("$", False),
    ("${}", False),
    ("foo${", False),
    ("$1", True),
    ("asd$2asd", True),
    ("-foo${1}bar-", False),
    ("bar.foo${1}bar", False),
    ("_${1}_", True),
    ("foo${bar}foo", True),
]


@pytest.mark.parametrize(("target", "valid"), TARGET_VALIDITY)
def test_target_label_legacy_validity(target: str, valid: bool) -> None:
    rule = {"source_labels": ["a"], "target_label": target}
    if valid:
        compile_rules([rule])
    else:
        with pytest.raises(ConfigurationError, match="is invalid 'target_label' for replace action"):
            compile_rules([rule])


_PROMETHEUS_TARGET_RE = re.compile(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$", re.ASCII)


@given(st.text(alphabet="a_1${}-.", max_size=12))
def test_target_check_is_prometheus_regex_without_backtracking(target: str) -> None:
    rule = {"source_labels": ["a"], "target_label": target}
    pattern = _PROMETHEUS_TARGET_RE if "$" in target else re.compile(r"[a-zA-Z_]\w*\Z", re.ASCII)
    expected = pattern.match(target) is not None
    try:
        compile_rules([rule])
        accepted = True
    except ConfigurationError:
        accepted = False
    assert accepted == expected


def test_target_check_is_linear_on_long_adversarial_input() -> None:
    # The original Prometheus regex backtracks exponentially on this in Python's re.
    with pytest.raises(ConfigurationError):
        compile_rules([{"source_labels": ["a"], "target_label": "$a" * 40 + "-"}])


# TestConfig_UnmarshalThenMarshal: the configuration reads back as given.
@pytest.mark.parametrize(
    "config",
    [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_port"],
            "separator": ";",
            "regex": "\\d+",
            "target_label": "__meta_kubernetes_pod_container_port_number",
            "replacement": "$1",
            "modulus": 0,
            "action": "replace",
        },
        {
            "source_labels": ["namespace", "k8s_app"],
            "separator": "",
            "regex": "",
            "target_label": "target_cluster",
            "replacement": "",
            "modulus": 0,
            "action": "replace",
        },
    ],
)
def test_config_round_trip(config: dict[str, Any]) -> None:
    (rule,) = compile_rules([config])
    assert rule.config() == config
    assert compile_rules([rule.config()]) == compile_rules([config])


def test_defaults_fill_missing_fields() -> None:
    (rule,) = compile_rules([{"target_label": "a", "action": "REPLACE"}])
    assert rule.config() == {
        "source_labels": [],
        "separator": ";",
        "regex": "(.*)",
        "target_label": "a",
        "replacement": "$1",
        "modulus": 0,
        "action": "replace",
    }


def test_null_fields_take_the_empty_value_as_in_prometheus_yaml() -> None:
    (rule,) = compile_rules(
        [
            {
                "target_label": "t",
                "separator": None,
                "regex": None,
                "replacement": None,
                "source_labels": ["a", "b"],
            }
        ]
    )
    assert (rule.separator, rule.regex, rule.replacement) == ("", "", "")
    # The empty regex matches only the empty value: here a and b are both absent.
    assert relabel({"t": "x"}, [rule.config()]) == {}
    assert relabel({"t": "x", "a": "1"}, [rule.config()]) == {"t": "x", "a": "1"}


# Go's Regexp.Expand, as the replacement and target templates use it.
@pytest.mark.parametrize(
    ("regex", "replacement", "value", "expected"),
    [
        pytest.param("(a)(b)", "$1$2", "ab", "ab", id="numbers"),
        pytest.param("(a)(b)", "$1x", "ab", "", id="dollar-1x-is-group-named-1x"),
        pytest.param("(a)(?P<1x>b)", "$1x", "ab", "b", id="group-named-1x"),
        pytest.param("(a)(b)", "${1}x", "ab", "ax", id="braces"),
        pytest.param("(a)(b)", "$$1", "ab", "$1", id="double-dollar"),
        pytest.param("(a)(b)", "a$", "ab", "a$", id="trailing-dollar"),
        pytest.param("(a)(b)", "${1", "ab", "${1", id="unclosed-brace"),
        pytest.param("(a)(b)", "${}", "ab", "${}", id="empty-braces"),
        pytest.param("(a)(b)", "$-", "ab", "$-", id="dollar-punctuation"),
        pytest.param("(a)(b)", "$0", "ab", "ab", id="whole-match"),
        pytest.param("(a)(b)", "$01", "ab", "", id="leading-zero-is-a-name"),
        pytest.param("(a)(b)", "$3", "ab", "", id="no-such-group"),
        pytest.param("(a)|(b)", "[$1][$2]", "b", "[][b]", id="non-participating-group"),
        pytest.param("(?P<x>a)|(?P<x>b)", "${x}", "b", "b", id="duplicate-name-first-participating"),
        pytest.param("(?P<name>a+)", "$name.$namex", "aa", "aa.", id="name-runs-to-non-word"),
        pytest.param("(a)", "x${名}y$1", "a", "xya", id="unicode-letters-form-names"),
        pytest.param("(a)", "$1$", "a", "a$", id="group-then-dollar"),
        pytest.param("(a)", "${1}${1}", "a", "aa", id="braces-repeated"),
        pytest.param("(a)", "$12345678901", "a", "", id="huge-number-is-a-name"),
    ],
)
def test_replacement_expands_like_go(regex: str, replacement: str, value: str, expected: str) -> None:
    rules: Rules = [{"source_labels": ["s"], "regex": regex, "target_label": "t", "replacement": replacement}]
    result = relabel({"s": value}, rules)
    assert result == ({"s": value, "t": expected} if expected else {"s": value})


def test_regex_valid_only_inside_prometheus_anchors_matches_as_go_would() -> None:
    # Prometheus compiles ^(?s:a)|(b)$: "a" at the start, or "b" at the end.
    rules: Rules = [{"source_labels": ["s"], "regex": "a)|(b", "target_label": "t", "replacement": "<$0|$1>"}]
    assert relabel({"s": "axx"}, rules) == {"s": "axx", "t": "<a|>"}
    assert relabel({"s": "xxb"}, rules) == {"s": "xxb", "t": "<b|b>"}
    assert relabel({"s": "xax"}, rules) == {"s": "xax"}
    labelmap: Rules = [{"regex": "x)|(y", "replacement": "z", "action": "labelmap"}]
    # ReplaceAllString keeps what did not match: "xab" -> "zab", "aby" -> "abz".
    assert relabel({"xab": "1", "aby": "2", "ab": "3"}, labelmap) == {
        "xab": "1",
        "aby": "2",
        "ab": "3",
        "zab": "1",
        "abz": "2",
    }


def test_separator_joins_source_values_missing_ones_empty() -> None:
    rules: Rules = [{"source_labels": ["a", "missing", "b"], "separator": "/", "target_label": "t"}]
    assert relabel({"a": "1", "b": "2"}, rules) == {"a": "1", "b": "2", "t": "1//2"}


def test_empty_values_are_absent_labels() -> None:
    rules: Rules = [{"source_labels": ["a"], "regex": "", "action": "keep"}]
    assert relabel({"a": ""}, rules) == {}


def test_replace_to_empty_value_removes_label() -> None:
    rules: Rules = [{"source_labels": ["missing"], "target_label": "a"}]
    assert relabel({"a": "1", "b": "2"}, rules) == {"b": "2"}


def test_series_without_name_is_dropped() -> None:
    assert compile_rules([]).apply({"a": "1"}) is None
    assert compile_rules([]).apply({}) is None
    assert compile_rules([{"regex": "__name__", "action": "labeldrop"}]).apply({"__name__": "m"}) is None
    assert compile_rules([{"regex": ".*", "action": "labeldrop"}]).apply({"__name__": "m", "a": "1"}) is None


def test_rename_a_metric() -> None:
    rules: Rules = [
        {
            "source_labels": ["__name__"],
            "regex": "old_(.*)",
            "target_label": "__name__",
            "replacement": "new_$1",
        }
    ]
    assert compile_rules(rules).apply({"__name__": "old_total", "a": "1"}) == {
        "__name__": "new_total",
        "a": "1",
    }
    assert compile_rules(rules).apply({"__name__": "other"}) == {"__name__": "other"}


def test_apply_leaves_its_argument_alone() -> None:
    labels = {"__name__": "m", "a": "1", "b": ""}
    rules = compile_rules([{"regex": "a", "action": "labeldrop"}, {"target_label": "c", "replacement": "3"}])
    assert rules.apply(labels) == {"__name__": "m", "c": "3"}
    assert labels == {"__name__": "m", "a": "1", "b": ""}


def test_labelmap_collisions_resolve_in_labels_builder_order() -> None:
    # Prometheus walks the original labels sorted by name, then those set since, in order.
    labelmap: dict[str, Any] = {"regex": "[a-z]_(x)", "replacement": "$1", "action": "labelmap"}
    for labels in ({"a_x": "1", "b_x": "2"}, {"b_x": "2", "a_x": "1"}):
        assert relabel(labels, [labelmap]) == {**labels, "x": "2"}
    set_c: dict[str, Any] = {"target_label": "c_x", "replacement": "3"}
    assert relabel({"b_x": "2", "a_x": "1"}, [set_c, labelmap])["x"] == "3"  # type: ignore[index]
    reset_a: dict[str, Any] = {"target_label": "a_x", "replacement": "9"}
    assert relabel({"b_x": "2", "a_x": "1"}, [reset_a, labelmap])["x"] == "9"  # type: ignore[index]
    # Set again without a change in between: the label keeps its place among the labels set.
    both = [set_c, reset_a, set_c, labelmap]
    assert relabel({"b_x": "2", "a_x": "1"}, both)["x"] == "9"  # type: ignore[index]


def test_labelmap_reads_the_labels_as_they_were_before_the_rule() -> None:
    rules: Rules = [{"regex": "(.)", "replacement": "${1}${1}", "action": "labelmap"}]
    assert relabel({"a": "1", "aa": "2"}, rules) == {"a": "1", "aa": "1"}


def test_labelmap_skips_names_that_are_not_valid() -> None:
    # Deliberate difference: Prometheus would set "1" and "" and the receiver refuse the request.
    rules: Rules = [{"regex": "b(.*)", "replacement": "$1", "action": "labelmap"}]
    assert relabel({"b1": "x", "b": "y", "bc": "z"}, rules) == {"b1": "x", "b": "y", "bc": "z", "c": "z"}


@pytest.mark.parametrize(
    ("action", "value", "expected"),
    [
        pytest.param("lowercase", "ΟΔΟΣ", "οδοσ", id="no-final-sigma"),
        pytest.param("lowercase", "\u0130stanbul", "istanbul", id="dotted-capital-i"),
        pytest.param("uppercase", "straße", "STRAßE", id="sharp-s-stays"),
        pytest.param("uppercase", "\u1fb3", "\u1fbc", id="simple-titlecase-mapping"),
        pytest.param("uppercase", "\ufb00", "\ufb00", id="ligature-stays"),
        pytest.param("lowercase", "", "", id="empty-removes"),
    ],
)
def test_case_actions_map_characters_as_go(action: str, value: str, expected: str) -> None:
    rules: Rules = [{"source_labels": ["s"], "action": action, "target_label": "t"}]
    result = relabel({"s": value, "t": "old"}, rules)
    assert result == ({"s": value, "t": expected} if value else {})


def test_hashmod_is_md5_last_eight_bytes_big_endian() -> None:
    for value in ("", "foo", "10.0.0.1:9100", "ünïcode"):
        expected = int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % 7
        rules: Rules = [{"source_labels": ["s"], "action": "hashmod", "modulus": 7, "target_label": "t"}]
        assert relabel({"s": value} if value else {}, rules) == ({"s": value} if value else {}) | {
            "t": str(expected)
        }


def test_keep_only_some_metrics_and_drop_a_noisy_label() -> None:
    rules = compile_rules(
        [
            {"source_labels": ["__name__"], "regex": "http_.*|process_cpu_seconds_total", "action": "keep"},
            {"regex": "pod_uid|request_id", "action": "labeldrop"},
        ]
    )
    assert rules.apply({"__name__": "http_requests_total", "request_id": "42", "code": "200"}) == {
        "__name__": "http_requests_total",
        "code": "200",
    }
    assert rules.apply({"__name__": "process_cpu_seconds_total"}) == {"__name__": "process_cpu_seconds_total"}
    assert rules.apply({"__name__": "python_gc_objects_collected_total"}) is None


def test_compile_rules_passes_compiled_rules_and_none_through() -> None:
    rules = compile_rules([{"target_label": "a", "replacement": "b"}])
    assert compile_rules(rules) is rules
    empty = compile_rules(None)
    assert isinstance(empty, RelabelRules)
    assert len(empty) == 0
    assert empty.apply({"__name__": "m", "a": "1"}) == {"__name__": "m", "a": "1"}
    assert repr(rules) == "RelabelRules(['replace'])"


def test_every_action_is_covered() -> None:
    rules = [rule for param in PROMETHEUS_CASES for rule in param.values[1]]  # type: ignore[attr-defined]
    actions = {rule.get("action", "replace") for rule in rules}
    assert actions == set(ACTIONS)


def test_results_stay_right_past_the_memo_of_each_rule() -> None:
    rules = compile_rules(
        [
            {"source_labels": ["s"], "action": "hashmod", "modulus": 1000, "target_label": "h"},
            {"source_labels": ["s"], "regex": "v(\\d*)7", "target_label": "t", "replacement": "$1"},
        ]
    )
    for number in range(10_000):
        value = f"v{number}"
        expected = {"__name__": "m", "s": value}
        expected["h"] = str(int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % 1000)
        if value.endswith("7") and len(value) > 2:
            expected["t"] = value[1:-1]
        assert rules.apply({"__name__": "m", "s": value}) == expected


def test_regex_too_deep_for_python_is_a_configuration_error() -> None:
    # Go refuses it too ("expression nests too deeply").
    with pytest.raises(ConfigurationError, match="expected a simpler regular expression"):
        compile_rules([{"source_labels": ["a"], "regex": "(" * 1000 + "a" + ")" * 1000, "action": "drop"}])


def test_hashmod_sharding_sends_each_series_to_exactly_one_endpoint() -> None:
    def shard(keep: str) -> RelabelRules:
        return compile_rules(
            [
                {
                    "source_labels": ["__name__", "instance"],
                    "target_label": "__tmp_shard",
                    "modulus": 2,
                    "action": "hashmod",
                },
                {"source_labels": ["__tmp_shard"], "regex": keep, "action": "keep"},
                {"regex": "__tmp_shard", "action": "labeldrop"},
            ]
        )

    first, second = shard("0"), shard("1")
    kept = [0, 0]
    for number in range(200):
        labels = {"__name__": f"metric_{number}", "instance": "host:9100"}
        results = [first.apply(labels), second.apply(labels)]
        assert [result is not None for result in results].count(True) == 1
        assert labels in results
        kept[results.index(labels)] += 1
    assert min(kept) > 50  # both shards take a fair share
