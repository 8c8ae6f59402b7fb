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
import contextlib
import io
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ._exceptions import (
    ConfigurationError,
    MissingDependencyError,
    ReceiverError,
    RemoteWriteError,
    TransportError,
)
from ._tools.diagnose import Diagnosis, diagnose_answer
from ._tools.no_answer import diagnose_transport_error

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PROBE_METRIC = "prometheus_rw_bridge_check"
PROBE_JOB = "prometheus-rw-bridge-check"

logger = logging.getLogger(__name__)


class _UsageError(Exception):
    """A bad command line or configuration: reported with exit code 2."""


class _SourceError(Exception):
    """The metrics source could not be scraped: the command failed (exit code 1)."""


class _Console:
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
        with self._lock:
            self._err.write(f"prometheus-rw-bridge: {text}\n")
            self._err.flush()


# --------------------------------------------------------------------------- entry point


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
    console = _Console(sys.stdout, sys.stderr)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args, console)
        return code
    except (_UsageError, ConfigurationError, MissingDependencyError) as exc:
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

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run a sample app pushing to a built-in receiver and show what arrives",
        description="Start the built-in validating receiver on a free loopback port, run a small sample "
        "app (counter, gauge, histogram, summary, info, enum) with enable_remote_write(), and print "
        "every request that arrives as exposition text.  Ctrl-C ends it.",
    )
    demo.add_argument("--url", help="push to this remote-write URL instead of the built-in receiver")
    demo.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    demo.add_argument("--interval", type=_positive_float, default=1.0, help="seconds between pushes (1)")
    demo.add_argument("--protocol", choices=("1.0", "2.0"), default="1.0", help="remote-write protocol (1.0)")
    demo.set_defaults(run=_run_demo)

    receive = commands.add_parser(
        "receive",
        parents=[common],
        help="run a validating remote-write receiver, printing series and spec violations",
        description="Listen for remote-write requests at /api/v1/write (protocols 1.0 and 2.0), print "
        "the series of each and every rule of the specification it breaks.",
    )
    receive.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    receive.add_argument("--port", type=_port, default=0, help="port to listen on (default: a free one)")
    receive.add_argument("--strict", action="store_true", help="answer 400 to requests that break a rule")
    receive.add_argument("--quiet", action="store_true", help="print one line per request, not its series")
    receive.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    receive.add_argument(
        "--fail-on-violation", action="store_true", help="exit 1 at the end if any request broke a rule"
    )
    receive.set_defaults(run=_run_receive)

    check = commands.add_parser(
        "check",
        parents=[common],
        help="send one probe series to URL and explain the answer",
        description=f"Send one gauge, {PROBE_METRIC}, to the remote-write URL with the given auth and "
        "TLS options, and explain the answer: what is wrong and how to fix it.  Options not given "
        "are taken from the PROMETHEUS_REMOTE_WRITE_* environment variables, like the library does.",
    )
    check.add_argument("url", help="remote-write URL, e.g. http://localhost:9090/api/v1/write")
    check.add_argument(
        "--protocol", choices=("1.0", "2.0"), default="1.0", help="protocol to probe with (1.0)"
    )
    check.add_argument("--job", default=PROBE_JOB, help=f"job label of the probe series ({PROBE_JOB})")
    _add_connection_options(check, default_timeout=10.0)
    check.set_defaults(run=_run_check)

    forward = commands.add_parser(
        "forward",
        parents=[common],
        help="push Prometheus text from a file, stdin or a /metrics URL",
        description="Read metrics in the Prometheus text format from a file, standard input (-) or "
        "an http(s) /metrics URL it scrapes, and push them once, or every N seconds with --every: "
        "the agent pattern for programs you cannot change, and a Pushgateway replacement for cron jobs.",
    )
    forward.add_argument("source", help="a file, - for standard input, or an http(s):// URL to scrape")
    forward.add_argument("--url", required=True, help="remote-write URL to push to")
    forward.add_argument("--every", type=_positive_float, help="push again every N seconds until stopped")
    forward.add_argument("--job", help="job label for series without one (default: 'forward')")
    forward.add_argument(
        "--instance", help="instance label (default: the scraped host:port, else this host's name)"
    )
    forward.add_argument(
        "--label", action="append", default=[], metavar="NAME=VALUE", help="extra label (repeatable)"
    )
    _add_connection_options(forward, default_timeout=30.0)
    forward.set_defaults(run=_run_forward)
    return parser


