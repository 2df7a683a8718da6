"""The driver against the emulator over Modbus RTU on a real pty pair (socat)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from drivers.modbus.bridge import ModbusEndpoint
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import PROFILES

TIMEOUT = 0.3  # seconds: short, so faults are quick to detect


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_block_read_over_rtu(profile, pty_pair, chips, clock, emulators):
    a, b = pty_pair
    emulator = ChipEmulator(PROFILES[profile], clock, address=7)
    baud = PROFILES[profile].default_baud
    emulator.start_rtu(a)  # the chip's factory baud rate
    emulators.append(emulator)
    chip = chips(profile, ModbusEndpoint.serial(b, baud, timeout=max(TIMEOUT, 1.0)), address=7)
    first = chip.read_sample()
    assert first.ok and first.transactions == 1
    assert 99.5 <= first.voltage_v <= 102.5
    clock.advance(timedelta(hours=8))
    later = chip.read_sample()
    assert later.ok and later.import_wh_total > first.import_wh_total
    assert emulator.requests == 2


def test_silent_on_other_addresses_of_the_bus(pty_pair, chips, clock, emulators):
    a, b = pty_pair
    emulator = ChipEmulator(PROFILES["pzem004t"], clock, address=2)
    emulator.start_rtu(a, 9600)
    emulators.append(emulator)
    endpoint = ModbusEndpoint.serial(b, 9600, timeout=TIMEOUT)
    stranger = chips("pzem004t", endpoint, address=3, retries=0)
    assert not stranger.read_sample().ok
    # One master per bus: the port is locked while a driver holds it open.
    busy = chips("pzem004t", endpoint, address=2, retries=0).read_sample()
    assert not busy.ok and "in use by another program" in busy.error
    stranger.close()
    assert chips("pzem004t", endpoint, address=2).read_sample().ok
    assert emulator.requests == 1  # the request for address 3 was not this chip's
