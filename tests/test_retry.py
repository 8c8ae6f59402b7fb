"""Backoff schedule, Retry-After parsing and the one retry loop: on a fake clock, then on real sockets."""

from __future__ import annotations

import email.utils
import random
import re
import threading
import time
from dataclasses import dataclass, field

import pytest

from prometheus_rw_bridge import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    SendError,
    TransportError,
    generate_write_request,
)
from prometheus_rw_bridge._delivery.negotiate import Negotiator
from prometheus_rw_bridge._delivery.retry import (
    Delivery,
    Outcome,
    RetryHooks,
    RetryPolicy,
    retry_after_of,
    send_with_retries,
)
from prometheus_rw_bridge._http.retry_after import parse_retry_after
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge._http.transport import SendResult as Result
from prometheus_rw_bridge.testing import Receiver, Reply

URL = "http://receiver.test/api/v1/write"
NO_JITTER = RetryPolicy(jitter=0)


# -- RetryPolicy.delay ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        pytest.param(1, 0.03, id="first-retry-min-backoff"),
        pytest.param(2, 0.06, id="doubles"),
        pytest.param(5, 0.48, id="fifth"),
        pytest.param(8, 3.84, id="below-cap"),
        pytest.param(9, 5.0, id="capped"),
        pytest.param(10_000, 5.0, id="huge-attempt-no-overflow"),
        pytest.param(0, 0.03, id="zero-counts-as-first"),
    ],
)
def test_delay_is_exponential_and_capped(attempt: int, expected: float) -> None:
    assert NO_JITTER.delay(attempt) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [1, 3, 9, 50])
def test_jitter_stays_within_documented_bounds(attempt: int) -> None:
    policy = RetryPolicy()
    base = NO_JITTER.delay(attempt)
    rng = random.Random(attempt)
    delays = [policy.delay(attempt, rng=rng) for _ in range(2000)]
    assert min(delays) >= base * 0.9
    assert max(delays) <= base * 1.1
    assert max(delays) - min(delays) > base * 0.1  # really jittered


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy()
    assert policy.delay(3, rng=random.Random(7)) == policy.delay(3, rng=random.Random(7))


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(2.0, 2.0, id="floor-above-backoff"),
        pytest.param(0.001, 0.06, id="backoff-above-floor"),
        pytest.param(10_000.0, 300.0, id="capped-at-max-retry-after"),
        pytest.param(0.0, 0.06, id="zero-ignored"),
        pytest.param(None, 0.06, id="absent"),
    ],
)
def test_retry_after_is_a_capped_floor(retry_after: float | None, expected: float) -> None:
    assert NO_JITTER.delay(2, retry_after) == pytest.approx(expected)