def _add_connection_options(parser: argparse.ArgumentParser, *, default_timeout: float) -> None:
    group = parser.add_argument_group("connection (also from PROMETHEUS_REMOTE_WRITE_* variables)")
    group.add_argument("--username", help="basic-auth user name")
    group.add_argument("--password-file", help="file holding the basic-auth password")
    group.add_argument("--bearer-token-file", help="file holding a bearer token")
    group.add_argument("--tenant", help="tenant, sent as X-Scope-OrgID")
    group.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="extra HTTP header (repeatable)"
    )
    group.add_argument("--ca-file", help="PEM CA certificates to verify the server with")
    group.add_argument("--cert-file", help="PEM client certificate (mutual TLS)")
    group.add_argument("--key-file", help="PEM key of --cert-file, if separate")
    group.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        default=None,
        help="do not verify the server's certificate",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        help=f"seconds per request (default: PROMETHEUS_REMOTE_WRITE_TIMEOUT, else {default_timeout:g})",
    )
    parser.set_defaults(default_timeout=default_timeout)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return value


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"{option} {value!r}: expected NAME=VALUE")
        result[name.strip()] = rest.strip()
    return result


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
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


# --------------------------------------------------------------------------- demo


def _run_demo(args: argparse.Namespace, console: _Console) -> int:
    from prometheus_client import CollectorRegistry

    import prometheus_rw_bridge

    from ._tools.demo import SampleApp
    from ._tools.receiver import Receiver
    from ._tools.store import ReceivedRequest

    registry = CollectorRegistry()
    app = SampleApp(registry)
    receiver: Receiver | None = None

    def show(received: ReceivedRequest) -> None:
        _print_request(console, received, quiet=False)

    if args.url is None:
        receiver = Receiver(on_request=show).start()
        url = receiver.write_url
        console.say(f"# built-in receiver listening at {url}")
    else:
        url = args.url
    stop = threading.Event()
    started = time.monotonic()
    bridge: Any = None
    with _stop_on_signals(stop):
        try:
            app.start()
            bridge = prometheus_rw_bridge.enable_remote_write(
                url,
                registry=registry,
                interval=args.interval,
                job="demo",
                instance="demo-app",
                protocol=args.protocol,
                self_metrics=False,
            )
            if not bridge.enabled:
                console.error(f"remote write is off: {bridge.disabled_reason or 'see the log'}")
                return EXIT_FAILED
            console.say(
                f"# sample app pushing to {_display(url)} every {args.interval:g}s"
                + (f" for {args.duration:g}s" if args.duration else "; Ctrl-C to stop")
            )
            deadline = None if args.duration is None else started + args.duration
            while not stop.is_set() and not console.closed.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                stop.wait(min(args.interval, remaining) if remaining is not None else args.interval)
                if receiver is None:
                    _print_stats(console, bridge.stats)
        finally:
            app.stop()
            if bridge is not None:
                with contextlib.suppress(KeyboardInterrupt):
                    bridge.close(timeout=5.0)
            if receiver is not None:
                receiver.stop()
    stats = bridge.stats
    summary = (
        f"# demo finished after {time.monotonic() - started:.1f}s: {stats.successes} pushes accepted, "
        f"{stats.errors} errors, {stats.samples_sent} samples sent"
    )
    if receiver is not None:
        summary += (
            f"; the receiver got {len(receiver.requests)} requests, {len(receiver.series())} series, "
            f"{len(receiver.violations)} violations"
        )
    console.say(summary)
    return EXIT_OK if stats.successes > 0 else EXIT_FAILED


def _print_stats(console: _Console, stats: Any) -> None:
    line = (
        f"# pushes: {stats.successes} ok, {stats.errors} errors; samples sent {stats.samples_sent}, "
        f"pending {stats.samples_pending}, dropped {stats.samples_dropped}"
    )
    if stats.last_error:
        line += f"; last error: {stats.last_error}"
    console.say(line)


