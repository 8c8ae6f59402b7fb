"""What every command of the command line shares: exit codes, errors, output, signals, arguments.

Each command is a module of ``_tools`` (``demo``, ``receive``, ``check``, ``forward``) with a
``HELP`` line, a ``DESCRIPTION``, ``configure(parser)`` adding its arguments and
``run(args, console)`` returning its exit code; ``cli`` puts them together.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from .._redact import safe_url

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Console",
    "UsageError",
    "display",
    "pairs",
    "port",
    "positive_float",
    "stop_on_signals",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad command line or configuration: reported with exit code 2."""


class Console:
    """Line-at-a-time output shared by threads (the receiver prints from its own).

    When standard output goes away (``... | head``), output stops quietly and ``closed`` is
    set, so long-running commands can end.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def say(self, text: str) -> None:
        """Print ``text`` as one or more whole lines on standard output."""
        with self._lock:
            if self.closed.is_set():
                return
            try:
                self._out.write(text if text.endswith("\n") else text + "\n")
                self._out.flush()
            except BrokenPipeError:
                self.closed.set()
                # Point the descriptor at /dev/null so the interpreter's final flush cannot fail.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._out.fileno())
                os.close(devnull)

    def error(self, text: str) -> None:
        """Print ``text`` on standard error, after the program's name."""
        with self._lock:
            self._err.write(f"prometheus-rw-bridge: {text}\n")
            self._err.flush()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Make Ctrl-C and SIGTERM set ``stop``, so a long-running command ends cleanly.

    A second Ctrl-C while shutting down raises ``KeyboardInterrupt`` as usual.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        # Not stop.set() here: the handler runs on the main thread, which may be inside
        # stop.wait() holding the event's (non-reentrant) lock, and would deadlock on it.
        threading.Thread(target=stop.set, name="prometheus-rw-bridge-signal", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def display(url: str) -> str:
    """Return ``url`` safe to print (no credentials), or a file name or ``-`` as it is."""
    return safe_url(url) if "://" in url else url


def positive_float(text: str) -> float:
    """Parse an argument that must be a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def port(text: str) -> int:
    """Parse a port number argument (0 to 65535)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return value


def pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """Parse repeated ``NAME=VALUE`` (or ``NAME: VALUE``) arguments of ``option``."""
    result: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"{option} {value!r}: expected NAME=VALUE")
        result[name.strip()] = rest.strip()
    return result
