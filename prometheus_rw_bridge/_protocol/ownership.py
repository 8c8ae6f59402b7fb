"""Which family sends a series that two families yield: decided by name first, by series only where needed.

Two families can only yield the same series if they send the same ``__name__`` (``a.b`` and
``a_b`` both escape to ``a_b``; a custom collector repeats a standard metric; relabelling
renames).  :class:`Ownership` therefore keeps, per name, the families that send it, and keeps
per-series owners only for names two or more families send.  For the usual registry, where
every name has one family, that is no per-series state at all: a family's series are read
back from its template (``series_of``) at the moment a second family starts sending one of
its names, and forgotten again when that family stops.

Invariant: ``owners`` holds every series of every name that two or more families send, each
mapped to the family that sends it (or took it over); and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

__all__ = ["Ownership", "lost_owner"]

Key = tuple[str, str, int]


class Ownership:
    """Owners of names and of the series of shared names; see the module docstring.

    Args:
        series_of: a template's series identities, in order (one per entry of its ``names``).
        template_of: the template a family key has now (this collection's, else the last one),
            or ``None``.
    """

    __slots__ = ("_keys", "_series_of", "_template_of", "owners")

    def __init__(
        self,
        series_of: Callable[[Any], list[Hashable]],
        template_of: Callable[[Key], Any],
    ) -> None:
        self.owners: dict[Hashable, Key] = {}  # per series, for names two families send
        self._keys: dict[str, set[Key]] = {}  # name -> the families whose templates send it
        self._series_of = series_of
        self._template_of = template_of

    def __bool__(self) -> bool:
        return bool(self._keys or self.owners)

    def others(self, name: str, key: Key) -> bool:
        """Tell whether a family other than ``key`` sends ``name``: if so, its series are owned one by one.

        The first time a second family comes to a name, the series the first one sends under
        it are entered in :attr:`owners`.
        """
        keys = self._keys.get(name)
        if not keys or keys == {key}:
            return False
        if len(keys) == 1 and key not in keys:
            (other,) = keys
            self._enter(other, name)  # the name was one family's until now
        return True

    def claim(self, key: Key, names: Iterable[str]) -> None:
        """Note that family ``key``'s new template sends ``names`` (its admitted series already owned)."""
        for name in names:
            self._keys.setdefault(name, set()).add(key)

    def senders(self, name: str) -> set[Key]:
        """The families whose templates send ``name``."""
        return self._keys.get(name, set())

    def release(self, key: Key, old: Any, new: Any | None) -> None:
        """Family ``key``'s template ``old`` gives way to ``new`` (``None``: the family is gone).

        Forgets ``key`` as the owner of the series ``old`` sent and ``new`` does not, and as a
        sender of the names only ``old`` sent; a name left to one family is that family's alone.
        """
        kept_names = set() if new is None else set(new.names.distinct())
        old_names = old.names.distinct()
        for name in old_names:
            keys = self._keys.get(name)
            if keys is None or key not in keys:
                continue
            if len(keys) > 1:  # shared: its series are owned one by one
                still = set(self._named(new, name)) if name in kept_names else set()
                owners = self.owners
                for series in self._named(old, name):
                    if series not in still and owners.get(series) == key:
                        del owners[series]
            if name not in kept_names:
                keys.discard(key)
                if len(keys) == 1:
                    (last,) = keys
                    self._leave(last, name)
                elif not keys:
                    del self._keys[name]

    def _named(self, tmpl: Any, name: str) -> list[Hashable]:
        if tmpl is None or name not in tmpl.names:
            return []
        return [s for s, n in zip(self._series_of(tmpl), tmpl.names, strict=True) if n == name]

    def _enter(self, key: Key, name: str) -> None:
        owners = self.owners
        for series in self._named(self._template_of(key), name):
            owners.setdefault(series, key)

    def _leave(self, key: Key, name: str) -> None:
        owners = self.owners
        for series in self._named(self._template_of(key), name):
            if owners.get(series) == key:
                del owners[series]


def lost_owner(shadowed: list[Any], owners: dict[Any, Key], current: Mapping[Key, Any]) -> bool:
    """Tell whether a series a family left to another is no longer sent by an earlier family."""
    return any(owners.get(series) not in current for series in shadowed)
