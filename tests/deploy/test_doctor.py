"""`smartmeter doctor` against the emulated chip on Modbus TCP and a real Mosquitto with the meter's
account, every part working, then each part broken in turn: the right plain words and exit status."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from appliance.clock import SystemClock
from appliance.store import Store
from appliance.store_schema import LATEST
from drivers.modbus.bridge import quiet_pymodbus
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile
from smartmeter import doctor
from smartmeter.cli import main


@pytest.fixture(autouse=True)
def synchronised_clock(monkeypatch):
    """The kernel clock of the machine running the tests is not the meter's: synchronised unless a test says not."""
    quiet_pymodbus()
    monkeypatch.setattr(doctor, "kernel_clock_synchronised", lambda: True)


@pytest.fixture
def chip():
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    emulator.start_tcp("127.0.0.1", 0)
    yield emulator
    emulator.stop()


@pytest.fixture
def meter(tmp_path, chip, broker):
    """A working meter's config: the chip emulator, the broker with the meter's account, a breaker
    relay with its feedback contact on gpiozero's mock pins; ``extra`` lines are appended."""
    def write(extra: str = "", mqtt: str | None = None) -> Path:
        config = tmp_path / "meter.toml"
        config.write_text(f'[meter]\nid = "M1"\nstore = "meter.sqlite3"\n'
                          f'[chip]\nprofile = "sdm120"\ntcp = "127.0.0.1:{chip.port}"\ntimeout = 0.5\n'
                          f'[breaker]\npin = 17\nfeedback_pin = 27\npin_factory = "mock"\njournal = "breaker.json"\n'
                          f'{mqtt if mqtt is not None else broker.mqtt_toml("meter", "M1")}{extra}')
        return config
    return write


