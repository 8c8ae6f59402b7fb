"""Settings resolution: precedence, formats, validation messages, endpoints, masking."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

from prometheus_rw_bridge import ConfigurationError
from prometheus_rw_bridge._config import env as env_module
from prometheus_rw_bridge._config import relabel_file, unknown
from prometheus_rw_bridge._config import settings as config
from prometheus_rw_bridge._config.settings import (
    OPTIONS,
    EndpointSettings,
    MetricFilter,
    Settings,
    resolve_settings,
)

URL = "https://receiver.example:9090/api/v1/write"
SECRET = "hunter2-s3cr3t"


def env(**variables: str) -> dict[str, str]:
    """Build an environment from short names: ``env(URL=...)`` -> PROMETHEUS_REMOTE_WRITE_URL."""
    return {config.ENV_PREFIX + name: value for name, value in variables.items()}


def one_endpoint(settings: Settings) -> EndpointSettings:
    assert len(settings.endpoints) == 1
    return settings.endpoints[0]


# --------------------------------------------------------------------------- constants


def test_every_env_constant_is_prefixed_and_documented() -> None:
    source = Path(env_module.__file__).read_text()
    names = [name for name in config.__all__ if name.startswith("ENV_")]
    assert len(names) >= 30
    for name in names:
        value = getattr(config, name)
        assert value.startswith("PROMETHEUS_REMOTE_WRITE_")
        # an attribute docstring follows the assignment
        assert re.search(rf'^{name} = "{value}"\n"""', source, re.M), name


def test_env_constants_are_the_option_tables_variables() -> None:
    constants = {getattr(config, name) for name in config.__all__ if name.startswith("ENV_")}

    assert constants == {config.ENV_PREFIX} | {o.variable for o in OPTIONS if o.variable is not None}
    assert config.ENV_RELABEL_CONFIG_FILE == relabel_file.ENV_RELABEL_CONFIG_FILE


# --------------------------------------------------------------------------- defaults and precedence


def test_defaults_with_an_empty_environment() -> None:
    settings = resolve_settings(environ={})
    assert settings == Settings()
    assert settings.endpoints == ()
    assert not settings.active
    assert settings.interval == config.DEFAULT_INTERVAL
    assert settings.protocol == "1.0"
    assert settings.stale_on_close and settings.self_metrics and settings.enabled
    assert settings.metric_filter is None


def test_no_url_is_not_an_error_even_with_other_options() -> None:
    settings = resolve_settings(environ=env(INTERVAL="5", TENANT="t"))
    assert settings.endpoints == () and settings.interval == 5.0


def test_defaults_of_an_endpoint() -> None:
    endpoint = one_endpoint(resolve_settings(url=URL, environ={}))
    assert endpoint == EndpointSettings(url=URL, name="receiver.example:9090")
    assert endpoint.timeout == config.DEFAULT_TIMEOUT
    assert endpoint.request_headers == {}


@pytest.mark.parametrize(
    ("option", "variable", "raw", "expected"),
    [
        pytest.param("enabled", "ENABLED", "no", False, id="enabled"),
        pytest.param("interval", "INTERVAL", "30s", 30.0, id="interval"),
        pytest.param("job", "JOB", "batch", "batch", id="job"),
        pytest.param("job", "JOB", "", "", id="job-empty-means-none"),
        pytest.param("instance", "INSTANCE", "pod-1", "pod-1", id="instance"),
        pytest.param(
            "external_labels",
            "EXTERNAL_LABELS",
            "env=prod, region=eu",
            {"env": "prod", "region": "eu"},
            id="labels",
        ),
        pytest.param("debug", "DEBUG", "TRUE", True, id="debug"),
        pytest.param("protocol", "PROTOCOL", "2.0", "2.0", id="protocol"),
        pytest.param("max_samples_per_send", "MAX_SAMPLES_PER_SEND", "500", 500, id="max-samples"),
        pytest.param("queue_capacity", "QUEUE_CAPACITY", "10", 10, id="queue-capacity"),
        pytest.param("queue_max_bytes", "QUEUE_MAX_BYTES", "8MiB", 8 * 2**20, id="queue-bytes"),
        pytest.param("stale_on_close", "STALE_ON_CLOSE", "0", False, id="stale-on-close"),
        pytest.param("self_metrics", "SELF_METRICS", "false", False, id="self-metrics"),
    ],
)
def test_bridge_option_from_environment_and_argument(
    option: str, variable: str, raw: str, expected: Any
) -> None:
    from_env = resolve_settings(environ=env(**{variable: raw}))
    assert getattr(from_env, option) == expected
    kwargs: dict[str, Any] = {option: raw}
    from_arg = resolve_settings(**kwargs, environ={})
    assert getattr(from_arg, option) == expected


