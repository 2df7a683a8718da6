"""Readings in day partitions (PostgreSQL): one partition per JST day of ``interval_end``, created ahead,
dropped after the retention.

The store keeps readings for outage detection and its review only: the patent's detection reads the last
windows (hours), and the settlement readings are the MDMS's and the retail companies' to keep. So old days
go whole (``DROP TABLE`` of a partition: no row-by-row DELETE, no bloat). SQLite keeps one table and
never drops: every method here is a no-op there.

Dedupe with partitions: PostgreSQL requires the partition key in every unique constraint, so the key is
(meter_id, seq, interval_end). It still dedupes on (meter_id, seq) because a reading's seq and its
interval_end are bound by the meter: a redelivery (QoS 1, a replayed backlog, a second collector) carries
the same reading, so it lands in the same partition on the same key.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import text

from appliance.clock import JST

from .database import Database, statement

PARTITION_LOCK = 6794866  # advisory lock: one process creates or drops partitions at a time
PREFIX = "readings_"
PARTITIONS = statement(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'readings'::regclass"
)


@dataclass(frozen=True)
class Retention:
    """How many JST days of readings are kept, and how far ahead partitions are made.

    The default keeps a week: detection needs the last hours, the rest is a margin for reviewing an
    outage and for replaying a backlog from a concentrator that was cut off for days."""

    keep_days: int = 7
    ahead_days: int = 2


def day_of(epoch: float) -> date:
    """The JST day an ``interval_end`` (epoch seconds) belongs to."""
    return datetime.fromtimestamp(epoch, JST).date()


def _bounds(day: date) -> tuple[float, float]:
    start = datetime.combine(day, time(), JST)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def create_partition_sql(day: date) -> str:
    lo, hi = _bounds(day)
    return f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF readings FOR VALUES FROM ({lo}) TO ({hi})"


class ReadingPartitions(Database):
    retention: Retention = Retention()
    _known_days: set[date] | None = None

    @property
    def partitioned(self) -> bool:
        return self.dialect == "postgresql"

    def partition_refusal(self, interval_end: datetime, received_at: datetime) -> str | None:
        """Why a reading cannot be stored for lack of a partition, or None. Days from the retention's
        oldest kept day to ``ahead_days`` after the receiving day get one; a reading outside them would
        be dropped at once or is a clock far off, so it is refused (the collector keeps it as a dead letter)."""
        if not self.partitioned:
            return None
        today = received_at.astimezone(JST).date()
        day = interval_end.astimezone(JST).date()
        if day < today - timedelta(days=self.retention.keep_days):
            return "interval_end older than the readings kept"
        if day > today + timedelta(days=self.retention.ahead_days):
            return "interval_end too far ahead for a partition"
        return None

    def reading_partitions(self) -> list[date]:
        """The days that have a partition, oldest first."""
        if not self.partitioned:
            return []
        days = sorted(_day(name) for (name,) in self._query(PARTITIONS))
        self._known_days = set(days)
        return days

    def ensure_partitions(self, now: datetime) -> list[date]:
        """Partitions from yesterday to ``ahead_days`` after today; return the days created."""
        today = now.astimezone(JST).date()
        return self._ensure_days(today + timedelta(days=d) for d in range(-1, self.retention.ahead_days + 1))

    def _ensure_days(self, days: Iterable[date]) -> list[date]:
        """Create the partitions missing among ``days``: a cached check, so DDL runs once a day per process."""
        if not self.partitioned:
            return []
        wanted = set(days)
        if self._known_days is not None and wanted <= self._known_days:
            return []
        with self.transaction():
            self.serialize(PARTITION_LOCK)  # collectors creating the same day take turns
            missing = sorted(wanted - set(self.reading_partitions()))
            for day in missing:
                self._execute(text(create_partition_sql(day)))
        self._known_days = (self._known_days or set()) | wanted
        return missing

    def drop_old_partitions(self, now: datetime) -> list[date]:
        """Drop the partitions of days before the retention's oldest kept day; return the days dropped."""
        if not self.partitioned:
            return []
        oldest_kept = now.astimezone(JST).date() - timedelta(days=self.retention.keep_days)
        with self.transaction():
            self.serialize(PARTITION_LOCK)
            old = [d for d in self.reading_partitions() if d < oldest_kept]
            for day in old:
                self._execute(text(f"DROP TABLE {partition_name(day)}"))
        self._known_days = None
        return old


def _day(name: str) -> date:
    return datetime.strptime(name.removeprefix(PREFIX), "%Y%m%d").date()
