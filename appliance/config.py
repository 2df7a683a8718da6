"""The meter's TOML config (``/etc/smartmeter/meter.toml`` on a Pi), declared once and validated at start.

Each section is a typed class below; its defaults are the defaults (``config/meter.example.toml``
shows them). msgspec decodes the file strictly: a wrong type (``timeout = true``), a value out of
range (``mqtt.port = 0``) or an unknown key is refused with the file, the key and the reason, and
nothing is rewritten silently. The ``[contracts]`` tables commission the meter: they seed the
contract data of an empty store only; after that the store (and contract changes) are the truth.
"""
from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from .datatypes import UnknownDataType, parse_data_types
from .domain import Company, Contract, Role
from .errors import ConfigError

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# gpiozero pin factories a config may name (drivers.breaker.relay builds them by this name).
PIN_FACTORIES: tuple[str, ...] = ("lgpio", "rpigpio", "pigpio", "native", "mock")
PZEM_GENERAL_ADDRESS = 0xF8  # PZEM-004T answers it whatever its own address: one chip per bus
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def valid_modbus_address(address: int) -> bool:
    """1-247 (0 is broadcast, which no chip answers), or the PZEM-004T's general address 0xF8."""
    return 1 <= address <= 247 or address == PZEM_GENERAL_ADDRESS


class Duration(timedelta):
    """A duration in the config: ``"30m"``, ``"500ms"``, ``"1d"`` or a number of seconds."""


class SlotName(str):
    """A front-panel card slot: written ``slot = 1`` or ``slot = "A"``, always a string."""


