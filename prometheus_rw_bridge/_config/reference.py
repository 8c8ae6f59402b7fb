"""Write what the option table implies: ``ENV_*`` constants, typed options, the reference's tables.

Each goes between two marker lines (``BEGIN generated: <block>`` and ``END generated: <block>``)
of a file in the source tree:

* ``prometheus_rw_bridge/_config/env.py``: one ``ENV_*`` constant per variable, with its docstring;
* ``prometheus_rw_bridge/_options.py``: the keys of the ``RemoteWriteOptions`` ``TypedDict``;
* ``docs/configuration.md``: one table per section of the reference.

Run ``python -m prometheus_rw_bridge._config.reference --write`` after changing the table;
``--check`` (and a test) fails while a file differs from what the table says.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from .env import ENV_PREFIX
from .option import Option, field_docs, is_empty
from .table import OPTIONS, EndpointSettings, Settings

__all__ = ["COMMAND", "SECTIONS", "documented_options", "main", "render", "stale"]

COMMAND = "python -m prometheus_rw_bridge._config.reference --write"
"""The command that regenerates every generated block."""

SECTIONS = ("general", "delivery", "filters", "auth", "tls")
"""The reference's option tables, in the order of its headings."""

_ROOT = Path(__file__).resolve().parents[2]
_WIDTH = 110
_SCOPE_LINK = "[credential](#several-endpoints)"


def documented_options() -> tuple[Option, ...]:
    """Return the table's options with their doc lines, read from the docstrings under the fields.

    Raises:
        ValueError: an option has no docstring.
    """
    docs = {False: field_docs(Settings), True: field_docs(EndpointSettings)}
    result = []
    for option in OPTIONS:
        doc = docs[option.endpoint].get(option.name)
        if not doc:
            raise ValueError(f"option {option.name!r} has no docstring under its field in _config/table.py")
        result.append(dataclasses.replace(option, doc=doc))
    return tuple(result)


def _default(option: Option) -> str:
    if option.default_text is not None:
        return option.default_text
    if is_empty(option.default):
        return "none"
    return f"`{option.kind.text(option.default)}`"


def _value(option: Option) -> str:
    text = option.kind.format
    if option.env_kind is not None and option.env_kind.format != text:
        text = f"{text}; the variable: {option.env_kind.format}"
    return f"{text}, secret" if option.secret else text


def _scope(option: Option, credential: str) -> str:
    if not option.endpoint:
        return "bridge"
    return f"endpoint, {credential}" if option.credential else "endpoint"


def _rst(markdown: str) -> str:
    """Turn a Markdown doc line into docstring text: links to their text, code in double backquotes."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", markdown)
    return re.sub(r"`([^`]+)`", r"``\1``", text).replace("\\", "\\\\")


def _docstring(option: Option, indent: str) -> str:
    parts = [
        _rst(option.doc),
        f"Value: {_rst(_value(option))}.",
        f"Default: {_rst(_default(option))}.",
        f"Scope: {_scope(option, 'credential')}.",
    ]
    lines = textwrap.wrap(
        f'"""{" ".join(parts)}"""',
        width=_WIDTH - len(indent),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(indent + line for line in lines)


def render_env() -> list[str]:
    """The ``ENV_*`` constants, each with its docstring, and ``__all__``."""
    lines: list[str] = []
    names = ["ENV_PREFIX"]
    for option in documented_options():
        if option.env is not None:
            names.append(f"ENV_{option.env}")
            lines += [f'ENV_{option.env} = "{ENV_PREFIX}{option.env}"', _docstring(option, ""), ""]
    lines.append("__all__ = [")
    lines += [f'    "{name}",' for name in sorted(names)]
    lines.append("]")
    return lines


def render_typed_options() -> list[str]:
    """The keys of ``RemoteWriteOptions``: every option but ``url`` (the functions' first parameter)."""
    lines: list[str] = []
    for option in documented_options():
        if option.name != "url":
            lines += [f"    {option.name}: {option.kind.accepts} | None", _docstring(option, "    ")]
    return lines


def render_table(section: str) -> list[str]:
    """The reference's table of one section."""
    lines = [
        "| Argument | Environment variable | Value | Default | Scope | Meaning |",
        "|----------|----------------------|-------|---------|-------|---------|",
    ]
    for option in documented_options():
        if option.section == section:
            variable = f"`{option.variable}`" if option.variable else "—"
            cells = [
                f"`{option.name}`",
                variable,
                _value(option),
                _default(option),
                _scope(option, _SCOPE_LINK),
            ]
            lines.append(f"| {' | '.join(cells)} | {option.doc} |")
    return lines


_Block = tuple[str, str, Callable[[], list[str]]]


def _blocks() -> list[_Block]:
    blocks: list[_Block] = [
        ("prometheus_rw_bridge/_config/env.py", "ENV_* constants", render_env),
        ("prometheus_rw_bridge/_options.py", "RemoteWriteOptions", render_typed_options),
    ]
    for section in SECTIONS:
        blocks.append(
            ("docs/configuration.md", f"options: {section}", functools.partial(render_table, section))
        )
    unknown = {option.section for option in OPTIONS} - set(SECTIONS)
    if unknown:
        raise ValueError(f"options in sections the reference lacks: {sorted(unknown)}; add them to SECTIONS")
    return blocks


def _marker(line: str) -> str:
    """Return a line's text without the comment syntax around it (``#``, ``<!-- -->``)."""
    text = line.strip()
    text = text.removeprefix("#").removeprefix("<!--").removesuffix("-->")
    return text.strip()


def _replace(text: str, block: str, lines: list[str], path: str) -> str:
    """Put ``lines`` between the markers of ``block`` in ``text``."""
    old = text.split("\n")
    begin = [i for i, line in enumerate(old) if _marker(line) == f"BEGIN generated: {block}"]
    end = [i for i, line in enumerate(old) if _marker(line) == f"END generated: {block}"]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise ValueError(
            f"{path}: expected one 'BEGIN generated: {block}' line, then one 'END generated: {block}'"
        )
    return "\n".join([*old[: begin[0] + 1], *lines, *old[end[0] :]])


def render(root: Path = _ROOT) -> dict[Path, str]:
    """Return each generated file's text as the table says it should read."""
    texts: dict[Path, str] = {}
    for relative, block, lines in _blocks():
        path = root / relative
        current = texts.get(path)
        if current is None:
            current = path.read_text(encoding="utf-8")
        texts[path] = _replace(current, block, lines(), relative)
    return texts


def stale(root: Path = _ROOT) -> list[Path]:
    """Return the generated files that differ from what the table says."""
    return [path for path, text in render(root).items() if path.read_text(encoding="utf-8") != text]


def main(argv: Sequence[str] | None = None) -> int:
    """Write (``--write``) or check (``--check``) every generated block; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m prometheus_rw_bridge._config.reference")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if a file differs (the default)")
    mode.add_argument("--write", action="store_true", help="rewrite the files that differ")
    parser.add_argument("--root", type=Path, default=_ROOT, help="the source tree (default: %(default)s)")
    args = parser.parse_args(argv)
    differing = stale(args.root)
    if args.write:
        for path, text in render(args.root).items():
            if path in differing:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path}")
        return 0
    for path in differing:
        print(f"{path} differs from the option table; run: {COMMAND}", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
