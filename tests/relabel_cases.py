"""What the write_relabel_configs tests send: a web app's registry and the rules they apply to it."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

DROP_REQUEST_ID: list[dict[str, Any]] = [{"regex": "request_id", "action": "labeldrop"}]
RENAME_LEGACY: list[dict[str, Any]] = [
    {
        "source_labels": ["__name__"],
        "regex": "legacy_(.*)",
        "target_label": "__name__",
        "replacement": "app_${1}",
    }
]


def shard_rules(shard: int) -> list[dict[str, Any]]:
    """The hashmod rules of docs/relabelling.md: keep the series of ``shard`` of 2 (by name and path)."""
    return [
        {
            "source_labels": ["__name__", "path"],
            "target_label": "__tmp_shard",
            "modulus": 2,
            "action": "hashmod",
        },
        {"source_labels": ["__tmp_shard"], "regex": str(shard), "action": "keep"},
        {"regex": "__tmp_shard", "action": "labeldrop"},
    ]


def web_registry() -> CollectorRegistry:
    """Requests by path (each with a request id of its own), a legacy counter and a gauge."""
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["path", "request_id"], registry=registry)
    for index in range(12):
        requests.labels(f"/p{index}", f"r{index}").inc(index + 1)
    Counter("legacy_orders", "Orders.", ["shop"], registry=registry).labels("north").inc(7)
    Gauge("python_gc_objects", "GC.", registry=registry).set(3)
    return registry