def test_explicit_argument_beats_environment_beats_default() -> None:
    environ = env(URL="http://from-env/write", INTERVAL="20", JOB="env-job", TENANT="env-tenant")
    settings = resolve_settings(interval=5, environ=environ)
    assert settings.interval == 5.0  # argument
    assert settings.job == "env-job"  # environment
    assert settings.protocol == "1.0"  # default
    assert one_endpoint(settings).url == "http://from-env/write"
    assert one_endpoint(settings).tenant == "env-tenant"
    overridden = resolve_settings(url="http://explicit/write", tenant="arg-tenant", environ=environ)
    assert one_endpoint(overridden).url == "http://explicit/write"
    assert one_endpoint(overridden).tenant == "arg-tenant"


def test_none_argument_means_not_given() -> None:
    settings = resolve_settings(interval=None, job=None, environ=env(INTERVAL="7", JOB="j"))
    assert (settings.interval, settings.job) == (7.0, "j")


def test_false_argument_beats_true_environment() -> None:
    settings = resolve_settings(enabled=False, environ=env(ENABLED="true", URL=URL))
    assert not settings.enabled and not settings.active


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_URL, URL)
    monkeypatch.setenv(config.ENV_INTERVAL, "2m")
    settings = resolve_settings()
    assert settings.urls == (URL,) and settings.interval == 120.0


