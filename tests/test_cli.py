"""The command line, driven as a subprocess: ``python -m prometheus_rw_bridge ...``."""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import cramjam
import httpx
import pytest
import trustme
from client_cert import CLIENT_CERT_MODES, ClientCertServer
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from servers import Server

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, cli
from prometheus_rw_bridge._protocol.schema import WriteRequest
from prometheus_rw_bridge.testing import Receiver, Reply

COMMAND = [sys.executable, "-m", "prometheus_rw_bridge"]
DEADLINE = 60.0


def clean_env() -> dict[str, str]:
    """The environment without any PROMETHEUS_REMOTE_WRITE_* setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_REMOTE_WRITE_")}


def run(
    *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={**clean_env(), **(env or {})},
    )


class Live:
    """A long-running command whose output lines are read as they come."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env() if env is None else dict(env),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """Return the first match of ``pattern`` in the output, waiting for new lines with a deadline."""
        regex = re.compile(pattern)
        for line in self.lines:
            if found := regex.search(line):
                return found
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)) from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(f"exited before {pattern!r} appeared:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if found := regex.search(line):
                return found

    def finish(self, sig: int | None = signal.SIGINT) -> tuple[int, str]:
        """Send ``sig`` (None: just wait), and return the exit code and the whole output."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(DEADLINE)
        self._reader.join(DEADLINE)
        while (line := self._queue.get()) is not None:
            self.lines.append(line)
        return code, "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def live() -> Iterator[list[Live]]:
    started: list[Live] = []
    yield started
    for one in started:
        one.kill()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


# --------------------------------------------------------------------------- general


@pytest.mark.parametrize("command", [None, "demo", "receive", "check", "forward"])
def test_every_command_has_help(command: str | None) -> None:
    result = run(*([command] if command else []), "--help")

    assert result.returncode == 0
    assert "usage: prometheus-rw-bridge" in result.stdout


def test_no_command_prints_usage_and_exits_2() -> None:
    result = run()

    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_bad_arguments_exit_2() -> None:
    result = run("forward", "x.prom", "--url", "http://127.0.0.1:9/api/v1/write", "--every", "soon")

    assert result.returncode == 2
    assert "--every" in result.stderr


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        pytest.param(["check", "http://x/w"], logging.WARNING, id="none"),
        pytest.param(["-v", "check", "http://x/w"], logging.INFO, id="before"),
        pytest.param(["check", "http://x/w", "-v"], logging.INFO, id="after"),
        pytest.param(["forward", "-", "--url", "http://x/w", "-vv"], logging.DEBUG, id="vv-after"),
        pytest.param(["-v", "receive", "--verbose"], logging.DEBUG, id="before-and-after-add-up"),
        pytest.param(["demo", "-v"], logging.INFO, id="demo"),
    ],
)
def test_verbose_is_accepted_before_and_after_the_command(argv: list[str], level: int) -> None:
    assert cli._log_level(cli._parser().parse_args(argv)) == level


def test_verbose_after_the_command_runs(receiver: Receiver) -> None:
    result = run("check", receiver.write_url, "-v")

    assert result.returncode == 0, result.stdout + result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("prometheus-rw-bridge")
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=DEADLINE)

    assert result.returncode == 0
    assert result.stdout.startswith("prometheus-rw-bridge ")


# --------------------------------------------------------------------------- check


