"""``prometheus-rw-bridge check URL``: send one probe series and explain the answer."""

from __future__ import annotations

import argparse
import socket
import time

from .._exceptions import ReceiverError, TransportError
from .._http.transport import SendResult
from .command import EXIT_FAILED, EXIT_OK, Console, UsageError
from .connection import add_connection_options, endpoint
from .diagnose import Diagnosis, diagnose_answer
from .no_answer import diagnose_transport_error

__all__ = ["DESCRIPTION", "HELP", "PROBE_JOB", "PROBE_METRIC", "configure", "run"]

PROBE_METRIC = "prometheus_rw_bridge_check"
PROBE_JOB = "prometheus-rw-bridge-check"

HELP = "send one probe series to URL and explain the answer"
DESCRIPTION = (
    f"Send one gauge, {PROBE_METRIC}, to the remote-write URL with the given auth and "
    "TLS options, and explain the answer: what is wrong and how to fix it.  Options not given "
    "are taken from the PROMETHEUS_REMOTE_WRITE_* environment variables, like the library does."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``check``'s arguments to its parser."""
    parser.add_argument("url", help="remote-write URL, e.g. http://localhost:9090/api/v1/write")
    parser.add_argument(
        "--protocol", choices=("1.0", "2.0"), default="1.0", help="protocol to probe with (1.0)"
    )
    parser.add_argument("--job", default=PROBE_JOB, help=f"job label of the probe series ({PROBE_JOB})")
    add_connection_options(parser, default_timeout=10.0)


def run(args: argparse.Namespace, console: Console) -> int:
    """Probe ``args.url`` and print the diagnosis; 0 if the probe was accepted."""
    from prometheus_client import CollectorRegistry, Gauge

    from .._delivery.setup import make_transport
    from .._protocol.exposition import generate_write_request
    from .._redact import safe_url

    settings = endpoint(args, args.url)
    url = safe_url(settings.url)
    registry = CollectorRegistry()
    probe = Gauge(
        PROBE_METRIC, "A probe series sent by prometheus-rw-bridge check.", ["source"], registry=registry
    )
    probe.labels(socket.gethostname() or "localhost").set(1)
    try:
        body = generate_write_request(registry, job=args.job, protocol=args.protocol)
    except ImportError as exc:
        raise UsageError(f"protocol {args.protocol} is not available in this installation: {exc}") from exc
    console.say(f'# sending {PROBE_METRIC}{{job="{args.job}"}} to {url} (remote write {args.protocol})')
    transport = make_transport(settings)
    started = time.monotonic()
    try:
        result = transport.send(body, protocol=args.protocol)
    except ReceiverError as exc:
        diagnosis = diagnose_answer(
            exc.status_code, exc.message, url=url, protocol=args.protocol, used=settings
        )
    except TransportError as exc:
        diagnosis = diagnose_transport_error(exc, url=url, used=settings)
    else:
        elapsed = (time.monotonic() - started) * 1000
        diagnosis = _accepted(url, args, result, elapsed)
    finally:
        transport.close()
    console.say(diagnosis.render())
    return EXIT_OK if diagnosis.ok else EXIT_FAILED


def _accepted(url: str, args: argparse.Namespace, result: SendResult, elapsed_ms: float) -> Diagnosis:
    """Explain a 2xx answer; under 2.0, one without the written counts is a 1.0-only receiver's."""
    status = result.status_code
    if args.protocol == "2.0" and not result.confirms_v2:
        return Diagnosis(
            False,
            f"{url} answered {status} without X-Prometheus-Remote-Write-*-Written headers.",
            ["a 1.0-only receiver decodes a 2.0 body as an empty request and drops it: use protocol 1.0"],
        )
    diagnosis = Diagnosis(
        True,
        f"{url} accepted the probe ({status}, {elapsed_ms:.0f} ms).",
        [f'query it with: {PROBE_METRIC}{{job="{args.job}"}}'],
    )
    if result.samples_written is not None:
        diagnosis.hints.append(f"the receiver reports {result.samples_written} sample(s) written")
    return diagnosis