def test_empty_variable_counts_as_unset() -> None:
    settings = resolve_settings(environ=env(URL=" ", INTERVAL="", TENANT=""))
    assert settings == Settings()


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param("15", 15.0, id="seconds"),
        pytest.param("0.5", 0.5, id="fraction"),
        pytest.param("15s", 15.0, id="s"),
        pytest.param("500ms", 0.5, id="ms"),
        pytest.param("1m30s", 90.0, id="m-s"),
        pytest.param("1h", 3600.0, id="h"),
        pytest.param(" 2M ", 120.0, id="case-and-space"),
    ],
)
def test_duration_formats(raw: str, seconds: float) -> None:
    assert resolve_settings(environ=env(INTERVAL=raw)).interval == seconds


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        pytest.param("1024", 1024, id="bytes"),
        pytest.param("500KB", 500_000, id="kb"),
        pytest.param("64MiB", 64 * 2**20, id="mib"),
        pytest.param("1 GiB", 2**30, id="gib-space"),
    ],
)
def test_size_formats(raw: str, size: int) -> None:
    assert resolve_settings(environ=env(QUEUE_MAX_BYTES=raw)).queue_max_bytes == size


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a=1,b=2", {"a": "1", "b": "2"}, id="plain"),
        pytest.param(" a = 1 , b=2 ,", {"a": "1", "b": "2"}, id="spaces-and-trailing-comma"),
        pytest.param("a=x=y", {"a": "x=y"}, id="equals-in-value"),
        pytest.param(r"a=x\,y,b=2", {"a": "x,y", "b": "2"}, id="escaped-comma"),
        pytest.param(r"a=back\\slash", {"a": "back\\slash"}, id="escaped-backslash"),
        pytest.param("a=", {"a": ""}, id="empty-value"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_pairs_format(raw: str, expected: dict[str, str]) -> None:
    settings = resolve_settings(environ=env(EXTERNAL_LABELS=raw, URL=URL, HEADERS=raw))
    assert dict(settings.external_labels) == expected
    assert dict(one_endpoint(settings).headers) == expected


def test_metric_filter_matches_whole_names() -> None:
    settings = resolve_settings(environ=env(METRIC_KEEP="app_.*|python_.*", METRIC_DROP="python_gc_.*"))
    keep = settings.metric_filter
    assert keep is not None
    assert keep("app_requests_total")
    assert keep("python_info")
    assert not keep("python_gc_objects_collected_total")
    assert not keep("process_cpu_seconds_total")
    assert not keep("my_app_requests_total")  # keep must match the whole name


def test_metric_filter_from_list_and_pattern() -> None:
    settings = resolve_settings(
        metric_drop=["python_gc_.*", "process_.*"], metric_keep=re.compile("[a-z_]+"), environ={}
    )
    assert settings.metric_filter == MetricFilter(
        keep=re.compile("[a-z_]+"), drop=re.compile("(?:python_gc_.*)|(?:process_.*)")
    )
    assert not settings.metric_filter("process_open_fds")
    assert settings.metric_filter("app_total")


def test_sigv4_region_from_amp_url() -> None:
    url = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
    endpoint = one_endpoint(resolve_settings(url=url, sigv4=True, environ={}))
    assert endpoint.sigv4 and endpoint.sigv4_region == "eu-west-1"
    explicit = one_endpoint(resolve_settings(url=url, sigv4=True, sigv4_region="us-east-2", environ={}))
    assert explicit.sigv4_region == "us-east-2"


def test_tenant_is_sent_as_x_scope_orgid() -> None:
    endpoint = one_endpoint(resolve_settings(url=URL, tenant="team-a", headers={"X-Extra": "1"}, environ={}))
    assert endpoint.request_headers == {"X-Extra": "1", "X-Scope-OrgID": "team-a"}


def test_tenant_goes_in_tenant_header_and_sample_age_limit_0_turns_it_off() -> None:
    environ = {
        "PROMETHEUS_REMOTE_WRITE_TENANT_HEADER": "THANOS-TENANT",
        "PROMETHEUS_REMOTE_WRITE_SAMPLE_AGE_LIMIT": "0",
    }
    endpoint = one_endpoint(resolve_settings(url=URL, tenant="team-a", environ=environ))
    assert endpoint.request_headers == {"THANOS-TENANT": "team-a"}
    assert endpoint.sample_age_limit == 0.0
    assert one_endpoint(resolve_settings(url=URL, environ={})).sample_age_limit == 1800.0


def test_files_are_checked_and_kept_as_paths(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(SECRET + "\n")
    endpoint = one_endpoint(resolve_settings(url=URL, bearer_token_file=token, environ={}))
    assert endpoint.bearer_token_file == str(token)


# --------------------------------------------------------------------------- URL credentials


def test_credentials_in_url_become_basic_auth() -> None:
    endpoint = one_endpoint(resolve_settings(url="https://alice:p%40ss@host/write", environ={}))
    assert (endpoint.url, endpoint.username, endpoint.password) == ("https://host/write", "alice", "p@ss")
    assert "p@ss" not in repr(endpoint) and "p%40ss" not in repr(endpoint)


def test_credentials_in_url_conflict_with_other_auth() -> None:
    with pytest.raises(ConfigurationError, match="credentials in the URL") as info:
        resolve_settings(url=f"https://alice:{SECRET}@host/write", bearer_token="t0ken", environ={})
    assert SECRET not in str(info.value) and "t0ken" not in str(info.value)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("variables", "names", "value", "allowed"),
    [
        pytest.param(
            {"INTERVAL": "soon"},
            "PROMETHEUS_REMOTE_WRITE_INTERVAL (interval)",
            "'soon'",
            "duration",
            id="interval-word",
        ),
        pytest.param(
            {"INTERVAL": "0"},
            "PROMETHEUS_REMOTE_WRITE_INTERVAL (interval)",
            "'0'",
            "greater than zero",
            id="interval-zero",
        ),
        pytest.param(
            {"INTERVAL": "-5"},
            "PROMETHEUS_REMOTE_WRITE_INTERVAL (interval)",
            "'-5'",
            "greater than zero",
            id="interval-negative",
        ),
        pytest.param(
            {"INTERVAL": "nan"},
            "PROMETHEUS_REMOTE_WRITE_INTERVAL (interval)",
            "'nan'",
            "duration",
            id="interval-nan",
        ),
        pytest.param(
            {"TIMEOUT": "5x"}, "PROMETHEUS_REMOTE_WRITE_TIMEOUT (timeout)", "'5x'", "duration", id="timeout"
        ),
        pytest.param(
            {"URL": "ftp://host/write"},
            "PROMETHEUS_REMOTE_WRITE_URL (url)",
            "'ftp://host/write'",
            "http or https",
            id="url-scheme",
        ),
        pytest.param(
            {"URL": "receiver:9090/write"},
            "PROMETHEUS_REMOTE_WRITE_URL (url)",
            "'receiver:9090/write'",
            "http or https",
            id="url-no-scheme",
        ),
        pytest.param(
            {"URL": "http://host:port/write"},
            "PROMETHEUS_REMOTE_WRITE_URL (url)",
            "'http://host:port/write'",
            "absolute URL",
            id="url-bad-port",
        ),
        pytest.param(
            {"ENABLED": "maybe"},
            "PROMETHEUS_REMOTE_WRITE_ENABLED (enabled)",
            "'maybe'",
            "true/false, 1/0, yes/no",
            id="bool",
        ),
        pytest.param(
            {"PROTOCOL": "3"},
            "PROMETHEUS_REMOTE_WRITE_PROTOCOL (protocol)",
            "'3'",
            "'1.0', '2.0', 'auto'",
            id="protocol",
        ),
        pytest.param(
            {"MAX_SAMPLES_PER_SEND": "0"},
            "PROMETHEUS_REMOTE_WRITE_MAX_SAMPLES_PER_SEND (max_samples_per_send)",
            "'0'",
            "greater than zero",
            id="max-samples",
        ),
        pytest.param(
            {"QUEUE_MAX_BYTES": "lots"},
            "PROMETHEUS_REMOTE_WRITE_QUEUE_MAX_BYTES (queue_max_bytes)",
            "'lots'",
            "64MiB",
            id="size",
        ),
        pytest.param(
            {"METRIC_DROP": "python_gc_("},
            "PROMETHEUS_REMOTE_WRITE_METRIC_DROP (metric_drop)",
            "'python_gc_('",
            "regular expression",
            id="regex",
        ),
        pytest.param(
            {"EXTERNAL_LABELS": "bad-name=1"},
            "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS (external_labels)",
            "'bad-name'",
            "[a-zA-Z_]",
            id="label-name",
        ),
        pytest.param(
            {"EXTERNAL_LABELS": "__meta=1"},
            "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS (external_labels)",
            "'__meta'",
            "'__'",
            id="label-reserved",
        ),
        pytest.param(
            {"EXTERNAL_LABELS": "job=x"},
            "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS (external_labels)",
            "'job'",
            "job option",
            id="label-job",
        ),
        pytest.param(
            {"EXTERNAL_LABELS": "novalue"},
            "PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS (external_labels)",
            "'novalue'",
            "name=value",
            id="label-no-equals",
        ),
        pytest.param(
            {"URL": URL, "PROXY": "ftp://proxy"},
            "PROMETHEUS_REMOTE_WRITE_PROXY (proxy)",
            "'ftp://proxy'",
            "socks5",
            id="proxy",
        ),
        pytest.param(
            {"URL": URL, "CA_FILE": "/nonexistent/ca.pem"},
            "PROMETHEUS_REMOTE_WRITE_CA_FILE (ca_file)",
            "'/nonexistent/ca.pem'",
            "readable file",
            id="ca-file",
        ),
        pytest.param(
            {"URL": URL, "BEARER_TOKEN_FILE": "/nonexistent/token"},
            "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN_FILE (bearer_token_file)",
            "'/nonexistent/token'",
            "readable file",
            id="token-file",
        ),
        pytest.param(
            {"URL": URL, "INSECURE_SKIP_VERIFY": "sure"},
            "PROMETHEUS_REMOTE_WRITE_INSECURE_SKIP_VERIFY (insecure_skip_verify)",
            "'sure'",
            "true/false",
            id="insecure",
        ),
        pytest.param(
            {"ENDPOINTS": "a-b"},
            "PROMETHEUS_REMOTE_WRITE_ENDPOINTS (endpoints)",
            "'a-b'",
            "[A-Za-z]",
            id="endpoint-name",
        ),
        pytest.param(
            {"ENDPOINTS": "primary"},
            "PROMETHEUS_REMOTE_WRITE_PRIMARY_URL",
            "is not set",
            "needs a URL",
            id="endpoint-without-url",
        ),
    ],
)
def test_malformed_environment_names_variable_option_value_and_allowed(
    variables: dict[str, str], names: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=env(**variables))
    message = str(info.value)
    assert names in message
    assert value in message
    assert allowed in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"interval": "soon"}, "interval='soon' is not valid", id="interval"),
        pytest.param({"interval": -1}, "interval=-1 is not valid", id="negative"),
        pytest.param({"interval": True}, "interval=True is not valid", id="bool-is-not-a-number"),
        pytest.param({"url": "ftp://x/y"}, "url='ftp://x/y' is not valid", id="url"),
        pytest.param(
            {"url": ["http://a/w", "gopher://b"]}, "url[1]='gopher://b' is not valid", id="url-list"
        ),
        pytest.param({"debug": "perhaps"}, "debug='perhaps' is not valid", id="debug"),
        pytest.param({"external_labels": {"a b": "x"}}, "external_labels: label name 'a b'", id="labels"),
        pytest.param(
            {"endpoints": [{"url": URL, "colour": "red"}]},
            "endpoints[0]: unknown endpoint option(s) colour",
            id="unknown",
        ),
        pytest.param({"endpoints": [{"tenant": "x"}]}, "endpoints[0]: an endpoint needs a url", id="no-url"),
        pytest.param(
            {"endpoints": [{"url": URL, "timeout": "x"}]}, "endpoints[0].timeout='x'", id="endpoint-field"
        ),
    ],
)
def test_malformed_argument_names_the_argument(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(**kwargs, environ={})
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        pytest.param(
            {"username": "u", "password": SECRET, "bearer_token": "tok3n"},
            ["password", "bearer_token", "basic auth or a bearer token"],
            id="basic-and-bearer",
        ),
        pytest.param(
            {"password": SECRET, "password_file": "PW"}, ["password and password_file"], id="password-twice"
        ),
        pytest.param(
            {"bearer_token": SECRET, "bearer_token_file": "TOKEN"},
            ["bearer_token and bearer_token_file"],
            id="token-twice",
        ),
        pytest.param({"password": SECRET}, ["password needs a username"], id="password-without-user"),
        pytest.param(
            {"sigv4": True, "bearer_token": SECRET}, ["sigv4 and bearer_token"], id="sigv4-and-bearer"
        ),
        pytest.param({"key_file": "KEY"}, ["key_file needs a cert_file"], id="key-without-cert"),
        pytest.param({"sigv4_region": "eu-west-1"}, ["sigv4_region needs sigv4"], id="region-without-sigv4"),
        pytest.param(
            {"tenant": "t", "headers": {"X-Scope-OrgID": "u"}}, ["headers and tenant"], id="tenant-twice"
        ),
        pytest.param(
            {"tenant": "t", "tenant_header": "THANOS-TENANT", "headers": {"thanos-tenant": "u"}},
            ["headers and tenant", "THANOS-TENANT"],
            id="tenant-twice-in-its-own-header",
        ),
        pytest.param(
            {"tenant_header": "Content-Type"}, ["tenant_header", "'Content-Type'", "reserved"], id="reserved"
        ),
        pytest.param({"tenant_header": "X Tenant"}, ["tenant_header", "header name"], id="not-a-token"),
        pytest.param({"sample_age_limit": "-1s"}, ["sample_age_limit", "0 for no limit"], id="negative-age"),
        pytest.param({"max_shards": 0}, ["max_shards"], id="no-shards"),
        pytest.param(
            {"bearer_token": SECRET, "headers": {"authorization": "Basic x"}},
            ["headers and bearer_token"],
            id="authorization-and-token",
        ),
    ],
)
def test_contradicting_options(kwargs: dict[str, Any], fragments: list[str], tmp_path: Path) -> None:
    for name, value in kwargs.items():
        if value in ("PW", "TOKEN", "KEY"):
            path = tmp_path / value
            path.write_text("x")
            kwargs[name] = str(path)
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(url=URL, **kwargs, environ={})
    for fragment in fragments:
        assert fragment in str(info.value)
    assert SECRET not in str(info.value)


