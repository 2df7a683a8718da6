"""Schema version 11: each meter's evidence carries its registration's prefecture, so a region's manager
reads its own down candidates through indexes led by the prefecture, not every region's before keeping
its own.

``meter_comm.prefecture`` is the prefecture of the meter's registration (NULL: not registered, never a
candidate), kept so by the database itself, whoever writes: the collector writes the meters' last word
without knowing the registrations, and an import moves a meter without knowing its evidence.

- A meter's first word (the row inserted) takes its registration's prefecture: an AFTER INSERT
  trigger, which an ``INSERT ... ON CONFLICT DO UPDATE`` fires only when the row is new. The
  collector's every later reading and status updates the row and fires nothing.
- An import (a registration inserted, moved to another prefecture, or deleted) sets or clears the
  prefecture of the meter's evidence: triggers on ``registrations``; a re-import that leaves the
  prefecture as it was fires nothing on PostgreSQL (a WHEN clause) and on SQLite.

Step 10's two indexes give way to the same two led by the prefecture, ``(prefecture,
last_interval_end)`` and ``(prefecture, status)`` over the down states only, so a reading still
updates one index. A region's query names its prefectures (``prefecture IN (...)``): each prefecture's
range on both engines (:func:`.readings.down_candidates_sql`).

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection

DOWN = "('power_fail', 'offline')"  # the states of MeterState.POWER_FAIL and OFFLINE, as step 10 wrote them

COMMON = (
    "ALTER TABLE meter_comm ADD COLUMN prefecture TEXT",
    ("UPDATE meter_comm SET prefecture = r.prefecture FROM registrations r "
     "WHERE r.meter_id = meter_comm.meter_id"),
    "DROP INDEX meter_comm_last_end",
    "DROP INDEX meter_comm_down",
    "CREATE INDEX meter_comm_prefecture_last_end ON meter_comm (prefecture, last_interval_end)",
    f"CREATE INDEX meter_comm_prefecture_down ON meter_comm (prefecture, status) WHERE status IN {DOWN}",
)

SQLITE = (
    ("CREATE TRIGGER meter_comm_first_word AFTER INSERT ON meter_comm BEGIN "
     "UPDATE meter_comm SET prefecture = (SELECT r.prefecture FROM registrations r WHERE r.meter_id = NEW.meter_id) "
     "WHERE meter_id = NEW.meter_id; END"),
    ("CREATE TRIGGER registrations_prefecture_new AFTER INSERT ON registrations BEGIN "
     "UPDATE meter_comm SET prefecture = NEW.prefecture WHERE meter_id = NEW.meter_id; END"),
    ("CREATE TRIGGER registrations_prefecture_moved AFTER UPDATE OF meter_id, prefecture ON registrations "
     "WHEN OLD.meter_id IS NOT NEW.meter_id OR OLD.prefecture IS NOT NEW.prefecture BEGIN "
     "UPDATE meter_comm SET prefecture = NULL WHERE meter_id = OLD.meter_id; "
     "UPDATE meter_comm SET prefecture = NEW.prefecture WHERE meter_id = NEW.meter_id; END"),
    ("CREATE TRIGGER registrations_prefecture_gone AFTER DELETE ON registrations BEGIN "
     "UPDATE meter_comm SET prefecture = NULL WHERE meter_id = OLD.meter_id; END"),
)

POSTGRESQL = (
    ("CREATE FUNCTION meter_comm_first_word() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "UPDATE meter_comm SET prefecture = r.prefecture FROM registrations r "
     "WHERE meter_comm.meter_id = NEW.meter_id AND r.meter_id = NEW.meter_id; "
     "RETURN NULL; END $$"),
    ("CREATE TRIGGER meter_comm_first_word AFTER INSERT ON meter_comm "
     "FOR EACH ROW EXECUTE FUNCTION meter_comm_first_word()"),
    ("CREATE FUNCTION registrations_prefecture() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "IF TG_OP <> 'INSERT' THEN UPDATE meter_comm SET prefecture = NULL WHERE meter_id = OLD.meter_id; END IF; "
     "IF TG_OP <> 'DELETE' THEN UPDATE meter_comm SET prefecture = NEW.prefecture WHERE meter_id = NEW.meter_id; END IF; "
     "RETURN NULL; END $$"),
    ("CREATE TRIGGER registrations_prefecture_in_out AFTER INSERT OR DELETE ON registrations "
     "FOR EACH ROW EXECUTE FUNCTION registrations_prefecture()"),
    ("CREATE TRIGGER registrations_prefecture_moved AFTER UPDATE OF meter_id, prefecture ON registrations "
     "FOR EACH ROW WHEN (OLD.meter_id IS DISTINCT FROM NEW.meter_id OR OLD.prefecture IS DISTINCT FROM NEW.prefecture) "
     "EXECUTE FUNCTION registrations_prefecture()"),
)


def apply(conn: Connection) -> None:
    for sql in COMMON + (POSTGRESQL if conn.dialect.name == "postgresql" else SQLITE):
        conn.exec_driver_sql(sql)
