"""Schema version 2: the dead-letter table, where refused messages are set aside with their reason.

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Column, Connection, Index, MetaData, Table, Text

from .schema_v1 import Time, _id

metadata = MetaData()

Table(
    "dead_letters", metadata,
    _id(),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("excerpt", Text, nullable=False),  # bounded: never the whole payload
    Column("received_at", Time, nullable=False),
    Index("dead_letters_received", "received_at"),
    sqlite_autoincrement=True,
)


def create(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