def test_contradiction_from_environment_names_both_variables() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=env(URL=URL, USERNAME="u", PASSWORD=SECRET, BEARER_TOKEN="tok3n"))
    message = str(info.value)
    assert "PROMETHEUS_REMOTE_WRITE_PASSWORD (password)" in message
    assert "PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN (bearer_token)" in message
    assert SECRET not in message and "tok3n" not in message


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Content-Type", id="content-type"),
        pytest.param("content-encoding", id="content-encoding-lower"),
        pytest.param("USER-AGENT", id="user-agent-upper"),
        pytest.param("X-Prometheus-Remote-Write-Version", id="version"),
        pytest.param("Content-Length", id="content-length"),
        pytest.param("Host", id="host"),
        pytest.param("Retry-Attempt", id="retry-attempt"),
    ],
)
def test_reserved_headers_are_refused_by_name(header: str) -> None:
    with pytest.raises(ConfigurationError, match=f"header '{header}' is reserved"):
        resolve_settings(url=URL, headers={header: "x"}, environ={})
    with pytest.raises(
        ConfigurationError, match=f"PROMETHEUS_REMOTE_WRITE_HEADERS \\(headers\\): header '{header}'"
    ):
        resolve_settings(environ=env(URL=URL, HEADERS=f"{header}=x"))