def test_retry_after_is_never_undercut_by_jitter() -> None:
    policy = RetryPolicy(jitter=0.5, min_backoff=2.0, max_backoff=2.0)
    rng = random.Random(1)
    assert all(policy.delay(1, 2.0, rng) >= 2.0 for _ in range(500))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        pytest.param({"min_backoff": -1}, "min_backoff", id="negative-min"),
        pytest.param({"max_backoff": float("inf")}, "max_backoff", id="infinite-max"),
        pytest.param({"min_backoff": 2, "max_backoff": 1}, "max_backoff", id="max-below-min"),
        pytest.param({"jitter": 1.0}, "jitter", id="jitter-one"),
        pytest.param({"max_retry_after": float("nan")}, "max_retry_after", id="nan-cap"),
    ],
)
def test_policy_rejects_bad_bounds_naming_them(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RetryPolicy(**kwargs)


def test_policy_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(0.1)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        NO_JITTER.jitter = 0.5  # type: ignore[misc]


# -- parse_retry_after ----------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2", 2.0, id="delta-seconds"),
        pytest.param(" 120 ", 120.0, id="whitespace"),
        pytest.param("1.5", 1.5, id="fractional-lenient"),
        pytest.param("-5", 0.0, id="negative-is-now"),
        pytest.param(email.utils.formatdate(NOW + 30, usegmt=True), 30.0, id="http-date"),
        pytest.param(email.utils.formatdate(NOW - 30, usegmt=True), 0.0, id="http-date-past"),
        pytest.param("Tue, 14 Nov 2023 22:13:50 -0000", 30.0, id="http-date-minus-zero"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
        pytest.param("inf", None, id="infinite"),
        pytest.param("nan", None, id="nan"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    result = parse_retry_after(value, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_retry_after_of_reads_the_error_attribute() -> None:
    error = RetryableReceiverError(429, "slow down", URL)
    assert retry_after_of(error) is None
    error.retry_after = 4.0
    assert retry_after_of(error) == 4.0
    assert retry_after_of(TransportError("refused")) is None


# -- send_with_retries ----------------------------------------------------------------------


@dataclass
class FakeClock:
    """A monotonic clock that moves only when a test waits on it."""

    now: float = 100.0
    waits: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


@dataclass
class Call:
    at: float
    attempt: int
    timeout: float | None
    protocol: str


@dataclass
class FakeTransport:
    """Answers from a script: an exception is raised, anything else returned."""

    clock: FakeClock
    script: list[object]
    timeout: float = 30.0
    url: str = URL
    took: float = 0.0
    calls: list[Call] = field(default_factory=list)

    def send(
        self, body: bytes, *, protocol: str = "1.0", attempt: int = 0, timeout: float | None = None
    ) -> object:
        self.calls.append(Call(self.clock.now, attempt, timeout, protocol))
        self.clock.now += self.took
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def retryable(status: int = 503, retry_after: float | None = None) -> RetryableReceiverError:
    error = RetryableReceiverError(status, "receiver says no", URL)
    error.retry_after = retry_after
    return error


def run(
    transport: FakeTransport, clock: FakeClock, deadline: float | None = None, **kwargs: object
) -> Delivery:
    return send_with_retries(
        transport,  # type: ignore[arg-type]
        b"body",
        deadline=deadline,
        policy=kwargs.pop("policy", NO_JITTER),  # type: ignore[arg-type]
        clock=clock,
        wait=kwargs.pop("wait", clock.wait),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class RecordingHooks(RetryHooks):
    attempts: int = 0
    failures: list[tuple[SendError, int, float | None]] = field(default_factory=list)

    def attempt(self) -> None:
        self.attempts += 1

    def failed(self, error: SendError, retry: int, delay: float | None) -> None:
        self.failures.append((error, retry, delay))


def test_first_500_is_retried_and_delivered() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(500), "ok"])
    hooks = RecordingHooks()
    delivery = run(transport, clock, hooks=hooks)
    assert delivery.outcome is Outcome.SENT
    assert delivery.result == "ok" and delivery.attempts == 2
    assert [c.attempt for c in transport.calls] == [0, 1]
    assert clock.waits == [pytest.approx(0.03)]
    assert hooks.attempts == 2
    [(error, number, delay)] = hooks.failures
    assert number == 1
    assert delay == pytest.approx(0.03)
    assert isinstance(error, RetryableReceiverError)


def test_400_is_rejected_at_once_and_never_resent() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [NonRetryableReceiverError(400, "out of order sample", URL)])
    delivery = run(transport, clock, deadline=clock.now + 60)
    assert delivery.outcome is Outcome.REJECTED
    assert "400: out of order sample" in str(delivery.error)
    assert len(transport.calls) == 1
    assert clock.waits == []


def test_413_is_too_large_and_never_resent() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [NonRetryableReceiverError(413, "request too large", URL)])
    delivery = run(transport, clock, deadline=clock.now + 60)
    assert delivery.outcome is Outcome.TOO_LARGE
    assert len(transport.calls) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(NonRetryableReceiverError(415, "unsupported", URL), Outcome.FALLBACK, id="415"),
        pytest.param(NonRetryableReceiverError(400, "what?", URL), Outcome.FALLBACK, id="400-unconfirmed"),
        pytest.param(Result(204), Outcome.FALLBACK, id="2xx-without-written-headers"),
        pytest.param(Result(204, samples_written=1), Outcome.SENT, id="2xx-confirming-2.0"),
    ],
)
def test_a_negotiator_turns_signs_of_a_1_0_receiver_into_a_fallback(
    answer: object, expected: Outcome
) -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [answer])
    delivery = run(transport, clock, protocol="2.0", negotiator=Negotiator("auto", clock=clock))
    assert delivery.outcome is expected
    assert len(transport.calls) == 1