def test_check_against_prometheus_without_receiver_names_the_flag(
    prometheus_no_receiver_server: Server,
) -> None:
    result = run("check", prometheus_no_receiver_server.write_url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    assert "remote-write receiver is off" in result.stdout
    assert "--web.enable-remote-write-receiver" in result.stdout


def test_check_against_prometheus_with_receiver_succeeds(prometheus_server: Server) -> None:
    result = run("check", prometheus_server.write_url, "--job", "cli_check_ok")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^OK: .* accepted the probe", result.stdout, re.MULTILINE)
    vector = prometheus_server.query_vector('prometheus_rw_bridge_check{job="cli_check_ok"}')
    assert list(vector.values()) == [1.0]


def test_check_against_victoriametrics_succeeds(victoriametrics_server: Server) -> None:
    result = run("check", victoriametrics_server.write_url)

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_against_victoriametrics_with_a_wrong_path_says_so(victoriametrics_server: Server) -> None:
    result = run("check", victoriametrics_server.url + "/api/v1/wrte")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "takes remote write (400): the path is probably wrong" in result.stdout
    assert "single-node and vmagent take /api/v1/write" in result.stdout
    assert "unsupported path requested" in result.stdout  # its own words, quoted


def test_check_succeeds_against_the_builtin_receiver_in_both_protocols(receiver: Receiver) -> None:
    assert run("check", receiver.write_url).returncode == 0
    result = run("check", "--protocol", "2.0", receiver.write_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 sample(s) written" in result.stdout
    assert receiver.violations == []


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        pytest.param(
            415, "unsupported Content-Type text/plain", ["refused the format", "generate_latest()"], id="415"
        ),
        pytest.param(400, "snappy: corrupt input", ["block format", "framed"], id="framed-snappy"),
        pytest.param(401, "invalid credentials", ["(401)", "no credentials were sent", "--tenant"], id="401"),
        pytest.param(403, "forbidden", ["(403)", "write"], id="403"),
        pytest.param(503, "overloaded", ["(503)", "retries"], id="503"),
        pytest.param(404, "page not found", ["path is probably wrong", "/api/v1/push"], id="404-path"),
    ],
)
def test_check_explains_scripted_answers(
    receiver: Receiver, status: int, message: str, expected: list[str]
) -> None:
    receiver.script(Reply(status, message))

    result = run("check", receiver.write_url)

    assert result.returncode == 1
    for text in expected:
        assert text in result.stdout
    assert message in result.stdout