def test_bad_header_name_and_value() -> None:
    with pytest.raises(ConfigurationError, match="header name 'Bad Header'"):
        resolve_settings(url=URL, headers={"Bad Header": "x"}, environ={})
    with pytest.raises(ConfigurationError, match="line break"):
        resolve_settings(url=URL, headers={"X-A": "x\r\nInjected: y"}, environ={})
    with pytest.raises(ConfigurationError, match="'X-Api-Key' has a control character") as info:
        resolve_settings(url=URL, headers={"X-Api-Key": f"{SECRET}\x00"}, environ={})
    assert SECRET not in str(info.value)
    assert resolve_settings(url=URL, headers={"X-A": "a\tb"}, environ={}).endpoints[0].headers == {
        "X-A": "a\tb"
    }
    with pytest.raises(ConfigurationError, match="given twice"):
        resolve_settings(environ=env(URL=URL, HEADERS="X-A=1,x-a=2"))


# --------------------------------------------------------------------------- secrets never shown


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"password": SECRET}, id="password-without-username"),
        pytest.param({"bearer_token": SECRET, "username": "u"}, id="token-with-username"),
        pytest.param({"headers": f"Authorization={SECRET},broken"}, id="header-text"),
        pytest.param({"url": f"https://u:{SECRET}@host:bad/write"}, id="url-credentials"),
        pytest.param({"proxy": f"ftp://u:{SECRET}@proxy"}, id="proxy-credentials"),
        pytest.param({"headers": {"X-Api-Key": SECRET, "Host": "h"}}, id="reserved-header-beside-secret"),
        pytest.param({"bearer_token": 12345}, id="bad-token-type"),
    ],
)
def test_errors_never_show_secrets(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("url", URL)
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(**kwargs, environ={})
    assert SECRET not in str(info.value)
    assert "12345" not in str(info.value)


def test_reprs_mask_every_secret() -> None:
    settings = resolve_settings(
        url=f"https://alice:{SECRET}@host/write?api_key={SECRET}&x=1",
        headers={"X-Auth-Token": f"Bearer {SECRET}", "X-Api-Key": SECRET, "X-Plain": "visible"},
        proxy=f"http://bob:{SECRET}@proxy:3128",
        environ={},
    )
    other = EndpointSettings(url=URL, bearer_token=SECRET)
    for text in (repr(settings), str(settings), repr(one_endpoint(settings)), repr(other)):
        assert SECRET not in text
    text = repr(settings)
    assert "'***'" in text and "visible" in text and "alice" in text
    assert "proxy:3128" in text and "x=***" in text  # every query value is masked, names stay


# --------------------------------------------------------------------------- several endpoints


def test_url_list_shares_endpoint_options() -> None:
    settings = resolve_settings(
        environ=env(URL="http://a:9090/write, http://b:9090/write http://a:9090/write", TENANT="t")
    )
    assert settings.urls == ("http://a:9090/write", "http://b:9090/write", "http://a:9090/write")
    assert [e.name for e in settings.endpoints] == ["a:9090", "b:9090", "a:9090-2"]
    assert {e.tenant for e in settings.endpoints} == {"t"}


def test_named_endpoints_from_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("x")
    environ = env(
        ENDPOINTS="primary, backup",
        PRIMARY_URL="https://primary/write",
        PRIMARY_TENANT="team-a",
        BACKUP_URL="https://backup/write",
        BACKUP_BEARER_TOKEN_FILE=str(token),
        URL="https://shared/write",
        TENANT="shared-tenant",
        USERNAME="shared-user",
        PASSWORD=SECRET,
        TIMEOUT="5s",
    )
    settings = resolve_settings(environ=environ)
    by_name = {e.name: e for e in settings.endpoints}
    assert set(by_name) == {"shared", "primary", "backup"}
    primary, backup = by_name["primary"], by_name["backup"]
    assert (primary.url, primary.tenant, primary.timeout) == ("https://primary/write", "team-a", 5.0)
    assert (primary.username, primary.password) == ("shared-user", SECRET)  # inherits the credentials
    assert backup.tenant == "shared-tenant"
    # sets a credential of its own, so inherits none of the shared ones (no basic/bearer conflict)
    assert (backup.bearer_token_file, backup.username, backup.password) == (str(token), None, None)


def test_named_endpoint_errors_name_its_variable() -> None:
    environ = env(ENDPOINTS="main", MAIN_URL=URL, MAIN_INTERVAL="x", MAIN_TIMEOUT="never")
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_REMOTE_WRITE_MAIN_TIMEOUT \(timeout\)='never'"):
        resolve_settings(environ=environ)


def test_explicit_endpoints_inherit_shared_options_and_replace_env_urls() -> None:
    settings = resolve_settings(
        url="http://first/write",
        endpoints=[
            EndpointSettings(url="http://second/write", tenant="b", name="second"),
            {"url": "http://third/write", "timeout": "2s", "headers": "X-A=1"},
            "http://fourth/write",
        ],
        timeout=9,
        environ=env(URL="http://env/write", TENANT="env-tenant"),
    )
    assert settings.urls == (
        "http://first/write",
        "http://second/write",
        "http://third/write",
        "http://fourth/write",
    )
    first, second, third, fourth = settings.endpoints
    assert (first.tenant, first.timeout) == ("env-tenant", 9.0)
    assert (second.name, second.tenant, second.timeout) == ("second", "b", 9.0)
    assert (third.timeout, dict(third.headers)) == (2.0, {"X-A": "1"})
    assert fourth.name == "fourth"


def test_explicit_endpoint_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"endpoints\[0\].headers: header 'Host' is reserved"):
        resolve_settings(endpoints=[EndpointSettings(url=URL, headers={"Host": "x"})], environ={})


