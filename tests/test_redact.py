"""Masking: URLs, headers, free text, and the records third-party loggers make while we send."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from prometheus_rw_bridge._redact import (
    MASK,
    basic_auth_secrets,
    is_secret_header,
    mask_headers,
    masking_logs,
    safe_url,
    scrub,
    scrub_exception_chain,
    secret_forms,
    url_secrets,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("https://u:p@host:1/w", "https://host:1/w", id="userinfo"),
        pytest.param("https://u@host/w", "https://host/w", id="user-only"),
        pytest.param("https://host/w?token=abc&a=b", "https://host/w?token=***&a=***", id="every-value"),
        pytest.param("https://host/w?X-Api-Key=abc", "https://host/w?X-Api-Key=***", id="api-key-query"),
        pytest.param("https://host/w?code=abc", "https://host/w?code=***", id="any-name"),
        pytest.param("https://host/w?abcdef", "https://host/w?***", id="bare-item"),
        pytest.param("https://host/w?a=&b", "https://host/w?a=&***", id="empty-value-and-bare"),
        pytest.param("https://host/w?a%20b=c%26d", "https://host/w?a%20b=***", id="names-kept-as-written"),
        pytest.param("https://host/w#frag", "https://host/w#***", id="fragment"),
        pytest.param("http://host/w", "http://host/w", id="no-query"),
        pytest.param("http://host:bad/w", "http://host:bad/w", id="malformed-port-still-shown"),
        pytest.param("http://[::1/w", MASK, id="unparseable"),
        pytest.param("/api/v1/write?p=x", "/api/v1/write?p=***", id="request-target"),
    ],
)
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown
    assert safe_url(shown) == shown  # idempotent: masking a masked URL changes nothing


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        pytest.param("Authorization", True, id="authorization"),
        pytest.param("Proxy-Authorization", True, id="proxy-authorization"),
        pytest.param("X-Api-Key", True, id="api-key"),
        pytest.param("X-Auth-Token", True, id="token"),
        pytest.param("Cookie", True, id="cookie"),
        pytest.param("X-Scope-OrgID", False, id="tenant"),
        pytest.param("X-Request-Source", False, id="plain"),
    ],
)
def test_is_secret_header(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


def test_mask_headers() -> None:
    assert mask_headers({"Authorization": "Bearer x", "X-A": "1"}) == {"Authorization": MASK, "X-A": "1"}


def test_url_secrets_are_the_password_and_the_longer_query_values() -> None:
    found = url_secrets("https://u:p%40ss@host/w?api_key=a%2Fb+c&db=1&token#fragment-x")
    assert set(found) == {"p%40ss", "p@ss", "a%2Fb+c", "a/b c", "token", "fragment-x"}
    assert "1" not in found  # masked in URLs, but too short to hunt for in other text


def test_basic_auth_secrets() -> None:
    assert basic_auth_secrets("user", "pw") == ("pw", "dXNlcjpwdw==")
    assert basic_auth_secrets("user", "") == ("dXNlcjo=",)


def test_secret_forms_are_longest_first_with_encodings() -> None:
    forms = secret_forms(["a b/c", "", "xyz", "t\x00k"])
    assert set(forms) == {"a b/c", "a%20b%2Fc", "a+b%2Fc", "xyz", "t\x00k", "t%00k", "t\\x00k"}
    assert [len(f) for f in forms] == sorted((len(f) for f in forms), reverse=True)


def test_scrub_exception_chain_masks_every_message_but_the_operating_systems() -> None:
    try:
        try:
            try:
                raise ConnectionRefusedError(111, f"refused {SECRET}")
            except OSError as os_error:
                raise ValueError(f"Illegal header value b'{SECRET}'") from os_error
        except ValueError:
            raise RuntimeError("at http://h/w?token=x", 3) from None  # context kept, cause None
    except RuntimeError as caught:
        error = caught
    scrub_exception_chain(error, [SECRET])
    assert error.args == ("at http://h/w?token=***", 3)
    assert isinstance(error.__context__, ValueError)
    assert str(error.__context__) == "Illegal header value b'***'"
    assert isinstance(error.__context__.__cause__, OSError)
    assert SECRET in str(error.__context__.__cause__)  # the OS's words: never request data


def test_scrub_masks_urls_and_secrets() -> None:
    text = 'POST http://u:pw@h/w?api_key=k1 "200"; see (https://h/x?a=b). token: tok-123'
    shown = 'POST http://h/w?api_key=*** "200"; see (https://h/x?a=***). token: ***'
    assert scrub(text, ["tok-123"]) == shown


# --------------------------------------------------------------------------- masking_logs


class Records(logging.Handler):
    """Keep every record, fully formatted, as a handler of the host application would see it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


