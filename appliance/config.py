"""The meter's TOML config (``/etc/smartmeter/meter.toml`` on a Pi), validated at start.

Every error names the key and the problem, e.g. ``meter.measurement_interval: '0s' is below 1s``.
The ``[contracts]`` tables commission the meter: they seed the contract data of an empty store
only; after that the store (and contract changes) are the truth.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .datatypes import UnknownDataType, parse_data_types
from .domain import Company, Contract, Role
from .errors import ConfigError

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, key: str) -> timedelta:
    """``"30m"``, ``"1s"``, ``"2h"``, ``"1d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like '30m', got {value!r}")
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ConfigError(f"{key}: {value!r} is not a duration (write e.g. '30m', '1s', '2h', '1d')")


@dataclass(frozen=True)
class MeterSection:
    id: str
    measurement_interval: timedelta = timedelta(minutes=30)
    retention: timedelta = timedelta(days=7)
    store: Path = Path("/var/lib/smartmeter/meter.sqlite3")
    tick: timedelta = timedelta(milliseconds=500)  # how often the service looks for due work


@dataclass(frozen=True)
class ChipSection:
    profile: str = "pzem004t"
    tcp: str | None = None  # "host:port" (a Modbus TCP gateway or the emulator)
    serial: str | None = None  # "/dev/ttyUSB0"
    baud: int | None = None  # None: the profile's default
    address: int | None = None  # None: the profile's default
    timeout: float = 1.0


@dataclass(frozen=True)
class MqttSection:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    keepalive: int = 30
    will_delay: int = 30  # seconds; rides through blinks before the broker publishes 'offline'


@dataclass(frozen=True)
class MeterConfig:
    meter: MeterSection
    chip: ChipSection
    mqtt: MqttSection
    contracts: tuple[Contract, ...] = field(default=())
    path: Path | None = None


_SECTION_KEYS = {
    "meter": {"id", "measurement_interval", "retention", "store", "tick"},
    "chip": {"profile", "tcp", "serial", "baud", "address", "timeout"},
    "mqtt": {"host", "port", "username", "password", "password_file", "tls", "keepalive", "will_delay"},
    "contracts": {"supply", "data"},
}
_CONTRACT_KEYS = {"company", "name", "server", "data_types", "send_interval", "menu"}