def parse_duration(value: Any, key: str) -> timedelta:
    """``"30m"``, ``"1s"``, ``"2h"``, ``"1d"`` or a number of seconds; ``key`` names it in the error."""
    try:
        return _duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _duration(value: Any) -> Duration:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30m', got {value!r}")
    if isinstance(value, (int, float)):
        return Duration(seconds=value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m:
            return Duration(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"{value!r} is not a duration (write e.g. '30m', '1s', '2h', '1d')")


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Duration:
        return _duration(value)
    if kind is SlotName:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected a slot name or number, got {value!r}")
        return SlotName(value)
    if kind is Path:
        if not isinstance(value, str):
            raise ValueError(f"expected a path, got {value!r}")
        return Path(value)
    raise NotImplementedError(kind)


MeterId = Annotated[str, msgspec.Meta(pattern=ID_RE.pattern)]
CompanyCode = Annotated[str, msgspec.Meta(pattern=CODE_RE.pattern)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Pin = Annotated[int, msgspec.Meta(ge=0, le=27)] | str  # BCM 0-27, or a gpiozero name ('GPIO17', 'BOARD11')


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class MeterSection(_Section):
    id: MeterId
    measurement_interval: Duration = Duration(minutes=30)
    retention: Duration = Duration(days=7)
    store: Path = Path("/var/lib/smartmeter/meter.sqlite3")  # relative: to the config file's folder
    tick: Duration = Duration(milliseconds=500)  # how often the service looks for due work

    def __post_init__(self) -> None:
        if self.measurement_interval < timedelta(seconds=1):
            raise ValueError(f"measurement_interval: {self.measurement_interval.total_seconds()}s is below the 1s "
                             "minimum")
        if timedelta(days=1) % self.measurement_interval:
            raise ValueError("measurement_interval: must divide a day evenly (e.g. 1s, 10s, 1m, 15m, 30m, 1h)")
        if self.retention < timedelta(days=1):
            raise ValueError("retention: must keep at least one day of readings (e.g. '1d', '7d')")
        if self.tick <= timedelta(0):
            raise ValueError("tick: must be above 0s (e.g. '500ms')")


class ChipSection(_Section):
    profile: str = "pzem004t"
    tcp: str | None = None  # "host:port" (a Modbus TCP gateway or the emulator)
    serial: str | None = None  # "/dev/ttyUSB0"
    baud: Annotated[int, msgspec.Meta(ge=300, le=921600)] | None = None  # None: the profile's default
    address: int | None = None  # None: the profile's default
    timeout: Seconds = 1.0  # seconds per Modbus transaction

    def __post_init__(self) -> None:
        if self.tcp and self.serial:
            raise ValueError("set either chip.tcp or chip.serial, not both")
        if self.tcp is not None and not re.match(r"^[^:\s]+:\d{1,5}$", self.tcp):
            raise ValueError(f"tcp: {self.tcp!r} must be HOST:PORT")
        if self.address is not None and not valid_modbus_address(self.address):
            raise ValueError(f"address: {self.address} is outside 1-247 (or 248 = 0xF8, the PZEM-004T's general "
                             "address)")


class MqttSection(_Section):
    host: str = "localhost"
    port: Port = 1883
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None  # read at start; relative: to the config file's folder
    tls: bool = False
    ca_file: Path | None = None  # the broker's CA (a private one); default: the system's trusted CAs
    cert_file: Path | None = None  # this party's client certificate (mutual TLS) ...
    key_file: Path | None = None  # ... and its private key (must be 0600)
    keepalive: Annotated[int, msgspec.Meta(ge=5, le=65535)] = 30  # seconds
    will_delay: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 30  # seconds before 'offline' (rides out blinks)

    def __post_init__(self) -> None:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either mqtt.password or mqtt.password_file, not both")
        if (self.ca_file or self.cert_file or self.key_file) and not self.tls:
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")


class TrustSection(_Section):
    """The meter's trust anchor: the registry's root public key (PEM or 32 raw bytes), or none."""

    registry_public_key: Path | None = None


class ConfirmationSection(_Section):
    """Confirmation against spoofing (embodiment 4). Off unless enabled (it needs the trust anchor)."""

    enabled: bool = False
    period: Duration = Duration(days=1)  # confirm sending once per period per company; 0 = before every send
    timeout: Duration = Duration(seconds=30)  # how long to wait for a company's answer
    retry_max: Duration = Duration(minutes=10)  # backoff cap between unanswered requests
    recheck_after: Duration = Duration(hours=1)  # after a mismatch, ask again this much later
    new_building: bool = False  # breaker open until the first matching confirmation from a power company

    def __post_init__(self) -> None:
        if self.new_building and not self.enabled:
            raise ValueError("new_building: needs confirmation.enabled = true")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: must be above 0s (e.g. '30s')")
        if self.retry_max < self.timeout:
            raise ValueError("retry_max: must not be shorter than confirmation.timeout")
        if self.period < timedelta(0) or self.recheck_after < timedelta(0):
            raise ValueError("period and recheck_after: must not be negative")


class CardSlotSection(_Section):
    slot: SlotName
    pcsc: str | None = None  # a PC/SC reader name (as pcsc_scan prints it)
    nfc: str | None = None  # an nfcpy device path: usb:054c:06c3, tty:AMA0:pn532, udp:localhost:54321

    def __post_init__(self) -> None:
        if (self.pcsc is None) == (self.nfc is None):
            raise ValueError("set exactly one of pcsc (a PC/SC reader name) or nfc (an nfcpy device)")
        if self.nfc is not None and not re.match(r"^(usb|tty|udp)(:|$)", self.nfc):
            raise ValueError(f"nfc: {self.nfc!r} is not an nfcpy device (usb:..., tty:..., udp:host:port)")


class CardsSection(_Section):
    slots: tuple[CardSlotSection, ...] = ()
    # A USB medium (drivers/cards/usb.py): signed *.cose files under this mount directory; None: off
    usb_mount: Path | None = None
    usb_poll: Duration = Duration(seconds=2)
    usb_taken: Path = Path("/var/lib/smartmeter/usb-taken.json")  # digests of the files taken; relative: to the config

    def __post_init__(self) -> None:
        names = [s.slot for s in self.slots]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"slots[{i}].slot: slot {name!r} is listed twice")


class BreakerSection(_Section):
    """The relay (interrupting unit 57) on a GPIO pin; ``pin`` None: no breaker fitted."""

    pin: Pin | None = None
    active_high: bool = True  # False for the common active-low relay modules
    normally_closed: bool = False  # wired through the relay's NC contact: coil energised = supply cut
    feedback_pin: Pin | None = None  # an auxiliary contact reporting the real contact state
    feedback_active_high: bool = True
    journal: Path = Path("/var/lib/smartmeter/breaker.json")  # relative: to the config file's folder
    pin_factory: str | None = None  # gpiozero pin factory: lgpio, rpigpio, native, mock (emulation)

    def __post_init__(self) -> None:
        if self.feedback_pin is not None and self.feedback_pin == self.pin:
            raise ValueError("feedback_pin: must differ from breaker.pin")
        if self.pin_factory is not None and self.pin_factory not in PIN_FACTORIES:
            raise ValueError(f"pin_factory: {self.pin_factory!r} is not one of {', '.join(PIN_FACTORIES)}")


class SupplySection(_Section):
    """The supply monitor for the last gasp: a "power good" GPIO input (a UPS HAT's or a supply-monitor
    comparator's) and/or the chip's voltage collapsing. Off while neither ``pin`` nor
    ``voltage_threshold`` is set."""

    pin: Pin | None = None
    active_high: bool = True  # the pin's level while the supply is good (False: a "power fail" line, low = good)
    pull_up: bool = False  # the Pi's internal pull-up (an open-drain output); otherwise the pull-down
    pin_factory: str | None = None  # gpiozero pin factory, as for the breaker
    voltage_threshold: Annotated[float, msgspec.Meta(gt=0, le=300)] | None = None  # volts: below it, supply lost
    voltage_poll: Duration = Duration(seconds=1)  # how often the chip's voltage is read for it
    holdup_ms: Annotated[int, msgspec.Meta(ge=10, le=600_000)] = 2000  # how long the Pi runs on after a cut

    @property
    def enabled(self) -> bool:
        return self.pin is not None or self.voltage_threshold is not None

    def __post_init__(self) -> None:
        if self.pin_factory is not None and self.pin_factory not in PIN_FACTORIES:
            raise ValueError(f"pin_factory: {self.pin_factory!r} is not one of {', '.join(PIN_FACTORIES)}")
        if self.voltage_poll <= timedelta(0):
            raise ValueError("voltage_poll: must be above 0s (e.g. '1s')")


class HomeAssistantSection(_Section):
    """MQTT discovery for the household's own Home Assistant: power, import and export energy and the
    breaker, on the household's broker (``[home_assistant.mqtt]``, the keys of ``[mqtt]``), never the
    utility's. Off unless enabled."""

    enabled: bool = False
    discovery_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = "homeassistant"
    name: str = "スマートメーター"  # the device's name as Home Assistant shows it
    mqtt: MqttSection | None = None


class MetricsSection(_Section):
    """Prometheus metrics over HTTP; off unless ``listen`` is set. The endpoint has no login: keep it on
    the loopback (a local Prometheus agent) or a management network."""

    listen: str | None = None  # "127.0.0.1:9108"

    def __post_init__(self) -> None:
        if self.listen is not None:
            parse_listen(self.listen)


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def same_broker(a: MqttSection, b: MqttSection) -> bool:
    """Whether two ``[mqtt]`` sections name the same broker (loopback names taken as one host)."""
    def host(m: MqttSection) -> str:
        h = m.host.strip().lower().rstrip(".")
        return "loopback" if h in _LOOPBACK or h.startswith("127.") else h
    return host(a) == host(b) and a.port == b.port


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6) as (host, port), or ValueError."""
    m = re.match(r"^\[?([^\s\[\]]+?)\]?:(\d{1,5})$", text)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise ValueError(f"listen: {text!r} must be HOST:PORT, e.g. 127.0.0.1:9108")
    return m.group(1), int(m.group(2))


class ContractEntry(_Section):
    """One commissioned contract: ``[contracts.supply]`` or an entry of ``[[contracts.data]]``."""

    company: CompanyCode
    name: str | None = None  # default: the company code
    server: str = ""
    data_types: list[str] | str = []  # a list, or "time,energy"
    send_interval: Duration | None = None  # default: meter.measurement_interval
    menu: str | None = None

    def __post_init__(self) -> None:
        try:
            parse_data_types(self.data_types)
        except UnknownDataType as exc:
            raise ValueError(f"data_types: {exc}") from None


class ContractsSection(_Section):
    supply: ContractEntry | None = None
    data: tuple[ContractEntry, ...] = ()


class MeterConfig(_Section):
    meter: MeterSection
    chip: ChipSection = ChipSection()
    mqtt: MqttSection = MqttSection()
    trust: TrustSection = TrustSection()
    confirmation: ConfirmationSection = ConfirmationSection()
    cards: CardsSection = CardsSection()
    breaker: BreakerSection = BreakerSection()
    supply: SupplySection = SupplySection()
    home_assistant: HomeAssistantSection = HomeAssistantSection()
    metrics: MetricsSection = MetricsSection()
    commissioning: ContractsSection = msgspec.field(default_factory=ContractsSection, name="contracts")
    path: Path | None = msgspec.field(default=None, name="__file__")  # the file it was read from, if any

    def __post_init__(self) -> None:
        if self.confirmation.enabled and self.trust.registry_public_key is None:
            raise ValueError("confirmation.enabled: needs trust.registry_public_key (answers are signed)")
        seen: set[str] = set()
        for key, entry, _role in self._entries():
            if entry.company in seen:
                raise ValueError(f"{key}.company: {entry.company!r} already has a contract")
            seen.add(entry.company)
            if entry.send_interval is not None and entry.send_interval < self.meter.measurement_interval:
                raise ValueError(f"{key}.send_interval: shorter than meter.measurement_interval")
        ha = self.home_assistant
        if ha.enabled and ha.mqtt is None:
            raise ValueError("home_assistant.mqtt: the household's own broker (host, port, account) is required")
        if ha.enabled and same_broker(ha.mqtt, self.mqtt):
            raise ValueError("home_assistant.mqtt: that is the utility's broker ([mqtt]); Home Assistant gets the "
                             "household's own broker only")
        if self.supply.pin is not None and self.supply.pin in (self.breaker.pin, self.breaker.feedback_pin):
            raise ValueError("supply.pin: the breaker already uses that pin")

    def _entries(self) -> list[tuple[str, ContractEntry, Role]]:
        out = [("contracts.supply", self.commissioning.supply, Role.SUPPLY)] if self.commissioning.supply else []
        return out + [(f"contracts.data[{i}]", e, Role.DATA) for i, e in enumerate(self.commissioning.data)]

    @property
    def contracts(self) -> tuple[Contract, ...]:
        """The commissioned contracts, as the core's :class:`~appliance.domain.Contract`."""
        return tuple(Contract(role=role, company=Company(e.company, e.name or e.company, e.server),
                              data_types=parse_data_types(e.data_types),
                              send_interval=e.send_interval or self.meter.measurement_interval, menu=e.menu)
                     for _key, e, role in self._entries())