def test_429_retry_after_2_delays_the_next_attempt_by_at_least_2s() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(429, retry_after=2.0), "ok"])
    run(transport, clock, policy=RetryPolicy())  # with jitter: the floor still holds
    first, second = transport.calls
    assert second.at - first.at >= 2.0


def test_retry_after_beyond_the_cap_waits_only_the_cap() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(503, retry_after=86_400.0), "ok"])
    run(transport, clock, policy=RetryPolicy(jitter=0, max_retry_after=60.0))
    assert clock.waits == [60.0]


def test_transport_errors_are_retried_with_growing_backoff() -> None:
    clock = FakeClock()
    refused = [TransportError(f"cannot send to {URL}: connection refused") for _ in range(4)]
    transport = FakeTransport(clock, [*refused, "ok"])
    assert run(transport, clock).outcome is Outcome.SENT
    assert clock.waits == pytest.approx([0.03, 0.06, 0.12, 0.24])
    assert [c.attempt for c in transport.calls] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("limit", "outcome"),
    [
        pytest.param("deadline", Outcome.GAVE_UP, id="deadline"),
        pytest.param("expires_at", Outcome.TOO_OLD, id="sample-age-limit"),  # a lasting 503 or 429
    ],
)
def test_a_deadline_or_an_expiry_stops_retries_and_keeps_the_last_receiver_error(
    limit: str, outcome: Outcome
) -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(503) for _ in range(100)], took=0.5)
    end = clock.now + 10.0
    hooks = RecordingHooks()
    delivery = run(transport, clock, hooks=hooks, **{limit: end})
    assert delivery.outcome is outcome
    assert isinstance(delivery.error, RetryableReceiverError)
    assert delivery.error.status_code == 503
    assert "503: receiver says no" in str(delivery.error)
    assert clock.now <= end
    # Each wait plus the next attempt started before the end, and no wait crossed it.
    assert all(call.at < end for call in transport.calls)
    assert clock.now + NO_JITTER.delay(len(transport.calls)) >= end
    assert hooks.failures[-1][2] is None  # the last failure was not retried
    assert all(delay is not None for _, _, delay in hooks.failures[:-1])


def test_a_deadline_that_moves_is_read_again_before_each_attempt() -> None:
    """The sender's shutdown sets a deadline while a retry is waiting."""
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(503) for _ in range(100)])
    deadline: list[float | None] = [None]

    def wait(seconds: float) -> bool:
        clock.now += seconds
        if len(transport.calls) == 3:
            deadline[0] = clock.now + 0.1  # shutdown: 0.1 s left
        return False

    delivery = run(transport, clock, deadline=lambda: deadline[0], wait=wait)
    assert delivery.outcome is Outcome.GAVE_UP
    assert len(transport.calls) == 4  # the attempt that fitted into the 0.1 s, then no more
    assert transport.calls[-1].timeout == pytest.approx(0.1)


def test_data_already_too_old_is_not_sent() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, ["ok"])
    delivery = run(transport, clock, expires_at=clock.now)
    assert delivery.outcome is Outcome.TOO_OLD and delivery.attempts == 0
    assert transport.calls == []


