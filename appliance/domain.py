"""Typed domain objects of the switchable meter (JP5159864B2 Fig. 6).

* :class:`Sample`     one instantaneous read of the metering chip (measurement unit 53).
* :class:`Reading`    one interval reading: time 56A4, power 56A5, energy 56A6.
* :class:`Contract`   contract company data 56A2 / data provider company data 56A3.
* :class:`ContractChange` contract change data 56B / data provision change data 56C.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .clock import iso
from .datatypes import DataType


class Role(str, Enum):
    SUPPLY = "supply"  # 電力会社: the power (supply) company, exactly one in force
    DATA = "data"  # データ活用会社: data-utilization companies, any number


class Action(str, Enum):
    CONTRACT = "contract"  # a new contract (replaces the supply contract, or adds/replaces a data contract)
    ABOLISH = "abolish"  # 契約廃止
    MENU = "menu"  # tariff-menu change of the contract in force


@dataclass(frozen=True)
class Sample:
    """One read of the metering chip. ``ok`` False means the read failed: every value is None.

    Field names are those of interfaces.md section 2. ``power_w`` is signed (import positive) when
    the chip measures direction; ``export_wh_total`` is None on a chip that cannot tell export.
    """

    at: datetime
    ok: bool
    voltage_v: float | None = None
    current_a: float | None = None
    power_w: float | None = None
    import_wh_total: float | None = None
    export_wh_total: float | None = None
    frequency_hz: float | None = None
    power_factor: float | None = None
    alarm: bool = False
    error: str | None = None  # why the read failed, for the log and the installer
    transactions: int = 0  # Modbus transactions this sample took (goal: 1)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": iso(self.at),
            "ok": self.ok,
            "voltage_v": self.voltage_v,
            "current_a": self.current_a,
            "power_w": self.power_w,
            "import_wh_total": self.import_wh_total,
            "export_wh_total": self.export_wh_total,
            "frequency_hz": self.frequency_hz,
            "power_factor": self.power_factor,
        }
        if self.alarm:
            out["alarm"] = True
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Reading:
    """One interval reading, as stored and as published on ``meters/{id}/interval``.

    ``seq`` is per meter, strictly increasing and never reused. ``quality`` is ``good`` or ``bad``;
    a bad reading carries no measured values (None), never made-up ones.
    """

    meter_id: str
    seq: int
    interval_start: datetime
    interval_end: datetime
    quality: str = "good"
    power_w: float | None = None
    energy_wh: float | None = None
    export_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    import_wh_total: float | None = None
    export_wh_total: float | None = None

    def field_value(self, name: str) -> Any:
        if name in ("interval_start", "interval_end"):
            return iso(getattr(self, name))
        return getattr(self, name)

    def as_json(self) -> dict[str, Any]:
        return {
            "meter_id": self.meter_id,
            "seq": self.seq,
            "interval_start": iso(self.interval_start),
            "interval_end": iso(self.interval_end),
            "quality": self.quality,
            "power_w": self.power_w,
            "energy_wh": self.energy_wh,
            "export_wh": self.export_wh,
            "voltage_v": self.voltage_v,
            "current_a": self.current_a,
            "power_factor": self.power_factor,
            "frequency_hz": self.frequency_hz,
            "import_wh_total": self.import_wh_total,
            "export_wh_total": self.export_wh_total,
        }


@dataclass(frozen=True)
class Company:
    code: str
    name: str
    server: str = ""  # the company server's address (destination), shown to the household


@dataclass(frozen=True)
class Contract:
    """A contract in force: who receives which data types, how often, on which tariff menu.

    ``measure_interval`` (JP5159864B2, contract data 56A): the company's own measurement interval, a
    multiple of the meter's base interval; None means the base interval. Its payloads then carry the
    base readings aggregated into its windows (:mod:`appliance.aggregate`)."""

    role: Role
    company: Company
    data_types: tuple[DataType, ...]
    send_interval: timedelta
    menu: str | None = None
    since: datetime | None = None
    change_id: int | None = None  # the change that started it
    measure_interval: timedelta | None = None


@dataclass(frozen=True)
class WeeklySlot:
    day: int  # 0 = Monday, as datetime.weekday()
    at: str  # "HH:MM" in JST


@dataclass(frozen=True)
class SwitchTime:
    """When a change takes effect: ``immediate``, an absolute date-time, or a weekly rule."""

    immediate: bool = False
    at: datetime | None = None
    weekly: tuple[WeeklySlot, ...] = ()

    @property
    def kind(self) -> str:
        return "immediate" if self.immediate else ("weekly" if self.weekly else "at")


@dataclass(frozen=True)
class ContractChange:
    """A pending change (56B/56C). ``id`` is assigned by the store."""

    kind: Role
    action: Action
    company: Company
    switch: SwitchTime
    data_types: tuple[DataType, ...] = ()
    menu: str | None = None
    send_interval: timedelta | None = None
    measure_interval: timedelta | None = None  # the contract's own measurement interval (56A)
    source: str = "cli"  # cli | card:<slot> | remote
    serial: int | None = None
    id: int | None = None
    received_at: datetime | None = None
    document: dict[str, Any] = field(default_factory=dict, compare=False)
