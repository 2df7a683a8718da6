"""Bus faults injected at frame level: the driver retries, counts, reports, and recovers."""
from __future__ import annotations

import socket

import pytest

from drivers.modbus.bridge import ModbusEndpoint
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import PROFILES

TIMEOUT = 0.3  # seconds: short, so faults are quick to detect

CASES = [
    # fault, counter, words in the error (TCP)
    ("no_answer", "timeouts", "no reply within 0.3 s"),
    ("bad_crc", "crc_errors", "malformed reply (bad MBAP protocol identifier)"),
    ("exception", "exception_replies", "exception reply 0x04 (slave device failure)"),
]


def _assert_failed(sample, counters, counter, words, attempts):
    assert not sample.ok
    assert sample.voltage_v is None and sample.power_w is None and sample.import_wh_total is None
    assert words in sample.error and f"({attempts} attempts)" in sample.error
    assert sample.transactions == attempts  # every attempt was a real transaction
    assert getattr(counters, counter) == attempts
    assert counters.retries == attempts - 1 and counters.failed_samples == 1


@pytest.mark.parametrize("fault,counter,words", CASES)
def test_fault_over_tcp(fault, counter, words, tcp_emulator, chips):
    emulator, endpoint = tcp_emulator("sdm120")
    chip = chips("sdm120", endpoint, retries=2, backoff=0.05)
    setattr(emulator.faults, fault, True)
    sample = chip.read_sample()
    _assert_failed(sample, chip.counters, counter, words, attempts=3)
    assert chip.waits == [0.05, 0.1]  # exponential backoff between attempts
    assert "sdm120 at address 1 on Modbus TCP 127.0.0.1:" in sample.error
    emulator.faults.clear()
    after = chip.read_sample()
    assert after.ok and after.transactions == 1


@pytest.mark.parametrize("fault,counter,words", CASES)
def test_fault_over_rtu(fault, counter, words, pty_pair, chips, clock, emulators):
    a, b = pty_pair
    emulator = ChipEmulator(PROFILES["pzem004t"], clock)
    emulator.start_rtu(a, 9600)
    emulators.append(emulator)
    chip = chips("pzem004t", ModbusEndpoint.serial(b, 9600, timeout=TIMEOUT), retries=1)
    setattr(emulator.faults, fault, True)
    if fault == "bad_crc":
        words = "CRC error in the reply"  # RTU: the real thing
    _assert_failed(chip.read_sample(), chip.counters, counter, words, attempts=2)
    emulator.faults.clear()
    assert chip.read_sample().ok


def test_fault_for_the_next_n_requests_only(tcp_emulator, chips):
    emulator, endpoint = tcp_emulator("pzem004t")
    chip = chips("pzem004t", endpoint, retries=3)
    emulator.faults.no_answer = 2
    sample = chip.read_sample()
    assert sample.ok and sample.transactions == 3  # two silent attempts, then an answer
    assert chip.counters.timeouts == 2 and chip.counters.failed_samples == 0
    assert emulator.faults.no_answer is False
    emulator.faults.exception = 1
    emulator.faults.bad_crc = 1
    sample = chip.read_sample()  # bad_crc takes precedence, then the exception, then OK
    assert sample.ok and sample.transactions == 3
    assert (chip.counters.crc_errors, chip.counters.exception_replies) == (1, 1)


def test_connection_refused_is_a_clear_error(chips):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chip = chips("sdm630", ModbusEndpoint.tcp("127.0.0.1", port, timeout=TIMEOUT), retries=2)
    sample = chip.read_sample()
    assert not sample.ok and "cannot connect: Connection refused (3 attempts)" in sample.error
    assert chip.counters.connection_errors == 3 and sample.transactions == 0


def test_reconnects_after_the_connection_broke(tcp_emulator, chips, clock, emulators):
    emulator, endpoint = tcp_emulator("sdm120")
    chip = chips("sdm120", endpoint, retries=1)
    assert chip.read_sample().ok
    emulator.stop()
    broken = chip.read_sample()
    assert not broken.ok and chip.counters.connection_errors == 2
    again = ChipEmulator(PROFILES["sdm120"], clock)
    again.start_tcp("127.0.0.1", endpoint.port)  # the gateway is back
    emulators.append(again)
    assert chip.read_sample().ok


def test_missing_serial_port_is_a_clear_error(tmp_path, chips):
    chip = chips("pzem004t", ModbusEndpoint.serial(str(tmp_path / "ttyUSB9")), retries=0)
    sample = chip.read_sample()
    assert not sample.ok
    assert "cannot open the serial port: No such file or directory" in sample.error
    assert "check the device path" in sample.error


def test_wrong_profile_is_named_in_the_error(tcp_emulator, chips):
    _, endpoint = tcp_emulator("pzem004t", address=1)
    sample = chips("sdm120", endpoint, retries=0).read_sample()  # 76 registers from a PZEM
    assert not sample.ok and "exception reply 0x02 (illegal data address)" in sample.error
    assert "check that the profile matches the chip" in sample.error
