"""The option table: every option it declares resolves, masks, is typed and is generated everywhere."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import prometheus_rw_bridge
from prometheus_rw_bridge import ConfigurationError, _options
from prometheus_rw_bridge import fastapi as fastapi_adapter
from prometheus_rw_bridge import flask as flask_adapter
from prometheus_rw_bridge import gunicorn as gunicorn_adapter
from prometheus_rw_bridge._config import option as kinds
from prometheus_rw_bridge._config import reference
from prometheus_rw_bridge._config.option import Option
from prometheus_rw_bridge._config.settings import (
    ENV_PREFIX,
    OPTIONS,
    EndpointSettings,
    Settings,
    resolve_settings,
)
from prometheus_rw_bridge._protocol.relabel import RelabelRules

URL = "https://receiver.example/api/v1/write"
SECRET = "hunter2-s3cr3t"
CLIENT = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
AUTH = httpx.BasicAuth("u", "p")

# One sample per kind: (raw value as a variable or argument holds it, the setting it becomes).
# A new kind needs a sample here; the test below says so.
SAMPLES: dict[str, tuple[object, object]] = {
    "DURATION": ("7s", 7.0),
    "BOOLEAN": ("yes", True),
    "COUNT": ("7", 7),
    "SIZE": ("7KiB", 7 * 1024),
    "TEXT": ("seven", "seven"),
    "NAME": ("seven", "seven"),
    "SECRET": (SECRET, SECRET),
    "PROXY": ("http://proxy.example:3128", "http://proxy.example:3128"),
    "LABELS": ("a=1", {"a": "1"}),
    "HEADERS": ("X-Seven=7", {"X-Seven": "7"}),
    "PROTOCOL": ("auto", "auto"),
    "REGEX": ("go_.*", re.compile("go_.*")),
    "URL": ("https://login.example/oauth2/token", "https://login.example/oauth2/token"),
    "SCOPES": ("write, read", ("write", "read")),
    "PARAMS": ("audience=mimir", {"audience": "mimir"}),
    "AUTH": (AUTH, AUTH),
}
# What some options need beside them to be valid (cross-field rules of resolve_settings).
COMPANIONS: dict[str, dict[str, str]] = {
    "password": {"username": "u"},
    "password_file": {"username": "u"},
    "sigv4_region": {"sigv4": "true"},
    "key_file": {"cert_file": "FILE"},
    "sigv4_role_arn": {"sigv4": "true"},
    "sigv4_service": {"sigv4": "true"},
    **{
        name: {"oauth2_client_id": "c", "oauth2_token_url": "http://t/token"}
        for name in (
            "oauth2_client_secret",
            "oauth2_client_secret_file",
            "oauth2_scopes",
            "oauth2_endpoint_params",
        )
    },
    "oauth2_client_id": {"oauth2_token_url": "http://t/token"},
    "oauth2_token_url": {"oauth2_client_id": "c"},
}
# url and endpoints decide which endpoints exist: test_config.py covers them.
SPECIAL = {"url", "endpoints"}


def kind_name(option: Option, *, from_env: bool) -> str:
    kind = option.env_kind if from_env and option.env_kind is not None else option.kind
    return next(name for name, value in vars(kinds).items() if value is kind)


def sample(option: Option, tmp_path: Path, *, from_env: bool) -> tuple[object, object]:
    """Return a raw value for ``option`` and what it resolves to."""
    name = kind_name(option, from_env=from_env)
    if name == "FILE":
        path = tmp_path / option.name
        path.write_text("x")
        return str(path), str(path)
    if name in ("RELABEL_FILE", "RELABEL_RULES"):
        rules = [{"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"}]
        if name == "RELABEL_RULES":
            return rules, rules
        path = tmp_path / "rules.json"
        path.write_text(json.dumps(rules))
        return str(path), rules
    if name == "HTTP_CLIENT":
        return CLIENT, CLIENT
    assert name in SAMPLES, f"add a sample value for the kind {name} to SAMPLES"
    return SAMPLES[name]


def resolved_value(settings: Settings, option: Option) -> Any:
    value = getattr(settings.endpoints[0] if option.endpoint else settings, option.name)
    if isinstance(value, RelabelRules):
        return [{key: rule.config()[key] for key in ("source_labels", "regex", "action")} for rule in value]
    return dict(value) if option.kind in (kinds.LABELS, kinds.HEADERS) else value


def companions(option: Option, tmp_path: Path) -> dict[str, str]:
    result = dict(COMPANIONS.get(option.name, {}))
    for name, value in result.items():
        if value == "FILE":
            path = tmp_path / f"{name}.pem"
            path.write_text("x")
            result[name] = str(path)
    return result


GENERIC = [pytest.param(option, id=option.name) for option in OPTIONS if option.name not in SPECIAL]


@pytest.mark.parametrize("option", GENERIC)
def test_every_option_comes_from_its_argument(option: Option, tmp_path: Path) -> None:
    raw, expected = sample(option, tmp_path, from_env=False)
    arguments: dict[str, Any] = {option.name: raw, **companions(option, tmp_path)}

    settings = resolve_settings(url=URL, **arguments, environ={})

    assert resolved_value(settings, option) == expected


@pytest.mark.parametrize("option", [p for p in GENERIC if p.values[0].env is not None])
def test_every_option_comes_from_its_variable_and_the_argument_wins(option: Option, tmp_path: Path) -> None:
    assert option.variable is not None
    raw, expected = sample(option, tmp_path, from_env=True)
    environ = {ENV_PREFIX + "URL": URL, option.variable: raw}
    environ.update({ENV_PREFIX + name.upper(): value for name, value in companions(option, tmp_path).items()})

    assert resolved_value(resolve_settings(environ=environ), option) == expected
    with pytest.raises(ConfigurationError, match=re.escape(f"{option.variable} ({option.name})=")):
        resolve_settings(environ={**environ, option.variable: object()})
    if option.default is not None:  # the default given explicitly beats the variable
        settings = resolve_settings(**{option.name: option.default}, environ=environ)
        assert getattr(settings.endpoints[0] if option.endpoint else settings, option.name) == option.default


@pytest.mark.parametrize("option", [p for p in GENERIC if p.values[0].endpoint and p.values[0].env])
def test_every_endpoint_option_has_a_variable_per_named_endpoint(option: Option, tmp_path: Path) -> None:
    raw, expected = sample(option, tmp_path, from_env=True)
    environ = {
        ENV_PREFIX + "ENDPOINTS": "main",
        ENV_PREFIX + "MAIN_URL": URL,
        f"{ENV_PREFIX}MAIN_{option.env}": raw,
    }
    environ.update({f"{ENV_PREFIX}MAIN_{n.upper()}": v for n, v in companions(option, tmp_path).items()})

    settings = resolve_settings(environ=environ)

    assert settings.endpoints[0].name == "main"
    assert resolved_value(settings, option) == expected


@pytest.mark.parametrize("option", [pytest.param(o, id=o.name) for o in OPTIONS if o.secret])
def test_every_secret_option_is_masked_in_reprs(option: Option) -> None:
    endpoint = EndpointSettings(url=URL, **{option.name: SECRET})
    settings = Settings(endpoints=(endpoint,))

    for text in (repr(endpoint), str(endpoint), repr(settings)):
        assert SECRET not in text
        assert f"{option.name}='***'" in text


def test_the_table_declares_each_name_and_variable_once() -> None:
    names = [option.name for option in OPTIONS]
    variables = [option.env for option in OPTIONS if option.env is not None]

    assert len(names) == len(set(names)) >= 30
    assert len(variables) == len(set(variables))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", env) for env in variables)
    assert {option.section for option in OPTIONS} <= set(reference.SECTIONS)
    assert all(option.doc.endswith(".") for option in reference.documented_options())


def test_a_keyword_that_is_no_option_is_a_type_error_with_a_hint() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'intervall'; did you mean 'interval'"):
        resolve_settings(intervall=5, environ={})
    with pytest.raises(TypeError, match="'colour'"):
        prometheus_rw_bridge.enable_remote_write(URL, colour="red", environ={})


# --------------------------------------------------------------------------- code-only and new options


def test_an_http_client_is_taken_per_endpoint_or_shared() -> None:
    shared, own = httpx.Client(), httpx.Client()
    try:
        settings = resolve_settings(
            url=URL,
            endpoints=[{"url": "http://other/write", "http_client": own}],
            http_client=shared,
            environ={},
        )
        assert [e.http_client for e in settings.endpoints] == [shared, own]
        assert "http_client=Client" in repr(settings.endpoints[0])
    finally:
        shared.close()
        own.close()


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        pytest.param(httpx.AsyncClient, "not an httpx.AsyncClient", id="async-client"),
        pytest.param(lambda: "http://proxy", "expected an httpx.Client", id="a-string"),
    ],
)
def test_what_is_no_http_client_is_refused(client: Any, allowed: str) -> None:
    with pytest.raises(ConfigurationError, match=f"http_client=.* is not valid: .*{allowed}"):
        resolve_settings(url=URL, http_client=client(), environ={})


def test_relabel_rules_compile_per_endpoint_and_errors_name_the_rule(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps([{"regex": "pod", "action": "labeldrop"}]))
    environ = {
        ENV_PREFIX + "ENDPOINTS": "a,b",
        ENV_PREFIX + "A_URL": URL,
        ENV_PREFIX + "A_RELABEL_CONFIG_FILE": str(rules_file),
        ENV_PREFIX + "B_URL": "http://b/write",
    }
    by_name = {e.name: e for e in resolve_settings(environ=environ).endpoints}
    assert by_name["a"].write_relabel_configs is not None
    assert [rule.action for rule in by_name["a"].write_relabel_configs] == ["labeldrop"]
    assert by_name["b"].write_relabel_configs is None

    with pytest.raises(ConfigurationError, match=r"write_relabel_configs\[1\]\.action='dorp'"):
        resolve_settings(url=URL, write_relabel_configs=[{"action": "drop"}, {"action": "dorp"}], environ={})
    rules_file.write_text(json.dumps([{"action": "keep"}, {"action": "dorp"}]))
    with pytest.raises(
        ConfigurationError, match=r"A_RELABEL_CONFIG_FILE \(write_relabel_configs\)='.*rules\.json'"
    ):
        resolve_settings(environ=environ)


# --------------------------------------------------------------------------- typed options


def test_the_typed_options_are_the_tables() -> None:
    keys = _options.RemoteWriteOptions.__optional_keys__

    assert keys == {option.name for option in OPTIONS} - {"url"} | {"environ"}
    assert _options.UrlOptions.__optional_keys__ == keys | {"url"}
    assert _options.AdapterOptions.__optional_keys__ == keys | {"url", "registry"}
    assert _options.AdapterOptions.__required_keys__ == frozenset()
    for option in OPTIONS:
        if option.name != "url":
            annotation = _options.RemoteWriteOptions.__annotations__[option.name]
            assert getattr(annotation, "__forward_arg__", annotation) == f"{option.kind.accepts} | None"


@pytest.mark.parametrize(
    ("function", "typed"),
    [
        pytest.param(
            prometheus_rw_bridge.enable_remote_write, "RemoteWriteOptions", id="enable_remote_write"
        ),
        pytest.param(
            prometheus_rw_bridge.push_to_remote_write, "RemoteWriteOptions", id="push_to_remote_write"
        ),
        pytest.param(flask_adapter.RemoteWrite.__init__, "AdapterOptions", id="flask.RemoteWrite"),
        pytest.param(fastapi_adapter.lifespan, "AdapterOptions", id="fastapi.lifespan"),
        pytest.param(fastapi_adapter.combine_lifespans, "AdapterOptions", id="fastapi.combine_lifespans"),
        pytest.param(fastapi_adapter.install, "AdapterOptions", id="fastapi.install"),
        pytest.param(gunicorn_adapter.configure, "UrlOptions", id="gunicorn.configure"),
    ],
)
def test_public_functions_take_typed_options(function: Any, typed: str) -> None:
    parameters = inspect.signature(function).parameters

    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert parameters["options"].annotation == f"Unpack[{typed}]"
    # No named parameter may shadow an option (mypy refuses the overlap, and it would be a second spelling).
    named = {name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert named & {option.name for option in OPTIONS} <= {"url"}


def test_generated_python_matches_the_table() -> None:
    python = [path for path in reference.stale() if path.suffix == ".py"]

    assert python == [], f"{[str(p) for p in python]} differ from the option table; run: {reference.COMMAND}"
