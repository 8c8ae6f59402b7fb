"""The built-in validating receiver: decoding both protocols, storing, and flagging every rule."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence

import cramjam
import httpx
import pytest
import trustme
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, REMOTE_WRITE_V2_HEADERS, generate_write_request
from prometheus_rw_bridge._protocol.schema import V2Request, WriteRequest
from prometheus_rw_bridge.testing import HANG, RULES, ReceivedRequest, Receiver, Reply

HEADERS = dict(REMOTE_WRITE_HEADERS)


def body_v1(series: Sequence[tuple[Sequence[tuple[str, str]], float, int]]) -> bytes:
    """Build a compressed 1.0 request with labels in exactly the given order."""
    request = WriteRequest()
    for labels, value, timestamp in series:
        ts = request.timeseries.add()
        for name, label_value in labels:
            ts.labels.add(name=name, value=label_value)
        ts.samples.add(value=value, timestamp=timestamp)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def body_v2(labels: Sequence[tuple[str, str]], value: float, timestamp: int, *, first: str = "") -> bytes:
    """Build a compressed 2.0 request holding one series with one sample."""
    request = V2Request()
    symbols = [first]
    refs = []
    for name, label_value in labels:
        for text in (name, label_value):
            if text not in symbols:
                symbols.append(text)
            refs.append(symbols.index(text))
    request.symbols.extend(symbols)
    ts = request.timeseries.add()
    ts.labels_refs.extend(refs)
    ts.samples.add(value=value, timestamp=timestamp)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


UP = (("__name__", "up"), ("job", "a"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


@pytest.fixture
def strict_receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as started:
        yield started


def post(receiver: Receiver, body: bytes, headers: Mapping[str, str] = HEADERS) -> httpx.Response:
    return httpx.post(receiver.write_url, content=body, headers=dict(headers))


def rules(receiver: Receiver) -> set[str]:
    return {violation.rule for violation in receiver.violations}


def test_accepts_generate_write_request_and_stores_latest_values(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs done.", ["queue"], registry=registry)
    counter.labels("fast").inc(3)
    Gauge("temperature", "Now.", registry=registry).set(21.5)

    response = post(receiver, generate_write_request(registry, job="app", instance="i1", timestamp_ms=1000))

    assert response.status_code == 204
    assert rules(receiver) == set()
    stored = receiver.get("jobs_total", queue="fast", job="app", instance="i1")
    assert stored is not None
    assert (stored.value, stored.timestamp_ms, stored.metric_type) == (3.0, 1000, "counter")
    text = receiver.to_text()
    assert "# TYPE temperature gauge\n" in text
    assert 'temperature{instance="i1",job="app"} 21.5 1000\n' in text


def test_keeps_the_latest_value_per_series(receiver: Receiver) -> None:
    post(receiver, body_v1([(UP, 1.0, 1000)]))
    post(receiver, body_v1([(UP, 0.0, 2000)]))

    stored = receiver.get("up", job="a")
    assert stored is not None
    assert (stored.value, stored.timestamp_ms) == (0.0, 2000)
    assert receiver.samples_received == 2


def test_protocol_2_is_decoded_and_answered_with_written_headers(receiver: Receiver) -> None:
    response = post(receiver, body_v2(UP, 1.0, 5000), REMOTE_WRITE_V2_HEADERS)

    assert response.status_code == 200
    assert response.headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"
    assert response.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
    assert response.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "0"
    assert receiver.requests[-1].protocol == "2.0"
    assert receiver.get("up", job="a") is not None


def test_symbols_table_must_start_with_the_empty_string(receiver: Receiver) -> None:
    post(receiver, body_v2(UP, 1.0, 5000, first="oops"), REMOTE_WRITE_V2_HEADERS)

    assert rules(receiver) == {"symbols-table"}


def test_a_2_0_body_sent_as_1_0_is_recognised(receiver: Receiver) -> None:
    response = post(receiver, body_v2(UP, 1.0, 5000))

    assert response.status_code == 204
    assert rules(receiver) == {"content-type"}
    assert "remote-write 2.0 message" in receiver.violations[0].detail


def test_text_format_is_answered_415_with_the_classic_mistake_explained(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)

    response = post(receiver, generate_latest(registry), {"Content-Type": "text/plain; version=0.0.4"})

    assert response.status_code == 415
    assert "text-format" in response.text
    assert "generate_latest()" in response.text
    assert rules(receiver) == {"text-format"}


def test_text_body_with_protobuf_headers_is_still_recognised(receiver: Receiver) -> None:
    response = post(receiver, b"# HELP g G.\n# TYPE g gauge\ng 1.0\n")

    assert response.status_code == 415
    assert "text-format" in response.text


def test_framed_snappy_is_rejected_with_the_rule(receiver: Receiver) -> None:
    framed = bytes(cramjam.snappy.compress(WriteRequest().SerializeToString() + b"\n\x00"))

    response = post(receiver, framed)

    assert response.status_code == 400
    assert response.text.startswith("framed-snappy: snappy: corrupt input")
    assert rules(receiver) == {"framed-snappy"}


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        pytest.param(b"\x00\x01\x02 definitely not snappy \xff\xfe", "not-snappy", id="not-snappy"),
        pytest.param(
            bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff\xff")), "not-protobuf", id="not-protobuf"
        ),
    ],
)
def test_undecodable_bodies_are_rejected_even_when_not_strict(
    receiver: Receiver, body: bytes, rule: str
) -> None:
    response = post(receiver, body)

    assert response.status_code == 400
    assert response.text.startswith(rule + ":")


@pytest.mark.parametrize(
    ("labels", "rule"),
    [
        pytest.param((("__name__", "up"), ("zone", "b"), ("job", "a")), "unsorted-labels", id="unsorted"),
        pytest.param((("__name__", "up"), ("job", "a"), ("job", "b")), "duplicate-label", id="duplicate"),
        pytest.param((("__name__", "up"), ("job", "")), "empty-label-value", id="empty-value"),
        pytest.param((("", "x"), ("__name__", "up")), "empty-label-name", id="empty-name"),
        pytest.param((("job", "a"),), "missing-metric-name", id="no-name"),
        pytest.param((("__name__", "up-time"),), "invalid-metric-name", id="bad-metric-name"),
        pytest.param((("__name__", "up"), ("job-name", "a")), "invalid-label-name", id="bad-label-name"),
    ],
)
def test_label_rules_are_flagged_and_answered_400_in_strict_mode(
    receiver: Receiver, strict_receiver: Receiver, labels: tuple[tuple[str, str], ...], rule: str
) -> None:
    body = body_v1([(labels, 1.0, 1000)])

    lenient = post(receiver, body)
    strict = post(strict_receiver, body)

    assert lenient.status_code == 204
    assert rule in rules(receiver)
    assert rule in RULES
    assert strict.status_code == 400
    assert strict.text.startswith(rule + ":")
    assert strict_receiver.series() == []


def test_out_of_order_and_duplicate_timestamps_across_requests(receiver: Receiver) -> None:
    post(receiver, body_v1([(UP, 1.0, 2000)]))
    post(receiver, body_v1([(UP, 1.0, 1000)]))
    post(receiver, body_v1([(UP, 5.0, 2000)]))
    post(receiver, body_v1([(UP, 1.0, 2000)]))

    flagged = [(r.number, [v.rule for v in r.violations]) for r in receiver.requests]
    assert flagged == [(1, []), (2, ["out-of-order"]), (3, ["duplicate-timestamp"]), (4, [])]
    stored = receiver.get("up")
    assert stored is not None and stored.timestamp_ms == 2000


def test_out_of_order_within_one_request(strict_receiver: Receiver) -> None:
    response = post(strict_receiver, body_v1([(UP, 1.0, 2000), (UP, 1.0, 1000)]))

    assert response.status_code == 400
    assert "out-of-order" in response.text


@pytest.mark.parametrize(
    ("drop", "rule"),
    [
        pytest.param("Content-Encoding", "content-encoding", id="encoding"),
        pytest.param("Content-Type", "content-type", id="type"),
        pytest.param("X-Prometheus-Remote-Write-Version", "version-header", id="version"),
    ],
)
def test_missing_headers_are_flagged(receiver: Receiver, drop: str, rule: str) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != drop}

    response = post(receiver, body_v1([(UP, 1.0, 1000)]), headers)

    assert response.status_code == 204
    assert rules(receiver) == {rule}


def test_strict_mode_refuses_header_violations(strict_receiver: Receiver) -> None:
    headers = dict(HEADERS, **{"User-Agent": ""})  # httpx would add its own

    response = post(strict_receiver, body_v1([(UP, 1.0, 1000)]), headers)

    assert (response.status_code, response.text) == (400, "user-agent: no User-Agent header\n")
    assert strict_receiver.series() == []


def test_wrong_version_header_for_protocol_2(receiver: Receiver) -> None:
    headers = dict(REMOTE_WRITE_V2_HEADERS, **{"X-Prometheus-Remote-Write-Version": "0.1.0"})

    post(receiver, body_v2(UP, 1.0, 1000), headers)

    assert rules(receiver) == {"version-header"}


def test_unsupported_content_type_is_answered_415(receiver: Receiver) -> None:
    response = post(
        receiver, body_v1([(UP, 1.0, 1000)]), dict(HEADERS, **{"Content-Type": "application/json"})
    )

    assert response.status_code == 415
    assert "content-type" in response.text


def test_unsupported_content_encoding_is_answered_415(receiver: Receiver) -> None:
    response = post(receiver, body_v1([(UP, 1.0, 1000)]), dict(HEADERS, **{"Content-Encoding": "gzip"}))

    assert response.status_code == 415
    assert response.text.startswith("content-encoding: unsupported Content-Encoding 'gzip'")


def test_a_scripted_reply_is_the_answer(receiver: Receiver) -> None:
    receiver.script(Reply(401, "invalid credentials"))

    response = post(receiver, body_v1([(UP, 1.0, 1000)]))

    assert (response.status_code, response.text) == (401, "invalid credentials")
    assert receiver.series() == []


def test_on_request_is_called_and_waiters_are_woken() -> None:
    seen: list[ReceivedRequest] = []
    with Receiver(on_request=seen.append) as receiver:
        waiter_result: list[bool] = []
        waiter = threading.Thread(
            target=lambda: waiter_result.append(len(receiver.wait_for_requests(2, 30)) == 2)
        )
        waiter.start()
        post(receiver, body_v1([(UP, 1.0, 1000)]))
        post(receiver, b"garbage")
        waiter.join()

    assert waiter_result == [True]
    assert [(r.number, r.status) for r in seen] == [(1, 204), (2, 400)]
    assert [r.number for r in receiver.wait_for_requests(1, 0, accepted=True)] == [1]
    with pytest.raises(AssertionError, match=r"expected 2 accepted requests at http://127\.0\.0\.1:.* got 1"):
        receiver.wait_for_requests(2, 0, accepted=True)


def test_other_paths_and_methods(receiver: Receiver) -> None:
    post(receiver, body_v1([(UP, 1.0, 1000)]))

    assert httpx.post(receiver.base_url + "/write", content=b"x").status_code == 404
    assert httpx.get(receiver.write_url).status_code == 405
    page = httpx.get(receiver.base_url + "/")
    assert page.status_code == 200
    assert 'up{job="a"} 1.0 1000' in page.text


def test_stop_hangs_up_on_keep_alive_connections() -> None:
    receiver = Receiver().start()
    with httpx.Client() as client:
        assert client.post(receiver.write_url, content=body_v1([(UP, 1.0, 1000)]), headers=HEADERS).is_success
        receiver.stop()

        with pytest.raises(httpx.TransportError):
            client.post(receiver.write_url, content=body_v1([(UP, 1.0, 2000)]), headers=HEADERS)
    assert receiver.samples_received == 1


def test_stop_is_idempotent_and_frees_the_port() -> None:
    receiver = Receiver().start()
    url = receiver.write_url
    receiver.stop()
    receiver.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.post(url, content=b"")


# --------------------------------------------------------------------------- scripted faults


def send_in_thread(url: str, body: bytes) -> tuple[threading.Thread, list[BaseException | httpx.Response]]:
    """POST from a thread of its own (for replies that keep the client waiting)."""
    outcome: list[BaseException | httpx.Response] = []

    def send() -> None:
        try:
            outcome.append(httpx.post(url, content=body, headers=HEADERS, timeout=60))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, outcome


def test_the_script_is_used_in_order_then_real_answers() -> None:
    with Receiver([503, Reply(429, "slow down", {"Retry-After": "7"})]) as receiver:
        answers = [post(receiver, body_v1([(UP, 1.0, ts)])) for ts in (1000, 2000, 3000)]

    assert [a.status_code for a in answers] == [503, 429, 204]
    assert answers[1].headers["Retry-After"] == "7" and answers[1].text == "slow down"
    assert [r.status for r in receiver.requests] == [503, 429, 204]
    stored = receiver.get("up")  # only the accepted request is stored
    assert stored is not None and stored.timestamp_ms == 3000


def test_the_default_reply_answers_anything_anywhere() -> None:
    with Receiver(default=Reply(202, "taken")) as receiver:
        junk = httpx.post(receiver.base_url + "/anywhere", content=b"junk")
        real = post(receiver, body_v1([(UP, 1.0, 1000)]))

    assert (junk.status_code, junk.text, real.status_code) == (202, "taken", 202)
    assert receiver.requests[0].decoded is None and receiver.requests[0].path == "/anywhere"
    assert receiver.get("up") is not None


def test_a_hang_answers_nothing_until_released(receiver: Receiver) -> None:
    receiver.script(HANG)
    thread, outcome = send_in_thread(receiver.write_url, body_v1([(UP, 1.0, 1000)]))

    (hanging,) = receiver.wait_for_requests(1)  # recorded while it hangs
    assert hanging.status is None and not hanging.accepted
    assert thread.is_alive()
    receiver.release()
    thread.join()

    assert isinstance(outcome[0], httpx.RemoteProtocolError)
    assert receiver.series() == []


def test_a_delay_released_early_answers_nothing(receiver: Receiver) -> None:
    receiver.script(Reply(delay=600))
    thread, outcome = send_in_thread(receiver.write_url, body_v1([(UP, 1.0, 1000)]))
    receiver.wait_for_requests(1)

    receiver.release()
    thread.join()

    assert isinstance(outcome[0], httpx.RemoteProtocolError)


def test_a_drop_closes_the_connection_without_an_answer(receiver: Receiver) -> None:
    receiver.script(Reply(drop=True))

    with pytest.raises(httpx.RemoteProtocolError):
        post(receiver, body_v1([(UP, 1.0, 1000)]))
    assert post(receiver, body_v1([(UP, 1.0, 2000)])).status_code == 204
    assert [r.status for r in receiver.requests] == [None, 204]


def test_an_echo_quotes_the_target_and_headers(receiver: Receiver) -> None:
    receiver.script(Reply(401, "who are you?", echo=True))

    response = httpx.post(
        receiver.write_url + "?tenant=a", content=b"x", headers={**HEADERS, "Authorization": "Bearer t0ken"}
    )

    assert response.status_code == 401
    lines = response.text.splitlines()
    assert lines[:2] == ["who are you?", "/api/v1/write?tenant=a"]
    assert "Authorization: Bearer t0ken" in lines


def test_stop_refuses_connections_and_restart_listens_on_the_same_port() -> None:
    with Receiver() as receiver:
        port = receiver.port
        assert post(receiver, body_v1([(UP, 1.0, 1000)])).status_code == 204
        receiver.stop()
        with pytest.raises(httpx.ConnectError):
            post(receiver, body_v1([(UP, 1.0, 2000)]))

        receiver.restart()

        assert receiver.port == port
        assert post(receiver, body_v1([(UP, 1.0, 3000)])).status_code == 204
    assert [r.number for r in receiver.requests] == [1, 2]
    assert receiver.value("up") == 1.0


def test_strict_refusals_come_before_the_script_and_do_not_use_it(strict_receiver: Receiver) -> None:
    strict_receiver.script(Reply(500))

    refused = post(strict_receiver, body_v1([((("__name__", "up"), ("job", "")), 1.0, 1000)]))
    scripted = post(strict_receiver, body_v1([(UP, 1.0, 1000)]))

    assert (refused.status_code, scripted.status_code) == (400, 500)


def test_off_the_write_path_is_404_and_recorded(receiver: Receiver) -> None:
    response = httpx.post(
        receiver.base_url + "/api/v1/push", content=body_v1([(UP, 1.0, 1000)]), headers=HEADERS
    )

    assert response.status_code == 404
    (request,) = receiver.requests
    assert (request.path, request.status, request.violations) == ("/api/v1/push", 404, [])


def test_a_request_in_absolute_form_is_on_the_write_path(receiver: Receiver) -> None:
    with httpx.Client(proxy=receiver.base_url) as client:  # the receiver plays the proxy
        response = client.post(
            "http://elsewhere.invalid/api/v1/write", content=body_v1([(UP, 1.0, 1000)]), headers=HEADERS
        )

    assert response.status_code == 204
    assert receiver.requests[0].path == "http://elsewhere.invalid/api/v1/write"
    assert receiver.get("up") is not None


def test_written_headers_can_be_left_out_like_a_1_0_only_receiver() -> None:
    with Receiver(written_headers=False) as receiver:
        response = post(receiver, body_v2(UP, 1.0, 5000), REMOTE_WRITE_V2_HEADERS)

    assert response.status_code == 200
    assert not [name for name in response.headers if name.lower().endswith("-written")]


def test_keep_requests_bounds_the_requests_kept_not_the_series() -> None:
    with Receiver(keep_requests=1) as receiver:
        post(receiver, body_v1([(UP, 1.0, 1000)]))
        post(receiver, body_v1([((("__name__", "down"),), 0.0, 1000)]))

    assert [r.number for r in receiver.requests] == [2]
    assert [s.name for s in receiver.series()] == ["down", "up"]
    assert receiver.samples_received == 2


def test_a_failing_on_request_callback_is_logged_and_the_request_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(received: ReceivedRequest) -> None:
        raise RuntimeError("callback bug")

    with Receiver(on_request=broken) as receiver:
        assert post(receiver, body_v1([(UP, 1.0, 1000)])).status_code == 204

    assert "on_request callback failed" in caplog.text and "callback bug" in caplog.text


def test_clear_forgets_series_requests_and_order(receiver: Receiver) -> None:
    post(receiver, body_v1([(UP, 1.0, 2000)]))

    receiver.clear()
    post(receiver, body_v1([(UP, 1.0, 1000)]))  # older than the forgotten sample: no violation

    assert [r.number for r in receiver.requests] == [2]
    assert receiver.violations == []


def test_a_tls_client_stalled_in_its_handshake_holds_up_no_other() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with Receiver(ssl_context=context) as receiver:
        assert receiver.write_url.startswith("https://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", receiver.port)):  # connects, never says hello
            response = httpx.post(
                receiver.write_url, content=body_v1([(UP, 1.0, 1000)]), headers=HEADERS, verify=client_context
            )

    assert response.status_code == 204
