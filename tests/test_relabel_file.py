"""Relabel rules read from YAML and JSON files, and the errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prometheus_rw_bridge import ConfigurationError, MissingDependencyError
from prometheus_rw_bridge._config import relabel_file
from prometheus_rw_bridge._config.relabel_file import (
    ENV_RELABEL_CONFIG_FILE,
    compile_relabel_file,
    load_relabel_file,
)
from prometheus_rw_bridge._protocol.relabel import compile_rules

RULES = [
    {"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"},
    {"regex": "pod_uid", "action": "labeldrop"},
    {"source_labels": ["instance"], "target_label": "__tmp_shard", "modulus": 4, "action": "hashmod"},
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


YAML_LIST = """\
- source_labels: [__name__]
  regex: go_.*
  action: drop
- regex: pod_uid
  action: labeldrop
- source_labels:
    - instance
  target_label: __tmp_shard
  modulus: 4
  action: hashmod
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param("rules.yml", YAML_LIST, id="yaml-list"),
        pytest.param(
            "rules.yaml",
            "write_relabel_configs:\n" + "".join("  " + line + "\n" for line in YAML_LIST.splitlines()),
            id="yaml-mapping",
        ),
        pytest.param("rules.json", json.dumps(RULES), id="json-list"),
        pytest.param("rules.json", json.dumps({"write_relabel_configs": RULES}), id="json-mapping"),
        pytest.param("rules.conf", "\ufeff" + json.dumps(RULES), id="json-as-yaml-with-bom"),
    ],
)
def test_rules_file_formats(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    assert compile_relabel_file(path) == compile_rules(RULES)
    assert compile_rules(load_relabel_file(str(path))) == compile_rules(RULES)


def test_yaml_scalars_are_text_as_in_prometheus(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yml",
        "- source_labels: [code]\n  regex: 200\n  action: drop\n"
        "- regex:\n  separator: yes\n  replacement: 017\n  target_label: t\n"
        "- source_labels: [a]\n  separator: ~\n  target_label: u\n",
    )
    assert load_relabel_file(path) == [
        {"source_labels": ["code"], "regex": "200", "action": "drop"},
        {"regex": None, "separator": "yes", "replacement": "017", "target_label": "t"},
        {"source_labels": ["a"], "separator": None, "target_label": "u"},
    ]
    rules = compile_relabel_file(path)
    assert rules.apply({"__name__": "m", "code": "200"}) is None
    assert rules.apply({"__name__": "m", "code": "404", "a": "x"}) == {
        "__name__": "m",
        "code": "404",
        "a": "x",
        "t": "017",
        "u": "x",
    }


def test_invalid_rule_names_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yml",
        "write_relabel_configs:\n  - regex: a\n    action: labeldrop\n\n"
        "  - source_labels: [x]\n    regex: abc(\n",
    )
    with pytest.raises(ConfigurationError) as caught:
        compile_relabel_file(path)
    message = str(caught.value)
    assert message.startswith(
        f"{ENV_RELABEL_CONFIG_FILE}={str(path)!r}, line 5: write_relabel_configs[1].regex="
    )
    assert "missing closing )" in message


def test_invalid_rule_in_json_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.json", json.dumps([{"action": "explode"}]))
    with pytest.raises(ConfigurationError) as caught:
        compile_relabel_file(path, where="relabel_config_file")
    assert str(caught.value).startswith(
        f"relabel_config_file={str(path)!r}: write_relabel_configs[0].action='explode' is not valid: unknown"
    )


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        pytest.param("r.yml", "- a: [b\n", "not valid YAML (while parsing a flow sequence", id="yaml-syntax"),
        pytest.param(
            "r.yml", "- action: drop\n  action: keep\n", "found the key 'action' twice", id="yaml-dup"
        ),
        pytest.param("r.yml", "- action: drop\n  action: keep\n", "line 2, column 3", id="yaml-dup-line"),
        pytest.param("r.yml", "a: 1\n---\nb: 2\n", "not valid YAML", id="yaml-two-documents"),
        pytest.param("r.json", "[{]", "not valid JSON (Expecting property name", id="json-syntax"),
        pytest.param("r.json", "[\n{}\n,]", "line 3, column 2", id="json-line"),
        pytest.param(
            "r.json", '[{"action": "drop", "action": "keep"}]', "'action' appears twice", id="json-dup"
        ),
        pytest.param("r.yml", "", "the file is empty", id="empty"),
        pytest.param("r.yml", "action: drop\n", "unknown key 'action'", id="bare-rule"),
        pytest.param("r.yml", "{}\n", "expected a list of relabel rules", id="empty-mapping"),
        pytest.param(
            "r.yml",
            "write_relabel_configs: []\nmetric_relabel_configs: []\n",
            "unknown key 'metric_relabel_configs'",
            id="other-key",
        ),
        pytest.param("r.yml", "write_relabel_configs: drop\n", "the file holds str", id="not-a-list"),
        pytest.param("r.json", '"drop"', "the file holds str", id="json-string"),
    ],
)
def test_unreadable_files_are_configuration_errors(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigurationError) as caught:
        load_relabel_file(path)
    message = str(caught.value)
    assert message.startswith(f"{ENV_RELABEL_CONFIG_FILE}={str(path)!r} is not valid: ")
    assert problem in message


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"the file cannot be read \(No such file or directory"):
        load_relabel_file(tmp_path / "absent.yml")
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"- regex: caf\xe9\n")
    with pytest.raises(ConfigurationError, match="not UTF-8 text"):
        load_relabel_file(path)


def test_yaml_without_pyyaml_is_a_missing_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relabel_file, "_yaml", None)
    path = write(tmp_path, "rules.yml", YAML_LIST)
    with pytest.raises(MissingDependencyError) as caught:
        load_relabel_file(path)
    message = str(caught.value)
    assert f"{ENV_RELABEL_CONFIG_FILE}={str(path)!r}" in message
    assert "pip install 'prometheus-rw-bridge[yaml]'" in message
    # JSON works without it, whatever the file is called.
    for name in ("rules.json", "rules.conf"):
        assert compile_relabel_file(write(tmp_path, name, json.dumps(RULES))) == compile_rules(RULES)


def test_every_rules_example_in_the_docs_compiles(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "relabelling.md").read_text()
    blocks = page.split("```yaml\n")[1:]
    assert len(blocks) >= 9
    for number, block in enumerate(blocks):
        path = write(tmp_path, f"example{number}.yml", block.split("```")[0])
        assert len(compile_relabel_file(path)) >= 1, block
