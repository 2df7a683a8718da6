"""The storage interface and its SQL, shared by the SQLite and PostgreSQL backends.

The SQL is written once with ``?`` placeholders; a backend only supplies the connection, the
transaction and a few dialect words (auto-increment key, row locking). Times are epoch seconds.
"""
from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..model import (
    Area,
    DaEvent,
    Event,
    Language,
    MeterComm,
    MeterState,
    Notification,
    NotificationState,
    Outage,
    OutageKind,
    OutageMember,
    OutageStatus,
    Reading,
    Registration,
    StatusEvent,
)
from ..timeutil import from_epoch, to_epoch

SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    meter_id TEXT PRIMARY KEY,
    customer_number TEXT NOT NULL,
    prefecture TEXT NOT NULL,
    city TEXT NOT NULL,
    district TEXT NOT NULL,
    area TEXT NOT NULL,
    concentrator_id TEXT NOT NULL,
    email TEXT,
    name TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'ja',
    unsubscribed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS registrations_area ON registrations (area);
CREATE INDEX IF NOT EXISTS registrations_concentrator ON registrations (concentrator_id);
CREATE INDEX IF NOT EXISTS registrations_customer ON registrations (customer_number);
CREATE TABLE IF NOT EXISTS readings (
    meter_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    interval_start DOUBLE PRECISION NOT NULL,
    interval_end DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (meter_id, seq)
);
CREATE TABLE IF NOT EXISTS meter_comm (
    meter_id TEXT PRIMARY KEY,
    last_interval_end DOUBLE PRECISION,
    reading_rx_at DOUBLE PRECISION,
    status TEXT,
    status_at DOUBLE PRECISION,
    status_rx_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS outages (
    id {serial},
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    area TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    detected_at DOUBLE PRECISION NOT NULL,
    declared_at DOUBLE PRECISION,
    restored_at DOUBLE PRECISION,
    expected_restoration DOUBLE PRECISION,
    response_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    peak_count INTEGER NOT NULL DEFAULT 0,
    current_count INTEGER NOT NULL DEFAULT 0,
    planned_end DOUBLE PRECISION,
    source TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION,
    concentrator_id TEXT
);
CREATE INDEX IF NOT EXISTS outages_status ON outages (status);
CREATE TABLE IF NOT EXISTS outage_members (
    outage_id BIGINT NOT NULL,
    meter_id TEXT NOT NULL,
    down_at DOUBLE PRECISION NOT NULL,
    restored_at DOUBLE PRECISION,
    PRIMARY KEY (outage_id, meter_id)
);
CREATE INDEX IF NOT EXISTS outage_members_meter ON outage_members (meter_id);
CREATE TABLE IF NOT EXISTS notifications (
    id {serial},
    key TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    meter_id TEXT NOT NULL,
    outage_id BIGINT,
    urgent INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    sent_at DOUBLE PRECISION,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, not_before);
CREATE INDEX IF NOT EXISTS notifications_outage ON notifications (outage_id, meter_id);
CREATE TABLE IF NOT EXISTS da_events (
    id {serial},
    area TEXT NOT NULL,
    kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS da_events_area ON da_events (area, at);
"""

OUTAGE_COLUMNS = (
    "id, kind, status, area, started_at, detected_at, declared_at, restored_at, expected_restoration, "
    "response_status, reason, peak_count, current_count, planned_end, source, revision, updated_at, concentrator_id"
)
REGISTRATION_COLUMNS = (
    "meter_id, customer_number, prefecture, city, district, concentrator_id, email, name, language, unsubscribed"
)
COMM_COLUMNS = "meter_id, last_interval_end, reading_rx_at, status, status_at, status_rx_at"
NOTIFICATION_COLUMNS = "id, key, event, meter_id, outage_id, attempts, not_before, detail"
OPEN_STATUSES = tuple(s.value for s in OutageStatus if s.is_open)
DOWN_STATES = (MeterState.POWER_FAIL.value, MeterState.OFFLINE.value)


def _in(values: Sequence[Any]) -> str:
    return "(" + ",".join("?" * len(values)) + ")"


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class Storage(ABC):
    """Everything the pipeline keeps: registrations, the MDMS, the meters' evidence, outages, e-mails.

    Thread-safe: one connection per instance behind a lock. Processes share the database itself.
    """

    serial: str = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock_rows: str = ""  # appended to a SELECT whose rows a transaction is about to claim

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # ----- backend hooks
    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement, return a cursor."""

    @abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per row, return the number of rows changed."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def url(self) -> str:
        """How another process opens the same database."""

    # ----- plumbing
    def create_schema(self) -> None:
        with self.transaction():
            for statement in SCHEMA.format(serial=self.serial).split(";"):
                if statement.strip():
                    self._execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._rollback()
                raise
            self._depth = 0
            self._commit()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return list(self._execute(sql, params).fetchall())

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    # ----- registrations (Table 1)
    def upsert_registrations(self, registrations: Iterable[Registration]) -> int:
        rows = [
            (
                r.meter_id, r.customer_number, r.area.prefecture, r.area.city, r.area.district, r.area.key,
                r.concentrator_id, r.email, r.name, r.language.value, int(r.unsubscribed),
            )
            for r in registrations
        ]
        sql = (
            "INSERT INTO registrations (meter_id, customer_number, prefecture, city, district, area, "
            "concentrator_id, email, name, language, unsubscribed) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (meter_id) DO UPDATE SET customer_number = excluded.customer_number, "
            "prefecture = excluded.prefecture, city = excluded.city, district = excluded.district, "
            "area = excluded.area, concentrator_id = excluded.concentrator_id, email = excluded.email, "
            "name = excluded.name, language = excluded.language, unsubscribed = excluded.unsubscribed"
        )
        with self.transaction():
            for chunk in _chunks(rows, 5000):
                self._executemany(sql, chunk)
        return len(rows)

    def set_unsubscribed(self, meter_id: str, unsubscribed: bool = True) -> bool:
        with self.transaction():
            cur = self._execute("UPDATE registrations SET unsubscribed = ? WHERE meter_id = ?", (int(unsubscribed), meter_id))
            return cur.rowcount > 0

    @staticmethod
    def _registration(row: Sequence[Any]) -> Registration:
        meter_id, customer, pref, city, district, conc, email, name, lang, unsub = row
        return Registration(
            meter_id=meter_id, customer_number=customer, area=Area(pref, city, district), concentrator_id=conc,
            email=email, name=name, language=Language(lang), unsubscribed=bool(unsub),
        )

    def registrations(self, meter_ids: Sequence[str]) -> dict[str, Registration]:
        out: dict[str, Registration] = {}
        for chunk in _chunks(list(meter_ids)):
            for row in self._query(f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE meter_id IN {_in(chunk)}", chunk):
                out[row[0]] = self._registration(row)
        return out

    def registration(self, meter_id: str) -> Registration | None:
        return self.registrations([meter_id]).get(meter_id)

    def registrations_in_area(self, area: Area) -> list[Registration]:
        rows = self._query(f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE area = ? ORDER BY meter_id", (area.key,))
        return [self._registration(r) for r in rows]

    def registration_count(self) -> int:
        return int(self._scalar("SELECT COUNT(*) FROM registrations"))

    def area_sizes(self, areas: Sequence[str]) -> dict[str, int]:
        """Customers per area: the denominator of the indoor rule."""
        out: dict[str, int] = {}
        for chunk in _chunks(list(areas)):
            for area, n in self._query(f"SELECT area, COUNT(*) FROM registrations WHERE area IN {_in(chunk)} GROUP BY area", chunk):
                out[area] = int(n)
        return out

    def concentrators_of_areas(self, areas: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """area -> concentrator -> its meters, for telling a communication fault from an outage."""
        out: dict[str, dict[str, list[str]]] = {}
        for chunk in _chunks(list(areas)):
            rows = self._query(f"SELECT area, concentrator_id, meter_id FROM registrations WHERE area IN {_in(chunk)}", chunk)
            for area, conc, meter in rows:
                out.setdefault(area, {}).setdefault(conc, []).append(meter)
        return out

    # ----- the MDMS and the meters' evidence (collector)
    def store_readings(self, readings: Sequence[Reading], received_at: datetime) -> int:
        """Store readings, deduplicated on (meter_id, seq); return how many were new."""
        if not readings:
            return 0
        rx = to_epoch(received_at)
        rows = [
            (r.meter_id, r.seq, r.interval_start.timestamp(), r.interval_end.timestamp(), json.dumps(r.payload, ensure_ascii=False), rx)
            for r in readings
        ]
        newest: dict[str, float] = {}
        for r in readings:
            end = r.interval_end.timestamp()
            if newest.get(r.meter_id, float("-inf")) < end:
                newest[r.meter_id] = end
        with self.transaction():
            new = self._executemany(
                "INSERT INTO readings (meter_id, seq, interval_start, interval_end, payload, received_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (meter_id, seq) DO NOTHING",
                rows,
            )
            self._executemany(
                "INSERT INTO meter_comm (meter_id, last_interval_end, reading_rx_at) VALUES (?,?,?) "
                "ON CONFLICT (meter_id) DO UPDATE SET reading_rx_at = excluded.reading_rx_at, "
                "last_interval_end = CASE WHEN meter_comm.last_interval_end IS NULL "
                "OR excluded.last_interval_end > meter_comm.last_interval_end "
                "THEN excluded.last_interval_end ELSE meter_comm.last_interval_end END",
                sorted((m, end, rx) for m, end in newest.items()),  # sorted: a stable lock order between writers
            )
        return new

    def store_statuses(self, events: Sequence[StatusEvent], received_at: datetime) -> None:
        """Keep each meter's newest status by the meter's own time stamp (retained replays are older)."""
        if not events:
            return
        rx = to_epoch(received_at)
        with self.transaction():
            self._executemany(
                "INSERT INTO meter_comm (meter_id, status, status_at, status_rx_at) VALUES (?,?,?,?) "
                "ON CONFLICT (meter_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at, "
                "status_rx_at = excluded.status_rx_at "
                "WHERE meter_comm.status_at IS NULL OR excluded.status_at >= meter_comm.status_at",
                sorted((e.meter_id, e.state.value, e.at.timestamp(), rx) for e in events),
            )

    def reading_count(self) -> int:
        return int(self._scalar("SELECT COUNT(*) FROM readings"))

    def reading_keys(self, meter_id: str | None = None) -> list[tuple[str, int]]:
        if meter_id is None:
            return [(m, int(s)) for m, s in self._query("SELECT meter_id, seq FROM readings ORDER BY meter_id, seq")]
        return [(m, int(s)) for m, s in self._query("SELECT meter_id, seq FROM readings WHERE meter_id = ? ORDER BY seq", (meter_id,))]

    @staticmethod
    def _comm(row: Sequence[Any]) -> MeterComm:
        meter_id, last_end, rx, status, status_at, status_rx = row
        return MeterComm(
            meter_id=meter_id, last_interval_end=from_epoch(last_end), reading_rx_at=from_epoch(rx),
            status=MeterState(status) if status else None, status_at=from_epoch(status_at), status_rx_at=from_epoch(status_rx),
        )

    def meter_comm(self, meter_id: str) -> MeterComm | None:
        rows = self._query(f"SELECT {COMM_COLUMNS} FROM meter_comm WHERE meter_id = ?", (meter_id,))
        return self._comm(rows[0]) if rows else None

    def no_communication(self, window_end: datetime) -> list[str]:
        """Table 2, the no-communication list: meters whose reading for the window ending at
        ``window_end`` is missing, or whose last word was a last gasp or Last Will."""
        e = window_end.timestamp()
        rows = self._query(
            f"SELECT meter_id FROM meter_comm WHERE last_interval_end < ? OR (status IN {_in(DOWN_STATES)} "
            "AND (last_interval_end IS NULL OR status_at > last_interval_end))",
            (e, *DOWN_STATES),
        )
        return [r[0] for r in rows]

    def down_candidates(self, window_end: datetime) -> list[MeterComm]:
        """Registered meters that may be down: a superset the manager judges row by row.

        Monitoring starts at a meter's first reading: a meter never heard from is not "silent"."""
        e = window_end.timestamp()
        cols = ", ".join(f"c.{c.strip()}" for c in COMM_COLUMNS.split(","))
        rows = self._query(
            f"SELECT {cols} FROM meter_comm c JOIN registrations r ON r.meter_id = c.meter_id "
            f"WHERE c.last_interval_end IS NOT NULL AND (c.last_interval_end < ? OR c.status IN {_in(DOWN_STATES)})",
            (e, *DOWN_STATES),
        )
        return [self._comm(r) for r in rows]

    def comms(self, meter_ids: Sequence[str]) -> dict[str, MeterComm]:
        out: dict[str, MeterComm] = {}
        for chunk in _chunks(list(meter_ids)):
            for row in self._query(f"SELECT {COMM_COLUMNS} FROM meter_comm WHERE meter_id IN {_in(chunk)}", chunk):
                out[row[0]] = self._comm(row)
        return out

    # ----- outages (Tables 3-5)
    @staticmethod
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

    def _outage_values(self, o: Outage) -> tuple:
        return (
            o.kind.value, o.status.value, o.area.key, to_epoch(o.started_at), to_epoch(o.detected_at),
            to_epoch(o.declared_at), to_epoch(o.restored_at), to_epoch(o.expected_restoration), o.response_status,
            o.reason, o.peak_count, o.current_count, to_epoch(o.planned_end), o.source, o.revision, to_epoch(o.updated_at),
            o.concentrator_id,
        )

    def save_outage(self, o: Outage) -> Outage:
        """Insert (id None) or update; returns the outage with its id."""
        cols = OUTAGE_COLUMNS.split(", ")[1:]
        with self.transaction():
            if o.id is None:
                cur = self._execute(
                    f"INSERT INTO outages ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))}) RETURNING id",
                    self._outage_values(o),
                )
                o.id = int(cur.fetchone()[0])
            else:
                self._execute(f"UPDATE outages SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?", (*self._outage_values(o), o.id))
        return o

    def outage(self, outage_id: int) -> Outage | None:
        rows = self._query(f"SELECT {OUTAGE_COLUMNS} FROM outages WHERE id = ?", (outage_id,))
        return self._outage(rows[0]) if rows else None

    def outages(self, open_only: bool = False, lock: bool = False) -> list[Outage]:
        where = f" WHERE status IN {_in(OPEN_STATUSES)}" if open_only else ""
        rows = self._query(
            f"SELECT {OUTAGE_COLUMNS} FROM outages{where} ORDER BY id" + (self.lock_rows if lock else ""),
            OPEN_STATUSES if open_only else (),
        )
        return [self._outage(r) for r in rows]

    def members(self, outage_id: int, current_only: bool = False) -> list[OutageMember]:
        extra = " AND restored_at IS NULL" if current_only else ""
        rows = self._query(
            f"SELECT outage_id, meter_id, down_at, restored_at FROM outage_members WHERE outage_id = ?{extra} ORDER BY meter_id",
            (outage_id,),
        )
        return [OutageMember(int(o), m, from_epoch(d), from_epoch(r)) for o, m, d, r in rows]

    def members_of(self, outage_id: int, meter_ids: Sequence[str]) -> dict[str, OutageMember]:
        out: dict[str, OutageMember] = {}
        for chunk in _chunks(list(meter_ids)):
            rows = self._query(
                f"SELECT outage_id, meter_id, down_at, restored_at FROM outage_members WHERE outage_id = ? AND meter_id IN {_in(chunk)}",
                (outage_id, *chunk),
            )
            out.update({m: OutageMember(int(o), m, from_epoch(d), from_epoch(r)) for o, m, d, r in rows})
        return out

    def add_members(self, outage_id: int, down: dict[str, datetime]) -> None:
        """Add meters to an outage; a meter back in the same outage is down again."""
        with self.transaction():
            self._executemany(
                "INSERT INTO outage_members (outage_id, meter_id, down_at) VALUES (?,?,?) "
                "ON CONFLICT (outage_id, meter_id) DO UPDATE SET restored_at = NULL",
                [(outage_id, m, t.timestamp()) for m, t in sorted(down.items())],
            )

    def restore_members(self, outage_id: int, restored: dict[str, datetime]) -> None:
        with self.transaction():
            self._executemany(
                "UPDATE outage_members SET restored_at = ? WHERE outage_id = ? AND meter_id = ? AND restored_at IS NULL",
                [(t.timestamp(), outage_id, m) for m, t in sorted(restored.items())],
            )

    def move_members(self, from_outage: int, to_outage: int) -> None:
        with self.transaction():
            rows = self._query("SELECT meter_id, down_at FROM outage_members WHERE outage_id = ? AND restored_at IS NULL", (from_outage,))
            self.add_members(to_outage, {m: from_epoch(d) for m, d in rows})
            self._execute("DELETE FROM outage_members WHERE outage_id = ?", (from_outage,))

    def outages_of_meter(self, meter_id: str) -> list[tuple[Outage, OutageMember]]:
        """Table 4/5 for one meter: the outages it is (or was) in, newest first."""
        cols = ", ".join(f"o.{c}" for c in OUTAGE_COLUMNS.split(", "))
        rows = self._query(
            f"SELECT {cols}, m.down_at, m.restored_at FROM outages o JOIN outage_members m ON m.outage_id = o.id "
            "WHERE m.meter_id = ? ORDER BY o.id DESC",
            (meter_id,),
        )
        return [(self._outage(r[:-2]), OutageMember(int(r[0]), meter_id, from_epoch(r[-2]), from_epoch(r[-1]))) for r in rows]

    def lock_for_update(self) -> None:
        """Inside a transaction: make this the only one judging outages (one manager at a time)."""

    # ----- distribution automation input
    def add_da_event(self, event: DaEvent, received_at: datetime) -> None:
        with self.transaction():
            self._execute(
                "INSERT INTO da_events (area, kind, at, reference, received_at) VALUES (?,?,?,?,?)",
                (event.area.key, event.kind, event.at.timestamp(), event.reference, received_at.timestamp()),
            )

    def da_events(self, area: Area | None = None) -> list[DaEvent]:
        where, params = (" WHERE area = ?", (area.key,)) if area else ("", ())
        rows = self._query(f"SELECT area, kind, at, reference FROM da_events{where} ORDER BY at, id", params)
        return [DaEvent(Area.from_key(a), k, from_epoch(t), ref) for a, k, t, ref in rows]

    # ----- notifications: an outbox the manager fills and notifiers drain
    def add_notifications(self, items: Sequence[tuple[str, Event, str, int | None, bool, datetime, dict[str, Any]]], now: datetime) -> int:
        """(key, event, meter_id, outage_id, urgent, not_before, detail) rows; an existing key is kept,
        which is what makes "one e-mail per customer per event" hold across processes and restarts."""
        if not items:
            return 0
        with self.transaction():
            return self._executemany(
                "INSERT INTO notifications (key, event, meter_id, outage_id, urgent, state, not_before, created_at, detail) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (key) DO NOTHING",
                [
                    (key, ev.value, meter, oid, int(urgent), NotificationState.PENDING.value, nb.timestamp(), now.timestamp(),
                     json.dumps(detail, ensure_ascii=False))
                    for key, ev, meter, oid, urgent, nb, detail in items
                ],
            )

    def supersede(self, outage_id: int, meter_ids: Sequence[str], events: Sequence[Event], keep_key_prefix: str = "") -> None:
        """Drop not-yet-sent updates that a newer one replaces."""
        waiting = (NotificationState.PENDING.value, NotificationState.RETRY.value)
        ev = [e.value for e in events]
        with self.transaction():
            for chunk in _chunks(list(meter_ids)):
                self._execute(
                    f"UPDATE notifications SET state = ? WHERE outage_id = ? AND state IN {_in(waiting)} "
                    f"AND event IN {_in(ev)} AND meter_id IN {_in(chunk)} AND key NOT LIKE ?",
                    (NotificationState.SUPERSEDED.value, outage_id, *waiting, *ev, *chunk, keep_key_prefix + "%"),
                )

    def claim_notifications(self, worker: str, now: datetime, lease_s: float, limit: int, urgent_only: bool) -> list[Notification]:
        """Atomically take due e-mails for one notifier: no two processes ever hold the same row.

        A row left in ``sending`` by a crashed notifier is taken again once its lease ends."""
        t = now.timestamp()
        due = (NotificationState.PENDING.value, NotificationState.RETRY.value)
        urgent = " AND urgent = 1" if urgent_only else ""
        with self.transaction():
            rows = self._query(
                f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE "
                f"((state IN {_in(due)} AND not_before <= ?) OR (state = ? AND claimed_until < ?)){urgent} "
                f"ORDER BY urgent DESC, not_before, id LIMIT ?{self.lock_rows}",
                (*due, t, NotificationState.SENDING.value, t, limit),
            )
            if not rows:
                return []
            ids = [r[0] for r in rows]
            self._execute(
                f"UPDATE notifications SET state = ?, claimed_by = ?, claimed_until = ?, attempts = attempts + 1 WHERE id IN {_in(ids)}",
                (NotificationState.SENDING.value, worker, t + lease_s, *ids),
            )
        return [
            Notification(
                id=int(i), key=k, event=Event(e), meter_id=m, outage_id=None if o is None else int(o), attempts=int(a) + 1,
                not_before=from_epoch(nb), detail=json.loads(d or "{}"),
            )
            for i, k, e, m, o, a, nb, d in rows
        ]

    def finish_notification(self, notification_id: int, worker: str, state: NotificationState, now: datetime,
                            error: str | None = None, retry_at: datetime | None = None) -> bool:
        """Record the outcome, only if this worker still holds the claim."""
        with self.transaction():
            cur = self._execute(
                "UPDATE notifications SET state = ?, sent_at = ?, last_error = ?, not_before = COALESCE(?, not_before), "
                "claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = ?",
                (state.value, now.timestamp() if state is NotificationState.SENT else None, error, to_epoch(retry_at),
                 notification_id, worker, NotificationState.SENDING.value),
            )
            return cur.rowcount > 0

    def notification_states(self) -> list[tuple[str, str, str, int]]:
        """(key, event, state, attempts) of every notification, for operators and tests."""
        return [(k, e, s, int(a)) for k, e, s, a in self._query("SELECT key, event, state, attempts FROM notifications ORDER BY id")]

    def notification_counts(self) -> dict[str, int]:
        return {s: int(n) for s, n in self._query("SELECT state, COUNT(*) FROM notifications GROUP BY state")}
