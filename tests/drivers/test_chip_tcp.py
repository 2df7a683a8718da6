"""The driver against the emulator over real Modbus TCP on loopback, for every chip profile."""
from __future__ import annotations

from datetime import timedelta

import pytest
from pymodbus.client import ModbusTcpClient

from appliance.interfaces import MeteringChip
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.profiles import PROFILES

ALL = sorted(PROFILES)


@pytest.mark.parametrize("profile", ALL)
def test_one_transaction_per_plausible_sample(profile, tcp_emulator, chips, clock):
    emulator, endpoint = tcp_emulator(profile)
    chip: MeteringChip = chips(profile, endpoint)  # the core's interface
    clock.advance(timedelta(hours=19))  # 19:00 JST: evening peak
    sample = chip.read_sample()
    assert sample.ok and sample.error is None
    assert sample.transactions == 1
    assert sample.at == clock.now()
    assert 99.5 <= sample.voltage_v <= 102.5
    assert sample.frequency_hz == pytest.approx(50.0, abs=0.05)
    assert 0.9 <= sample.power_factor <= 0.98
    assert 1000 <= sample.power_w <= 3300
    # P = V * I * pf for single phase; the SDM630 sample is the system total of 3 phases.
    apparent = sample.voltage_v * sample.current_a
    assert sample.power_w == pytest.approx(apparent * sample.power_factor, rel=0.02)
    assert chip.counters.transactions == 1 and emulator.requests == 1


@pytest.mark.parametrize("profile", ALL)
def test_energy_only_grows_over_a_simulated_day(profile, tcp_emulator, chips, clock):
    _, endpoint = tcp_emulator(profile)
    chip = chips(profile, endpoint)
    imports, exports = [], []
    for _ in range(49):  # every 30 minutes for a day
        sample = chip.read_sample()
        assert sample.ok
        imports.append(sample.import_wh_total)
        exports.append(sample.export_wh_total)
        clock.advance(timedelta(minutes=30))
    assert imports == sorted(imports)
    assert 8_000 <= imports[-1] - imports[0] <= 20_000  # a household's day
    if PROFILES[profile].measures_direction:
        assert exports == sorted(exports)
        assert exports[-1] > 3_000  # the midday solar surplus
    else:
        assert exports == [None] * 49
    # A big jump is integrated in small steps: one more day adds about one more day's energy.
    clock.advance(timedelta(days=1))
    assert chip.read_sample().import_wh_total - imports[-1] == pytest.approx(
        imports[-1] - imports[0], rel=0.35
    )


def test_clock_set_back_never_reduces_energy(tcp_emulator, chips, clock):
    _, endpoint = tcp_emulator("pzem004t")
    chip = chips("pzem004t", endpoint)
    chip.read_sample()
    clock.advance(timedelta(hours=6))
    before = chip.read_sample().import_wh_total
    clock.advance(timedelta(hours=-3))
    assert chip.read_sample().import_wh_total == before


@pytest.mark.parametrize("profile", ["sdm120", "sdm630"])
def test_sdm_exports_at_a_sunny_noon(profile, tcp_emulator, chips, clock):
    _, endpoint = tcp_emulator(profile)
    chip = chips(profile, endpoint)
    clock.advance(timedelta(hours=10))
    first = chip.read_sample()
    clock.advance(timedelta(hours=2))  # 12:00
    noon = chip.read_sample()
    assert noon.power_w < -1000  # negative = export
    assert noon.export_wh_total - first.export_wh_total > 2000
    assert noon.import_wh_total == pytest.approx(first.import_wh_total, abs=50)


def test_pzem_shows_magnitude_and_counts_both_directions(tcp_emulator, chips, clock):
    emulator, endpoint = tcp_emulator("pzem004t")
    emulator.load.solar = True
    chip = chips("pzem004t", endpoint)
    clock.advance(timedelta(hours=12))
    sample = chip.read_sample()
    assert sample.power_w > 1000 and sample.export_wh_total is None


def test_overrides_and_supply_cut(tcp_emulator, chips, clock):
    emulator, endpoint = tcp_emulator("sdm120")
    chip = chips("sdm120", endpoint)
    emulator.set_load_w(1500.0)
    emulator.set_solar_w(0.0)
    sample = chip.read_sample()
    assert sample.power_w == pytest.approx(1500.0, abs=0.01)
    clock.advance(timedelta(hours=1))
    assert chip.read_sample().import_wh_total == pytest.approx(1500.0, abs=0.5)
    emulator.set_supply(False)
    cut = chip.read_sample()
    assert cut.ok and (cut.voltage_v, cut.current_a, cut.power_w) == (0.0, 0.0, 0.0)
    clock.advance(timedelta(hours=1))
    assert chip.read_sample().import_wh_total == pytest.approx(1500.0, abs=0.5)


def test_map_bounds_addresses_and_holding_registers(tcp_emulator):
    _, sdm = tcp_emulator("sdm120", address=3)
    _, pzem = tcp_emulator("pzem004t")
    with ModbusTcpClient("127.0.0.1", port=sdm.port, timeout=0.3, retries=0) as client:
        assert len(client.read_input_registers(0, count=80, device_id=3).registers) == 80
        assert len(client.read_input_registers(0x0156, count=2, device_id=3).registers) == 2
        for start, count in ((0, 81), (0x0050, 2), (0x0100, 4)):
            reply = client.read_input_registers(start, count=count, device_id=3)
            assert reply.isError() and reply.exception_code == 2  # illegal data address
    with ModbusTcpClient("127.0.0.1", port=pzem.port, timeout=0.3, retries=0) as client:
        assert client.read_input_registers(0, count=10, device_id=1).registers[7] == 500  # 50.0 Hz
        assert not client.read_input_registers(0, count=10, device_id=0xF8).isError()  # general
        reply = client.read_input_registers(0, count=11, device_id=1)
        assert reply.isError() and reply.exception_code == 2
        holding = client.read_holding_registers(1, count=2, device_id=1).registers
        assert holding == [23000, 1]  # power-alarm threshold (W), slave address


def test_other_addresses_get_no_answer(tcp_emulator, chips):
    _, endpoint = tcp_emulator("sdm630", address=5)
    assert chips("sdm630", endpoint, address=5).read_sample().ok
    other = chips("sdm630", endpoint, address=6, retries=0).read_sample()
    assert not other.ok and "no reply" in other.error


def test_pzem_alarm_follows_the_threshold(tcp_emulator, chips):
    emulator, endpoint = tcp_emulator("pzem004t")
    chip = chips("pzem004t", endpoint)
    emulator.set_load_w(2000.0)
    assert chip.read_sample().alarm is False
    with ModbusTcpClient("127.0.0.1", port=endpoint.port, timeout=0.3, retries=0) as client:
        assert not client.write_register(1, 1800, device_id=1).isError()
    assert chip.read_sample().alarm is True


def test_driver_default_address_per_profile(tcp_emulator, clock):
    _, endpoint = tcp_emulator("pzem004t")
    chip = ModbusMeteringChip(PROFILES["pzem004t"], endpoint, clock=clock)
    try:
        assert chip.address == 0xF8 and chip.read_sample().ok  # the general address
    finally:
        chip.close()
    assert ModbusMeteringChip(PROFILES["sdm120"], endpoint).address == 1
