"""Schema version 4: the audit log, one row per operator input (who, when, what, on what).

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Column, Connection, Index, MetaData, Table, Text

from .schema_v1 import Time, _id

metadata = MetaData()

Table(
    "audit_log", metadata,
    _id(),
    Column("at", Time, nullable=False),
    Column("actor", Text, nullable=False),  # the operator's account name
    Column("action", Text, nullable=False),  # e.g. outage_update, planned_outage, login_failed
    Column("target", Text, nullable=False),  # e.g. outage:17
    Column("detail", Text, nullable=False),  # what was set, as JSON
    Index("audit_log_at", "at"),
    sqlite_autoincrement=True,
)


def create(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
