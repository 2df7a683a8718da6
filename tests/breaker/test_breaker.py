"""The relay breaker on gpiozero's mock pins: journal across restarts, no boot glitch, replays,
the installer's override, the feedback contact, and the installer CLI against a running service loop."""
from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.breaker import BreakerControl, request
from appliance.clock import JST, ManualClock, iso
from appliance.config import PIN_FACTORIES
from appliance.store import Store
from drivers.breaker import RelayBreaker
from drivers.breaker.relay import FACTORY_CLASSES, make_pin_factory


def test_the_last_commanded_state_survives_a_restart_without_a_glitch(tmp_path):
    journal = tmp_path / "breaker.json"
    f1 = MockFactory()
    b = RelayBreaker(17, journal, pin_factory=f1)
    assert f1.pin(17).state and b.state().closed
    assert b.command(False, "security error from power company A")
    assert not f1.pin(17).state
    b.shutdown()
    f2 = MockFactory()  # a reboot: fresh pins
    b2 = RelayBreaker(17, journal, pin_factory=f2)
    assert [s.state for s in f2.pin(17).states] == [False]  # came up open: never closed for a moment
    s = b2.state()
    assert s.closed is False and s.reason == "security error from power company A"


def test_an_nc_wired_active_low_relay_is_driven_the_right_way_round(tmp_path):
    f = MockFactory()
    b = RelayBreaker(5, tmp_path / "j.json", pin_factory=f, normally_closed=True, active_high=False)
    # closed through the NC contact: coil off; active low: coil off = pin high
    assert b.state().closed and f.pin(5).state
    b.command(False, "test")
    assert not f.pin(5).state


def test_replayed_commands_are_ignored_even_after_a_restart(tmp_path):
    journal = tmp_path / "breaker.json"
    b = RelayBreaker(17, journal, pin_factory=MockFactory())
    assert b.command(False, "installer #7", command_id=7)
    assert b.command(True, "installer #8", command_id=8)
    assert not b.command(False, "installer #7 again", command_id=7)  # replayed
    b.shutdown()
    b = RelayBreaker(17, journal, pin_factory=MockFactory())
    assert not b.command(False, "installer #8 replayed after a restart", command_id=8)
    assert b.state().closed is True


def test_an_override_pins_the_breaker_until_released(tmp_path):
    f = MockFactory()
    b = RelayBreaker(17, tmp_path / "j.json", pin_factory=f)
    assert b.command(False, "installer: meter exchange", override=True)
    assert not b.command(True, "confirmation matches again")  # automatic action refused
    assert not f.pin(17).state and b.state().override
    assert b.release("work done")
    assert not b.state().override and "override released: work done" in b.state().reason
    assert not f.pin(17).state  # release does not switch: it stays open until told
    assert b.command(True, "confirmation matches again") and f.pin(17).state


def test_the_feedback_contact_is_reported_and_a_welded_contact_raises_an_alert(tmp_path):
    f = MockFactory()
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=JST))
    store = Store(tmp_path / "meter.sqlite3")
    relay = RelayBreaker(17, tmp_path / "j.json", pin_factory=f, feedback_pin=27)
    f.pin(27).drive_high()  # the auxiliary contact follows the main contact: closed
    control = BreakerControl(store, relay, clock)
    assert store.breaker_state().contact is True and not store.breaker_state().contact_fault
    control.set(False, "test open")  # ... but the contact stays closed: welded
    state = store.breaker_state()
    assert state.closed is False and state.contact is True and state.contact_fault
    alert, = store.alerts()
    assert alert["kind"] == "breaker_fault"
    store.close()


def test_the_installer_cli_opens_with_an_override_and_releases_through_the_running_service(tmp_path, capsys):
    from smartmeter.cli import main

    store_path = tmp_path / "meter.sqlite3"
    config = tmp_path / "meter.toml"
    config.write_text(f'[meter]\nid = "MTR-B1"\nstore = "{store_path}"\n')
    f = MockFactory()
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=JST))
    service_store = Store(store_path)
    control = BreakerControl(service_store, RelayBreaker(17, tmp_path / "j.json", pin_factory=f), clock)
    stop = threading.Event()

    def service_loop():  # what MeterService.step does for the breaker each tick
        while not stop.is_set():
            control.apply_requests()
            stop.wait(0.05)

    t = threading.Thread(target=service_loop, daemon=True)
    t.start()
    try:
        assert main(["appliance", "breaker", "open", "--reason", "meter exchange", "--override", "-c", str(config)]) == 0
        assert "OPEN (override)" in capsys.readouterr().out and not f.pin(17).state
        assert not control.set(True, "confirmation matches again")  # pinned
        assert main(["appliance", "breaker", "close", "--reason", "no override", "-c", str(config)]) == 0
        assert not f.pin(17).state  # refused: pinned until released
        assert main(["appliance", "breaker", "release", "--reason", "done", "-c", str(config)]) == 0
        assert main(["appliance", "breaker", "close", "--reason", "power back", "-c", str(config)]) == 0
        out = capsys.readouterr().out
        assert "CLOSED" in out and "installer: power back" in out and f.pin(17).state
        assert main(["appliance", "breaker", "open", "-c", str(config)]) == 2  # the reason is required
        assert main(["appliance", "breaker", "status", "--json", "-c", str(config)]) == 0
    finally:
        stop.set()
        t.join()
        service_store.close()


