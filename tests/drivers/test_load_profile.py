"""The simulated Japanese household: shape of the day, solar, overrides, reproducibility."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from appliance.clock import JST
from drivers.modbus.load_profile import LoadProfile

DAY = datetime(2026, 11, 23, tzinfo=JST)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def sweep(load: LoadProfile, start: float, end: float, step_min: int = 1) -> list[float]:
    steps = int((end - start) * 60 / step_min)
    return [load.household_w(at(start + i * step_min / 60)) for i in range(steps)]


def test_base_load_at_night():
    night = sweep(LoadProfile(), 1.0, 5.0)
    assert 150 <= min(night) and max(night) <= 260


def test_morning_and_evening_peaks():
    load = LoadProfile()
    night = max(sweep(load, 1.0, 5.0))
    assert max(sweep(load, 6.5, 8.5)) > night + 800
    evening = sweep(load, 18.0, 22.5)
    assert 2000 <= max(evening) <= 3200
    assert sum(evening) / len(evening) > 1500
    assert max(sweep(load, 23.5, 24.0)) < 600


def test_same_seed_same_day_other_seed_other_noise():
    a, b, c = LoadProfile(seed=7), LoadProfile(seed=7), LoadProfile(seed=8)
    assert sweep(a, 0, 24, 7) == sweep(b, 0, 24, 7)
    assert sweep(a, 0, 24, 7) != sweep(c, 0, 24, 7)


def test_solar_bell_curve_and_export_at_noon():
    load = LoadProfile(solar=True)
    assert load.solar_generation_w(at(5.5)) == 0 and load.solar_generation_w(at(18.5)) == 0
    assert 2400 <= load.solar_generation_w(at(12.0)) <= 3000
    assert load.solar_generation_w(at(9.0)) < load.solar_generation_w(at(12.0))
    assert load.net_w(at(12.0)) < -1500  # a sunny noon exports
    assert LoadProfile(solar=False).solar_generation_w(at(12.0)) == 0


def test_voltage_frequency_and_power_factor_ranges():
    for frequency in (50.0, 60.0):
        load = LoadProfile(frequency_hz=frequency, solar=True)
        for minute in range(0, 24 * 60, 5):
            state = load.state(at(minute / 60))
            assert 99.5 <= state.voltage_v <= 102.5
            assert abs(state.frequency_hz - frequency) <= 0.05
            assert 0.90 <= state.power_factor <= 0.98
    with pytest.raises(ValueError):
        LoadProfile(frequency_hz=55.0)


def test_overrides_and_supply_cut():
    load = LoadProfile(solar=True)
    load.set_load_w(1234.0)
    load.set_solar_w(0.0)
    assert load.net_w(at(12.0)) == 1234.0
    load.set_solar_w(2000.0)
    assert load.net_w(at(3.0)) == -766.0
    load.set_supply(False)
    state = load.state(at(12.0))
    assert (state.voltage_v, state.load_w, state.solar_w, state.net_w) == (0.0, 0.0, 0.0, 0.0)
    load.set_supply(True)
    load.set_load_w(None)
    load.set_solar_w(None)
    assert load.net_w(at(12.0)) == load.household_w(at(12.0)) - load.solar_generation_w(at(12.0))
    with pytest.raises(ValueError):
        load.set_load_w(-1)
