"""Schema version 7: each meter's contracts in force and pending, as the meter last published them
(``meters/{id}/contracts``), for the customer's remote switching page (JP5159864B2 embodiment 3).

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, MetaData, Table, Text

from .schema_v1 import Time

metadata = MetaData()

Table(
    "meter_contracts", metadata,
    Column("meter_id", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),  # the meter's counter: only a newer state replaces one
    Column("at", Time, nullable=False),  # when the meter published it
    Column("received_at", Time, nullable=False),
    Column("body", Text, nullable=False),  # the state as JSON: in_force, pending
)


def create(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