def test_check_names_the_credentials_and_tenant_it_sent(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script(Reply(401, "no"))
    token = tmp_path / "token"
    token.write_text("s3cret-token-value\n")

    result = run("check", receiver.write_url, "--bearer-token-file", str(token), "--tenant", "team-a")

    assert result.returncode == 1
    assert f"the bearer token in {token}" in result.stdout
    assert "tenant 'team-a'" in result.stdout
    assert "s3cret-token-value" not in result.stdout + result.stderr
    (probe,) = receiver.requests
    assert probe.header("Authorization") == "Bearer s3cret-token-value"
    assert probe.header("X-Scope-OrgID") == "team-a"


def test_check_warns_about_a_misspelt_variable(receiver: Receiver) -> None:
    result = run("check", receiver.write_url, env={"PROMETHEUS_REMOTE_WRITE_TIMOUT": "5s"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "PROMETHEUS_REMOTE_WRITE_TIMOUT is not an option and is ignored; "
        "did you mean PROMETHEUS_REMOTE_WRITE_TIMEOUT?"
    ) in result.stderr
    assert result.stderr.count("is not an option") == 1


def test_check_unreadable_token_file_is_a_usage_error(receiver: Receiver, tmp_path: Path) -> None:
    result = run("check", receiver.write_url, "--bearer-token-file", str(tmp_path / "missing"))

    assert result.returncode == 2
    assert "missing" in result.stderr


def test_check_connection_refused_names_host_and_port() -> None:
    with Receiver() as receiver:
        url = receiver.write_url
    port = url.split(":")[2].split("/")[0]

    result = run("check", url)

    assert result.returncode == 1
    assert f"nothing is listening at 127.0.0.1:{port}" in result.stdout


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_receiver(ca: trustme.CA, *, require_client_cert: bool = False) -> Receiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return Receiver(ssl_context=context)


def test_check_tls_untrusted_certificate_suggests_ca_file(ca: trustme.CA) -> None:
    with tls_receiver(ca) as receiver:
        result = run("check", receiver.write_url)

    assert result.returncode == 1
    assert "TLS: the certificate of 127.0.0.1" in result.stdout
    assert "--ca-file" in result.stdout


def test_check_tls_with_ca_file_succeeds(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with tls_receiver(ca) as receiver:
        result = run("check", receiver.write_url, "--ca-file", str(ca_file))

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_tls_wrong_ca_file_names_it(ca: trustme.CA, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with tls_receiver(ca) as receiver:
        result = run("check", receiver.write_url, "--ca-file", str(other))

    assert result.returncode == 1
    assert f"not signed by a CA in --ca-file {other}" in result.stdout


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(
            "alert",
            "TLS: 127.0.0.1:{port} refused the handshake.\n"
            "  - the server wants a client certificate (mutual TLS): pass --cert-file and --key-file",
            id="alert",
        ),
        *(
            pytest.param(
                mode,
                "TLS: 127.0.0.1:{port} ended the connection during or right after the handshake, "
                "without an answer.\n"
                "  - no client certificate was sent, and the server may require one (mutual TLS): "
                "pass --cert-file and --key-file",
                id=mode,
            )
            for mode in CLIENT_CERT_MODES
            if mode != "alert"
        ),
    ],
)
def test_check_mutual_tls_without_client_certificate(
    ca: trustme.CA, tmp_path: Path, mode: str, expected: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = ca.issue_cert("127.0.0.1")
    with ClientCertServer(mode, leaf.configure_cert, ca.configure_trust) as server:
        result = run("check", server.url, "--ca-file", str(ca_file))

    assert result.returncode == 1
    assert expected.format(port=server.port) in result.stdout


def test_check_mutual_tls_with_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = tmp_path / "client.pem"
    ca.issue_cert("client").private_key_and_cert_chain_pem.write_to_path(str(cert))
    with tls_receiver(ca, require_client_cert=True) as receiver:
        missing = run("check", receiver.write_url, "--ca-file", str(ca_file))
        with_cert = run("check", receiver.write_url, "--ca-file", str(ca_file), "--cert-file", str(cert))

    # Whether this server's alert reaches the client is down to timing (the cases above pin
    # each); the diagnosis names the client certificate either way.
    assert missing.returncode == 1
    assert "(mutual TLS): pass --cert-file and --key-file" in missing.stdout
    assert with_cert.returncode == 0, with_cert.stdout + with_cert.stderr


def test_check_tls_certificate_for_another_host(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("metrics.example.org").configure_cert(context)
    with Receiver(ssl_context=context) as receiver:
        result = run("check", receiver.write_url, "--ca-file", str(ca_file))

    assert result.returncode == 1
    assert "not issued for '127.0.0.1'" in result.stdout


def test_check_http_url_for_a_tls_port(ca: trustme.CA) -> None:
    with tls_receiver(ca) as receiver:
        result = run("check", receiver.write_url.replace("https://", "http://"))

    assert result.returncode == 1
    assert "use https://" in result.stdout


def test_check_https_url_for_a_plain_port(receiver: Receiver) -> None:
    result = run("check", receiver.write_url.replace("http://", "https://"))

    assert result.returncode == 1
    assert "does not speak TLS there" in result.stdout


def test_check_unknown_host() -> None:
    result = run("check", "http://no-such-host.invalid/api/v1/write")

    assert result.returncode == 1
    assert "cannot resolve the host name 'no-such-host.invalid'" in result.stdout


# --------------------------------------------------------------------------- receive


def body_with_labels(*labels: tuple[str, str]) -> bytes:
    request = WriteRequest()
    series = request.timeseries.add()
    for name, value in labels:
        series.labels.add(name=name, value=value)
    series.samples.add(value=1.0, timestamp=int(time.time() * 1000))
    return request.SerializeToString()


def test_receive_flags_framed_snappy_and_unsorted_labels(live: list[Live]) -> None:
    process = Live("receive", "--port", "0")
    live.append(process)
    url = process.wait_for(r"receiving remote write at (\S+)").group(1)
    headers = dict(REMOTE_WRITE_HEADERS)
    raw = body_with_labels(("__name__", "up"), ("job", "a"))
    unsorted = body_with_labels(("__name__", "up"), ("zone", "b"), ("job", "a"))

    framed = httpx.post(url, content=bytes(cramjam.snappy.compress(raw)), headers=headers)
    accepted = httpx.post(url, content=bytes(cramjam.snappy.compress_raw(unsorted)), headers=headers)

    assert framed.status_code == 400
    assert accepted.status_code == 204
    process.wait_for(r"^! framed-snappy: ")
    process.wait_for(r"^! unsorted-labels: up\{")
    code, output = process.finish()
    assert code == 0
    assert 'up{job="a",zone="b"} 1.0' in output
    assert "# received 2 requests, 1 samples accepted, 1 series, 2 violations" in output


def test_receive_strict_answers_400_and_fail_on_violation_exits_1(live: list[Live]) -> None:
    process = Live("receive", "--strict", "--fail-on-violation")
    live.append(process)
    url = process.wait_for(r"receiving remote write at (\S+)").group(1)
    body = bytes(cramjam.snappy.compress_raw(body_with_labels(("__name__", "up"), ("job", ""))))

    response = httpx.post(url, content=body, headers=dict(REMOTE_WRITE_HEADERS))

    assert response.status_code == 400
    assert response.text.startswith("empty-label-value:")
    process.wait_for(r"^! empty-label-value")
    code, _ = process.finish(signal.SIGTERM)
    assert code == 1


def test_receive_refuses_a_port_in_use(receiver: Receiver) -> None:
    result = run("receive", "--port", str(receiver.port))

    assert result.returncode == 2
    assert "cannot listen" in result.stderr


# --------------------------------------------------------------------------- forward


def sample_text() -> str:
    registry = CollectorRegistry()
    Counter("batch_items", "Items processed.", ["kind"], registry=registry).labels("a").inc(7)
    Gauge("batch_last_success_unixtime", "Last success.", registry=registry).set(1700000000)
    return generate_latest(registry).decode()


def test_forward_a_file_once(receiver: Receiver, tmp_path: Path) -> None:
    source = tmp_path / "metrics.prom"
    source.write_text(sample_text())

    result = run(
        "forward", str(source), "--url", receiver.write_url, "--job", "nightly", "--label", "env=test"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "# push 1:" in result.stdout
    stored = receiver.get("batch_items_total", job="nightly", kind="a", env="test")
    assert stored is not None and stored.value == 7.0
    assert receiver.get("batch_last_success_unixtime") is not None
    assert receiver.violations == []


def test_forward_a_file_to_prometheus(prometheus_server: Server, tmp_path: Path, unique_job: str) -> None:
    source = tmp_path / "metrics.prom"
    source.write_text(sample_text())

    result = run("forward", str(source), "--url", prometheus_server.write_url, "--job", unique_job)

    assert result.returncode == 0, result.stdout + result.stderr
    vector = prometheus_server.query_vector(f'batch_items_total{{job="{unique_job}"}}')
    assert list(vector.values()) == [7.0]


def test_forward_standard_input(receiver: Receiver) -> None:
    result = run("forward", "-", "--url", receiver.write_url, stdin=sample_text())

    assert result.returncode == 0, result.stdout + result.stderr
    stored = receiver.get("batch_items_total", job="forward")
    assert stored is not None and stored.value == 7.0


def test_forward_scrapes_a_metrics_url(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Gauge("scraped_temperature", "Temperature.", registry=registry).set(21.5)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        target = f"127.0.0.1:{server.server_port}"
        result = run("forward", f"http://{target}/metrics", "--url", receiver.write_url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert result.returncode == 0, result.stdout + result.stderr
    stored = receiver.get("scraped_temperature", instance=target, job="forward")
    assert stored is not None and stored.value == 21.5


def test_forward_every_pushes_repeatedly_until_interrupted(
    receiver: Receiver, tmp_path: Path, live: list[Live]
) -> None:
    source = tmp_path / "metrics.prom"
    source.write_text(sample_text())
    process = Live("forward", str(source), "--url", receiver.write_url, "--every", "0.2")
    live.append(process)

    process.wait_for(r"^# push 3:")
    code, output = process.finish()

    assert code == 0
    assert "# forwarded" in output
    assert len(receiver.wait_for_requests(3, 0, accepted=True)) >= 3
    assert receiver.violations == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(["missing.prom"], 2, "cannot read missing.prom", id="missing-file"),
        pytest.param(["-", "--every", "5"], 2, "standard input", id="stdin-every"),
        pytest.param(["-", "--label", "novalue"], 2, "NAME=VALUE", id="bad-label"),
    ],
)
def test_forward_usage_errors(receiver: Receiver, args: list[str], code: int, message: str) -> None:
    result = run("forward", *args, "--url", receiver.write_url, stdin="")

    assert result.returncode == code
    assert message in result.stderr


def test_forward_not_text_format_is_a_usage_error_naming_the_line(receiver: Receiver, tmp_path: Path) -> None:
    source = tmp_path / "bad.prom"
    source.write_text("# HELP fine A good line.\n# TYPE fine gauge\nfine 1\nthis is { not metrics\nlater 2\n")

    result = run("forward", str(source), "--url", receiver.write_url)

    assert result.returncode == 2
    assert f"{source} is not in the Prometheus text format: line 4: " in result.stderr
    assert "(the line: 'this is { not metrics')" in result.stderr
    assert receiver.requests == []


def test_forward_scrape_failure_exits_1(receiver: Receiver) -> None:
    result = run("forward", receiver.base_url + "/no-metrics-here", "--url", receiver.write_url)

    assert result.returncode == 1
    assert "answered 404" in result.stderr
    assert receiver.requests == []


def test_forward_push_failure_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "metrics.prom"
    source.write_text(sample_text())
    with Receiver(default=Reply(400, "bad data")) as receiver:
        result = run("forward", str(source), "--url", receiver.write_url, "--timeout", "5")

    assert result.returncode == 1
    assert "push failed" in result.stderr
    assert "bad data" in result.stderr


# --------------------------------------------------------------------------- demo


def test_demo_prints_received_series() -> None:
    result = run("demo", "--duration", "3", "--interval", "0.5")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "# built-in receiver listening at http://127.0.0.1:" in out
    assert re.search(r"^# request \d+ from prometheus-rw-bridge/\S+: protocol 1.0", out, re.MULTILINE)
    for name in (
        'demo_requests_total{instance="demo-app",job="demo",method="GET",path="/"}',
        "demo_requests_in_progress{",
        'demo_request_duration_seconds_bucket{instance="demo-app",job="demo",le="0.01"}',
        "demo_response_size_bytes_sum{",
        'demo_build_info{commit="abc123",instance="demo-app",job="demo",version="1.2.3"} 1.0',
        'demo_state{demo_state="serving",instance="demo-app",job="demo"} 1.0',
    ):
        assert name in out
    assert "# TYPE demo_requests counter" in out or "# TYPE demo_requests_total counter" in out
    assert re.search(r"^# demo finished after [\d.]+s: [1-9]\d* pushes accepted, 0 errors", out, re.MULTILINE)
    assert "0 violations" in out


@pytest.mark.parametrize("url", [pytest.param(None, id="built-in-receiver"), pytest.param("given", id="url")])
def test_demo_without_cramjam_exits_1_saying_why(url: str | None, receiver: Receiver) -> None:
    without_cramjam = (
        "import sys; sys.modules['cramjam'] = None  # as if not installed\n"
        "from prometheus_rw_bridge.cli import main; raise SystemExit(main(sys.argv[1:]))"
    )
    args = ["demo", "--duration", "1", "--interval", "0.2", *(["--url", receiver.write_url] if url else [])]
    result = subprocess.run(
        [sys.executable, "-c", without_cramjam, *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=clean_env(),
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "prometheus-rw-bridge: remote write is off: cramjam is required for snappy compression but "
        "cannot be imported; install it with: pip install cramjam"
    ) in result.stderr
    assert "# demo finished" not in result.stdout
    assert receiver.requests == []


def test_demo_protocol_2() -> None:
    result = run("demo", "--duration", "2", "--interval", "0.5", "--protocol", "2.0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^# request \d+ from \S+: protocol 2.0, \d+ samples, answered 200", result.stdout, re.MULTILINE
    )
    assert "# TYPE demo_request_duration_seconds histogram" in result.stdout
    assert "0 violations" in result.stdout


def test_demo_ctrl_c_ends_cleanly(live: list[Live]) -> None:
    process = Live("demo", "--interval", "0.3")
    live.append(process)
    process.wait_for(r"^# request 2 ")

    code, output = process.finish(signal.SIGINT)

    assert code == 0
    assert "# demo finished" in output
    assert "Traceback" not in output


def test_demo_pushes_to_prometheus(prometheus_server: Server) -> None:
    result = run("demo", "--url", prometheus_server.write_url, "--duration", "2", "--interval", "0.5")

    assert result.returncode == 0, result.stdout + result.stderr
    # The demo ends every series with a stale marker; a range query still sees the values.
    vector = prometheus_server.query_vector('max_over_time(demo_requests_total{job="demo",method="GET"}[5m])')
    assert len(vector) == 1
    assert next(iter(vector.values())) >= 1


def test_demo_pushes_to_a_given_url(receiver: Receiver) -> None:
    result = run("demo", "--url", receiver.write_url, "--duration", "2", "--interval", "0.5")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pushes: " in result.stdout
    assert receiver.get("demo_requests_total", method="GET") is not None