S = TypeVar("S", bound=msgspec.Struct)


def decode(raw: dict[str, Any], kind: type[S], source: str | Path | None = None) -> S:
    """``raw`` (a parsed TOML document) as ``kind``, or :class:`ConfigError` naming the source, the key
    and the reason."""
    try:
        return msgspec.convert(raw, kind, strict=True, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = _key_first(str(exc))
        raise ConfigError(f"{source}: {message}" if source else message) from None


def load_toml(path: str | Path, kind: type[S], *, what: str = "config") -> S:
    """Read and decode a TOML file as ``kind``; every error names the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key in raw:
        if key.startswith("__"):  # reserved for what the loader fills in (the file, its folder)
            raise ConfigError(f"{path}: {key}: unknown key")
    return decode(raw, kind, path)


_PATTERN_WORDS = {ID_RE.pattern: "must be 1-64 of A-Z a-z 0-9 _ -", CODE_RE.pattern: "must be 1-32 of A-Z a-z 0-9 _ -"}


def _key_first(message: str) -> str:
    """msgspec's ``"Expected `int` >= 1 - at `$.mqtt.port`"`` as ``"mqtt.port: expected `int` >= 1"``;
    a section's own check (``"tcp: ... - at `$.chip`"``) gets its section in front."""
    text, sep, where = message.rpartition(" - at `$")
    if not sep:
        return message
    path = where.rstrip("`").lstrip(".")
    if text.startswith("Object contains unknown field `"):
        field = text.split("`")[1]
        return f"{path + '.' if path else ''}{field}: unknown key"
    if text.startswith("Object missing required field `"):
        field = text.split("`")[1]
        return f"{path + '.' if path else ''}{field}: missing (required)"
    for pattern, words in _PATTERN_WORDS.items():
        if f"matching regex '{pattern}'" in text:
            text = words
    if text.startswith("Invalid enum value "):
        text = "invalid value " + text[len("Invalid enum value "):]
    if text.startswith("Expected"):  # "Expected `int` <= 65535" -> "expected int <= 65535"
        text = "expected" + text[len("Expected"):].replace("`", "")
    head = text.split(":", 1)[0]
    if path and re.fullmatch(r"[a-z_]+(\[\d+\])?(\.[a-z_]+)?", head) and not path.endswith(head):
        return f"{path}.{text}"  # a section's check names its own key
    return f"{path}: {text}" if path else text


def load_config(path: str | Path) -> MeterConfig:
    path = Path(path)
    cfg = load_toml(path, MeterConfig)
    try:
        return resolve(cfg, path.parent, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict[str, Any], base: Path = Path(".")) -> MeterConfig:
    """A config given as a dict (the emulation, the benchmarks and tests write theirs this way);
    relative paths are relative to ``base``."""
    if "__file__" in raw:
        raise ConfigError("__file__: unknown key")
    if "meter" not in raw:
        raise ConfigError("[meter]: missing section")
    return resolve(decode(raw, MeterConfig), base, None)


class MqttFile(_Section):
    """A file holding only an ``[mqtt]`` section: what ``smartmeter broker`` writes for each party."""

    mqtt: MqttSection


def load_mqtt_config(path: str | Path) -> MqttSection:
    """The ``[mqtt]`` settings of a party file (``--mqtt-config FILE``), secrets read and checked."""
    path = Path(path)
    section = load_toml(path, MqttFile, what="MQTT config").mqtt
    try:
        return resolve_mqtt(section, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_secret(path: Path, key: str) -> str:
    """A password or key file's text, refused (as ssh does) if group or others may read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {str(path)!r}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{key}: {path} is readable by others (mode {mode & 0o777:o}); "
                          f"it holds a secret: chmod 600 {path}")
    return text


def resolve_mqtt(mqtt: MqttSection, base: Path) -> MqttSection:
    """The password file read, TLS files made absolute; a secret readable by others is refused."""
    def at(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else base / p)

    password = mqtt.password
    if mqtt.password_file is not None:
        password = read_secret(at(mqtt.password_file), "mqtt.password_file").strip()
    key_file = at(mqtt.key_file)
    if key_file is not None:
        read_secret(key_file, "mqtt.key_file")
    for name in ("ca_file", "cert_file"):
        file = at(getattr(mqtt, name))
        if file is not None and not file.is_file():
            raise ConfigError(f"mqtt.{name}: {str(getattr(mqtt, name))!r} is not a readable file")
    return msgspec.structs.replace(mqtt, password=password, password_file=None, ca_file=at(mqtt.ca_file),
                                   cert_file=at(mqtt.cert_file), key_file=key_file)


def resolve(cfg: MeterConfig, base: Path, path: Path | None) -> MeterConfig:
    """Relative paths made absolute against the config's folder; the password file read; the
    trust anchor checked to exist. Nothing else changes."""
    def at(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    mqtt = resolve_mqtt(cfg.mqtt, base)
    ha = cfg.home_assistant
    if ha.mqtt is not None:
        try:
            ha = msgspec.structs.replace(ha, mqtt=resolve_mqtt(ha.mqtt, base))
        except ConfigError as exc:
            raise ConfigError(f"home_assistant.{exc}") from None
    trust = cfg.trust
    if trust.registry_public_key is not None:
        key = at(trust.registry_public_key)
        if not key.is_file():
            raise ConfigError(f"trust.registry_public_key: {str(trust.registry_public_key)!r} is not a readable file "
                              "(the registry's public key, e.g. made by `smartmeter card keys registry`)")
        trust = TrustSection(key)
    return msgspec.structs.replace(
        cfg, meter=msgspec.structs.replace(cfg.meter, store=at(cfg.meter.store)), mqtt=mqtt, trust=trust,
        breaker=msgspec.structs.replace(cfg.breaker, journal=at(cfg.breaker.journal)),
        cards=msgspec.structs.replace(cfg.cards, usb_taken=at(cfg.cards.usb_taken)), home_assistant=ha, path=path)
