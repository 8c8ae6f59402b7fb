"""The misspelt-variable warning: a ``PROMETHEUS_REMOTE_WRITE_*`` variable that is no option.

``..._TIMOUT``, or an endpoint's variable whose name ``_ENDPOINTS`` does not list, is ignored
with a warning naming the closest option, once per process and variable; its value is never
shown.  The valid names are the option table's (:data:`~.table.OPTIONS`).
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Mapping

from .env import ENV_ENDPOINTS, ENV_PREFIX
from .parse import split_list
from .table import OPTIONS

__all__ = ["warn_unknown_variables"]

logger = logging.getLogger(__name__)

_SHARED_SUFFIXES = frozenset(option.env for option in OPTIONS if option.env is not None)
# What may follow an endpoint's name: PROMETHEUS_REMOTE_WRITE_<NAME>_<suffix>.
_ENDPOINT_SUFFIXES = frozenset(option.env for option in OPTIONS if option.env is not None and option.endpoint)

_said_unknown: set[str] = set()
_said_unknown_lock = threading.Lock()


def warn_unknown_variables(environ: Mapping[str, object]) -> None:
    """Warn once per process about each ``PROMETHEUS_REMOTE_WRITE_*`` key that is no option."""
    names = [
        str(n).upper() for n in split_list(environ.get(ENV_ENDPOINTS)) if re.fullmatch(r"[A-Za-z]\w*", str(n))
    ]
    known = set(_SHARED_SUFFIXES)
    known.update(f"{name}_{suffix}" for name in names for suffix in _ENDPOINT_SUFFIXES)
    unknown = sorted(
        key
        for key in environ
        if isinstance(key, str) and key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :] not in known
    )
    for variable in unknown:
        with _said_unknown_lock:
            if variable in _said_unknown:
                continue
            _said_unknown.add(variable)
        logger.warning(
            "prometheus-rw-bridge: %s is not an option and is ignored; %s",
            variable,
            _closest(variable, known, names),
        )


def _closest(variable: str, known: set[str], endpoint_names: list[str]) -> str:
    """Say which option ``variable`` probably means."""
    suffix = variable[len(ENV_PREFIX) :]
    hints = []
    # Suffixes only: the long shared prefix would make every name look alike.
    match = difflib.get_close_matches(suffix, sorted(known), n=1, cutoff=0.6)
    if match:
        hints.append(f"did you mean {ENV_PREFIX}{match[0]}?")
    head, _, tail = suffix.partition("_")
    if tail in _ENDPOINT_SUFFIXES and head not in endpoint_names:
        listed = ", ".join(name.lower() for name in endpoint_names) or "none"
        hints.append(
            f"{'or, ' if match else ''}if {head.lower()!r} is an endpoint, list it in {ENV_ENDPOINTS} "
            f"(it lists {listed})"
        )
    return " ".join(hints) or "see the configuration reference for the options"
