"""``prometheus-rw-bridge forward SOURCE --url URL``: push Prometheus text once or every N seconds.

The source is a file, standard input (``-``) or an http(s) ``/metrics`` URL it scrapes; the
text is parsed with prometheus_client's own parser and pushed with ``push_to_remote_write()``.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
import urllib.parse
from typing import Any, TextIO

from .._exceptions import ConfigurationError, MissingDependencyError, RemoteWriteError
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    UsageError,
    display,
    pairs,
    positive_float,
    stop_on_signals,
)
from .connection import add_connection_options, endpoint

__all__ = ["DESCRIPTION", "HELP", "configure", "run"]

HELP = "push Prometheus text from a file, stdin or a /metrics URL"
DESCRIPTION = (
    "Read metrics in the Prometheus text format from a file, standard input (-) or "
    "an http(s) /metrics URL it scrapes, and push them once, or every N seconds with --every: "
    "the agent pattern for programs you cannot change, and a Pushgateway replacement for cron jobs."
)


class _SourceError(Exception):
    """The metrics source could not be scraped: the command failed (exit code 1)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``forward``'s arguments to its parser."""
    parser.add_argument("source", help="a file, - for standard input, or an http(s):// URL to scrape")
    parser.add_argument("--url", required=True, help="remote-write URL to push to")
    parser.add_argument("--every", type=positive_float, help="push again every N seconds until stopped")
    parser.add_argument("--job", help="job label for series without one (default: 'forward')")
    parser.add_argument(
        "--instance", help="instance label (default: the scraped host:port, else this host's name)"
    )
    parser.add_argument(
        "--label", action="append", default=[], metavar="NAME=VALUE", help="extra label (repeatable)"
    )
    add_connection_options(parser, default_timeout=30.0)


def run(args: argparse.Namespace, console: Console) -> int:
    """Push the source once, or every ``--every`` seconds until stopped."""
    if args.source == "-" and args.every:
        raise UsageError("--every needs a file or URL to read again; standard input can be read only once")
    push = _Push(args)
    stop = threading.Event()
    with stop_on_signals(stop):
        while True:
            started = time.monotonic()
            ok = push.once(console)
            if not args.every:
                return EXIT_OK if ok else EXIT_FAILED
            stop.wait(max(0.0, args.every - (time.monotonic() - started)))
            if stop.is_set():
                break
    console.say(f"# forwarded {push.pushes} times, {push.failures} failures")
    return EXIT_OK if push.failures == 0 or push.pushes > 0 else EXIT_FAILED


class _Push:
    """One source pushed to one URL, counting the pushes that succeeded and failed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.labels = pairs(args.label, "--label")
        self.instance = args.instance
        if self.instance is None and args.source.startswith(("http://", "https://")):
            self.instance = urllib.parse.urlsplit(args.source).netloc.rpartition("@")[
                2
            ]  # never the user info
        self.job = args.job if args.job is not None else "forward"
        settings = endpoint(args, args.url)  # validates every option before the first read
        options: dict[str, Any] = {
            "headers": dict(settings.headers) or None,
            "username": args.username,
            "password_file": args.password_file,
            "bearer_token_file": args.bearer_token_file,
            "tenant": args.tenant,
            "ca_file": args.ca_file,
            "cert_file": args.cert_file,
            "key_file": args.key_file,
            "insecure_skip_verify": args.insecure_skip_verify,
        }
        self.options = {name: value for name, value in options.items() if value is not None}
        self.collector = _ParsedCollector()
        self.pushes = self.failures = 0

    def once(self, console: Console) -> bool:
        """Read, parse and push the source once; say how it went and return whether it worked."""
        args, started = self.args, time.monotonic()
        try:
            self.collector.families = _parse(
                _read_source(args.source, args.timeout, sys.stdin), display(args.source)
            )
        except (_SourceError, UsageError) as exc:
            # A bad first read is a usage error; later (with --every) the file may come back.
            if isinstance(exc, UsageError) and (not args.every or self.pushes + self.failures == 0):
                raise
            self.failures += 1
            console.error(str(exc) + ("; will try again" if args.every else ""))
            return False
        try:
            self._push()
        except (ConfigurationError, MissingDependencyError):
            raise
        except RemoteWriteError as exc:
            self.failures += 1
            console.error(f"push failed: {exc}")
            return False
        self.pushes += 1
        families = self.collector.families
        samples = sum(len(family.samples) for family in families)
        console.say(
            f"# push {self.pushes}: {len(families)} families, {samples} samples from "
            f"{display(args.source)} to {display(args.url)} in {(time.monotonic() - started) * 1000:.0f} ms"
        )
        return True

    def _push(self) -> None:
        import prometheus_rw_bridge

        prometheus_rw_bridge.push_to_remote_write(
            self.args.url,
            registry=self.collector,
            job=self.job,
            instance=self.instance,
            external_labels=self.labels or None,
            timeout=self.args.timeout,
            **self.options,
        )


class _ParsedCollector:
    """A Collector serving metric families parsed from text (replaced on every read)."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def collect(self) -> list[Any]:
        return list(self.families)


def _read_source(source: str, timeout: float, stdin: TextIO) -> str:
    """Return the text of ``source``: ``-`` (standard input), an http(s) URL, or a file."""
    if source == "-":
        return stdin.read()
    if source.startswith(("http://", "https://")):
        return _scrape(source, timeout)
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc


def _scrape(source: str, timeout: float) -> str:
    """Return the text a ``/metrics`` URL serves, never showing the credentials it may hold."""
    import httpx

    from .._redact import masking_logs, scrub, scrub_exception_chain, secret_forms, url_secrets

    secrets = secret_forms(url_secrets(source))
    shown = display(source)
    try:
        with masking_logs(lambda: secrets):  # httpx logs the URL it scrapes, credentials and all
            response = httpx.get(source, timeout=timeout, headers={"Accept": "text/plain;version=0.0.4"})
    except httpx.HTTPError as exc:
        message = scrub(f"cannot scrape {shown}: {exc}", secrets)
        scrub_exception_chain(exc, secrets)
        raise _SourceError(message) from exc
    if response.status_code != 200:
        answer = scrub(response.text[:200], secrets)
        raise _SourceError(f"scraping {shown} answered {response.status_code}: {answer}")
    return response.text


class _Lines(io.StringIO):
    """Text for the parser that counts the lines it has read, so an error can name its line."""

    number = 0
    line = ""

    def __next__(self) -> str:  # type: ignore[override]  # typeshed types IOBase lines as bytes
        self.line = super().__next__()
        self.number += 1
        return self.line


def _parse(text: str, source: str) -> list[Any]:
    from prometheus_client.parser import text_fd_to_metric_families

    lines = _Lines(text)
    try:
        return list(text_fd_to_metric_families(lines))
    except Exception as exc:
        shown = lines.line.rstrip("\n")
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        raise UsageError(
            f"{source} is not in the Prometheus text format: line {lines.number}: {exc} (the line: {shown!r})"
        ) from exc
