"""The documentation site: in sync with the code, and it builds with warnings as errors."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
