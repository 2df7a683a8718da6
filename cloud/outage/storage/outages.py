"""Outages and their members (Tables 3-5): what the manager judged, and which meters are in each."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, column, select, table

from appliance.clock import from_epoch, to_epoch

from ..model import Area, Outage, OutageKind, OutageMember, OutageStatus
from .database import Database, chunks, statement

FIELDS = (
    "kind", "status", "area", "started_at", "detected_at", "declared_at", "restored_at", "expected_restoration",
    "response_status", "reason", "peak_count", "current_count", "planned_end", "source", "revision", "updated_at",
    "concentrator_id",
)
COLUMNS = ", ".join(("id", *FIELDS))
OPEN_STATUSES = tuple(s.value for s in OutageStatus if s.is_open)
JUDGING_LOCK = 6794864  # advisory lock key: one manager judges at a time

_outages = table("outages", *(column(c) for c in ("id", *FIELDS)))


def _select_outages(open_only: bool, lock: bool) -> Select:
    query = select(_outages).order_by(_outages.c.id)
    if open_only:
        query = query.where(_outages.c.status.in_(bindparam("open", expanding=True)))
    # rows a transaction is about to claim; SQLite has no row locks (BEGIN IMMEDIATE serializes writers)
    return query.with_for_update(skip_locked=True) if lock else query


SELECT_OUTAGES = {(o, lock): _select_outages(o, lock) for o in (False, True) for lock in (False, True)}
INSERT = statement(f"INSERT INTO outages ({', '.join(FIELDS)}) VALUES ({', '.join(':' + f for f in FIELDS)}) RETURNING id")
UPDATE = statement(f"UPDATE outages SET {', '.join(f'{f} = :{f}' for f in FIELDS)} WHERE id = :id")
BY_ID = statement(f"SELECT {COLUMNS} FROM outages WHERE id = :id")
MEMBERS = statement(
    "SELECT outage_id, meter_id, down_at, restored_at FROM outage_members WHERE outage_id = :outage_id ORDER BY meter_id"
)
CURRENT_MEMBERS = statement(
    "SELECT outage_id, meter_id, down_at, restored_at FROM outage_members WHERE outage_id = :outage_id "
    "AND restored_at IS NULL ORDER BY meter_id"
)
MEMBERS_OF = statement(
    "SELECT outage_id, meter_id, down_at, restored_at FROM outage_members WHERE outage_id = :outage_id "
    "AND meter_id IN :meter_ids",
    "meter_ids",
)
ADD_MEMBER = statement(
    "INSERT INTO outage_members (outage_id, meter_id, down_at) VALUES (:outage_id, :meter_id, :down_at) "
    "ON CONFLICT (outage_id, meter_id) DO UPDATE SET restored_at = NULL"
)
RESTORE_MEMBER = statement(
    "UPDATE outage_members SET restored_at = :restored_at WHERE outage_id = :outage_id AND meter_id = :meter_id "
    "AND restored_at IS NULL"
)
RESTORED_SINCE = statement(
    f"SELECT {COLUMNS} FROM outages WHERE restored_at >= :since ORDER BY restored_at DESC LIMIT :limit")
DELETE_MEMBERS = statement("DELETE FROM outage_members WHERE outage_id = :outage_id")
OF_METER = statement(
    f"SELECT {', '.join('o.' + c for c in COLUMNS.split(', '))}, m.down_at, m.restored_at "
    "FROM outages o JOIN outage_members m ON m.outage_id = o.id WHERE m.meter_id = :meter_id ORDER BY o.id DESC"
)


def _outage(row: Sequence[Any]) -> Outage:
    (oid, kind, status, area, started, detected, declared, restored, expected, response, reason, peak, current,
     planned_end, source, revision, updated, concentrator) = row
    return Outage(
        id=int(oid), kind=OutageKind(kind), status=OutageStatus(status), area=Area.from_key(area),
        started_at=from_epoch(started), detected_at=from_epoch(detected), declared_at=from_epoch(declared),
        restored_at=from_epoch(restored), expected_restoration=from_epoch(expected), response_status=response,
        reason=reason, peak_count=int(peak), current_count=int(current), planned_end=from_epoch(planned_end),
        source=source, revision=int(revision), updated_at=from_epoch(updated), concentrator_id=concentrator,
    )


def _values(o: Outage) -> dict[str, Any]:
    values = (
        o.kind.value, o.status.value, o.area.key, to_epoch(o.started_at), to_epoch(o.detected_at),
        to_epoch(o.declared_at), to_epoch(o.restored_at), to_epoch(o.expected_restoration), o.response_status,
        o.reason, o.peak_count, o.current_count, to_epoch(o.planned_end), o.source, o.revision, to_epoch(o.updated_at),
        o.concentrator_id,
    )
    return dict(zip(FIELDS, values, strict=True))


def _member(row: Sequence[Any]) -> OutageMember:
    outage_id, meter_id, down_at, restored_at = row
    return OutageMember(int(outage_id), meter_id, from_epoch(down_at), from_epoch(restored_at))


class Outages(Database):
    def save_outage(self, o: Outage) -> Outage:
        """Insert (id None) or update; returns the outage with its id."""
        with self.transaction():
            if o.id is None:
                o.id = int(self._execute(INSERT, _values(o)).scalar_one())
            else:
                self._execute(UPDATE, {**_values(o), "id": o.id})
        return o

    def outage(self, outage_id: int) -> Outage | None:
        rows = self._query(BY_ID, {"id": outage_id})
        return _outage(rows[0]) if rows else None

    def outages(self, open_only: bool = False, lock: bool = False) -> list[Outage]:
        rows = self._query(SELECT_OUTAGES[open_only, lock], {"open": OPEN_STATUSES} if open_only else None)
        return [_outage(r) for r in rows]

    def open_outages_reusing(self, earlier: dict[tuple, Outage]) -> tuple[list[Outage], dict[tuple, Outage]]:
        """The open outages, as :meth:`outages` ``(True)``, for a reader that reads them again and again
        (the web pages, every second): a row unchanged since ``earlier`` (the mapping this returned last
        time) gives back the same object. Building 10,000 objects holds the interpreter for 100 ms or
        more; comparing rows, a few ms. The objects are shared: the reader must not change them."""
        rows = [tuple(r) for r in self._query(SELECT_OUTAGES[True, False], {"open": OPEN_STATUSES})]
        found = [earlier.get(r) or _outage(r) for r in rows]
        return found, dict(zip(rows, found))

    def restored_since(self, since: datetime, limit: int) -> list[Outage]:
        """Outages restored at or after ``since``, the latest first."""
        return [_outage(r) for r in self._query(RESTORED_SINCE, {"since": since.timestamp(), "limit": limit})]

    def members(self, outage_id: int, current_only: bool = False) -> list[OutageMember]:
        return [_member(r) for r in self._query(CURRENT_MEMBERS if current_only else MEMBERS, {"outage_id": outage_id})]

    def members_of(self, outage_id: int, meter_ids: Sequence[str]) -> dict[str, OutageMember]:
        out: dict[str, OutageMember] = {}
        for chunk in chunks(list(meter_ids)):
            out.update({m.meter_id: m for m in map(_member, self._query(MEMBERS_OF, {"outage_id": outage_id, "meter_ids": chunk}))})
        return out

    def add_members(self, outage_id: int, down: dict[str, datetime]) -> None:
        """Add meters to an outage; a meter back in the same outage is down again."""
        with self.transaction():
            self._executemany(ADD_MEMBER, [(outage_id, m, t.timestamp()) for m, t in sorted(down.items())])

    def restore_members(self, outage_id: int, restored: dict[str, datetime]) -> None:
        with self.transaction():
            self._executemany(RESTORE_MEMBER, [(t.timestamp(), outage_id, m) for m, t in sorted(restored.items())])

    def move_members(self, from_outage: int, to_outage: int) -> None:
        with self.transaction():
            current = self.members(from_outage, current_only=True)
            self.add_members(to_outage, {m.meter_id: m.down_at for m in current})
            self._execute(DELETE_MEMBERS, {"outage_id": from_outage})

    def outages_of_meter(self, meter_id: str) -> list[tuple[Outage, OutageMember]]:
        """Table 4/5 for one meter: the outages it is (or was) in, newest first."""
        rows = self._query(OF_METER, {"meter_id": meter_id})
        return [(_outage(r[:-2]), OutageMember(int(r[0]), meter_id, from_epoch(r[-2]), from_epoch(r[-1]))) for r in rows]

    def lock_for_update(self) -> None:
        """Inside a transaction: make this the only one judging outages (one manager at a time)."""
        self.serialize(JUDGING_LOCK)
