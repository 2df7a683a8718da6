"""Schema version 10: indexes on the meters' evidence, so the manager reads its down candidates through
them instead of scanning every meter's last word on every tick.

``meter_comm(last_interval_end)`` finds the meters whose newest reading is older than the closed window;
a partial index on ``status`` holds only the meters whose last word is a last gasp or a Last Will (a
handful), so the collector's status writes for meters that are up do not touch it. Both engines read the
two as index range scans and the manager's query unites them (:func:`.readings.down_candidates_sql`).

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection, text

STATEMENTS = (
    "CREATE INDEX meter_comm_last_end ON meter_comm (last_interval_end)",
    "CREATE INDEX meter_comm_down ON meter_comm (status) WHERE status IN ('power_fail', 'offline')",
)


def apply(conn: Connection) -> None:
    for sql in STATEMENTS:
        conn.execute(text(sql))
