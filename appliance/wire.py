"""The wire contract of interfaces.md section 2, declared once, for every receiver to validate against.

A receiver treats every payload as untrusted. :func:`decode` checks size, JSON, nesting, types and
ranges in one pass (msgspec, the same library as the config) and raises :class:`WireError` with a
short, countable ``reason``; :func:`check_time` refuses a time implausibly far from the receiver's
clock. The meter builds these payloads (``appliance.domain.Reading.as_json``, ``appliance.sending``);
the grid operator's handlers and the companies' servers decode them here.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import msgspec

# Limits stated in docs/protocol.md. A reading is ~400 bytes; a batch of a concentrator's meters
# (a few hundred) stays well below MAX_BATCH_BYTES; anything larger is not from a meter.
MAX_MESSAGE_BYTES = 16 * 1024
MAX_BATCH_BYTES = 1024 * 1024
MAX_BATCH_READINGS = 2000
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of the receiver's clock a time may be

MeterId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CompanyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
EventId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Measure = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]  # W, Wh, V, A, Hz: far beyond any meter
Register = Annotated[float, msgspec.Meta(ge=0, le=1e15)]  # Wh register totals
PowerFactor = Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]


class WireError(ValueError):
    """A payload that breaks the wire contract. ``reason`` is a short label to count and log by."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class IntervalReading(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``meters/{meter_id}/interval``: one interval reading (all fields; later fields may be added)."""

    meter_id: MeterId
    seq: Seq
    interval_start: datetime
    interval_end: datetime
    quality: Literal["good", "bad", "register_reset"] = "good"
    power_w: Measure | None = None
    energy_wh: Measure | None = None
    export_wh: Measure | None = None
    voltage_v: Measure | None = None
    current_a: Measure | None = None
    power_factor: PowerFactor | None = None
    frequency_hz: Measure | None = None
    import_wh_total: Register | None = None
    export_wh_total: Register | None = None

    def __post_init__(self) -> None:
        if self.interval_start.tzinfo is None or self.interval_end.tzinfo is None:
            raise ValueError("interval times need a UTC offset")
        if self.interval_end <= self.interval_start:
            raise ValueError("interval_end is not after interval_start")


class StatusMessage(msgspec.Struct, frozen=True):
    """``meters/{meter_id}/status`` (retained): online, offline (the Last Will), the last gasp, its end."""

    state: Literal["online", "offline", "power_fail", "power_restored"]
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("at needs a UTC offset")


class MeterAlert(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``meters/{meter_id}/alerts``: an alert the grid operator passes on to the registered customer."""

    meter_id: MeterId
    alert_id: EventId  # the meter's own alert row: redelivered or repeated, it is one alert
    kind: Literal["security_error"]
    at: datetime
    company_code: CompanyCode
    role: Literal["supply", "data"] = "data"
    breaker: Literal["open", "closed"] = "closed"


Name = Annotated[str, msgspec.Meta(max_length=64)]
Menu = Annotated[str, msgspec.Meta(max_length=64)]
DataTypeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}$")]
SwitchText = Annotated[str, msgspec.Meta(pattern=r"^(immediate|\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?([+-]\d\d:\d\d|Z))$")]
DataTypeList = Annotated[list[DataTypeName], msgspec.Meta(max_length=32)]
MAX_CONTRACTS = 64  # a meter holds one supply contract and a few data companies; far beyond that is not a meter


class WeeklySlotWire(msgspec.Struct, frozen=True):
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    at: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class WeeklyWire(msgspec.Struct, frozen=True):
    weekly: Annotated[list[WeeklySlotWire], msgspec.Meta(min_length=1, max_length=14)]


class ContractInForce(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    role: Literal["supply", "data"]
    company: CompanyCode
    name: Name
    data_types: DataTypeList
    menu: Menu | None = None
    since: datetime | None = None


class PendingChange(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    id: EventId
    kind: Literal["supply", "data"]
    action: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}$")]
    company: CompanyCode
    name: Name
    switch: SwitchText | WeeklyWire  # "immediate", an ISO date-time, or a weekly rule
    data_types: DataTypeList = []
    menu: Menu | None = None
    source: Annotated[str, msgspec.Meta(max_length=32)] = ""


class ContractState(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``meters/{meter_id}/contracts``: the contracts in force and pending, whole, newest ``version`` wins."""

    meter_id: MeterId
    at: datetime
    version: EventId
    in_force: Annotated[list[ContractInForce], msgspec.Meta(max_length=MAX_CONTRACTS)]
    pending: Annotated[list[PendingChange], msgspec.Meta(max_length=MAX_CONTRACTS)]


class Batch(msgspec.Struct, frozen=True):
    """``concentrators/{id}/batch``: readings, each validated on its own (one bad one spoils no other)."""

    readings: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_BATCH_READINGS)]


class CompanyData(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``companies/{code}/meters/{meter_id}/data``: the contracted data types of one reading (56D)."""

    meter_id: MeterId
    company_code: CompanyCode
    seq: Seq
    menu: Menu | None = None  # added: the contract's tariff menu when it has one (56D)


class CompanyEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``companies/{code}/meters/{meter_id}/events``: contract and confirmation events."""

    meter_id: MeterId
    company_code: CompanyCode
    event_id: EventId
    event: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,40}$")]
    at: datetime


T = TypeVar("T")


def decode(payload: bytes, kind: type[T], *, max_bytes: int = MAX_MESSAGE_BYTES) -> T:
    """``payload`` as ``kind``, or :class:`WireError`. The size is checked before parsing; msgspec
    bounds nesting itself (a deeply nested message raises RecursionError, not a crash)."""
    if len(payload) > max_bytes:
        raise WireError("too large", f"{len(payload)} bytes > {max_bytes}")
    try:
        return msgspec.json.decode(payload, type=kind, strict=True)
    except RecursionError:
        raise WireError("nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise WireError("invalid", str(exc)[:200]) from None
    except msgspec.DecodeError as exc:
        reason = "not UTF-8" if "utf-8" in str(exc).lower() else "not JSON"
        raise WireError(reason, str(exc)[:200]) from None


def check_time(at: datetime, now: datetime, *, name: str = "time", skew: timedelta = CLOCK_SKEW,
               not_before: datetime | None = None) -> None:
    """Refuse a time more than ``skew`` ahead of the receiver's clock, or before ``not_before`` (e.g.
    the meter's commissioning): a forged or broken clock must not blind or fool a receiver."""
    if at > now + skew:
        raise WireError(f"{name} in the future", f"{at.isoformat()} is more than {skew} ahead of {now.isoformat()}")
    if not_before is not None and at < not_before:
        raise WireError(f"{name} too old", f"{at.isoformat()} is before {not_before.isoformat()}")


def check_topic(body_meter: str, topic_meter: str) -> None:
    """The ``meter_id`` in a body always equals the one in its topic."""
    if body_meter != topic_meter:
        raise WireError("meter_id differs from topic", f"{body_meter[:64]} != {topic_meter[:64]}")


def as_dict(obj: Any) -> dict[str, Any]:
    """A decoded payload as the JSON object it was (for storing the body as received)."""
    return msgspec.to_builtins(obj)
