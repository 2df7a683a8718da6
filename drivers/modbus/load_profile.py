"""A Japanese household's day, for the chip emulator: what the meter would see at any moment.

The model (times in JST, single phase 100 V):

* base load about 150-250 W all day: the refrigerator cycling, standby, a router;
* a morning peak around 6:30-8:30 (rice cooker, kettle, microwave, hair dryer);
* a small midday bump, and an evening peak from about 18:00 to 22:30 reaching 2-3 kW (cooking,
  air conditioning, bath, TV, washing machine);
* short appliance runs (a kettle, a dryer) scattered over the waking hours;
* optional rooftop solar: a bell curve from 6:00 to 18:00 peaking near 3 kW at noon, with slow
  cloud variation. The net power is load minus solar; negative means export.

Voltage sits at 100-102 V (lower under import, higher under export), the frequency at 50 Hz
(eastern Japan) or 60 Hz (western Japan), the power factor at 0.90-0.98.

All variation is pseudo-random but a pure function of (seed, time): the same moment always
gives the same value, so simulated days are reproducible and the emulator can integrate energy
at any step. Overrides (:meth:`LoadProfile.set_load_w`, :meth:`~LoadProfile.set_solar_w`,
:meth:`~LoadProfile.set_supply`) let a UI or a test force a situation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

JST_OFFSET_S = 9 * 3600  # Japan has no daylight saving time: JST is always UTC+9
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class PowerState:
    """The electrical situation at the meter at one moment (one phase's worth for the emulator)."""

    at: datetime
    supply_on: bool
    voltage_v: float
    frequency_hz: float
    power_factor: float
    load_w: float  # household consumption, >= 0
    solar_w: float  # generation, >= 0

    @property
    def net_w(self) -> float:
        """Active power through the meter: positive = import, negative = export."""
        return self.load_w - self.solar_w


def _mix(x: int) -> int:
    """splitmix64: a fast, well-spread integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(seed: int, channel: int, n: int) -> float:
    """A reproducible pseudo-random number in [0, 1) for (seed, channel, n)."""
    return _mix(_mix(_mix(seed) ^ channel) ^ (n & _MASK)) / 2.0**64


def _smooth_noise(seed: int, channel: int, t: float, period: float) -> float:
    """Value noise in [-1, 1] that changes smoothly over about ``period`` seconds."""
    k = math.floor(t / period)
    f = t / period - k
    f = f * f * (3 - 2 * f)
    a, b = _unit(seed, channel, k), _unit(seed, channel, k + 1)
    return 2 * (a + (b - a) * f) - 1


def _bump(h: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((h - centre) / width) ** 2)


def _step(h: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, smooth in between."""
    x = min(1.0, max(0.0, (h - start) / (end - start)))
    return x * x * (3 - 2 * x)


class LoadProfile:
    """Household consumption and rooftop solar as functions of time, with run-time overrides."""

    _APPLIANCE_SLOT_S = 20 * 60

    def __init__(
        self,
        seed: int = 1,
        frequency_hz: float = 50.0,
        solar: bool = False,
        solar_peak_w: float = 3000.0,
        base_w: float = 200.0,
        nominal_voltage_v: float = 101.0,
    ) -> None:
        if frequency_hz not in (50.0, 60.0):
            raise ValueError("Japan's grid runs at 50 Hz (east) or 60 Hz (west)")
        self.seed = seed
        self.frequency_hz = frequency_hz
        self.solar = solar
        self.solar_peak_w = solar_peak_w
        self.base_w = base_w
        self.nominal_voltage_v = nominal_voltage_v
        self._load_override: float | None = None
        self._solar_override: float | None = None
        self._supply_on = True

    # -- overrides (any thread; single attribute writes) --------------------------------------
    def set_load_w(self, watts: float | None) -> None:
        """Force the household consumption to ``watts``; None returns to the daily curve."""
        if watts is not None and watts < 0:
            raise ValueError("consumption cannot be negative; use set_solar_w for generation")
        self._load_override = watts

    def set_solar_w(self, watts: float | None) -> None:
        """Force the solar generation to ``watts`` (even with solar off); None = the curve."""
        if watts is not None and watts < 0:
            raise ValueError("generation cannot be negative")
        self._solar_override = watts

    def set_supply(self, on: bool) -> None:
        """Cut (False) or restore (True) the supply: a cut meter sees 0 V, 0 A, 0 W."""
        self._supply_on = bool(on)

    @property
    def supply_on(self) -> bool:
        return self._supply_on

    # -- the model ----------------------------------------------------------------------------
    def household_w(self, at: datetime) -> float:
        """Consumption at ``at`` from the daily curve (overrides ignored)."""
        return self._household(at.timestamp())

    def solar_generation_w(self, at: datetime) -> float:
        """Solar generation at ``at`` from the curve (0 with solar off; overrides ignored)."""
        return self._solar(at.timestamp())

    def load_w(self, at: datetime) -> float:
        """Consumption at ``at``, overrides applied."""
        if not self._supply_on:
            return 0.0
        if self._load_override is not None:
            return self._load_override
        return self._household(at.timestamp())

    def solar_w(self, at: datetime) -> float:
        """Generation at ``at``, overrides applied (an inverter stops when the grid is cut)."""
        if not self._supply_on:
            return 0.0
        if self._solar_override is not None:
            return self._solar_override
        return self._solar(at.timestamp())

    def net_w(self, at: datetime) -> float:
        """Active power through the meter at ``at``: import positive, export negative."""
        return self.load_w(at) - self.solar_w(at)

    def state(self, at: datetime) -> PowerState:
        """Everything the chip measures at ``at``."""
        if not self._supply_on:
            return PowerState(at, False, 0.0, 0.0, 0.0, 0.0, 0.0)
        t = at.timestamp()
        load, solar = self.load_w(at), self.solar_w(at)
        net = load - solar
        # The service drop's impedance: voltage sags under import and rises under export.
        voltage = self.nominal_voltage_v - 0.0003 * net + 0.25 * _smooth_noise(self.seed, 3, t, 60)
        frequency = self.frequency_hz + 0.02 * _smooth_noise(self.seed, 4, t, 20)
        # Small loads are motors and electronics (poor power factor); big ones are heaters.
        pf = 0.90 + 0.08 * min(1.0, load / 2500) + 0.005 * _smooth_noise(self.seed, 5, t, 90)
        return PowerState(
            at=at,
            supply_on=True,
            voltage_v=round(min(102.5, max(99.5, voltage)), 2),
            frequency_hz=round(frequency, 3),
            power_factor=round(min(0.98, max(0.90, pf)), 3),
            load_w=load,
            solar_w=solar,
        )

    def _household(self, t: float) -> float:
        h = ((t + JST_OFFSET_S) % 86400) / 3600
        watts = self.base_w + 35 * math.sin(2 * math.pi * t / 2400)  # refrigerator cycling
        watts += 1100 * _bump(h, 7.4, 0.5)  # breakfast, kettle, hair dryer
        watts += 300 * _bump(h, 12.2, 0.7)  # lunch
        watts += 1100 * _step(h, 17.5, 18.5) * (1 - _step(h, 22.0, 23.0))  # evening plateau
        watts += 700 * _bump(h, 19.3, 0.8)  # dinner peak
        watts += self._appliance(t, h)
        return max(0.0, watts * (1 + 0.05 * _smooth_noise(self.seed, 1, t, 30)))

    def _appliance(self, t: float, h: float) -> float:
        """A short appliance run (700-1100 W, 2-6 min) in about one 20-minute slot in five."""
        if not 6.0 <= h < 23.0:
            return 0.0
        slot = math.floor(t / self._APPLIANCE_SLOT_S)
        if _unit(self.seed, 10, slot) >= 0.2:
            return 0.0
        start = slot * self._APPLIANCE_SLOT_S + _unit(self.seed, 11, slot) * 14 * 60
        length = 120 + _unit(self.seed, 12, slot) * 240
        if start <= t < start + length:
            return 700 + 400 * _unit(self.seed, 13, slot)
        return 0.0

    def _solar(self, t: float) -> float:
        if not self.solar:
            return 0.0
        h = ((t + JST_OFFSET_S) % 86400) / 3600
        if not 6.0 < h < 18.0:
            return 0.0
        clouds = 0.92 + 0.08 * _smooth_noise(self.seed, 2, t, 600)
        return self.solar_peak_w * math.sin(math.pi * (h - 6.0) / 12.0) ** 2 * clouds
