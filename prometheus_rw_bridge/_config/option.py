"""How an option is declared: :func:`option`, and the kinds of value an option may take.

The option table is :mod:`.table`: each field of :class:`~.table.Settings` (bridge-wide) and of
:class:`~.table.EndpointSettings` (per endpoint) declared with :func:`option` is one option.
A :class:`Kind` says what a value may be: the parser that turns an argument or a variable's text
into the setting (or raises :class:`~prometheus_rw_bridge.ConfigurationError` naming the
setting, the masked value and what is allowed), what code may pass, the format's name in the
reference, and how a repr shows a value (secrets masked).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import os
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._protocol.relabel import compile_rules
from .._redact import MASK, mask_headers, safe_url
from .env import ENV_PREFIX
from .pairs import parse_header_name, parse_headers, parse_labels, parse_params
from .parse import (
    fail,
    parse_age_limit,
    parse_bool,
    parse_directory,
    parse_duration,
    parse_file,
    parse_names,
    parse_nonempty,
    parse_positive_int,
    parse_protocol,
    parse_proxy,
    parse_regex,
    parse_scopes,
    parse_secret,
    parse_size,
    parse_text,
    parse_url,
    split_list,
)
from .relabel_file import compile_relabel_file

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Any:
        """Stand in for ``typing.dataclass_transform`` (3.11+): it only informs type checkers."""
        return lambda decorated: decorated


__all__ = [
    "Kind",
    "Option",
    "declared_options",
    "field_docs",
    "is_empty",
    "option",
    "settings_class",
    "settings_repr",
]

_T = TypeVar("_T")
_OPTION = "prometheus_rw_bridge.option"  # the key of a field's metadata holding its Option


@dataclasses.dataclass(frozen=True)
class Kind:
    """What the value of an option may be."""

    parse: Callable[[object, str], Any]
    """Turn a raw value (an argument, or a variable's text) and its name in messages into the setting."""
    accepts: str
    """What code may pass, as the typed options (``_options.py``) spell it."""
    format: str
    """The value's format as the reference names it; ``*italic*`` ones are explained there."""
    text: Callable[[Any], str] = str
    """Write a value as a variable would hold it, for the reference's Default column."""
    show: Callable[[Any], str] = repr
    """Show a value in a repr (secrets and URL credentials masked)."""
    secret: bool = False
    """Whether values are secrets: masked in every repr and error."""


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _bytes(value: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def _words(value: bool) -> str:
    return "true" if value else "false"


def _mapping(value: Mapping[str, str]) -> str:
    return repr(dict(value))


def parse_http_client(value: object, where: str) -> Any:
    """Accept an ``httpx.Client`` (anything that builds and sends requests synchronously)."""
    send = getattr(value, "send", None)
    if not callable(getattr(value, "build_request", None)) or not callable(send):
        raise fail(where, value, "expected an httpx.Client")
    if inspect.iscoroutinefunction(send):
        raise fail(
            where, value, "expected an httpx.Client, not an httpx.AsyncClient: the bridge sends from a thread"
        )
    return value


def parse_auth(value: object, where: str) -> Any:
    """Accept an ``httpx.Auth`` (anything with a synchronous auth flow)."""
    if not callable(getattr(value, "sync_auth_flow", None)):
        raise fail(where, value, "expected an httpx.Auth instance")
    return value


def parse_endpoint_names(value: object, where: str) -> list[str]:
    """Parse the names of ``PROMETHEUS_REMOTE_WRITE_ENDPOINTS`` (text, or a list in ``app.config``)."""
    return parse_names(" ".join(map(str, split_list(value))), where)


def parse_relabel_file(value: object, where: str) -> Any:
    """Read and compile the relabel rules in the YAML or JSON file a variable names."""
    path = parse_nonempty(os.fspath(value) if isinstance(value, os.PathLike) else value, where)
    return compile_relabel_file(path, where, "write_relabel_configs")


DURATION = Kind(parse_duration, "float | str | datetime.timedelta", "*duration*", text=_seconds)
AGE_LIMIT = Kind(
    parse_age_limit, "float | str | datetime.timedelta", "*duration*, `0` for none", text=_seconds
)
BOOLEAN = Kind(parse_bool, "bool | str", "*boolean*", text=_words)
COUNT = Kind(parse_positive_int, "int | str", "integer > 0")
SIZE = Kind(parse_size, "int | str", "*size*", text=_bytes)
TEXT = Kind(parse_text, "str", "text")
NAME = Kind(parse_nonempty, "str", "text")
SECRET = Kind(parse_secret, "str", "text", show=lambda _: repr(MASK), secret=True)
FILE = Kind(parse_file, "str | os.PathLike[str]", "file")
DIRECTORY = Kind(parse_directory, "str | os.PathLike[str]", "directory")
HEADER_NAME = Kind(parse_header_name, "str", "header name")
URL = Kind(parse_url, "str", "URL", show=lambda value: repr(safe_url(value)))
PROXY = Kind(parse_proxy, "str", "URL", show=lambda value: repr(safe_url(value)))
LABELS = Kind(parse_labels, "Mapping[str, str] | str", "*pairs*", show=_mapping)
HEADERS = Kind(
    parse_headers, "Mapping[str, str] | str", "*pairs*", show=lambda value: _mapping(mask_headers(value))
)
REGEX = Kind(
    parse_regex, "str | Sequence[str] | re.Pattern[str]", "*regex*", show=lambda value: repr(value.pattern)
)
PROTOCOL = Kind(parse_protocol, "str", "`1.0`, `2.0`, `auto`")
# resolve_settings reads ``endpoints`` itself (it decides which endpoints there are); this
# parser reads the variable's names.
ENDPOINTS = Kind(
    parse_endpoint_names, "Sequence[EndpointSettings | Mapping[str, Any] | str]", "names (in code, a list)"
)
RELABEL_RULES = Kind(compile_rules, "Sequence[Mapping[str, Any]] | RelabelRules", "relabel rules")
RELABEL_FILE = Kind(parse_relabel_file, "str | os.PathLike[str]", "file")
HTTP_CLIENT = Kind(
    parse_http_client, "httpx.Client", "`httpx.Client`", show=lambda value: type(value).__name__
)
AUTH = Kind(parse_auth, "httpx.Auth", "`httpx.Auth`", show=lambda value: type(value).__name__)
SCOPES = Kind(
    parse_scopes, "Sequence[str] | str", "words", text=" ".join, show=lambda value: repr(list(value))
)
PARAMS = Kind(parse_params, "Mapping[str, str] | str", "*pairs*", show=_mapping)


@dataclasses.dataclass(frozen=True)
class Option:
    """One row of the option table."""

    kind: Kind
    """What the value may be."""
    env: str | None = ""
    """The variable's name after ``PROMETHEUS_REMOTE_WRITE_`` (and after ``<NAME>_`` for an
    endpoint's own): by default the option's name upper-cased; ``None`` for an option only code
    can give (an ``httpx.Client``)."""
    env_kind: Kind | None = None
    """What the variable holds, when that differs from what code passes (a file of rules)."""
    credential: bool = False
    """Credentials are taken as a group: an endpoint that sets any inherits none of the shared ones."""
    section: str = "general"
    """The table of the reference the option is listed in."""
    default_text: str | None = None
    """The Default column, when the default value does not say it (``the program's name``)."""
    empty_is_value: bool = False
    """An empty variable is a value (``job=""``: no job label), not unset."""
    name: str = ""
    """The argument's name: the field's."""
    endpoint: bool = False
    """The scope: per endpoint (a field of ``EndpointSettings``) or bridge-wide."""
    default: Any = None
    """The default value."""
    doc: str = ""
    """The field's docstring, one line of Markdown; read from the source by the reference only."""

    @property
    def variable(self) -> str | None:
        """The shared environment variable, if any."""
        return None if self.env is None else ENV_PREFIX + self.env

    @property
    def secret(self) -> bool:
        """Whether values are secrets: masked in every repr and error."""
        return self.kind.secret

    def parse(self, raw: object, where: str, *, from_env: bool) -> Any:
        """Parse ``raw``, given as an argument or, with ``from_env``, in a variable."""
        kind = self.env_kind if from_env and self.env_kind is not None else self.kind
        return kind.parse(raw, where)


def option(
    kind: Kind,
    *,
    default: Any = dataclasses.MISSING,
    factory: Callable[[], Any] | Any = dataclasses.MISSING,
    env: str | None = "",
    env_kind: Kind | None = None,
    credential: bool = False,
    section: str = "general",
    default_text: str | None = None,
    empty_is_value: bool = False,
) -> Any:
    """Declare one option as a field of a settings class; the docstring under the field documents it.

    Args:
        kind: what the value may be.
        default: the default value; with neither ``default`` nor ``factory`` the option is required.
        factory: makes the default value (for mappings).
        env: the variable's name after ``PROMETHEUS_REMOTE_WRITE_``: by default the field's name
            upper-cased; ``None`` for an option only code can give.
        env_kind: what the variable holds, if not what code passes.
        credential: a credential (taken as a group per endpoint).
        section: where the reference lists it: ``general``, ``delivery``, ``filters``, ``auth``, ``tls``.
        default_text: the reference's Default column, if the value does not say it.
        empty_is_value: an empty variable is a value, not unset.
    """
    declared = Option(kind, env, env_kind, credential, section, default_text, empty_is_value)
    return dataclasses.field(default=default, default_factory=factory, metadata={_OPTION: declared})


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(option,))
def settings_class(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a frozen, keyword-only dataclass whose :func:`option` fields are options."""
    return dataclasses.dataclass(frozen=True, kw_only=True, repr=False)(cls)


def declared_options(cls: type[Any], *, endpoint: bool) -> tuple[Option, ...]:
    """Return the options declared in ``cls``, in order, with their names, scope, variables and defaults."""
    result = []
    for field in dataclasses.fields(cls):
        declared = field.metadata.get(_OPTION)
        if declared is None:
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        env = field.name.upper() if declared.env == "" else declared.env
        result.append(
            dataclasses.replace(declared, name=field.name, endpoint=endpoint, default=default, env=env)
        )
    return tuple(result)


def field_docs(cls: type[Any]) -> dict[str, str]:
    """Read the docstring under each field of ``cls`` from its source, as one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for field, following in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[field.target.id] = " ".join(following.value.value.split())
    return docs


def settings_repr(obj: Any) -> str:
    """Build a settings object's repr, each value shown as its kind shows it (secrets masked)."""
    shown = []
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        declared = field.metadata.get(_OPTION)
        shown_value = repr(value) if value is None or declared is None else declared.kind.show(value)
        shown.append(f"{field.name}={shown_value}")
    return f"{type(obj).__name__}({', '.join(shown)})"


def is_empty(value: object) -> bool:
    """Tell whether a default means "none" (``None``, an empty tuple or mapping)."""
    return value is None or value == () or (isinstance(value, Mapping) and not value)