def _print_request(console: _Console, received: Any, *, quiet: bool) -> None:
    agent = received.header("User-Agent") or "unknown sender"
    protocol = received.protocol or "?"
    head = (
        f"# request {received.number} from {agent}: protocol {protocol}, {received.samples} samples"
        f"{f', {received.histograms} histograms' if received.histograms else ''}, answered {received.status}"
    )
    lines = [head]
    if not quiet:
        text = received.to_text()
        if text:
            lines.append(text.rstrip("\n"))
    for violation in received.violations:
        lines.append(f"! {violation.rule}: {violation.detail}")
    console.say("\n".join(lines))


# --------------------------------------------------------------------------- receive


def _run_receive(args: argparse.Namespace, console: _Console) -> int:
    from ._tools.receiver import Receiver

    try:
        receiver = Receiver(
            host=args.host,
            port=args.port,
            strict=args.strict,
            on_request=lambda received: _print_request(console, received, quiet=args.quiet),
        )
    except OSError as exc:
        raise _UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    stop = threading.Event()
    with receiver, _stop_on_signals(stop):
        mode = "strict: requests breaking a rule are answered 400" if args.strict else "lenient"
        console.say(f"# receiving remote write at {receiver.write_url} ({mode}); Ctrl-C to stop")
        stop.wait(args.duration)
    violations = receiver.violations
    console.say(
        f"# received {len(receiver.requests)} requests, {receiver.samples_received} samples accepted, "
        f"{len(receiver.series())} series, {len(violations)} violations"
    )
    return EXIT_FAILED if args.fail_on_violation and violations else EXIT_OK


# --------------------------------------------------------------------------- check


def _endpoint(args: argparse.Namespace, url: str) -> Any:
    """Resolve the connection options (command line, then environment) into endpoint settings."""
    from ._config.settings import ENV_TIMEOUT, resolve_settings

    headers = _pairs(args.header, "--header")
    timeout = args.timeout
    if timeout is None and ENV_TIMEOUT not in os.environ:
        timeout = args.default_timeout
    settings = resolve_settings(
        url=url,
        headers=headers or None,
        username=args.username,
        password_file=args.password_file,
        bearer_token_file=args.bearer_token_file,
        tenant=args.tenant,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        insecure_skip_verify=args.insecure_skip_verify,
        timeout=timeout,
    )
    endpoint = settings.endpoints[0]
    args.timeout = endpoint.timeout
    return endpoint


def _transport(endpoint: Any) -> Any:
    """Build the library's own transport for ``endpoint`` (auth, TLS, tenant, headers)."""
    from ._delivery.setup import make_transport

    return make_transport(endpoint)


def _run_check(args: argparse.Namespace, console: _Console) -> int:
    from prometheus_client import CollectorRegistry, Gauge

    from ._protocol.exposition import generate_write_request
    from ._redact import safe_url

    endpoint = _endpoint(args, args.url)
    used = endpoint
    url = safe_url(endpoint.url)
    registry = CollectorRegistry()
    probe = Gauge(
        PROBE_METRIC, "A probe series sent by prometheus-rw-bridge check.", ["source"], registry=registry
    )
    probe.labels(socket.gethostname() or "localhost").set(1)
    try:
        body = generate_write_request(registry, job=args.job, protocol=args.protocol)
    except ImportError as exc:
        raise _UsageError(f"protocol {args.protocol} is not available in this installation: {exc}") from exc
    console.say(f'# sending {PROBE_METRIC}{{job="{args.job}"}} to {url} (remote write {args.protocol})')
    transport = _transport(endpoint)
    started = time.monotonic()
    try:
        result = transport.send(body, protocol=args.protocol)
    except ReceiverError as exc:
        diagnosis = diagnose_answer(exc.status_code, exc.message, url=url, protocol=args.protocol, used=used)
    except TransportError as exc:
        diagnosis = diagnose_transport_error(exc, url=url, used=used)
    else:
        elapsed = (time.monotonic() - started) * 1000
        diagnosis = Diagnosis(
            True,
            f"{url} accepted the probe ({result.status_code}, {elapsed:.0f} ms).",
            [f'query it with: {PROBE_METRIC}{{job="{args.job}"}}'],
        )
        if args.protocol == "2.0" and not result.confirms_v2:
            diagnosis = Diagnosis(
                False,
                f"{url} answered {result.status_code} without X-Prometheus-Remote-Write-*-Written headers.",
                [
                    "a 1.0-only receiver decodes a 2.0 body as an empty request and drops it: "
                    "use protocol 1.0",
                ],
            )
        elif result.samples_written is not None:
            diagnosis.hints.append(f"the receiver reports {result.samples_written} sample(s) written")
    finally:
        transport.close()
    console.say(diagnosis.render())
    return EXIT_OK if diagnosis.ok else EXIT_FAILED


