"""Schema versions: ordered steps, applied in order, once, by whichever process opens the database first.

``schema_version`` holds one row per applied step. Opening a database runs, in one transaction, every
step above the recorded version and records it; concurrent openers (the collector and the manager
starting together) take turns on a lock (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so
each step runs once. A database newer than this code is refused. Version 1 is the schema the pipeline
had before versions were recorded, created only where missing, so such a database keeps every row.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
)

from . import (
    schema_v1,
    schema_v2,
    schema_v3,
    schema_v4,
    schema_v5,
    schema_v6,
    schema_v7,
    schema_v8,
    schema_v9,
    schema_v10,
    schema_v11,
)
from .database import Database

MIGRATION_LOCK = 6794865  # advisory lock key; the manager's judging uses 6794864


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Connection], None]


STEPS: tuple[Step, ...] = (
    Step(1, "registrations, readings, meter_comm, outages, outage_members, notifications, da_events", schema_v1.create),
    Step(2, "dead_letters: refused messages with their reason", schema_v2.create),
    Step(3, "registrations.commissioned_at: a meter's times before it are refused", schema_v3.apply),
    Step(4, "audit_log: every operator input, who and when", schema_v4.create),
    Step(5, "registrations.street, postal_code, pending_email, email_confirmed_at: the address and double opt-in",
         schema_v5.apply),
    Step(6, "registrations.substation, feeder, section; places; indexes for the operators' search", schema_v6.apply),
    Step(7, "meter_contracts: each meter's contracts in force and pending, as it last published them",
         schema_v7.create),
    Step(8, "readings partitioned by JST day of interval_end (PostgreSQL), for retention by whole days",
         schema_v8.apply),
    Step(9, "registrations_version: bumped by every import, so the manager's roster knows when to reload",
         schema_v9.apply),
    Step(10, "indexes on meter_comm's last reading and last gasps: the manager's down candidates without a scan",
         schema_v10.apply),
    Step(11, "meter_comm.prefecture, kept by triggers from the registrations; step 10's indexes led by it: "
             "a region's manager reads only its own down candidates", schema_v11.apply),
)

_metadata = MetaData()
schema_version = Table(
    "schema_version", _metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than this one."""


def latest(steps: Sequence[Step] = STEPS) -> int:
    return steps[-1].version


def migrate(db: Database, steps: Sequence[Step] = STEPS) -> int:
    """Bring the database to the newest version in ``steps``; return that version."""
    if [s.version for s in steps] != list(range(1, len(steps) + 1)):
        raise ValueError("migration steps are numbered 1, 2, 3, ... in order")
    with db.transaction():
        db.serialize(MIGRATION_LOCK)
        conn = db._conn
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one()
        if current > latest(steps):
            raise SchemaTooNew(
                f"the database {db.display_url} has schema version {current}, newer than the {latest(steps)} "
                "this program knows: upgrade the outage handlers before opening it"
            )
        for step in steps[current:]:
            step.apply(conn)
            conn.execute(insert(schema_version), {"version": step.version, "description": step.description})
    return latest(steps)


def version(db: Database) -> int:
    """The version recorded in the database."""
    return int(db._scalar(select(func.coalesce(func.max(schema_version.c.version), 0))))
