"""Schema version 8 (PostgreSQL; nothing on SQLite): ``readings`` partitioned by RANGE on ``interval_end``,
one partition per JST day (:mod:`.partitions`), so retention drops whole days.

The rows move in the migration's transaction: the old table is renamed aside, the partitioned one
created with a partition for every day the rows name, the rows copied, the old table dropped. The
primary key becomes (meter_id, seq, interval_end): PostgreSQL requires the partition key in it, and a
redelivered reading carries the same interval_end (see :mod:`.partitions`).

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from .partitions import create_partition_sql, day_of

COLUMNS = "meter_id, seq, interval_start, interval_end, payload, received_at"
STATEMENTS = (
    "ALTER TABLE readings RENAME TO readings_unpartitioned",
    "ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_pkey TO readings_unpartitioned_pkey",
    ("CREATE TABLE readings (meter_id TEXT NOT NULL, seq BIGINT NOT NULL, "
     "interval_start DOUBLE PRECISION NOT NULL, interval_end DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, "
     "received_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (meter_id, seq, interval_end)) "
     "PARTITION BY RANGE (interval_end)"),
)
# each JST day's first second: the same days as partitions.day_of, computed where the rows are
DAYS = "SELECT DISTINCT floor((interval_end + 32400) / 86400) * 86400 - 32400 FROM readings_unpartitioned"


def apply(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return
    for sql in STATEMENTS:
        conn.execute(text(sql))
    days: set[date] = {day_of(start) for (start,) in conn.execute(text(DAYS))}
    for day in sorted(days):
        conn.execute(text(create_partition_sql(day)))
    conn.execute(text(f"INSERT INTO readings ({COLUMNS}) SELECT {COLUMNS} FROM readings_unpartitioned"))
    conn.execute(text("DROP TABLE readings_unpartitioned"))