# --------------------------------------------------------------------------- forward


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
        import httpx

        from ._redact import masking_logs, scrub, scrub_exception_chain, secret_forms, url_secrets

        secrets = secret_forms(url_secrets(source))
        shown = _display(source)
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
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise _UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc


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
        raise _UsageError(
            f"{source} is not in the Prometheus text format: line {lines.number}: {exc} (the line: {shown!r})"
        ) from exc


def _run_forward(args: argparse.Namespace, console: _Console) -> int:
    import prometheus_rw_bridge

    if args.source == "-" and args.every:
        raise _UsageError("--every needs a file or URL to read again; standard input can be read only once")
    labels = _pairs(args.label, "--label")
    instance = args.instance
    if instance is None and args.source.startswith(("http://", "https://")):
        instance = urllib.parse.urlsplit(args.source).netloc.rpartition("@")[2]  # never the user info
    job = args.job if args.job is not None else "forward"
    endpoint = _endpoint(args, args.url)  # validates every option before the first read
    options: dict[str, Any] = {
        "headers": dict(endpoint.headers) or None,
        "username": args.username,
        "password_file": args.password_file,
        "bearer_token_file": args.bearer_token_file,
        "tenant": args.tenant,
        "ca_file": args.ca_file,
        "cert_file": args.cert_file,
        "key_file": args.key_file,
        "insecure_skip_verify": args.insecure_skip_verify,
    }
    options = {name: value for name, value in options.items() if value is not None}
    collector = _ParsedCollector()
    stop = threading.Event()
    pushes = failures = 0
    with _stop_on_signals(stop):
        while True:
            started = time.monotonic()
            try:
                collector.families = _parse(
                    _read_source(args.source, args.timeout, sys.stdin), _display(args.source)
                )
            except (_SourceError, _UsageError) as exc:
                # A bad first read is a usage error; later (with --every) the file may come back.
                if isinstance(exc, _UsageError) and (not args.every or pushes + failures == 0):
                    raise
                failures += 1
                console.error(str(exc) + ("; will try again" if args.every else ""))
                if not args.every:
                    return EXIT_FAILED
            else:
                samples = sum(len(family.samples) for family in collector.families)
                try:
                    prometheus_rw_bridge.push_to_remote_write(
                        args.url,
                        registry=collector,
                        job=job,
                        instance=instance,
                        external_labels=labels or None,
                        timeout=args.timeout,
                        **options,
                    )
                except (ConfigurationError, MissingDependencyError):
                    raise
                except RemoteWriteError as exc:
                    failures += 1
                    console.error(f"push failed: {exc}")
                    if not args.every:
                        return EXIT_FAILED
                else:
                    pushes += 1
                    elapsed = (time.monotonic() - started) * 1000
                    console.say(
                        f"# push {pushes}: {len(collector.families)} families, {samples} samples from "
                        f"{_display(args.source)} to {_display(args.url)} in {elapsed:.0f} ms"
                    )
            if not args.every:
                return EXIT_OK
            stop.wait(max(0.0, args.every - (time.monotonic() - started)))
            if stop.is_set():
                break
    console.say(f"# forwarded {pushes} times, {failures} failures")
    return EXIT_OK if failures == 0 or pushes > 0 else EXIT_FAILED


def _display(url: str) -> str:
    """Return ``url`` safe to print (no credentials), or a file name or ``-`` as it is."""
    from ._redact import safe_url

    return safe_url(url) if "://" in url else url


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
