"""Returning freed memory to the operating system when a bridge drops an encoder's whole state.

In ``auto`` mode the first pushes are encoded twice: as 2.0, and as 1.0 in case the receiver
turns out not to speak 2.0.  Once it has answered, one of the two states (tens of megabytes
for a large registry) is dropped.  It was built beside the other, so glibc's allocator, which
returns memory only from the top of a heap, keeps almost all of it: measured on 100,000
samples, the bridge kept 1.6x the registry's memory instead of 0.7x
(``benchmarks/bench_encode.py --sections memory``).  :func:`give_back` asks glibc, once per
dropped state, to return the free pages it holds (``malloc_trim(0)``): it releases only memory
nobody uses, and takes each arena's lock for a moment.  Elsewhere (musl, macOS, Windows) it
does nothing.  The C library is looked up when this module is imported, so no thread of ours
imports anything later (see ``forks``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["give_back"]

logger = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except Exception:  # no ctypes, no C library to open (Windows), or not glibc: nothing to ask
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    result: Callable[[int], int] = trim
    return result


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Ask the C library to return freed memory to the system; tell whether it could be asked."""
    if _TRIM is None:
        return False
    try:
        _TRIM(0)
    except Exception:  # never let this hurt a push
        logger.debug("malloc_trim failed", exc_info=True)
        return False
    return True
