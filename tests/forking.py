"""Run a check in a forked child: what the child does after ``os.fork()``, as its exit status."""

from __future__ import annotations

import os
from collections.abc import Callable


def fork_child(child: Callable[[], bool]) -> int:
    """Fork; the child runs ``child`` and exits 0 if it returned True; return the child's exit status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if child() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
