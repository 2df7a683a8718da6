"""Schema version 6: the distribution system of each registration (Fig. 10's 配電系統: substation, feeder,
section), and what the operators' search needs to stay fast over a million registrations:

- ``places``: every area (prefecture / city / district) registrations name, once, with its full name
  as one string, so a search by part of an address reads a few thousand places, not every customer;
- registrations in an area in meter order (one index walk gives a page), those with a street of
  their own apart (the few a search by street has to read), and a customer's e-mails by meter;
- outages by restoration time, for the notice column's "restored in the last hours".

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection, text

STATEMENTS = (
    "ALTER TABLE registrations ADD COLUMN substation TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE registrations ADD COLUMN feeder TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE registrations ADD COLUMN section TEXT NOT NULL DEFAULT ''",
    ("CREATE TABLE places (area TEXT PRIMARY KEY, prefecture TEXT NOT NULL, city TEXT NOT NULL, "
     "district TEXT NOT NULL, label TEXT NOT NULL)"),
    ("INSERT INTO places (area, prefecture, city, district, label) "
     "SELECT DISTINCT area, prefecture, city, district, prefecture || city || district FROM registrations"),
    "CREATE INDEX registrations_area_meter ON registrations (area, meter_id)",
    "CREATE INDEX registrations_with_street ON registrations (area, meter_id) WHERE street <> ''",
    "CREATE INDEX notifications_meter ON notifications (meter_id, id)",
    "CREATE INDEX outages_restored ON outages (restored_at)",
)


def apply(conn: Connection) -> None:
    for sql in STATEMENTS:
        conn.execute(text(sql))
