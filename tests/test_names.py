"""Name escaping: prometheus_client's own where it has one, the same rule where it has not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from prometheus_rw_bridge._protocol import names

NAMES = st.text(st.sampled_from("aZ_:09.-é/ \n😀"), max_size=12)


@settings(max_examples=300)
@given(NAMES)
def test_our_rule_is_prometheus_clients(name: str) -> None:
    assert names._own_metric(name) == names.escape_metric_name(name)
    assert names._own_label(name) == names.escape_label_name(name)


def test_prometheus_clients_escaping_is_used_where_it_exists() -> None:
    from prometheus_client.openmetrics import exposition

    assert (names._theirs is not None) == hasattr(exposition, "UNDERSCORES")


@given(NAMES)
def test_escaped_names_are_valid(name: str) -> None:
    metric, label = names.escape_metric_name(name), names.escape_label_name(name)
    assert metric == "" or names._own_metric(metric) == metric
    assert label == "" or names.is_valid_label_name(label)