def test_an_expiry_that_moves_is_read_again() -> None:
    """The sender computes the expiry from the wall clock, which may jump (a suspended host)."""
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(503) for _ in range(100)])
    expiry: list[float | None] = [clock.now + 3600]

    def wait(seconds: float) -> bool:
        clock.now += seconds
        if len(transport.calls) == 2:
            expiry[0] = clock.now - 1  # the data is now older than the limit
        return False

    delivery = run(transport, clock, expires_at=lambda: expiry[0], wait=wait)
    assert delivery.outcome is Outcome.TOO_OLD and len(transport.calls) == 2


def test_an_attempt_under_way_is_not_cut_short_by_the_expiry() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, ["ok"], timeout=30.0)
    delivery = run(transport, clock, expires_at=clock.now + 1.0)
    assert delivery.outcome is Outcome.SENT
    assert transport.calls[0].timeout == 30.0


def test_the_shutdown_deadline_wins_over_the_expiry() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(503) for _ in range(100)])
    delivery = run(transport, clock, deadline=clock.now + 1.0, expires_at=clock.now + 1.0)
    assert delivery.outcome is Outcome.GAVE_UP


def test_per_attempt_timeout_is_cut_to_the_time_left() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [TransportError("timed out"), TransportError("timed out")], timeout=5.0)
    transport.took = 4.0
    run(transport, clock, deadline=clock.now + 12.0)
    timeouts = [c.timeout for c in transport.calls]
    assert timeouts[:2] == [5.0, 5.0]  # the transport's own timeout while time is plentiful
    assert timeouts[2] == pytest.approx(12.0 - 4.0 - 0.03 - 4.0 - 0.06)  # then what is left


def test_an_attempt_the_deadline_cut_short_does_not_hide_the_error_before_it() -> None:
    """With a moment left, the last attempt times out on its shortened timeout; what went wrong
    before (here a certificate the client does not trust) stays the error reported."""
    clock = FakeClock()
    untrusted = TransportError(f"cannot send to {URL}: certificate verification failed")
    cut_short = TransportError(f"cannot send to {URL}: connecting timed out after 0.001s")
    transport = FakeTransport(clock, [untrusted, cut_short], timeout=5.0)
    transport.took = 0.5
    delivery = run(transport, clock, deadline=clock.now + 0.5 + 0.03 + 0.001)
    assert len(transport.calls) == 2 and transport.calls[1].timeout < 5.0
    assert delivery.outcome is Outcome.GAVE_UP
    assert delivery.error is untrusted


def test_a_receiver_answer_on_a_shortened_attempt_is_still_the_last_error() -> None:
    clock = FakeClock()
    refused = TransportError(f"cannot send to {URL}: connection refused")
    transport = FakeTransport(clock, [refused, retryable(503)], timeout=5.0)
    transport.took = 0.5
    delivery = run(transport, clock, deadline=clock.now + 0.5 + 0.03 + 0.001)
    assert isinstance(delivery.error, RetryableReceiverError) and delivery.error.status_code == 503


def test_no_deadline_uses_the_transport_timeout() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(502), "ok"], timeout=7.0)
    run(transport, clock, deadline=None)
    assert [c.timeout for c in transport.calls] == [7.0, 7.0]


def test_wait_asking_to_stop_gives_up_with_the_last_error() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [TransportError("connection refused"), "ok"])
    delivery = run(transport, clock, wait=lambda seconds: True)
    assert delivery.outcome is Outcome.GAVE_UP
    assert isinstance(delivery.error, TransportError) and "connection refused" in str(delivery.error)
    assert len(transport.calls) == 1


def test_a_deadline_already_past_sends_nothing() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, ["ok"])
    delivery = run(transport, clock, deadline=clock.now)
    assert delivery.outcome is Outcome.GAVE_UP and delivery.attempts == 0
    assert isinstance(delivery.error, TransportError) and "deadline" in str(delivery.error)
    assert transport.calls == []


def test_a_late_wakeup_past_the_deadline_gives_up_with_the_last_error() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(500), "ok"])

    def oversleep(seconds: float) -> bool:
        clock.now += 100.0
        return False

    delivery = run(transport, clock, deadline=clock.now + 10.0, wait=oversleep)
    assert delivery.outcome is Outcome.GAVE_UP
    assert isinstance(delivery.error, RetryableReceiverError)
    assert len(transport.calls) == 1


