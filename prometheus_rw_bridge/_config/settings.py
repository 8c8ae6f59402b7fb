"""Settings: one frozen object per bridge and one per endpoint, resolved in one place.

Every option of the table (:mod:`.table`) comes from, in order of precedence: an explicit
argument (anything but ``None``), then its ``PROMETHEUS_REMOTE_WRITE_*`` environment variable
(the ``ENV_*`` constants re-exported here), then its default.  A malformed value raises
:class:`~prometheus_rw_bridge.ConfigurationError` naming the variable or argument, the value
(masked when secret) and what is allowed.  The value formats (*duration*, *boolean*, *pairs*,
*size*, *regex*) are explained in ``docs/configuration.md``.

Several endpoints (each gets its own queue, retries and self-metrics in the bridge):

* ``PROMETHEUS_REMOTE_WRITE_URL`` may hold several URLs separated by commas or whitespace;
  they share every endpoint option (``_HEADERS``, ``_TENANT``, ``_CA_FILE``, ...).
* For endpoints that differ, name them in ``PROMETHEUS_REMOTE_WRITE_ENDPOINTS=primary,backup``
  and give each its options with the upper-cased name after the prefix:
  ``PROMETHEUS_REMOTE_WRITE_PRIMARY_URL``, ``PROMETHEUS_REMOTE_WRITE_BACKUP_TENANT``, ...
  An option an endpoint does not set falls back to the shared variable, except that the
  credentials (the options declared ``credential=True``) are taken as a group: an endpoint
  that sets any of them inherits none of the shared ones.  The name becomes the endpoint's
  ``remote_name`` (lower-cased).
* In code, ``url=[...]`` or ``endpoints=[EndpointSettings(...) or a dict, ...]``; the shared
  keyword arguments fill in what each endpoint leaves unset.

An explicit ``url`` or ``endpoints`` replaces every URL from the environment.  A
``PROMETHEUS_REMOTE_WRITE_*`` variable that is no option is ignored with a warning
(:mod:`.unknown`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._exceptions import ConfigurationError
from .._redact import safe_url
from . import env as _env
from . import table as _table
from .env import *  # noqa: F403 - the ENV_* constants are part of this module's interface
from .env import ENV_ENDPOINTS, ENV_PREFIX, ENV_SIGV4, ENV_URL
from .option import BOOLEAN, Option, parse_endpoint_names
from .pairs import RESERVED_HEADERS
from .parse import fail, parse_text, parse_url, split_list
from .table import *  # noqa: F403 - so are the settings objects and defaults
from .table import DEFAULT_TENANT_HEADER, OPTIONS, EndpointSettings, Settings
from .unknown import warn_unknown_variables

__all__ = ["RESERVED_HEADERS", "resolve_settings"]
__all__ += _table.__all__
__all__ += _env.__all__

# url and endpoints decide which endpoints there are: resolve_settings reads them itself.
_BRIDGE = {option.name: option for option in OPTIONS if not option.endpoint and option.name != "endpoints"}
_ENDPOINT = {option.name: option for option in OPTIONS if option.endpoint and option.name != "url"}
_CREDENTIALS = tuple(option.name for option in OPTIONS if option.credential)
_ARGUMENTS = frozenset(option.name for option in OPTIONS)

# A layer maps option names to (raw value, where, from the environment); ``where`` names the
# source in messages.
_Layer = dict[str, tuple[object, str, bool]]


def _env_where(variable: str, option: str) -> str:
    return f"{variable} ({option})"


def _is_set(raw: object) -> bool:
    """Tell whether an environment value counts: ``None`` and blank strings do not."""
    return raw is not None and not (isinstance(raw, str) and not raw.strip())


def _env_layer(environ: Mapping[str, object], options: Mapping[str, Option], infix: str = "") -> _Layer:
    layer: _Layer = {}
    for name, option in options.items():
        if option.env is None:
            continue
        variable = f"{ENV_PREFIX}{infix}_{option.env}" if infix else f"{ENV_PREFIX}{option.env}"
        raw = environ.get(variable)
        if _is_set(raw) or (raw == "" and option.empty_is_value):
            layer[name] = (raw, _env_where(variable, name), True)
    return layer


def _arg_layer(arguments: Mapping[str, object], options: Mapping[str, Option]) -> _Layer:
    return {
        name: (value, name, False)
        for name, value in arguments.items()
        if name in options and value is not None
    }


def _sets_credentials(layer: _Layer) -> bool:
    """Tell whether a layer sets any credential (a boolean one turned off does not count)."""
    for name in _CREDENTIALS:
        if name not in layer:
            continue
        raw, where, _from_env = layer[name]
        if _ENDPOINT[name].kind is BOOLEAN:
            try:
                if not BOOLEAN.parse(raw, where):
                    continue
            except ConfigurationError:
                pass  # set, if badly: parsing it again reports it
        return True
    return False


def _resolve(layers: Sequence[_Layer], options: Mapping[str, Option]) -> dict[str, Any]:
    """Parse each option from the first layer that has it; credentials come as a group.

    The credentials come from the first layer that sets any; a layer before it can only turn a
    boolean credential off (``sigv4=False``), and that still applies: an explicit argument wins.
    """
    setting = next((i for i, layer in enumerate(layers) if _sets_credentials(layer)), len(layers) - 1)
    values: dict[str, Any] = {}
    for name, option in options.items():
        candidates = layers[: setting + 1] if option.credential else layers
        for layer in candidates:
            if name in layer:
                raw, where, from_env = layer[name]
                values[name] = option.parse(raw, where, from_env=from_env)
                break
    return values


# --------------------------------------------------------------------------- one endpoint

_AMP_HOST_RE = re.compile(r"aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def _endpoint(
    url_raw: object, url_where: str, name: str, values: dict[str, Any], wheres: _Wheres
) -> EndpointSettings:
    url = parse_url(url_raw, url_where)
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if any(values.get(option) not in (None, False) for option in _CREDENTIALS):
            raise ConfigurationError(
                f"{url_where}={safe_url(url)!r} is not valid: credentials in the URL and in other options "
                f"({', '.join(_CREDENTIALS)}) cannot be combined"
            )
        from_url = f"credentials in {url_where}"
        wheres.overrides.update(username=from_url, password=from_url)
        values["username"] = urllib.parse.unquote(user)
        if has_password:
            values["password"] = urllib.parse.unquote(password)
        url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    _check_endpoint(values, wheres)
    if values.get("sigv4") and not values.get("sigv4_region"):
        match = _AMP_HOST_RE.search(parts.hostname or "")
        if match:
            values["sigv4_region"] = match.group(1)
    return EndpointSettings(url=url, name=name, **values)


class _Wheres:
    """Name each option of one endpoint as its winning source does, for cross-field messages."""

    def __init__(self, layers: Sequence[_Layer]) -> None:
        self._layers = layers
        self.overrides: dict[str, str] = {}

    def __call__(self, option: str) -> str:
        if option in self.overrides:
            return self.overrides[option]
        for layer in self._layers:
            if option in layer:
                return layer[option][1]
        return option


_OAUTH2 = (
    "oauth2_client_id",
    "oauth2_client_secret",
    "oauth2_client_secret_file",
    "oauth2_token_url",
    "oauth2_scopes",
    "oauth2_endpoint_params",
)


def _check_oauth2_and_auth(
    given: Callable[[str], bool],
    where: _Wheres,
    conflict: Callable[[str, str, str], ConfigurationError],
    other: str | None,
) -> str | None:
    """Check the OAuth2 options and ``auth=`` against each other and ``other`` auth; return an OAuth2 one."""
    oauth2 = next((option for option in _OAUTH2 if given(option)), None)
    if oauth2 and other:
        raise conflict(other, oauth2, "OAuth2 fetches its own token: choose one way to authenticate")
    if given("auth") and (oauth2 or other):
        raise conflict("auth", oauth2 or other or "", "the given httpx.Auth authenticates the request itself")
    if oauth2:
        for needed in ("oauth2_client_id", "oauth2_token_url"):
            if not given(needed):
                raise ConfigurationError(
                    f"{where(oauth2)} needs {needed}: the client-credentials grant needs a client ID "
                    "and the token endpoint's URL"
                )
    return oauth2


# What a given http_client brings itself: the options that would configure the library's own client.
_CLIENT_OPTIONS = ("ca_file", "cert_file", "key_file", "insecure_skip_verify", "proxy")


def _check_endpoint(values: Mapping[str, Any], where: _Wheres) -> None:
    def conflict(first: str, second: str, why: str) -> ConfigurationError:
        return ConfigurationError(f"{where(first)} and {where(second)} cannot both be set: {why}")

    def given(option: str) -> bool:
        return values.get(option) not in (None, False)

    pairs = [
        ("password", "password_file", "give the password once"),
        ("bearer_token", "bearer_token_file", "give the token once"),
        ("oauth2_client_secret", "oauth2_client_secret_file", "give the secret once"),
    ]
    for first, second, why in pairs:
        if given(first) and given(second):
            raise conflict(first, second, why)
    basic = next((o for o in ("password", "password_file", "username") if given(o)), None)
    bearer = next((o for o in ("bearer_token", "bearer_token_file") if given(o)), None)
    if basic and bearer:
        raise conflict(basic, bearer, "choose basic auth or a bearer token")
    if given("sigv4") and (basic or bearer):
        raise conflict("sigv4", basic or bearer or "", "SigV4 signs the request itself")
    if (given("password") or given("password_file")) and not given("username"):
        raise ConfigurationError(
            f"{where('password' if given('password') else 'password_file')} needs a username"
        )
    for sigv4_option in ("sigv4_region", "sigv4_role_arn", "sigv4_service"):
        if given(sigv4_option) and not given("sigv4"):
            raise ConfigurationError(
                f"{where(sigv4_option)} needs sigv4 turned on (sigv4=True or {ENV_SIGV4}=true)"
            )
    oauth2 = _check_oauth2_and_auth(
        given, where, conflict, basic or bearer or ("sigv4" if given("sigv4") else None)
    )
    if given("key_file") and not given("cert_file"):
        raise ConfigurationError(f"{where('key_file')} needs a cert_file (the client certificate)")
    headers = {name.lower() for name in values.get("headers", {})}
    sets_authorization = basic or bearer or ("sigv4" if given("sigv4") else None) or oauth2
    if "authorization" in headers and sets_authorization:
        raise conflict("headers", sets_authorization, "an Authorization header and an auth option")
    tenant_header = str(values.get("tenant_header") or DEFAULT_TENANT_HEADER)
    if tenant_header.lower() in headers and given("tenant"):
        raise conflict("headers", "tenant", f"tenant is sent as {tenant_header}")
    mine = next((o for o in _CLIENT_OPTIONS if given(o)), None)
    if given("http_client") and mine:
        raise conflict("http_client", mine, "the given client's TLS and proxy settings are its own")


def _endpoint_layer(item: object, where: str) -> _Layer:
    """Turn one item of ``endpoints=`` (EndpointSettings, mapping, or URL) into a layer."""
    if isinstance(item, str):
        return {"url": (item, where, False)}
    if isinstance(item, EndpointSettings):
        fields: dict[str, object] = {"url": item.url, "name": item.name}
        for name, option in _ENDPOINT.items():
            if getattr(item, name) != option.default:
                fields[name] = getattr(item, name)
    elif isinstance(item, Mapping):
        fields = dict(item)
    else:
        raise fail(where, item, "expected a URL, an EndpointSettings or a mapping of its fields")
    unknown = set(fields) - set(_ENDPOINT) - {"url", "name"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown endpoint option(s) {', '.join(sorted(unknown))}")
    if "url" not in fields:
        raise ConfigurationError(f"{where}: an endpoint needs a url")
    return {name: (value, f"{where}.{name}", False) for name, value in fields.items() if value is not None}


def _unique_names(endpoints: list[EndpointSettings]) -> tuple[EndpointSettings, ...]:
    """Give every endpoint a distinct name: its own, or host[:port] of its URL."""
    seen: set[str] = set()
    result = []
    for endpoint in endpoints:
        base = endpoint.name or urllib.parse.urlsplit(endpoint.url).netloc
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name)
        result.append(dataclasses.replace(endpoint, name=name))
    return tuple(result)


# --------------------------------------------------------------------------- which endpoints

# One endpoint to build: (url raw value, url where, name, layers most specific first).
_Planned = tuple[object, str, str, list[_Layer]]


def _sequence(value: object, where: str, allowed: str) -> list[object]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise fail(where, value, allowed)
    return list(value)


def _planned_in_code(url: object, endpoints: object, shared: list[_Layer]) -> list[_Planned]:
    """Plan the endpoints ``url=`` and ``endpoints=`` give; they replace the environment's URLs."""
    planned: list[_Planned] = []
    if isinstance(url, str):
        planned.append((url, "url", "", shared))
    elif url is not None:
        for index, one_url in enumerate(_sequence(url, "url", "expected a URL or a list of URLs")):
            planned.append((one_url, f"url[{index}]", "", shared))
    items = [] if endpoints is None else _sequence(endpoints, "endpoints", "expected a list of endpoints")
    for index, item in enumerate(items):
        layer = _endpoint_layer(item, f"endpoints[{index}]")
        url_raw, url_where, _ = layer.pop("url")
        name_raw, name_where, _ = layer.pop("name", ("", "name", False))
        planned.append((url_raw, url_where, parse_text(name_raw, name_where), [layer, *shared]))
    return planned