def test_settings_are_frozen_and_keyword_only() -> None:
    settings = resolve_settings(url=URL, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.interval = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        EndpointSettings(URL)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        settings.external_labels["x"] = "y"  # type: ignore[index]


def test_environment_mapping_may_hold_typed_values() -> None:
    # as app.config does: lists, numbers, booleans, mappings under the variable names
    settings = resolve_settings(
        environ={
            config.ENV_URL: ["http://a/write", "http://b/write"],
            config.ENV_INTERVAL: 5,
            config.ENV_DEBUG: True,
            config.ENV_EXTERNAL_LABELS: {"env": "prod"},
            config.ENV_HEADERS: {"X-A": "1"},
            config.ENV_JOB: "",
            config.ENV_TENANT: None,
        }
    )
    assert settings.urls == ("http://a/write", "http://b/write")
    assert (settings.interval, settings.debug, settings.job) == (5.0, True, "")
    assert dict(settings.external_labels) == {"env": "prod"}
    assert {dict(e.headers)["X-A"] for e in settings.endpoints} == {"1"}
    assert {e.tenant for e in settings.endpoints} == {None}
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_REMOTE_WRITE_INTERVAL \(interval\)=True"):
        resolve_settings(environ={config.ENV_INTERVAL: True})


def test_explicit_credentials_replace_environment_credentials_as_a_group() -> None:
    environ = env(URL=URL, USERNAME="env-user", PASSWORD=SECRET)
    endpoint = one_endpoint(resolve_settings(bearer_token="tok3n", environ=environ))
    assert (endpoint.bearer_token, endpoint.username, endpoint.password) == ("tok3n", None, None)
    # turning sigv4 off sets no credential, so the environment's still apply
    endpoint = one_endpoint(resolve_settings(sigv4=False, environ=environ))
    assert (endpoint.username, endpoint.password, endpoint.sigv4) == ("env-user", SECRET, False)


def test_an_explicit_boolean_credential_turned_off_beats_the_environment() -> None:
    environ = env(URL=URL, SIGV4="true", USERNAME="env-user")

    # sigv4 from the environment conflicts with the environment's basic auth ...
    with pytest.raises(ConfigurationError, match="cannot both be set: SigV4 signs the request itself"):
        resolve_settings(environ=environ)
    # ... and sigv4=False in code turns it off; the rest of the environment's credentials apply.
    endpoint = one_endpoint(resolve_settings(sigv4=False, environ=environ))
    assert (endpoint.sigv4, endpoint.username) == (False, "env-user")


def test_metric_filter_applies_before_sending(fault_receiver: Any) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge
    from prometheus_client.gc_collector import GCCollector

    from prometheus_rw_bridge import enable_remote_write

    registry = CollectorRegistry()
    GCCollector(registry=registry)
    Counter("app_requests", "Requests.", registry=registry).inc()
    Gauge("app_temperature", "Temperature.", registry=registry).set(3)
    bridge = enable_remote_write(
        fault_receiver.url,
        registry=registry,
        interval=3600,
        self_metrics=False,
        environ=env(METRIC_DROP="python_gc_.*|.*_created", METRIC_KEEP="app_.*|python_.*"),
    )
    try:
        assert bridge.flush(10)
    finally:
        bridge.close()
    names = {s.name for r in fault_receiver.requests if r.decoded for s in r.decoded.series}
    assert names == {"app_requests_total", "app_temperature"}


# --------------------------------------------------------------------------- unknown variables


@pytest.fixture
def fresh_warnings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> pytest.LogCaptureFixture:
    """Forget which unknown variables this process already warned about; capture the warnings."""
    monkeypatch.setattr(unknown, "_said_unknown", set())
    caplog.set_level(logging.WARNING, logger=unknown.__name__)
    return caplog


def unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is not an option" in r.getMessage()]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(
            env(URL=URL, TIMOUT="5s"),
            "PROMETHEUS_REMOTE_WRITE_TIMOUT is not an option and is ignored; "
            "did you mean PROMETHEUS_REMOTE_WRITE_TIMEOUT?",
            id="typo",
        ),
        pytest.param(
            env(ENDPOINTS="primary", PRIMARY_URL=URL, PRIMARY_TIMOUT="5s"),
            "did you mean PROMETHEUS_REMOTE_WRITE_PRIMARY_TIMEOUT?",
            id="typo-in-an-endpoint-variable",
        ),
        pytest.param(
            env(ENDPOINTS="primary", PRIMARY_URL=URL, BACKUP_URL=URL),
            "PROMETHEUS_REMOTE_WRITE_BACKUP_URL is not an option and is ignored; if 'backup' is an "
            "endpoint, list it in PROMETHEUS_REMOTE_WRITE_ENDPOINTS (it lists primary)",
            id="endpoint-not-listed",
        ),
        pytest.param(
            env(URL=URL, BEARER_TOKN=SECRET),
            "did you mean PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN?",
            id="secret-typo",
        ),
        pytest.param(
            env(URL=URL, COLOUR="blue"),
            "PROMETHEUS_REMOTE_WRITE_COLOUR is not an option and is ignored; "
            "see the configuration reference for the options",
            id="nothing-like-it",
        ),
    ],
)
def test_an_unknown_variable_is_warned_about_once_naming_the_closest_option(
    fresh_warnings: pytest.LogCaptureFixture, variables: dict[str, str], expected: str
) -> None:
    for _ in range(3):
        resolve_settings(environ=variables)

    (message,) = unknown_warnings(fresh_warnings)
    assert expected in message
    assert SECRET not in fresh_warnings.text  # names only, never values