def test_the_relay_stamps_its_changes_with_the_injected_clock(tmp_path):
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=JST))
    b = RelayBreaker(17, tmp_path / "j.json", pin_factory=MockFactory(), clock=clock)
    assert b.state().at == iso(clock.now())
    clock.advance(90)
    b.command(False, "test")
    assert b.state().at == "2026-11-23T09:01:30+09:00"
    # the journal keeps the commanded state only, in the same form as before
    assert set(json.loads((tmp_path / "j.json").read_text())) == {"closed", "reason", "at", "override", "command_id"}


def test_pin_factories_are_the_ones_a_config_may_name(tmp_path):
    assert set(FACTORY_CLASSES) == set(PIN_FACTORIES)
    assert isinstance(make_pin_factory("mock"), MockFactory) and make_pin_factory(None) is None
    with pytest.raises(ValueError) as bad:
        make_pin_factory("gpio")
    assert "'gpio'" in str(bad.value) and all(name in str(bad.value) for name in PIN_FACTORIES)


# -- the installer's requests: a table of their own, each applied at most once ---------------------

def _request(store, action, override=False):
    return request(store, action, f"test {action}", override, ManualClock(datetime(2026, 11, 23, tzinfo=JST)))


@pytest.mark.parametrize("fitted", [True, False])
def test_each_request_is_applied_once_and_its_outcome_recorded(tmp_path, fitted):
    f = MockFactory()
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=JST))
    store = Store(tmp_path / "meter.sqlite3")
    control = BreakerControl(store, RelayBreaker(17, tmp_path / "j.json", pin_factory=f) if fitted else None, clock)
    opened, closed = _request(store, "open", override=True), _request(store, "close")
    assert [r.id for r in store.pending_breaker_requests()] == [opened, closed]  # oldest first
    control.apply_requests()
    control.apply_requests()  # nothing left to apply
    assert store.pending_breaker_requests() == []
    assert [(r.outcome, r.applied_at) for r in map(store.breaker_request, (opened, closed))] == [
        ("applied", clock.now()), ("refused", clock.now())]  # the close came while pinned open
    state = store.breaker_state()
    assert not state.closed and state.override and state.fitted is fitted and state.command_id == closed
    if fitted:
        assert [s.state for s in f.pin(17).states] == [False, True, False]  # opened exactly once
    assert not store.mark_breaker_request(opened, clock.now(), "applied")  # an outcome is recorded once
    store.close()


class Crash(Exception):
    pass


@pytest.mark.parametrize("fitted", [True, False])
def test_a_crash_between_applying_and_marking_does_not_apply_twice(tmp_path, monkeypatch, fitted):
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=JST))
    path = tmp_path / "meter.sqlite3"

    def relay():
        return RelayBreaker(17, tmp_path / "j.json", pin_factory=MockFactory()) if fitted else None

    store = Store(path)
    control = BreakerControl(store, relay(), clock)
    rid = _request(store, "open")

    def crash(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(store, "mark_breaker_request", crash)
    with pytest.raises(Crash):
        control.apply_requests()  # opened, then the service died before recording it
    store.close()
    assert not Store(path).breaker_state().closed

    store = Store(path)  # the restart
    control = BreakerControl(store, relay(), clock)
    control.set(True, "confirmation matches again")  # the core closes it before the request is seen again
    assert store.pending_breaker_requests()[0].id == rid
    control.apply_requests()
    assert store.breaker_request(rid).outcome == "replayed"
    assert store.breaker_state().closed  # the installer's open did not act a second time
    store.close()


def test_the_cli_says_a_request_is_queued_when_no_service_applies_it(tmp_path, capsys):
    from smartmeter.cli import main

    config = tmp_path / "meter.toml"
    config.write_text(f'[meter]\nid = "MTR-B2"\nstore = "{tmp_path / "meter.sqlite3"}"\n')
    assert main(["appliance", "breaker", "open", "--reason", "x", "--wait", "0.2", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert out == "request #1 queued: the meter service applies it when it runs\n" \
                  "breaker: unknown (the meter service has not run yet)\n"
    assert main(["appliance", "breaker", "status", "--json", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "null\n"
