"""Relabel benchmark: what write_relabel_configs cost when a series is built, and on a warm push.

Run from the repository root (about two minutes)::

    .venv/bin/python benchmarks/bench_relabel.py [--samples 100k] [--repeat 7] [--sections build,push]

Rules run once per series, when its template is built (the encoder keeps the result with the
encoded series). ``build`` measures that step: for every series of the benchmark registry of
``bench_encode.py``, build its label dict as the encoder does and turn it into sorted UTF-8
pairs (the baseline), then the same with ``RelabelRules.apply`` in between, for several rule
sets; a cold ``Encoder.encode`` of the same registry (every template built from scratch) puts
the added cost in proportion. ``push`` measures what the bridge does at every interval once the
templates exist (read the registry, encode, cut into requests, compress), per protocol, with no
rules and with rule sets, on encoders warmed up by one push; a second encoder without rules shows
how far apart equal candidates land, and a relabel callable that changes nothing what it costs that
templates are then built from samples rather than per child. Timings are per-thread CPU time,
medians of interleaved runs that start at a different candidate each time; ratios divide by the
baseline of the same run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench_encode import BATCH, INSTANCE, JOB, TIMESTAMP_MS, build_registry, machine, parse_size

from prometheus_rw_bridge._protocol.batching import compress_requests
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.names import escape_label_name
from prometheus_rw_bridge._protocol.registry import read
from prometheus_rw_bridge._protocol.relabel import RelabelRules, compile_rules


def shard(sources: list[str], modulus: int, keep: str) -> list[dict[str, Any]]:
    """Rules keeping the series whose hashmod of ``sources`` matches ``keep`` (docs/relabelling.md)."""
    return [
        {"source_labels": sources, "target_label": "__tmp_shard", "modulus": modulus, "action": "hashmod"},
        {"source_labels": ["__tmp_shard"], "regex": keep, "action": "keep"},
        {"regex": "__tmp_shard", "action": "labeldrop"},
    ]


RULE_SETS: dict[str, list[dict[str, Any]]] = {
    "no rules": [],
    "drop a noisy label": [{"regex": "route", "action": "labeldrop"}],
    "keep some metrics": [{"source_labels": ["__name__"], "regex": "svc000[0-4]_http_.*", "action": "keep"}],
    "rename a metric": [
        {
            "source_labels": ["__name__"],
            "regex": "(svc[0-9]+)_http_requests_total",
            "target_label": "__name__",
            "replacement": "${1}_requests_total",
        }
    ],
    "typical (4 rules)": [
        {"source_labels": ["__name__"], "regex": "python_gc_.*|process_.*", "action": "drop"},
        {"regex": "route", "action": "labeldrop"},
        {"target_label": "cluster", "replacement": "eu-west-1"},
        {"source_labels": ["method"], "target_label": "method", "action": "lowercase"},
    ],
    "heavy (10 rules)": [
        {"source_labels": ["__name__"], "regex": "python_gc_.*|process_.*", "action": "drop"},
        {"source_labels": ["code"], "regex": "5..", "target_label": "error", "replacement": "true"},
        {
            "source_labels": ["route"],
            "regex": "/api/v1/([a-z]+).*",
            "target_label": "api",
            "replacement": "$1",
        },
        {"regex": "(method|code)", "replacement": "http_$1", "action": "labelmap"},
        {"regex": "method|code", "action": "labeldrop"},
        *shard(["instance", "job"], 4, "[0-3]"),
        {"source_labels": ["le"], "regex": "\\+Inf", "target_label": "le", "replacement": "inf"},
        {"target_label": "cluster", "replacement": "eu-west-1"},
    ],
}


def series_of(registry: Any) -> list[tuple[str, dict[str, str]]]:
    """Return each sample's name and raw labels, as ``collect()`` yields them."""
    return [(sample.name, sample.labels) for family in registry.collect() for sample in family.samples]


def build(series: list[tuple[str, dict[str, str]]], rules: RelabelRules | None) -> int:
    """Build every series' label dict as the encoder does, relabel it, and sort it into UTF-8 pairs."""
    target = {"job": JOB, "instance": INSTANCE}
    kept = 0
    for name, raw in series:
        labels: dict[str, str] = {escape_label_name(k): v for k, v in raw.items() if v != ""}
        for key, value in target.items():
            labels.setdefault(key, value)
        labels["__name__"] = name
        if rules is not None:
            relabelled = rules.apply(labels)
            if relabelled is None:
                continue
            labels = relabelled
        sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in labels.items())
        kept += 1
    return kept


