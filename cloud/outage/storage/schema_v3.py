"""Schema version 3: a registration may carry its meter's commissioning time (epoch seconds, NULL when
not known); the collector refuses the meter's readings and statuses stamped before it.

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection, text


def apply(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE registrations ADD COLUMN commissioned_at DOUBLE PRECISION"))
