"""The protocol negotiation state machine, driven by a fake clock."""

from __future__ import annotations

import logging

import pytest
from clocks import FakeClock

from prometheus_rw_bridge._delivery.negotiate import DEFAULT_REPROBE_AFTER, Negotiator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("1.0", "1.0", id="v1"),
        pytest.param("2.0", "2.0", id="v2"),
        pytest.param("auto", "2.0", id="auto"),
    ],
)
def test_first_protocol(mode: str, expected: str) -> None:
    assert Negotiator(mode).protocol() == expected


@pytest.mark.parametrize("mode", [pytest.param("1.0", id="v1"), pytest.param("2.0", id="v2")])
@pytest.mark.parametrize("status", [pytest.param(204, id="204"), pytest.param(415, id="415")])
def test_fixed_modes_never_fall_back(mode: str, status: int) -> None:
    negotiator = Negotiator(mode)
    assert negotiator.observe(mode, status_code=status, confirmed_v2=False) is False
    assert negotiator.protocol() == mode


@pytest.mark.parametrize(
    ("status", "confirmed"),
    [
        pytest.param(415, False, id="415"),
        pytest.param(204, False, id="204-without-written-headers-prometheus-2.42"),
        pytest.param(200, False, id="200-without-written-headers"),
        pytest.param(400, False, id="400-before-confirmation"),
    ],
)
def test_auto_falls_back_and_asks_for_resend(clock: FakeClock, status: int, confirmed: bool) -> None:
    negotiator = Negotiator("auto", clock=clock)
    assert negotiator.observe("2.0", status_code=status, confirmed_v2=confirmed) is True
    assert negotiator.protocol() == "1.0"


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(None, id="no-answer"),
        pytest.param(429, id="429"),
        pytest.param(500, id="500"),
        pytest.param(503, id="503"),
        pytest.param(401, id="401"),
        pytest.param(404, id="404"),
    ],
)
def test_auto_keeps_v2_on_errors_that_say_nothing_about_the_protocol(
    clock: FakeClock, status: int | None
) -> None:
    negotiator = Negotiator("auto", clock=clock)
    assert negotiator.observe("2.0", status_code=status, confirmed_v2=False) is False
    assert negotiator.protocol() == "2.0"


def test_auto_stays_on_v2_when_confirmed(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", clock=clock)
    assert negotiator.observe("2.0", status_code=204, confirmed_v2=True) is False
    assert negotiator.confirmed_v2
    assert negotiator.protocol() == "2.0"


def test_400_after_confirmation_is_a_data_error_not_a_fallback(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", clock=clock)
    negotiator.observe("2.0", status_code=204, confirmed_v2=True)
    assert negotiator.observe("2.0", status_code=400, confirmed_v2=False) is False
    assert negotiator.protocol() == "2.0"


def test_415_after_confirmation_still_falls_back(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", clock=clock)
    negotiator.observe("2.0", status_code=204, confirmed_v2=True)
    assert negotiator.observe("2.0", status_code=415, confirmed_v2=False) is True
    assert not negotiator.confirmed_v2
    assert negotiator.protocol() == "1.0"


def test_outcomes_of_v1_requests_are_ignored(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", clock=clock)
    negotiator.observe("2.0", status_code=415, confirmed_v2=False)
    assert negotiator.observe("1.0", status_code=204, confirmed_v2=False) is False
    assert negotiator.observe("1.0", status_code=415, confirmed_v2=False) is False
    assert negotiator.protocol() == "1.0"


def test_reprobes_after_the_documented_while(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", reprobe_after=60.0, clock=clock)
    negotiator.observe("2.0", status_code=415, confirmed_v2=False)
    clock.now += 59.9
    assert negotiator.protocol() == "1.0"
    clock.now += 0.1
    assert negotiator.protocol() == "2.0"
    # The probe fails again: another full period on 1.0, counted from the new failure.
    clock.now += 5.0
    assert negotiator.observe("2.0", status_code=204, confirmed_v2=False) is True
    clock.now += 59.0
    assert negotiator.protocol() == "1.0"
    clock.now += 1.0
    assert negotiator.protocol() == "2.0"
    # This probe succeeds: 2.0 from now on.
    assert negotiator.observe("2.0", status_code=204, confirmed_v2=True) is False
    clock.now += 10 * 60.0
    assert negotiator.protocol() == "2.0"


def test_default_reprobe_is_an_hour(clock: FakeClock) -> None:
    assert DEFAULT_REPROBE_AFTER == 3600.0
    negotiator = Negotiator("auto", clock=clock)
    negotiator.observe("2.0", status_code=415, confirmed_v2=False)
    clock.now += 3599.0
    assert negotiator.protocol() == "1.0"
    clock.now += 1.0
    assert negotiator.protocol() == "2.0"


def test_infinite_reprobe_never_probes(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", reprobe_after=float("inf"), clock=clock)
    negotiator.observe("2.0", status_code=415, confirmed_v2=False)
    clock.now += 1e12
    assert negotiator.protocol() == "1.0"


def test_fallback_is_logged_once_per_event(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    negotiator = Negotiator("auto", clock=clock)
    with caplog.at_level(logging.WARNING, logger="prometheus_rw_bridge._delivery.negotiate"):
        negotiator.observe("2.0", status_code=204, confirmed_v2=False)
    assert len(caplog.records) == 1
    assert "without any X-Prometheus-Remote-Write-*-Written header" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("mode", "reprobe_after"),
    [
        pytest.param("3.0", 1.0, id="unknown-mode"),
        pytest.param("", 1.0, id="empty-mode"),
        pytest.param("auto", -1.0, id="negative-reprobe"),
        pytest.param("auto", float("nan"), id="nan-reprobe"),
    ],
)
def test_rejects_bad_arguments(mode: str, reprobe_after: float) -> None:
    with pytest.raises(ValueError):
        Negotiator(mode, reprobe_after=reprobe_after)


def test_repr_has_no_side_effects(clock: FakeClock) -> None:
    negotiator = Negotiator("auto", reprobe_after=1.0, clock=clock)
    negotiator.observe("2.0", status_code=415, confirmed_v2=False)
    clock.now += 2.0
    assert "fallback" in repr(negotiator)
    assert "fallback" in repr(negotiator)
