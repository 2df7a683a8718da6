"""The meters' MQTT payloads (interfaces.md section 2), validated against the one wire contract
(:mod:`appliance.wire`) and turned into domain objects.

Anything refused raises :class:`MalformedPayload` (``appliance.wire.WireError``) with a short,
countable reason; the collector sets it aside as a dead letter and never stores it. Times are checked
against the receiver's clock: a time more than ``skew`` ahead of it, or before :data:`EARLIEST`, is
refused, so a forged or broken clock can neither declare an outage nor hide a meter's real one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone

from appliance.wire import (
    CLOCK_SKEW,
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    Batch,
    ContractState,
    IntervalReading,
    MeterAlert,
    StatusMessage,
    WireError,
    check_time,
    check_topic,
    as_dict,
    decode,
)

from .model import MeterAlertEvent, MeterState, Reading, StatusEvent

MalformedPayload = WireError  # the collector's name for a refused message
EARLIEST = datetime(2010, 1, 1, tzinfo=timezone.utc)  # older than any meter of this fleet: a broken clock
METER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # interfaces.md section 2, as appliance.wire.MeterId
_PATH = re.compile(r"at `\$\.?([A-Za-z_]{1,40})")


@dataclass(frozen=True)
class Intake:
    """What the receiver accepts; ``now`` is the receiver's clock at arrival."""

    now: datetime
    skew: timedelta = CLOCK_SKEW


def _decode(payload: bytes, kind: type, max_bytes: int = MAX_MESSAGE_BYTES):
    try:
        return decode(payload, kind, max_bytes=max_bytes)
    except WireError as exc:
        if exc.reason == "invalid":  # name the field, so counts say what was wrong
            m = _PATH.search(exc.detail)
            raise WireError(f"invalid {m.group(1)}" if m else "invalid", exc.detail) from None
        if exc.reason == "not JSON" and not _is_utf8(payload):
            raise WireError("not UTF-8", exc.detail) from None
        raise


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check(at: datetime, name: str, intake: Intake) -> None:
    check_time(at, intake.now, name=name, skew=intake.skew, not_before=EARLIEST)


@lru_cache(maxsize=64)
def _earliest_in(tz: timezone) -> datetime:
    return EARLIEST.astimezone(tz)


def _interval_in_bounds(r: IntervalReading, intake: Intake) -> bool:
    """The interval passes both :func:`_check` calls, compared in the meter's own UTC offset: aware
    times of one fixed-offset ``timezone`` compare field by field, where times of two offsets convert
    both on every comparison (most of a reading's validation cost). False: not sure, check each time."""
    tz = r.interval_end.tzinfo
    if type(tz) is not timezone or r.interval_start.tzinfo is not tz:
        return False
    # interval_start < interval_end (the wire type says so): the start's lower and the end's upper bound suffice
    return _earliest_in(tz) <= r.interval_start and r.interval_end <= (intake.now + intake.skew).astimezone(tz)


def parse_reading(payload: bytes, intake: Intake, topic_meter: str | None = None) -> Reading:
    """One interval reading; ``topic_meter`` is the id in ``meters/{id}/interval``, which must match."""
    r: IntervalReading = _decode(payload, IntervalReading)
    if topic_meter is not None:
        check_topic(r.meter_id, topic_meter)
    if not _interval_in_bounds(r, intake):
        _check(r.interval_start, "interval_start", intake)
        _check(r.interval_end, "interval_end", intake)
    return Reading(r.meter_id, r.seq, r.interval_start, r.interval_end, payload.decode("utf-8"))


def parse_alert(payload: bytes, topic_meter: str, intake: Intake) -> MeterAlertEvent:
    a: MeterAlert = _decode(payload, MeterAlert)
    check_topic(a.meter_id, topic_meter)
    _check(a.at, "at", intake)
    return MeterAlertEvent(a.meter_id, a.alert_id, a.kind, a.at, a.company_code, a.role, a.breaker == "open")


def parse_contract_state(payload: bytes, topic_meter: str, intake: Intake) -> tuple[str, int, datetime, dict]:
    """``meters/{id}/contracts``: ``(meter_id, version, at, {"in_force", "pending"})`` as validated."""
    c: ContractState = _decode(payload, ContractState)
    check_topic(c.meter_id, topic_meter)
    _check(c.at, "at", intake)
    return c.meter_id, c.version, c.at, {"in_force": [as_dict(x) for x in c.in_force],
                                         "pending": [as_dict(x) for x in c.pending]}


def parse_batch(payload: bytes) -> list[bytes]:
    """A concentrator's batch: the raw readings, each parsed (and maybe refused) on its own."""
    batch: Batch = _decode(payload, Batch, MAX_BATCH_BYTES)
    return [bytes(raw) for raw in batch.readings]


def topic_meter_id(value: str) -> str:
    if not METER_ID.fullmatch(value):
        raise WireError("bad meter_id in topic", value[:80])
    return value


def parse_status(payload: bytes, topic_meter: str, intake: Intake) -> StatusEvent:
    topic_meter_id(topic_meter)
    s: StatusMessage = _decode(payload, StatusMessage)
    _check(s.at, "at", intake)
    return StatusEvent(topic_meter, MeterState(s.state), s.at)


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` with control characters escaped: PostgreSQL refuses NUL in text, logs
    and terminals should not get the others."""
    text = text[:limit]
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def excerpt(payload: bytes, limit: int = 200) -> str:
    """A bounded, printable excerpt of a refused payload, for the dead-letter table and the log."""
    text = printable(payload[:limit].decode("utf-8", errors="replace"))
    return text + (f"... ({len(payload)} bytes)" if len(payload) > limit else "")