def doctor_json(config: Path, capsys) -> tuple[int, dict[str, tuple[str, str]]]:
    status = main(["doctor", "--config", str(config), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is (status == 0)
    return status, {c["part"]: (c["status"], c["message"]) for c in out["checks"]}


def test_every_configured_part_works(meter, broker, capsys, tmp_path):
    Store(tmp_path / "meter.sqlite3").close()
    status, parts = doctor_json(meter(), capsys)
    assert status == 0, parts
    assert parts["chip"][0] == "ok" and " V, " in parts["chip"][1] and " Hz" in parts["chip"][1]
    assert parts["broker"] == ("ok", f"logged in to localhost:{broker.port} as M1 without TLS")
    assert parts["breaker"][0] == "ok" and "GPIO17" in parts["breaker"][1]
    assert parts["breaker feedback"][0] == "ok"
    assert parts["store"] == ("ok", f"store {tmp_path / 'meter.sqlite3'} at schema version {LATEST} (current)")
    assert parts["clock"][0] == "ok" and parts["disk"][0] == "ok"
    assert parts["cards"][0] == "skip"


def test_a_silent_chip_is_named_and_fails(meter, chip, capsys):
    config = meter()
    chip.stop()
    status, parts = doctor_json(config, capsys)
    assert status == 1
    assert parts["chip"][0] == "fail" and parts["chip"][1].startswith("the metering chip did not answer: ")
    assert parts["broker"][0] == "ok"  # the other parts are still checked


def test_a_chip_without_mains_voltage_is_implausible(meter, chip, capsys):
    chip.load.set_supply(False)
    status, parts = doctor_json(meter(), capsys)
    assert status == 1
    assert "answered, but voltage 0.0 V is outside 80-264 V" in parts["chip"][1]


def test_a_wrong_broker_password_is_named(meter, broker, tmp_path, capsys):
    broker.account("meter", "M1")
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "M1"\npassword_file = "{wrong}"\n'
    status, parts = doctor_json(meter(mqtt=mqtt), capsys)
    assert status == 1
    assert parts["broker"][0] == "fail" and "refused the login" in parts["broker"][1]
    assert "mqtt.password_file" in parts["broker"][1]


def test_a_broker_that_is_down_is_named(meter, broker, capsys):
    config = meter()
    broker.stop()
    status, parts = doctor_json(config, capsys)
    assert status == 1
    assert parts["broker"][0] == "fail" and parts["broker"][1].startswith(f"cannot reach the broker localhost:{broker.port}: ")


def test_a_store_from_newer_software_fails(meter, tmp_path, capsys):
    db = sqlite3.connect(tmp_path / "meter.sqlite3")
    db.execute(f"PRAGMA user_version={LATEST + 1}")
    db.close()
    status, parts = doctor_json(meter(), capsys)
    assert status == 1
    assert "written by newer software" in parts["store"][1] and "the meter will not start" in parts["store"][1]


def test_an_older_store_is_upgraded_at_the_next_start(meter, tmp_path, capsys):
    db = sqlite3.connect(tmp_path / "meter.sqlite3")
    db.execute(f"PRAGMA user_version={LATEST - 1}")
    db.close()
    status, parts = doctor_json(meter(), capsys)
    assert status == 0 and "upgrades it" in parts["store"][1]


def test_missing_card_readers_are_named_per_slot(meter, capsys):
    # this run's pcscd socket (devkit.isolation) has no daemon behind it unless an earlier test started one:
    # either way the slot fails, saying which (the service, or the reader it lacks)
    slots = ('\n[[cards.slots]]\nslot = 1\npcsc = "ACS ACR122U PICC Interface 00 00"\n'
             '[[cards.slots]]\nslot = 2\nnfc = "usb:054c:06c3"\n')
    status, parts = doctor_json(meter(slots), capsys)
    assert status == 1
    state, says = parts["card slot 1"]
    assert state == "fail" and ("pcscd" in says or "'ACS ACR122U PICC Interface 00 00' is not connected" in says), says
    assert parts["card slot 2"][0] == "fail" and "usb:054c:06c3" in parts["card slot 2"][1]


def test_a_feedback_contact_that_disagrees_with_the_relay_fails(meter, tmp_path):
    from gpiozero.pins.mock import MockFactory

    from appliance.config import load_config
    from appliance.interfaces import BreakerState
    from drivers.breaker.relay import BreakerJournal

    cfg = load_config(meter())
    journal = BreakerJournal(cfg.breaker.journal)
    at = "2026-12-01T00:00:00+09:00"
    # the auxiliary contact (pulled down, nothing driving it) reads open
    journal.save(BreakerState(closed=True, reason="first start", at=at))
    pins = MockFactory()
    findings = {f.part: f for f in doctor.check_breaker(cfg, pin_factory=pins)}
    assert findings["breaker feedback"].status is doctor.Status.FAIL
    assert "reads open, but the relay was commanded closed" in findings["breaker feedback"].message
    assert not pins.pin(17).state, "the check never energises the relay"
    journal.save(BreakerState(closed=False, reason="opened by the installer", at=at))
    findings = {f.part: f for f in doctor.check_breaker(cfg, pin_factory=MockFactory())}
    assert findings["breaker feedback"].status is doctor.Status.OK
    assert "last commanded open (opened by the installer)" in findings["breaker"].message


def test_an_unsynchronised_clock_fails(meter):
    from appliance.config import load_config

    cfg = load_config(meter())
    assert doctor.check_clock(cfg, lambda: False)[0].status is doctor.Status.FAIL
    assert doctor.check_clock(cfg, lambda: None)[0].status is doctor.Status.WARN


def test_plain_text_and_a_broken_config(tmp_path, capsys):
    config = tmp_path / "meter.toml"
    config.write_text('[meter]\nid = "M1"\n[mqtt]\nport = 0\n')
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"smartmeter doctor: {config}"
    assert out[1].split(None, 2)[:2] == ["FAIL", "config"] and "mqtt.port" in out[1]
    assert out[-1] == "1 part(s) need attention: config"
