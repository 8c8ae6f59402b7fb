"""``prometheus-rw-bridge receive``: the validating receiver in the foreground, printing what arrives."""

from __future__ import annotations

import argparse
import threading

from .command import EXIT_FAILED, EXIT_OK, Console, UsageError, port, positive_float, stop_on_signals
from .receiver import Receiver
from .store import ReceivedRequest

__all__ = ["DESCRIPTION", "HELP", "Printer", "configure", "run"]

HELP = "run a validating remote-write receiver, printing series and spec violations"
DESCRIPTION = (
    "Listen for remote-write requests at /api/v1/write (protocols 1.0 and 2.0), print "
    "the series of each and every rule of the specification it breaks."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``receive``'s arguments to its parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=port, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--strict", action="store_true", help="answer 400 to requests that break a rule")
    parser.add_argument("--quiet", action="store_true", help="print one line per request, not its series")
    parser.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    parser.add_argument(
        "--fail-on-violation", action="store_true", help="exit 1 at the end if any request broke a rule"
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Receive until stopped (or ``--duration``), then print a summary."""
    printer = Printer(console, quiet=args.quiet)
    try:
        # Requests are printed as they come and counted here; the receiver keeps none of them,
        # so a receiver left running for days does not grow.
        receiver = Receiver(
            host=args.host, port=args.port, strict=args.strict, on_request=printer, keep_requests=0
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    stop = threading.Event()
    with receiver, stop_on_signals(stop):
        mode = "strict: requests breaking a rule are answered 400" if args.strict else "lenient"
        console.say(f"# receiving remote write at {receiver.write_url} ({mode}); Ctrl-C to stop")
        stop.wait(args.duration)
    console.say(
        f"# received {printer.requests} requests, {receiver.samples_received} samples accepted, "
        f"{len(receiver.series())} series, {printer.violations} violations"
    )
    return EXIT_FAILED if args.fail_on_violation and printer.violations else EXIT_OK


class Printer:
    """Print each request as it is answered (an ``on_request`` callback), and count them.

    Args:
        console: where to print.
        quiet: one line per request instead of its series too.
    """

    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.requests = 0
        self.violations = 0
        self._lock = threading.Lock()  # the receiver calls from one thread per connection

    def __call__(self, received: ReceivedRequest) -> None:
        with self._lock:
            self.requests += 1
            self.violations += len(received.violations)
        agent = received.header("User-Agent") or "unknown sender"
        answered = "nothing" if received.status is None else received.status
        head = (
            f"# request {received.number} from {agent}: protocol {received.protocol or '?'}, "
            f"{received.samples} samples"
            f"{f', {received.histograms} histograms' if received.histograms else ''}, answered {answered}"
        )
        lines = [head]
        if not self.quiet:
            text = received.to_text()
            if text:
                lines.append(text.rstrip("\n"))
        lines.extend(f"! {violation.rule}: {violation.detail}" for violation in received.violations)
        self.console.say("\n".join(lines))