def _planned_in_environment(
    environ: Mapping[str, object], shared_args: _Layer, shared_env: _Layer
) -> list[_Planned]:
    """Plan the endpoints of ``PROMETHEUS_REMOTE_WRITE_URL`` and of ``..._ENDPOINTS``."""
    planned: list[_Planned] = [
        (raw, _env_where(ENV_URL, "url"), "", [shared_args, shared_env])
        for raw in split_list(environ.get(ENV_URL))
    ]
    if not split_list(environ.get(ENV_ENDPOINTS)):
        return planned
    for name in parse_endpoint_names(environ[ENV_ENDPOINTS], _env_where(ENV_ENDPOINTS, "endpoints")):
        variable = f"{ENV_PREFIX}{name.upper()}_URL"
        if not _is_set(environ.get(variable)):
            raise ConfigurationError(
                f"{variable} is not set: endpoint {name!r} of {ENV_ENDPOINTS} needs a URL"
            )
        own = _env_layer(environ, _ENDPOINT, name.upper())
        planned.append(
            (environ[variable], _env_where(variable, "url"), name.lower(), [shared_args, own, shared_env])
        )
    return planned


def _unexpected(names: Sequence[str]) -> TypeError:
    match = difflib.get_close_matches(names[0], sorted(_ARGUMENTS), n=1)
    hint = f"; did you mean {match[0]!r}?" if match else ""
    return TypeError(f"unexpected keyword argument {names[0]!r}{hint} (the options: docs/configuration.md)")


