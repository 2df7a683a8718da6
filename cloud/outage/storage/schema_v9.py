"""Schema version 9: a change counter of the registrations' layout (who is in which area, behind which
concentrator), so the outage manager keeps area sizes and the concentrator layout in memory and reloads
them only when an import changed them, instead of counting an area's meters on every tick.

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection, text

STATEMENTS = (
    "CREATE TABLE registrations_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
    "INSERT INTO registrations_version (id, version) VALUES (1, 0)",
)


def apply(conn: Connection) -> None:
    for sql in STATEMENTS:
        conn.execute(text(sql))
