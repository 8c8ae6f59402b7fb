"""The documentation site: in sync with the code, and it builds with warnings as errors."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def env_variable_names() -> list[str]:
    """Every ``PROMETHEUS_REMOTE_WRITE_*`` name defined as a constant in ``_config``."""
    config = importlib.import_module("prometheus_rw_bridge._config.settings")
    prefix = config.ENV_PREFIX
    return sorted(
        {
            value
            for name, value in vars(config).items()
            if name.startswith("ENV_")
            and isinstance(value, str)
            and value.startswith(prefix)
            and value != prefix
        }
    )


def test_every_environment_variable_is_in_the_configuration_reference() -> None:
    page = (DOCS / "configuration.md").read_text()
    names = env_variable_names()

    assert len(names) >= 20
    missing = [name for name in names if f"`{name}`" not in page]
    assert missing == [], f"docs/configuration.md does not document {missing}"


def test_the_configuration_reference_names_no_variable_the_code_lacks() -> None:
    page = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`(PROMETHEUS_REMOTE_WRITE_[A-Z0-9_]+)`", page))
    per_endpoint_examples = {
        name for name in documented if re.match(r"PROMETHEUS_REMOTE_WRITE_(PRIMARY|BACKUP)_", name)
    }

    assert documented - per_endpoint_examples - set(env_variable_names()) == set()


def test_the_configuration_reference_tables_are_the_option_tables() -> None:
    from prometheus_rw_bridge._config import reference

    stale = [path for path in reference.stale() if path.suffix == ".md"]

    assert stale == [], f"{[str(p) for p in stale]} differ from the option table; run: {reference.COMMAND}"


def test_every_cli_command_is_documented() -> None:
    page = (DOCS / "cli.md").read_text()

    for command in ("demo", "receive", "check", "forward"):
        assert f"## {command}" in page


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("mkdocs is not installed (pip install -e '.[docs]')")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )

    assert result.returncode == 0, result.stdout + result.stderr


# --- docs/relabelling.md: every example does what the page says ------------------------------


def _relabelling_page() -> str:
    return (DOCS / "relabelling.md").read_text()


def _example_rules(tmp_path: Path) -> dict[str, list[Any]]:
    """Each rules example by its bold title, read from a file as the RELABEL_CONFIG_FILE variable's is."""
    from prometheus_rw_bridge._config.relabel_file import load_relabel_file

    examples = {}
    for number, match in enumerate(
        re.finditer(r"\*\*([^*]+)\*\*(?:[^\n]|\n(?!\n))*\n\n```yaml\n(.*?)```", _relabelling_page(), re.S)
    ):
        path = tmp_path / f"example{number}.yml"
        path.write_text(match.group(2))
        examples[match.group(1)] = load_relabel_file(path)
    return examples


def _example_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests", "R.", ["route", "method", "request_id", "trace_id"], registry=registry
    )
    requests.labels("/api", "GET", "r1", "t1").inc(2)
    requests.labels("/healthz", "GET", "r2", "t2").inc(1)
    Histogram("http_request_duration_seconds", "D.", ["route"], registry=registry).labels("/api").observe(0.2)
    Gauge("python_gc_objects_collected", "G.", registry=registry).set(5)
    Counter("process_cpu_seconds", "C.", registry=registry).inc(1.5)
    Counter("legacy_jobs", "J.", registry=registry).inc(4)
    Gauge("pod_info", "P.", ["k8s_pod"], registry=registry).labels("web-1").set(1)
    return registry


def _sent(registry: CollectorRegistry, rules: list[Any] | None) -> list[dict[str, str]]:
    from prometheus_rw_bridge import decode_write_request, generate_write_request

    body = generate_write_request(registry, job="j", instance="i", write_relabel_configs=rules)
    return [series.labels for series in decode_write_request(body).series]


def test_relabelling_examples_do_what_the_page_says(tmp_path: Path) -> None:
    examples = _example_rules(tmp_path)
    registry = _example_registry()
    everything = _sent(registry, None)

    def names(rules: list[Any]) -> set[str]:
        return {labels["__name__"] for labels in _sent(registry, rules)}

    noisy = _sent(registry, examples["Drop a noisy label"])
    assert len(noisy) == len(everything)
    assert not any("request_id" in labels or "trace_id" in labels for labels in noisy)
    assert names(examples["Keep only some metrics"]) == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_created",
        "process_cpu_seconds_total",
    }
    dropped = _sent(registry, examples["Drop some metrics"])
    assert not any(labels["__name__"].startswith("python_gc_") for labels in dropped)
    assert not any(labels.get("route") == "/healthz" for labels in dropped)
    assert any(labels.get("route") == "/api" for labels in dropped)
    renamed = names(examples["Rename a metric"])
    assert "myapp_jobs_total" in renamed and not any(name.startswith("legacy_") for name in renamed)
    assert all(labels["cluster"] == "eu-west-1" for labels in _sent(registry, examples["Add a label"]))
    (pod,) = [
        labels for labels in _sent(registry, examples["Copy labels under a new name"]) if "k8s_pod" in labels
    ]
    assert pod["kubernetes_pod"] == "web-1"
    first = examples["Shard series between receivers"]
    second = [
        dict(rule, regex="1") if rule.get("regex") == "0" else rule for rule in first
    ]  # "keeps regex: 1"
    shards = [{frozenset(labels.items()) for labels in _sent(registry, rules)} for rules in (first, second)]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {frozenset(labels.items()) for labels in everything}


def test_relabelling_code_examples_run_as_shown(monkeypatch: pytest.MonkeyPatch) -> None:

    import prometheus_rw_bridge
    from prometheus_rw_bridge.testing import Receiver, Reply

    blocks = re.findall(r"```python\n(.*?)```", _relabelling_page(), re.S)
    assert len(blocks) == 2
    urls = re.findall(r'"(https://[^"]+)"', "".join(blocks))
    started: list[Any] = []

    def enable(*args: Any, **options: Any) -> Any:
        bridge = prometheus_rw_bridge._api.enable_remote_write(
            *args, **options, registry=_example_registry(), interval=3600, self_metrics=False, environ={}
        )
        started.append(bridge)
        return bridge

    monkeypatch.setattr(prometheus_rw_bridge, "enable_remote_write", enable)
    receivers = {url: Receiver(default=Reply()).start() for url in urls}
    try:
        for block in blocks:
            for url, receiver in receivers.items():
                block = block.replace(url, receiver.url)
            exec(compile(block, "docs/relabelling.md", "exec"), {})
        for bridge in started:
            assert bridge.flush(timeout=10)
            bridge.close(timeout=5)
    finally:
        for receiver in receivers.values():
            receiver.stop()
    sent = {
        url: [s.labels for r in receiver.requests if r.decoded for s in r.decoded.series]
        for url, receiver in receivers.items()
    }
    first, mimir, archive = (sent[url] for url in urls)
    assert first and not any("request_id" in labels for labels in first)
    assert not any(labels["__name__"].startswith("python_gc_") for labels in first)
    assert mimir and all(labels["__name__"].startswith("http_") for labels in mimir)
    assert any(labels["__name__"] == "legacy_jobs_total" for labels in archive)