SECRET = "sentinel-redact-test"


def test_records_of_third_party_loggers_are_scrubbed_inside_the_scope(records: Records) -> None:
    url = f"http://h/w?api_key={SECRET}"
    with masking_logs(lambda: [SECRET]):
        logging.getLogger("httpx").info("HTTP Request: %s %s", "POST", url)
        logging.getLogger("httpcore.http11").debug("headers %r", [(b"X-Echo", SECRET.encode())])
        try:
            raise ValueError(f"echo {SECRET}")
        except ValueError:
            logging.getLogger("httpcore.connection").debug("failed", exc_info=True, stack_info=True)
    assert records.lines[0] == "httpx HTTP Request: POST http://h/w?api_key=***"
    assert records.lines[1] == "httpcore.http11 headers [(b'X-Echo', b'***')]"
    assert "ValueError: echo ***" in records.lines[2] and "Stack (most recent call last)" in records.lines[2]
    for record in records.records:
        assert SECRET not in repr(vars(record))


def test_records_outside_the_scope_and_of_other_loggers_are_untouched(records: Records) -> None:
    url = f"http://h/w?api_key={SECRET}"
    logging.getLogger("httpx").info("HTTP Request: %s", url)  # the host's own client
    with masking_logs(lambda: [SECRET]):
        logging.getLogger("host.app").info("mine: %s", url)  # not a library under our transport
    assert records.lines == [f"httpx HTTP Request: {url}", f"host.app mine: {url}"]


def test_scope_is_per_thread(records: Records) -> None:
    url = f"http://h/w?api_key={SECRET}"
    inside, logged = threading.Event(), threading.Event()

    def host_thread() -> None:
        inside.wait(10)
        logging.getLogger("httpx").info("HTTP Request: %s", url)
        logged.set()

    thread = threading.Thread(target=host_thread)
    thread.start()
    with masking_logs(lambda: [SECRET]):
        inside.set()
        assert logged.wait(10)
    thread.join(10)
    assert records.lines == [f"httpx HTTP Request: {url}"]


def test_a_host_resetting_the_filters_gets_them_back_at_the_next_send(records: Records) -> None:
    with masking_logs(lambda: ()):
        pass
    logging.getLogger("httpx").filters.clear()  # say, a logging setup that starts afresh
    with masking_logs(lambda: [SECRET]):
        logging.getLogger("httpx").info("sent %s", SECRET)
    assert records.lines == ["httpx sent ***"]


def test_nested_scopes_mask_the_secrets_of_both(records: Records) -> None:
    with masking_logs(lambda: ["outer-secret"]), masking_logs(lambda: ["inner-secret"]):
        logging.getLogger("httpx").info("outer-secret inner-secret")
    assert records.lines == ["httpx *** ***"]


def test_botocore_signing_details_are_dropped_only_inside_the_scope(records: Records) -> None:
    botocore_auth = logging.getLogger("botocore.auth")
    with masking_logs(lambda: ()):
        botocore_auth.debug("CanonicalRequest:\n%s", "x-amz-security-token:abc")
        botocore_auth.debug("Signature:\n%s", "0123abcd")
        botocore_auth.debug("Calculating signature using v4 auth.")
    botocore_auth.debug("Signature:\n%s", "host-app-signature")
    assert records.lines == [
        "botocore.auth Calculating signature using v4 auth.",
        "botocore.auth Signature:\nhost-app-signature",
    ]


def test_a_failing_secret_source_drops_the_record_instead_of_breaking_the_request(records: Records) -> None:
    def broken() -> list[str]:
        raise RuntimeError("boom")

    with masking_logs(broken):
        logging.getLogger("httpx").info("HTTP Request: %s", SECRET)
    assert records.lines == []
