"""Explicit time. Everything in the core asks a :class:`Clock`; nothing calls ``datetime.now``.

Times are timezone-aware. Storage and the wire use ISO-8601 with offset; people see JST.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
UTC = timezone.utc


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware."""

    def sleep(self, seconds: float) -> None:
        """Wait; a simulated clock returns at once (tests advance it explicitly)."""


class SystemClock:
    """The real wall clock (NTP-disciplined on a Pi)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to: schedules and intervals run in simulated time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to any time, backwards included (a clock correction)."""
        with self._lock:
            self._now = when

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def iso(dt: datetime) -> str:
    """ISO-8601 in JST with its offset, the wire format for every timestamp."""
    return dt.astimezone(JST).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; write e.g. 2026-12-01T22:00+09:00")
    return dt


def floor_to(dt: datetime, period: timedelta) -> datetime:
    """The start of the period containing ``dt``, aligned to JST midnight (30-min windows: :00 and :30);
    equally, the end of the latest window that has ended by ``dt``."""
    local = dt.astimezone(JST)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    steps = (local - midnight) // period
    return midnight + steps * period


def ceil_to(dt: datetime, period: timedelta) -> datetime:
    """The first period boundary at or after ``dt`` (aligned to JST midnight)."""
    start = floor_to(dt, period)
    return start if start == dt else start + period


def to_epoch(dt: datetime | None) -> float | None:
    """Epoch seconds, the form times take in SQL (portable across SQLite and PostgreSQL)."""
    return None if dt is None else dt.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    """An aware datetime in JST from epoch seconds (None stays None)."""
    return None if value is None else datetime.fromtimestamp(float(value), JST)


class ScaledClock:
    """Wall time run fast (or slow): ``speed`` simulated seconds pass per real second.

    Starts at ``start`` (default: now). Used by emulators to live through a simulated day in
    minutes while still running in real time. ``sleep`` takes simulated seconds.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("the clock speed must be positive")
        if start is not None and start.tzinfo is None:
            raise ValueError("ScaledClock needs a timezone-aware start time")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._t0 = time.monotonic()  # monotonic: an NTP step must not make simulated time jump

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