def test_every_option_variable_is_known(fresh_warnings: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    shared = {option.variable: "" for option in OPTIONS if option.variable is not None}
    per_endpoint = {
        f"{config.ENV_PREFIX}{name}_{option.env}": ""
        for name in ("PRIMARY", "BACKUP")
        for option in OPTIONS
        if option.endpoint and option.env is not None
    }
    assert len(shared) >= 30 and len(per_endpoint) >= 2 * 16
    # Empty values count as unset: only the names are under test here.
    everything = {**shared, **per_endpoint, config.ENV_ENDPOINTS: "primary, backup"}
    with pytest.raises(ConfigurationError, match="PRIMARY_URL is not set"):
        resolve_settings(environ=everything)

    assert unknown_warnings(fresh_warnings) == []


def test_an_endpoint_variable_is_known_only_for_a_listed_endpoint(
    fresh_warnings: pytest.LogCaptureFixture,
) -> None:
    resolve_settings(environ=env(PRIMARY_URL=URL, PRIMARY_TENANT="t"))

    assert len(unknown_warnings(fresh_warnings)) == 2
    assert "(it lists none)" in fresh_warnings.text


def test_flask_app_config_keys_are_checked_too(
    fresh_warnings: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask import Flask

    from prometheus_rw_bridge.flask import RemoteWrite

    for name in [n for n in os.environ if n.startswith(config.ENV_PREFIX)]:
        monkeypatch.delenv(name)
    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_ENABLED"] = False
    app.config["PROMETHEUS_REMOTE_WRITE_INTERVALL"] = 5
    RemoteWrite(app)

    (message,) = unknown_warnings(fresh_warnings)
    assert "PROMETHEUS_REMOTE_WRITE_INTERVALL" in message
    assert "did you mean PROMETHEUS_REMOTE_WRITE_INTERVAL?" in message


def test_flask_reads_app_config_over_a_given_environ() -> None:
    from flask import Flask

    from prometheus_rw_bridge.flask import RemoteWrite

    extension = RemoteWrite(environ=env(ENABLED="false", INTERVAL="soon"))
    with pytest.raises(ConfigurationError, match=r"_INTERVAL \(interval\)='soon'"):
        extension.init_app(Flask(__name__))  # the given environ is read, not os.environ

    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_INTERVAL"] = "7s"
    assert not extension.init_app(app).enabled  # app.config wins over it
