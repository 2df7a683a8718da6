"""Conversions at the storage boundary: aware datetimes <-> epoch seconds (portable across SQL dialects)."""
from __future__ import annotations

from datetime import datetime, timedelta

from appliance.clock import JST, UTC


def to_epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC).astimezone(JST)


def window_end_at_or_before(t: datetime, period: timedelta) -> datetime:
    """The end of the latest window that has ended by ``t`` (windows aligned to JST midnight)."""
    local = t.astimezone(JST)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((local - midnight) // period) * period


def ceil_to_window(t: datetime, period: timedelta) -> datetime:
    """The first window boundary at or after ``t``."""
    floor = window_end_at_or_before(t, period)
    return floor if floor == t else floor + period