def test_protocol_is_passed_through() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, [retryable(500), "ok"])
    run(transport, clock, protocol="2.0")
    assert {c.protocol for c in transport.calls} == {"2.0"}


# -- against a real socket ------------------------------------------------------------------


def test_connection_refused_then_success_after_restart_on_the_same_port(
    fault_receiver: Receiver, body: bytes
) -> None:
    port = fault_receiver.port
    fault_receiver.stop()
    with HttpxTransport(fault_receiver.url, timeout=5) as transport:

        def restart_then_go_on(seconds: float) -> bool:
            fault_receiver.restart()
            return False

        delivery = send_with_retries(transport, body, wait=restart_then_go_on)
    assert delivery.outcome is Outcome.SENT and delivery.attempts == 2
    assert delivery.result is not None and delivery.result.status_code == 204
    assert fault_receiver.port == port
    [request] = fault_receiver.wait_for_requests(1)
    assert request.header("Retry-Attempt") == "1"


def test_first_500_then_delivered(fault_receiver: Receiver, body: bytes) -> None:
    fault_receiver.script(Reply(500, "temporarily broken"))
    with HttpxTransport(fault_receiver.url) as transport:
        delivery = send_with_retries(transport, body, deadline=time.monotonic() + 30, wait=lambda s: False)
    assert delivery.outcome is Outcome.SENT
    first, second = fault_receiver.wait_for_requests(2)
    assert (first.status, second.status) == (500, 204)
    assert first.body == second.body == body


def test_400_is_never_resent(fault_receiver: Receiver, body: bytes) -> None:
    fault_receiver.script(Reply(400, "out of order sample"))
    with HttpxTransport(fault_receiver.url) as transport:
        delivery = send_with_retries(transport, body, deadline=time.monotonic() + 30, wait=lambda s: False)
    assert delivery.outcome is Outcome.REJECTED
    assert isinstance(delivery.error, NonRetryableReceiverError)
    # A sentinel request proves the receiver is idle rather than slow: it is the second one.
    with HttpxTransport(fault_receiver.url) as transport:
        transport.send(b"sentinel")
    assert [r.body for r in fault_receiver.wait_for_requests(2)] == [body, b"sentinel"]


def test_429_retry_after_over_a_real_socket_sets_the_wait(fault_receiver: Receiver, body: bytes) -> None:
    fault_receiver.script(Reply(429, "slow down", {"Retry-After": "2"}))
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # what the sender would sleep, without sleeping
        waits.append(seconds)
        return False

    with HttpxTransport(fault_receiver.url) as transport:
        send_with_retries(transport, body, deadline=None, wait=wait)
    first, second = fault_receiver.wait_for_requests(2)
    assert (first.status, second.status) == (429, 204)
    assert len(waits) == 1 and waits[0] >= 2.0  # Retry-After is a floor
    assert second.header("Retry-Attempt") == "1"


def test_hanging_receiver_cannot_hold_retries_past_the_deadline(fault_receiver: Receiver) -> None:
    fault_receiver.default = Reply(hang=True)
    stop = threading.Event()
    with HttpxTransport(fault_receiver.url, timeout=30) as transport:
        delivery = send_with_retries(
            transport,
            b"x",
            deadline=time.monotonic() + 1.0,
            policy=RetryPolicy(min_backoff=0.05),
            wait=stop.wait,
        )
    fault_receiver.release()
    assert delivery.outcome is Outcome.GAVE_UP
    # The attempt timed out after the time left, not after the transport's 30 s.
    match = re.search(r"no response within ([0-9.]+)s", str(delivery.error))
    assert match is not None, delivery.error
    assert float(match.group(1)) <= 1.0
    assert len(fault_receiver.requests) >= 1


@pytest.fixture
def body() -> bytes:
    return generate_write_request(timestamp_ms=1_700_000_000_000)