def load_config(path: str | Path) -> MeterConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (see config/meter.example.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        cfg = parse_config(raw, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return MeterConfig(cfg.meter, cfg.chip, cfg.mqtt, cfg.contracts, path)


def parse_config(raw: dict[str, Any], base: Path = Path(".")) -> MeterConfig:
    _check_keys(raw, set(_SECTION_KEYS), "")
    meter = _table(raw, "meter", required=True)
    _check_keys(meter, _SECTION_KEYS["meter"], "meter.")
    meter_id = _get(meter, "meter.id", str, required=True)
    if not ID_RE.match(meter_id):
        raise ConfigError(f"meter.id: {meter_id!r} must be 1-64 of A-Z a-z 0-9 _ -")
    interval = parse_duration(meter.get("measurement_interval", "30m"), "meter.measurement_interval")
    if interval < timedelta(seconds=1):
        raise ConfigError(f"meter.measurement_interval: {interval.total_seconds()}s is below the 1s minimum")
    if timedelta(days=1) % interval:
        raise ConfigError("meter.measurement_interval: must divide a day evenly (e.g. 1s, 10s, 1m, 15m, 30m, 1h)")
    retention = parse_duration(meter.get("retention", "7d"), "meter.retention")
    if retention < timedelta(days=1):
        raise ConfigError("meter.retention: must keep at least one day of readings (e.g. '1d', '7d')")
    store = Path(_get(meter, "meter.store", str) or "/var/lib/smartmeter/meter.sqlite3")
    tick = parse_duration(meter.get("tick", "500ms"), "meter.tick")

    chip = _table(raw, "chip")
    _check_keys(chip, _SECTION_KEYS["chip"], "chip.")
    tcp, serial = _get(chip, "chip.tcp", str), _get(chip, "chip.serial", str)
    if tcp and serial:
        raise ConfigError("chip: set either chip.tcp or chip.serial, not both")
    if tcp and not re.match(r"^[^:\s]+:\d{1,5}$", tcp):
        raise ConfigError(f"chip.tcp: {tcp!r} must be HOST:PORT")
    address = _get(chip, "chip.address", int)
    if address is not None and not 1 <= address <= 247:
        raise ConfigError(f"chip.address: {address} is outside 1-247")
    chip_section = ChipSection(
        profile=_get(chip, "chip.profile", str) or "pzem004t",
        tcp=tcp,
        serial=serial,
        baud=_get(chip, "chip.baud", int),
        address=address,
        timeout=float(_get(chip, "chip.timeout", (int, float)) or 1.0),
    )

    mqtt = _table(raw, "mqtt")
    _check_keys(mqtt, _SECTION_KEYS["mqtt"], "mqtt.")
    password = _get(mqtt, "mqtt.password", str)
    pw_file = _get(mqtt, "mqtt.password_file", str)
    if pw_file:
        try:
            password = (base / pw_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {pw_file!r}: {exc.strerror}") from None
    port = _get(mqtt, "mqtt.port", int) or 1883
    if not 1 <= port <= 65535:
        raise ConfigError(f"mqtt.port: {port} is outside 1-65535")
    mqtt_section = MqttSection(
        host=_get(mqtt, "mqtt.host", str) or "localhost",
        port=port,
        username=_get(mqtt, "mqtt.username", str),
        password=password,
        tls=bool(_get(mqtt, "mqtt.tls", bool) or False),
        keepalive=_get(mqtt, "mqtt.keepalive", int) or 30,
        will_delay=_get(mqtt, "mqtt.will_delay", int) if "will_delay" in mqtt else 30,
    )

    contracts = _parse_contracts(_table(raw, "contracts"), interval)
    return MeterConfig(
        MeterSection(meter_id, interval, retention, store if store.is_absolute() else base / store, tick),
        chip_section,
        mqtt_section,
        contracts,
    )


def _parse_contracts(table: dict[str, Any], interval: timedelta) -> tuple[Contract, ...]:
    out: list[Contract] = []
    supply = table.get("supply")
    if supply is not None:
        if not isinstance(supply, dict):
            raise ConfigError("contracts.supply: must be a table [contracts.supply]")
        out.append(parse_contract(supply, Role.SUPPLY, "contracts.supply", interval))
    data = table.get("data", [])
    if not isinstance(data, list):
        raise ConfigError("contracts.data: must be an array of tables [[contracts.data]]")
    seen = {c.company.code for c in out}
    for i, entry in enumerate(data):
        c = parse_contract(entry, Role.DATA, f"contracts.data[{i}]", interval)
        if c.company.code in seen:
            raise ConfigError(f"contracts.data[{i}].company: {c.company.code!r} already has a contract")
        seen.add(c.company.code)
        out.append(c)
    return tuple(out)


def parse_contract(entry: Any, role: Role, key: str, interval: timedelta) -> Contract:
    if not isinstance(entry, dict):
        raise ConfigError(f"{key}: must be a table")
    _check_keys(entry, _CONTRACT_KEYS, f"{key}.")
    code = _get(entry, f"{key}.company", str, required=True)
    if not CODE_RE.match(code):
        raise ConfigError(f"{key}.company: {code!r} must be 1-32 of A-Z a-z 0-9 _ -")
    try:
        types = parse_data_types(entry.get("data_types", []))
    except UnknownDataType as exc:
        raise ConfigError(f"{key}.data_types: {exc}") from None
    send = parse_duration(entry.get("send_interval", interval.total_seconds()), f"{key}.send_interval")
    if send < interval:
        raise ConfigError(f"{key}.send_interval: shorter than meter.measurement_interval")
    return Contract(
        role=role,
        company=Company(code, _get(entry, f"{key}.name", str) or code, _get(entry, f"{key}.server", str) or ""),
        data_types=types,
        send_interval=send,
        menu=_get(entry, f"{key}.menu", str),
    )


def _table(raw: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        if required:
            raise ConfigError(f"[{key}]: missing section")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table [{key}]")
    return value


def _get(table: dict[str, Any], key: str, kind: Any, required: bool = False) -> Any:
    name = key.rsplit(".", 1)[-1]
    if name not in table:
        if required:
            raise ConfigError(f"{key}: missing (required)")
        return None
    value = table[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "number"
        raise ConfigError(f"{key}: expected {want}, got {value!r}")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"{prefix}{k}: unknown key (allowed: {', '.join(sorted(allowed))})")
