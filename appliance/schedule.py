"""Switch times (56B1 / 56C1): ``immediate``, an absolute date-time, or a weekly rule.

A weekly rule recurs: each occurrence is applied once. An absolute time or ``immediate`` is applied
once and then done. Weekly times are JST wall-clock times (Japan has no daylight saving).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from .clock import JST, iso, parse_iso
from .domain import SwitchTime, WeeklySlot
from .errors import ChangeRejected

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_switch(value: Any) -> SwitchTime:
    """Parse the wire form: ``"immediate"``, an ISO-8601 string, or ``{"weekly": [...]}``."""
    if value == "immediate":
        return SwitchTime(immediate=True)
    if isinstance(value, str):
        try:
            return SwitchTime(at=parse_iso(value))
        except ValueError as exc:
            raise ChangeRejected(f"switch: {exc}" if "offset" in str(exc) else
                                 f"switch: {value!r} is neither 'immediate' nor an ISO-8601 date-time") from None
    if isinstance(value, dict) and set(value) == {"weekly"}:
        slots = value["weekly"]
        if not isinstance(slots, list) or not slots:
            raise ChangeRejected("switch.weekly: needs a non-empty list of {day, at}")
        return SwitchTime(weekly=tuple(_parse_slot(i, s) for i, s in enumerate(slots)))
    raise ChangeRejected(f"switch: {value!r} is not 'immediate', an ISO-8601 date-time or {{'weekly': [...]}}")


def _parse_slot(index: int, slot: Any) -> WeeklySlot:
    where = f"switch.weekly[{index}]"
    if not isinstance(slot, dict) or set(slot) != {"day", "at"}:
        raise ChangeRejected(f"{where}: must be {{'day': 'mon', 'at': 'HH:MM'}}")
    day = str(slot["day"]).lower()[:3]
    if day not in DAYS:
        raise ChangeRejected(f"{where}.day: {slot['day']!r} is not one of {', '.join(DAYS)}")
    try:
        at = time.fromisoformat(str(slot["at"]))
    except ValueError:
        raise ChangeRejected(f"{where}.at: {slot['at']!r} is not a time HH:MM") from None
    return WeeklySlot(day=DAYS.index(day), at=at.strftime("%H:%M"))


def parse_switch_text(text: str) -> SwitchTime:
    """CLI form: ``immediate``, an ISO date-time, or ``weekly:mon@22:00,fri@07:00``."""
    if text.startswith("weekly:"):
        slots = []
        for part in text[len("weekly:"):].split(","):
            day, _, at = part.partition("@")
            slots.append({"day": day.strip(), "at": at.strip()})
        return parse_switch({"weekly": slots})
    return parse_switch(text)


def switch_to_wire(switch: SwitchTime) -> Any:
    if switch.immediate:
        return "immediate"
    if switch.at is not None:
        return iso(switch.at)
    return {"weekly": [{"day": DAYS[s.day], "at": s.at} for s in switch.weekly]}


def describe(switch: SwitchTime) -> str:
    if switch.immediate:
        return "immediate"
    if switch.at is not None:
        return switch.at.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
    return "weekly " + ", ".join(f"{DAYS[s.day]} {s.at}" for s in switch.weekly)


def _slot_occurrence(slot: WeeklySlot, week_monday: datetime) -> datetime:
    hh, mm = (int(x) for x in slot.at.split(":"))
    return week_monday + timedelta(days=slot.day, hours=hh, minutes=mm)


def _monday(dt: datetime) -> datetime:
    local = dt.astimezone(JST)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def next_occurrence(switch: SwitchTime, after: datetime) -> datetime | None:
    """The first switch moment strictly after ``after`` (None for ``immediate`` / past absolute times)."""
    if switch.immediate:
        return None
    if switch.at is not None:
        return switch.at if switch.at > after else None
    monday = _monday(after)
    candidates = [
        _slot_occurrence(s, monday + timedelta(weeks=w)) for w in (0, 1) for s in switch.weekly
    ]
    return min(c for c in candidates if c > after)


def latest_due(switch: SwitchTime, now: datetime, since: datetime | None) -> datetime | None:
    """The most recent switch moment in ``(since, now]``, or None if none is due.

    Missed weekly occurrences collapse into the latest one: after a week off, the meter applies
    only the latest occurrence, so the contract in force is the one the schedule says now.
    ``immediate`` is due at once (returns ``now``) unless already applied (``since`` set).
    """
    if switch.immediate:
        return now if since is None else None
    if switch.at is not None:
        return switch.at if switch.at <= now and (since is None or switch.at > since) else None
    monday = _monday(now)
    candidates = [
        _slot_occurrence(s, monday + timedelta(weeks=w)) for w in (-1, 0) for s in switch.weekly
    ]
    due = [c for c in candidates if c <= now and (since is None or c > since)]
    return max(due) if due else None
