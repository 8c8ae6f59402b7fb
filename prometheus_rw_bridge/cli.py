"""The ``prometheus-rw-bridge`` command (also ``python -m prometheus_rw_bridge``).

Commands:

``demo``
    Run a small sample app that pushes to a built-in receiver and show what arrives.
``receive``
    Run the validating receiver in the foreground, printing series and rule violations.
``check URL``
    Send one probe series to a receiver and explain its answer in plain words.
``forward SOURCE --url URL``
    Push Prometheus text (a file, standard input, or a scraped ``/metrics`` URL) once or
    every N seconds.

Exit codes: 0 success, 1 the push or check failed, 2 a usage or configuration error,
130 interrupted while starting.  A thin adapter over the public API: everything it does can
be done from Python.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._exceptions import ConfigurationError, MissingDependencyError
from ._tools import check, demo, forward, receive
from ._tools.command import EXIT_USAGE, Console, UsageError

__all__ = ["main"]

_COMMANDS = {"demo": demo, "receive": receive, "check": check, "forward": forward}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` by default.

    Returns:
        0 on success, 1 when the push or check failed, 2 on a usage or configuration error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=_log_level(args),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console = Console(sys.stdout, sys.stderr)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args, console)
        return code
    except (UsageError, ConfigurationError, MissingDependencyError) as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130


def _log_level(args: argparse.Namespace) -> int:
    """Return the logging level ``-v`` (INFO) or ``-vv`` (DEBUG) asks for, before or after the command."""
    verbose = int(args.verbose) + int(getattr(args, "verbose_after", 0))
    return logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="prometheus-rw-bridge",
        description="Push prometheus_client metrics over Prometheus remote write: "
        "try it, debug it, check it.",
        epilog="Exit codes: 0 ok, 1 the push or check failed, 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    # Accepted after the command too (prometheus-rw-bridge check URL -v); a subcommand parses
    # into a namespace of its own, so it counts under another name and main() adds them up.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=0, dest="verbose_after", help="log more (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in _COMMANDS.items():
        sub = commands.add_parser(name, parents=[common], help=command.HELP, description=command.DESCRIPTION)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
