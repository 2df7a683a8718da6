"""Parsing the meters' MQTT payloads (interfaces.md section 2) into domain objects.

Anything that does not parse raises :class:`MalformedPayload` with a reason a person can act on;
the collector logs and counts it, and never stores it.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from .model import MeterState, Reading, StatusEvent

METER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class MalformedPayload(ValueError):
    """A message that breaks the wire contract. ``reason`` is a short, countable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def decode_json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))  # the contract says UTF-8; json.loads(bytes) would guess
    except UnicodeDecodeError as exc:
        raise MalformedPayload("not UTF-8", str(exc)) from None
    except ValueError as exc:
        raise MalformedPayload("not JSON", str(exc)) from None


def _time(obj: dict[str, Any], name: str) -> datetime:
    value = obj.get(name)
    if not isinstance(value, str):
        raise MalformedPayload(f"missing {name}")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPayload(f"bad {name}", repr(value)[:80]) from None
    if dt.tzinfo is None:
        raise MalformedPayload(f"{name} has no UTC offset", value)
    return dt


def meter_id_of(value: Any) -> str:
    if not isinstance(value, str) or not METER_ID.fullmatch(value):
        raise MalformedPayload("bad meter_id", repr(value)[:80])
    return value


def parse_reading(obj: Any, topic_meter: str | None = None) -> Reading:
    """One interval reading; ``topic_meter`` is the id in ``meters/{id}/interval``, which must match."""
    if not isinstance(obj, dict):
        raise MalformedPayload("reading is not a JSON object")
    meter = meter_id_of(obj.get("meter_id"))
    if topic_meter is not None and meter != topic_meter:
        raise MalformedPayload("meter_id differs from topic", f"{meter} != {topic_meter}")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise MalformedPayload("bad seq", repr(seq)[:40])
    start, end = _time(obj, "interval_start"), _time(obj, "interval_end")
    if end <= start:
        raise MalformedPayload("interval_end not after interval_start")
    return Reading(meter, seq, start, end, obj)


def parse_batch(obj: Any) -> list[Any]:
    """A concentrator's batch: the raw readings, each parsed (and maybe rejected) on its own."""
    if not isinstance(obj, dict) or not isinstance(obj.get("readings"), list):
        raise MalformedPayload("batch without a readings list")
    return obj["readings"]


def parse_status(obj: Any, topic_meter: str) -> StatusEvent:
    if not isinstance(obj, dict):
        raise MalformedPayload("status is not a JSON object")
    try:
        state = MeterState(obj.get("state"))
    except ValueError:
        raise MalformedPayload("unknown state", repr(obj.get("state"))[:40]) from None
    return StatusEvent(meter_id_of(topic_meter), state, _time(obj, "at"))
