"""The meter's TOML config (``/etc/smartmeter/meter.toml`` on a Pi), validated at start.

Every error names the key and the problem, e.g. ``meter.measurement_interval: '0s' is below 1s``.
The ``[contracts]`` tables commission the meter: they seed the contract data of an empty store
only; after that the store (and contract changes) are the truth.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from .datatypes import UnknownDataType, parse_data_types
from .domain import Company, Contract, Role
from .errors import ConfigError

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# gpiozero pin factories a config may name (drivers.breaker.relay builds them by this name).
PIN_FACTORIES: tuple[str, ...] = ("lgpio", "rpigpio", "pigpio", "native", "mock")
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
class TrustSection:
    """The meter's trust anchor: the registry's root public key (PEM or 32 raw bytes), or None."""

    registry_public_key: Path | None = None


@dataclass(frozen=True)
class ConfirmationSection:
    """Confirmation against spoofing (embodiment 4). Off unless enabled (it needs the trust anchor)."""

    enabled: bool = False
    period: timedelta = timedelta(days=1)  # confirm sending once per period per company; 0 = before every send
    timeout: timedelta = timedelta(seconds=30)  # how long to wait for a company's answer
    retry_max: timedelta = timedelta(minutes=10)  # backoff cap between unanswered requests
    recheck_after: timedelta = timedelta(hours=1)  # after a mismatch, ask again this much later
    new_building: bool = False  # breaker open until the first matching confirmation from a power company


@dataclass(frozen=True)
class CardSlotSection:
    slot: str
    pcsc: str | None = None  # a PC/SC reader name (as pcsc_scan prints it)
    nfc: str | None = None  # an nfcpy device path: usb:054c:06c3, tty:AMA0:pn532, udp:localhost:54321


@dataclass(frozen=True)
class CardsSection:
    slots: tuple[CardSlotSection, ...] = ()


@dataclass(frozen=True)
class BreakerSection:
    """The relay (interrupting unit 57) on a GPIO pin; ``pin`` None: no breaker fitted."""

    pin: int | str | None = None
    active_high: bool = True  # False for the common active-low relay modules
    normally_closed: bool = False  # wired through the relay's NC contact: coil energised = supply cut
    feedback_pin: int | str | None = None  # an auxiliary contact reporting the real contact state
    feedback_active_high: bool = True
    journal: Path = Path("/var/lib/smartmeter/breaker.json")
    pin_factory: str | None = None  # gpiozero pin factory: lgpio, rpigpio, native, mock (emulation)


@dataclass(frozen=True)
class MeterConfig:
    meter: MeterSection
    chip: ChipSection
    mqtt: MqttSection
    contracts: tuple[Contract, ...] = field(default=())
    path: Path | None = None
    trust: TrustSection = field(default_factory=TrustSection)
    confirmation: ConfirmationSection = field(default_factory=ConfirmationSection)
    cards: CardsSection = field(default_factory=CardsSection)
    breaker: BreakerSection = field(default_factory=BreakerSection)


_SECTION_KEYS = {
    "meter": {"id", "measurement_interval", "retention", "store", "tick"},
    "chip": {"profile", "tcp", "serial", "baud", "address", "timeout"},
    "mqtt": {"host", "port", "username", "password", "password_file", "tls", "keepalive", "will_delay"},
    "contracts": {"supply", "data"},
    "trust": {"registry_public_key"},
    "confirmation": {"enabled", "period", "timeout", "retry_max", "recheck_after", "new_building"},
    "cards": {"slots"},
    "breaker": {"pin", "active_high", "normally_closed", "feedback_pin", "feedback_active_high", "journal",
                "pin_factory"},
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
    return replace(cfg, path=path)


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
    trust = _parse_trust(_table(raw, "trust"), base)
    return MeterConfig(
        MeterSection(meter_id, interval, retention, store if store.is_absolute() else base / store, tick),
        chip_section,
        mqtt_section,
        contracts,
        trust=trust,
        confirmation=_parse_confirmation(_table(raw, "confirmation"), trust),
        cards=_parse_cards(_table(raw, "cards")),
        breaker=_parse_breaker(_table(raw, "breaker"), base),
    )


def _path(value: str, base: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _parse_trust(table: dict[str, Any], base: Path) -> TrustSection:
    _check_keys(table, _SECTION_KEYS["trust"], "trust.")
    key = _get(table, "trust.registry_public_key", str)
    if key is None:
        return TrustSection()
    path = _path(key, base)
    if not path.is_file():
        raise ConfigError(f"trust.registry_public_key: {key!r} is not a readable file (the registry's public key, "
                          "e.g. made by `smartmeter card keys registry`)")
    return TrustSection(path)


def _parse_confirmation(table: dict[str, Any], trust: TrustSection) -> ConfirmationSection:
    _check_keys(table, _SECTION_KEYS["confirmation"], "confirmation.")
    enabled = bool(_get(table, "confirmation.enabled", bool) or False)
    new_building = bool(_get(table, "confirmation.new_building", bool) or False)
    if new_building and not enabled:
        raise ConfigError("confirmation.new_building: needs confirmation.enabled = true")
    if enabled and trust.registry_public_key is None:
        raise ConfigError("confirmation.enabled: needs trust.registry_public_key (answers are signed)")
    d = ConfirmationSection()
    out = ConfirmationSection(
        enabled=enabled,
        period=parse_duration(table.get("period", d.period.total_seconds()), "confirmation.period"),
        timeout=parse_duration(table.get("timeout", d.timeout.total_seconds()), "confirmation.timeout"),
        retry_max=parse_duration(table.get("retry_max", d.retry_max.total_seconds()), "confirmation.retry_max"),
        recheck_after=parse_duration(table.get("recheck_after", d.recheck_after.total_seconds()),
                                     "confirmation.recheck_after"),
        new_building=new_building,
    )
    if out.timeout <= timedelta(0):
        raise ConfigError("confirmation.timeout: must be above 0s (e.g. '30s')")
    if out.retry_max < out.timeout:
        raise ConfigError("confirmation.retry_max: must not be shorter than confirmation.timeout")
    return out


def _parse_cards(table: dict[str, Any]) -> CardsSection:
    _check_keys(table, _SECTION_KEYS["cards"], "cards.")
    slots = table.get("slots", [])
    if not isinstance(slots, list):
        raise ConfigError("cards.slots: must be an array of tables [[cards.slots]]")
    out: list[CardSlotSection] = []
    for i, entry in enumerate(slots):
        key = f"cards.slots[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}: must be a table with slot and pcsc or nfc")
        _check_keys(entry, {"slot", "pcsc", "nfc"}, f"{key}.")
        slot = _get(entry, f"{key}.slot", (str, int), required=True)
        slot = str(slot)
        if any(s.slot == slot for s in out):
            raise ConfigError(f"{key}.slot: slot {slot!r} is listed twice")
        pcsc, nfc = _get(entry, f"{key}.pcsc", str), _get(entry, f"{key}.nfc", str)
        if (pcsc is None) == (nfc is None):
            raise ConfigError(f"{key}: set exactly one of pcsc (a PC/SC reader name) or nfc (an nfcpy device)")
        if nfc is not None and not re.match(r"^(usb|tty|udp)(:|$)", nfc):
            raise ConfigError(f"{key}.nfc: {nfc!r} is not an nfcpy device (usb:..., tty:..., udp:host:port)")
        out.append(CardSlotSection(slot, pcsc, nfc))
    return CardsSection(tuple(out))


def _parse_breaker(table: dict[str, Any], base: Path) -> BreakerSection:
    _check_keys(table, _SECTION_KEYS["breaker"], "breaker.")
    d = BreakerSection()
    pin = _get(table, "breaker.pin", (int, str))
    feedback = _get(table, "breaker.feedback_pin", (int, str))
    for key, value in (("breaker.pin", pin), ("breaker.feedback_pin", feedback)):
        if isinstance(value, bool) or (isinstance(value, int) and not 0 <= value <= 27):
            raise ConfigError(f"{key}: {value!r} is not a BCM GPIO number 0-27 (or a name like 'GPIO17', 'BOARD11')")
    if feedback is not None and feedback == pin:
        raise ConfigError("breaker.feedback_pin: must differ from breaker.pin")
    factory = _get(table, "breaker.pin_factory", str)
    if factory is not None and factory not in PIN_FACTORIES:
        raise ConfigError(f"breaker.pin_factory: {factory!r} is not one of {', '.join(PIN_FACTORIES)}")
    journal = _get(table, "breaker.journal", str)

    def flag(name: str, default: bool) -> bool:
        value = _get(table, f"breaker.{name}", bool)
        return default if value is None else value

    return BreakerSection(
        pin=pin,
        active_high=flag("active_high", d.active_high),
        normally_closed=flag("normally_closed", d.normally_closed),
        feedback_pin=feedback,
        feedback_active_high=flag("feedback_active_high", d.feedback_active_high),
        journal=_path(journal, base) if journal else d.journal,
        pin_factory=factory,
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
