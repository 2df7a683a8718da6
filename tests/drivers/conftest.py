"""Fixtures for the Modbus driver tests: emulators on loopback TCP and on a socat pty pair."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from drivers.modbus.bridge import ModbusEndpoint, quiet_pymodbus
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import PROFILES

TIMEOUT = 0.3  # short, so fault tests stay fast


@pytest.fixture(autouse=True, scope="session")
def _quiet_pymodbus() -> None:
    quiet_pymodbus()


@pytest.fixture
def emulators() -> Iterator[list[ChipEmulator]]:
    """Emulators a test started; all stopped afterwards."""
    started: list[ChipEmulator] = []
    yield started
    for emulator in started:
        emulator.stop()


@pytest.fixture
def tcp_emulator(clock, emulators) -> Callable[..., tuple[ChipEmulator, ModbusEndpoint]]:
    """Start an emulator of a profile on a free loopback port: returns it and its endpoint."""

    def start(profile: str, **kw) -> tuple[ChipEmulator, ModbusEndpoint]:
        emulator = ChipEmulator(PROFILES[profile], clock, **kw)
        port = emulator.start_tcp("127.0.0.1", 0)
        emulators.append(emulator)
        return emulator, ModbusEndpoint.tcp("127.0.0.1", port, timeout=TIMEOUT)

    return start


@pytest.fixture
def chips(clock) -> Iterator[Callable[..., ModbusMeteringChip]]:
    """Driver factory with a fast, recorded backoff; every chip closed afterwards."""
    made: list[ModbusMeteringChip] = []

    def make(profile: str, endpoint: ModbusEndpoint, **kw) -> ModbusMeteringChip:
        waits: list[float] = []
        kw.setdefault("sleep", waits.append)  # no real waiting; the test can inspect the backoff
        chip = ModbusMeteringChip(PROFILES[profile], endpoint, clock=clock, **kw)
        chip.waits = waits  # type: ignore[attr-defined]
        made.append(chip)
        return chip

    yield make
    for chip in made:
        chip.close()


