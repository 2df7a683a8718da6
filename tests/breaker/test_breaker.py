"""The relay breaker on gpiozero's mock pins: journal across restarts, no boot glitch, replays,
the installer's override, the feedback contact, and the installer CLI against a running service loop."""
from __future__ import annotations

import threading
from datetime import datetime

from gpiozero.pins.mock import MockFactory

from appliance.breaker import BreakerControl
from appliance.clock import JST, ManualClock
from appliance.store import Store
from drivers.breaker import RelayBreaker


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