def interleaved(funcs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median per-thread CPU seconds of each function, run round-robin from a rotating start."""
    names = list(funcs)
    for name in names:
        funcs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            start = time.thread_time()
            funcs[name]()
            times[name].append(time.thread_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# Warm pushes: a rule set that keeps every series (so the requests carry the same series and
# labels, and any difference is the rules' own cost), one that adds a label to every series
# (bigger requests) and one that drops half the series (smaller ones).
TYPICAL_KEEPING_EVERY_SERIES: list[dict[str, Any]] = [
    {"source_labels": ["__name__"], "regex": "python_gc_.*|process_.*", "action": "drop"},
    {"regex": "pod_uid|request_id", "action": "labeldrop"},
    {
        "source_labels": ["__name__"],
        "regex": "(svc[0-9]+)_http_requests_total",
        "target_label": "__name__",
        "replacement": "${1}_requests_total",
    },
    {"source_labels": ["method"], "target_label": "method", "action": "lowercase"},
]
PUSH_RULE_SETS: dict[str, list[dict[str, Any]]] = {
    "typical (4 rules), every series kept": TYPICAL_KEEPING_EVERY_SERIES,
    "typical + a cluster label on every series": [
        *TYPICAL_KEEPING_EVERY_SERIES,
        {"target_label": "cluster", "replacement": "eu-west-1"},
    ],
    "keep half the series (hashmod)": shard(["__name__", "route"], 2, "0"),
}


def unchanged(labels: dict[str, str]) -> dict[str, str]:
    """A relabel callable that changes nothing: what building the templates from samples costs."""
    return labels


def warm_push(
    registry: Any, protocol: str, rules: list[dict[str, Any]] | Callable[..., Any] | None
) -> Callable[[], Any]:
    """What the bridge does each interval, less HTTP: read, encode, cut and compress the requests."""
    cls = EncoderV2 if protocol == "2.0" else Encoder
    relabel = rules if callable(rules) or rules is None else compile_rules(rules).apply
    encoder = cls(job=JOB, instance=INSTANCE, track_staleness=True, relabel=relabel)

    def run() -> Any:
        return compress_requests(
            encoder.encode(read(registry), TIMESTAMP_MS), protocol, BATCH, metadata=False
        )

    run()  # builds the templates: the pushes measured are warm
    return run


def push_section(registry: Any, repeat: int) -> None:
    """Warm pushes with and without rules, per protocol, interleaved."""
    funcs: dict[str, Callable[[], Any]] = {}
    for protocol in ("1.0", "2.0"):
        funcs[f"push {protocol}, no rules (baseline)"] = warm_push(registry, protocol, None)
        # The same again, on an encoder of its own: how far apart two equal candidates land.
        funcs[f"push {protocol}, no rules (a second encoder)"] = warm_push(registry, protocol, None)
        funcs[f"push {protocol}, a relabel callable that changes nothing"] = warm_push(
            registry, protocol, unchanged
        )
        for name, rules in PUSH_RULE_SETS.items():
            funcs[f"push {protocol}, {name}"] = warm_push(registry, protocol, rules)
    sizes = {name: sum(len(request.body) for request in func()) for name, func in funcs.items()}
    medians = interleaved(funcs, repeat)
    print(f"\n## Warm push with and without rules (medians of {repeat}, per-thread CPU time)\n")
    print("| candidate | median | ratio to no rules | compressed bytes |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in medians.items():
        baseline = medians[name.split(",")[0] + ", no rules (baseline)"]
        print(f"| {name} | {seconds * 1000:.1f} ms | {seconds / baseline:.3f} | {sizes[name]:,} |")


def build_section(registry: Any, repeat: int) -> None:
    """Building the label sets of every series, with and without rules, against a cold encode."""
    series = series_of(registry)
    families = list(registry.collect())
    compiled = {name: compile_rules(rules) for name, rules in RULE_SETS.items()}
    kept = {name: build(series, rules) for name, rules in compiled.items()}
    funcs: dict[str, Callable[[], Any]] = {
        "label dicts, no relabelling (baseline)": lambda: build(series, None)
    }
    for name, rules in compiled.items():
        funcs[f"label dicts + apply: {name}"] = lambda rules=rules: build(series, rules)  # type: ignore[misc]
    funcs["cold Encoder.encode (every template built)"] = lambda: Encoder(job=JOB, instance=INSTANCE).encode(
        families, TIMESTAMP_MS
    )
    # A cold encode with rules, from read() as the bridge does: directly read families are then
    # built from their samples, not per child (the per-child plan assumes no relabelling).
    typical = compile_rules(TYPICAL_KEEPING_EVERY_SERIES).apply
    funcs["cold Encoder.encode of read(), no rules"] = lambda: Encoder(job=JOB, instance=INSTANCE).encode(
        read(registry), TIMESTAMP_MS
    )
    funcs["cold Encoder.encode of read(), typical (4 rules, every series kept)"] = lambda: Encoder(
        job=JOB, instance=INSTANCE, relabel=typical
    ).encode(read(registry), TIMESTAMP_MS)
    medians = interleaved(funcs, repeat)
    baseline = medians["label dicts, no relabelling (baseline)"]
    cold = medians["cold Encoder.encode (every template built)"]
    print(f"\n## Relabelling {len(series):,} series (medians of {repeat}, per-thread CPU time)\n")
    print("| candidate | series kept | median | ratio to baseline | added per series | added / cold encode |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds in medians.items():
        rule_set = name.removeprefix("label dicts + apply: ")
        extra = seconds - baseline
        cells = (
            (f"{kept[rule_set]:,}", f"{extra / len(series) * 1e9:.0f} ns", f"{extra / cold:+.0%}")
            if rule_set in kept
            else ("", "", "")
        )
        timing = f"{seconds * 1000:.0f} ms | {seconds / baseline:.2f}"
        print(f"| {name} | {cells[0]} | {timing} | {cells[1]} | {cells[2]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="100k", help="registry size (default 100k)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions (default 7)")
    parser.add_argument("--sections", default="build,push", help="build, push or both (default)")
    args = parser.parse_args(argv)
    registry = build_registry(parse_size(args.samples))
    print(*machine(), sep="\n")
    sections = args.sections.split(",")
    if "build" in sections:
        build_section(registry, args.repeat)
    if "push" in sections:
        push_section(registry, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