def resolve_settings(*, environ: Mapping[str, object] | None = None, **options: object) -> Settings:
    """Resolve settings from explicit arguments, then the environment, then defaults.

    Args:
        environ: the environment to read; ``os.environ`` by default.  Values other than
            strings are taken as they are (``app.config`` may hold ``5`` or a list of URLs).
        **options: any option of the table (``docs/configuration.md``); one left ``None`` is
            taken from its ``PROMETHEUS_REMOTE_WRITE_*`` variable, else from its default.  The
            per-endpoint options apply to every endpoint that does not set its own.

    Returns:
        The validated, frozen :class:`Settings`; with no URL anywhere, its ``endpoints`` is empty.

    Raises:
        ConfigurationError: a value is malformed or options contradict each other.
        TypeError: an argument is no option.
    """
    unknown = sorted(set(options) - _ARGUMENTS)
    if unknown:
        raise _unexpected(unknown)
    env: Mapping[str, object] = os.environ if environ is None else environ
    warn_unknown_variables(env)
    bridge = _resolve([_arg_layer(options, _BRIDGE), _env_layer(env, _BRIDGE)], _BRIDGE)
    shared_args = _arg_layer(options, _ENDPOINT)
    shared_env = _env_layer(env, _ENDPOINT)
    # Malformed shared values are errors even when no endpoint ends up using them.
    _resolve([shared_args], _ENDPOINT)
    _resolve([shared_env], _ENDPOINT)
    url, endpoints = options.get("url"), options.get("endpoints")
    if url is not None or endpoints is not None:
        planned = _planned_in_code(url, endpoints, [shared_args, shared_env])
    else:
        planned = _planned_in_environment(env, shared_args, shared_env)
    resolved = [
        _endpoint(url_raw, url_where, name, _resolve(layers, _ENDPOINT), _Wheres(layers))
        for url_raw, url_where, name, layers in planned
    ]
    return Settings(endpoints=_unique_names(resolved), **bridge)
