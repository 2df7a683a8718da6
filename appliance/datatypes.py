"""The data types a contract may name (interfaces.md section 2) and the payload fields each one carries."""
from __future__ import annotations

from enum import Enum


class DataType(str, Enum):
    TIME = "time"
    POWER = "power"
    ENERGY = "energy"
    EXPORT_ENERGY = "export_energy"
    VOLTAGE = "voltage"
    CURRENT = "current"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"
    TOTALS = "totals"


FIELDS: dict[DataType, tuple[str, ...]] = {
    DataType.TIME: ("interval_start", "interval_end"),
    DataType.POWER: ("power_w",),
    DataType.ENERGY: ("energy_wh",),
    DataType.EXPORT_ENERGY: ("export_wh",),
    DataType.VOLTAGE: ("voltage_v",),
    DataType.CURRENT: ("current_a",),
    DataType.POWER_FACTOR: ("power_factor",),
    DataType.FREQUENCY: ("frequency_hz",),
    DataType.TOTALS: ("import_wh_total", "export_wh_total"),
}


# What a household reads for each data type (Japanese, English): the touch screen and the web pages.
NAMES: dict[str, tuple[str, str]] = {
    "time": ("計量時刻", "time"),
    "power": ("電力", "power"),
    "energy": ("電力量", "energy"),
    "export_energy": ("売電量", "export energy"),
    "totals": ("積算値", "register totals"),
    "voltage": ("電圧", "voltage"),
    "current": ("電流", "current"),
    "power_factor": ("力率", "power factor"),
    "frequency": ("周波数", "frequency"),
}


class UnknownDataType(ValueError):
    pass


def parse_data_types(names: list[str] | tuple[str, ...] | str) -> tuple[DataType, ...]:
    """Parse a list (or comma-separated string) of data-type names, rejecting unknown ones by name."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, (list, tuple)):
        raise UnknownDataType(f"data types must be a list of names, got {type(names).__name__}")
    if not names:
        raise UnknownDataType("a contract needs at least one data type")
    out: list[DataType] = []
    for name in names:
        try:
            dt = DataType(name)
        except ValueError:
            valid = ", ".join(d.value for d in DataType)
            raise UnknownDataType(f"unknown data type {name!r} (valid: {valid})") from None
        if dt not in out:
            out.append(dt)
    return tuple(out)


def fields_of(types: tuple[DataType, ...]) -> tuple[str, ...]:
    return tuple(f for t in types for f in FIELDS[t])
