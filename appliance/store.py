"""Durable meter storage (storage unit 56) in SQLite, WAL mode.

One database file holds the readings (56A4-56A6), the contracts in force (56A2/56A3), the
pending contract changes (56B/56C), the outbox of messages not yet acknowledged by the broker,
an entitlement log (which company is owed which reading), and the installer's breaker requests.
Every step that must not be half done (a reading and its outbox rows; a switch and its events)
runs in one transaction, so a ``kill -9`` at any moment leaves either all of it or none. The
schema is versioned (:mod:`appliance.store_schema`): opening a store brings it up to date.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

from .clock import from_epoch, to_epoch
from .datatypes import DataType
from .domain import Action, Company, Contract, ContractChange, Reading, Role
from .interfaces import BreakerState
from .schedule import parse_switch, switch_to_wire
from .store_schema import migrate


ALERT_COALESCE = timedelta(minutes=1)  # alerts of one kind and company this close share a row
ALERTS_KEPT = 1000  # the newest alerts kept, whatever the retention


@dataclass(frozen=True)
class StoredCard:
    """A contract card's signed document kept by the meter, one per company and tariff menu."""

    code: str
    menu: str | None
    kind: str  # supply | data
    serial: int
    read_at: datetime
    slot: str
    document: bytes  # COSE_Sign1, as read from the card: verify it again before trusting it


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    company_code: str | None


@dataclass(frozen=True)
class BreakerRequest:
    """An installer's request (``smartmeter appliance breaker ...``) for the running service."""

    id: int  # also the relay's command_id, so the relay acts on it at most once
    action: str  # open | close | release
    reason: str
    override: bool
    requested_at: datetime
    applied_at: datetime | None  # None while pending
    outcome: str | None  # applied | refused | replayed
    source: str = "installer"  # installer | grid:{operator code} (a signed breaker command)


PAGE_CACHE_KIB = 256


class Store:
    """The meter's SQLite store. Safe to share between the service and CLI processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a transaction is explicit.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a Pi loses power: a committed reading must survive
        self.db.execute("PRAGMA busy_timeout=10000")
        # The store grows for the whole retention period; SQLite's default page cache (2 MB a connection)
        # would keep filling with it for hours. The meter's queries touch a few recent pages.
        self.db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        try:
            migrate(self.db, self.path)
        except BaseException:
            self.db.close()
            raise
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self.db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.db
            except BaseException:
                self._depth -= 1
                if outer:
                    self.db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value)),
        )

    def delete_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key=?", (key,))

    def next_counter(self, key: str) -> int:
        """A per-meter counter that is strictly increasing and never reused (seq, event_id)."""
        with self.transaction():
            value = int(self.get_meta(key, 0)) + 1
            self.set_meta(key, value)
            return value

    # -- the breaker: its mirrored state and the installer's requests --------------------------
    # The state is one value, replaced whole by the service and read by the CLI and the screen: a
    # meta key holding its JSON, so a field added to BreakerState needs no schema step.
    def breaker_state(self) -> BreakerState | None:
        return BreakerState.from_json(self.get_meta("breaker"))

    def set_breaker_state(self, state: BreakerState) -> None:
        self.set_meta("breaker", state.to_json())

    def add_breaker_request(self, action: str, reason: str, override: bool, at: datetime,
                            source: str = "installer") -> int:
        with self.transaction():
            cur = self.db.execute("INSERT INTO breaker_requests(action, reason, override, requested_at, source)"
                                  " VALUES(?,?,?,?,?)", (action, reason, int(override), to_epoch(at), source))
            return int(cur.lastrowid)

    def breaker_requests(self, limit: int = 50) -> list[BreakerRequest]:
        """The journal of breaker operations asked for, newest first."""
        rows = self.db.execute(f"SELECT {self._BREAKER_REQUEST_COLS} FROM breaker_requests ORDER BY id DESC LIMIT ?",
                               (limit,)).fetchall()
        return [self._breaker_request(r) for r in rows]

    _BREAKER_REQUEST_COLS = "id, action, reason, override, requested_at, applied_at, outcome, source"

    def pending_breaker_requests(self) -> list[BreakerRequest]:
        """Not yet applied, oldest first."""
        rows = self.db.execute(f"SELECT {self._BREAKER_REQUEST_COLS} FROM breaker_requests"
                               " WHERE applied_at IS NULL ORDER BY id").fetchall()
        return [self._breaker_request(r) for r in rows]

    def breaker_request(self, request_id: int) -> BreakerRequest | None:
        row = self.db.execute(f"SELECT {self._BREAKER_REQUEST_COLS} FROM breaker_requests WHERE id=?",
                              (request_id,)).fetchone()
        return self._breaker_request(row) if row else None

    def mark_breaker_request(self, request_id: int, at: datetime, outcome: str) -> bool:
        """Record the outcome once; False if it was already recorded."""
        with self.transaction():
            return self.db.execute("UPDATE breaker_requests SET applied_at=?, outcome=? WHERE id=? AND applied_at"
                                   " IS NULL", (to_epoch(at), outcome, request_id)).rowcount == 1

    @staticmethod
    def _breaker_request(r: tuple) -> BreakerRequest:
        return BreakerRequest(r[0], r[1], r[2], bool(r[3]), from_epoch(r[4]),
                              from_epoch(r[5]) if r[5] is not None else None, r[6], r[7])

    # -- readings -----------------------------------------------------------------------
    def add_reading(self, reading: Reading) -> None:
        self.db.execute(
            "INSERT INTO readings(seq, interval_start, interval_end, quality, body) VALUES(?,?,?,?,?)",
            (reading.seq, to_epoch(reading.interval_start), to_epoch(reading.interval_end), reading.quality,
             json.dumps(reading.as_json(), ensure_ascii=False)),
        )

    def readings(self, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT body FROM readings WHERE 1=1", []
        if since is not None:
            q += " AND interval_end > ?"
            args.append(to_epoch(since))
        if until is not None:
            q += " AND interval_end <= ?"
            args.append(to_epoch(until))
        return [json.loads(r[0]) for r in self.db.execute(q + " ORDER BY seq", args)]

    def last_reading(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM readings ORDER BY seq DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def prune_readings(self, before: datetime) -> int:
        """Drop readings (and their entitlement log) older than the retention; the outbox keeps its copies."""
        with self.transaction():
            cur = self.db.execute("SELECT max(seq) FROM readings WHERE interval_end < ?", (to_epoch(before),))
            (upto,) = cur.fetchone()
            if upto is None:
                return 0
            n = self.db.execute("DELETE FROM readings WHERE seq <= ?", (upto,)).rowcount
            self.db.execute("DELETE FROM entitlements WHERE seq <= ?", (upto,))
            return n

    def entitle(self, seq: int, company_code: str) -> None:
        self.db.execute("INSERT INTO entitlements(seq, company_code) VALUES(?, ?)", (seq, company_code))

    def entitled_readings(self, company_code: str, from_seq: int) -> list[dict[str, Any]]:
        """The stored readings owed to a company from ``from_seq`` on, oldest first."""
        rows = self.db.execute("SELECT r.body FROM readings r JOIN entitlements e ON e.seq = r.seq"
                               " WHERE e.company_code=? AND r.seq >= ? ORDER BY r.seq", (company_code, from_seq))
        return [json.loads(r[0]) for r in rows]

    def entitlements(self, company_code: str | None = None) -> list[tuple[int, str]]:
        if company_code is None:
            return list(self.db.execute("SELECT seq, company_code FROM entitlements ORDER BY seq, company_code"))
        return list(self.db.execute(
            "SELECT seq, company_code FROM entitlements WHERE company_code=? ORDER BY seq", (company_code,)))

    # -- contracts in force (56A2 / 56A3) -------------------------------------------------
    def contracts(self) -> list[Contract]:
        rows = self.db.execute(
            "SELECT role, company_code, name, server, data_types, send_interval, menu, since, change_id,"
            " measure_interval FROM contracts ORDER BY role DESC, company_code"
        ).fetchall()
        return [
            Contract(
                role=Role(r[0]),
                company=Company(r[1], r[2], r[3]),
                data_types=tuple(DataType(t) for t in json.loads(r[4])),
                send_interval=timedelta(seconds=r[5]),
                menu=r[6],
                since=from_epoch(r[7]) if r[7] is not None else None,
                change_id=r[8],
                measure_interval=_seconds(r[9]),
            )
            for r in rows
        ]

    def supply_contract(self) -> Contract | None:
        return next((c for c in self.contracts() if c.role is Role.SUPPLY), None)

    def put_contract(self, c: Contract) -> None:
        if c.role is Role.SUPPLY:
            self.db.execute("DELETE FROM contracts WHERE role='supply'")
        self.db.execute(
            "INSERT OR REPLACE INTO contracts(company_code, role, name, server, data_types, send_interval, menu,"
            " since, change_id, measure_interval) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (c.company.code, c.role.value, c.company.name, c.company.server,
             json.dumps([t.value for t in c.data_types]), c.send_interval.total_seconds(), c.menu,
             to_epoch(c.since) if c.since else None, c.change_id,
             c.measure_interval.total_seconds() if c.measure_interval else None),
        )

    def remove_contract(self, company_code: str) -> None:
        self.db.execute("DELETE FROM contracts WHERE company_code=?", (company_code,))

    # -- contract changes (56B / 56C) ---------------------------------------------------
    def add_change(self, ch: ContractChange) -> int:
        cur = self.db.execute(
            "INSERT INTO changes(kind, action, company_code, company_name, server, data_types, menu, send_interval,"
            " switch, source, serial, received_at, document, measure_interval) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ch.kind.value, ch.action.value, ch.company.code, ch.company.name, ch.company.server,
             json.dumps([t.value for t in ch.data_types]), ch.menu,
             ch.send_interval.total_seconds() if ch.send_interval else None,
             json.dumps(switch_to_wire(ch.switch)), ch.source, ch.serial, to_epoch(ch.received_at),
             json.dumps(ch.document, ensure_ascii=False),
             ch.measure_interval.total_seconds() if ch.measure_interval else None),
        )
        return int(cur.lastrowid)

    _CHANGE_COLS = ("id, kind, action, company_code, company_name, server, data_types, menu, send_interval,"
                    " switch, source, serial, received_at, document, state, last_applied, applied_count, note,"
                    " measure_interval")

    def changes(self, states: tuple[str, ...] = ("pending",)) -> list[tuple[ContractChange, dict[str, Any]]]:
        """Changes in the given states, oldest first, each with its bookkeeping (state, last_applied, ...)."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT {self._CHANGE_COLS} FROM changes WHERE state IN ({marks}) ORDER BY id", states
        ).fetchall()
        return [self._change_from_row(r) for r in rows]

    def change(self, change_id: int) -> tuple[ContractChange, dict[str, Any]] | None:
        row = self.db.execute(f"SELECT {self._CHANGE_COLS} FROM changes WHERE id=?", (change_id,)).fetchone()
        return self._change_from_row(row) if row else None

    @staticmethod
    def _change_from_row(r: tuple) -> tuple[ContractChange, dict[str, Any]]:
        change = ContractChange(
            id=r[0],
            kind=Role(r[1]),
            action=Action(r[2]),
            company=Company(r[3], r[4], r[5]),
            data_types=tuple(DataType(t) for t in json.loads(r[6])),
            menu=r[7],
            send_interval=timedelta(seconds=r[8]) if r[8] is not None else None,
            switch=parse_switch(json.loads(r[9])),
            source=r[10],
            serial=r[11],
            received_at=from_epoch(r[12]),
            document=json.loads(r[13]),
            measure_interval=_seconds(r[18]),
        )
        book = {
            "state": r[14],
            "last_applied": from_epoch(r[15]) if r[15] is not None else None,
            "applied_count": r[16],
            "note": r[17],
        }
        return change, book

    def mark_applied(self, change_id: int, occurrence: datetime, state: str, note: str) -> None:
        self.db.execute(
            "UPDATE changes SET last_applied=?, applied_count=applied_count+1, state=?, note=? WHERE id=?",
            (to_epoch(occurrence), state, note, change_id),
        )

    def set_change_state(self, change_id: int, state: str, note: str | None = None) -> bool:
        return self.db.execute(
            "UPDATE changes SET state=?, note=coalesce(?, note) WHERE id=? AND state='pending'",
            (state, note, change_id),
        ).rowcount == 1

    def last_serial(self, company_code: str) -> int | None:
        row = self.db.execute("SELECT serial FROM company_serials WHERE company_code=?", (company_code,)).fetchone()
        return row[0] if row else None

    def record_serial(self, company_code: str, serial: int) -> None:
        self.db.execute(
            "INSERT INTO company_serials(company_code, serial) VALUES(?, ?) ON CONFLICT(company_code) DO UPDATE"
            " SET serial=max(serial, excluded.serial)",
            (company_code, serial),
        )

    # -- contract data read from cards (the Fig. 9(b) list) ----------------------------------------
    def remember_card(self, card: StoredCard) -> None:
        """Keep one card document; a later read of the same company and menu replaces the earlier one."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO card_documents(company_code, menu, kind, serial, read_at, slot, document)"
                " VALUES(?,?,?,?,?,?,?)",
                (card.code, card.menu or "", card.kind, card.serial, to_epoch(card.read_at), card.slot, card.document))

    def stored_cards(self) -> list[StoredCard]:
        """Oldest first, in the order stored (a replaced one moves to the end; clock steps do not matter)."""
        rows = self.db.execute("SELECT company_code, menu, kind, serial, read_at, slot, document FROM card_documents"
                               " ORDER BY rowid").fetchall()
        return [StoredCard(r[0], r[1] or None, r[2], r[3], from_epoch(r[4]), r[5], bytes(r[6])) for r in rows]

    def forget_card(self, company_code: str, menu: str | None) -> bool:
        with self.transaction():
            return self.db.execute("DELETE FROM card_documents WHERE company_code=? AND menu=?",
                                   (company_code, menu or "")).rowcount == 1

    # -- alerts for the household (security errors, rejected cards, ...) ------------------------
    def raise_alert(self, at: datetime, kind: str, message: str, message_ja: str, company_code: str | None = None,
                    **detail: Any) -> int:
        """Record an alert. One of the same kind, company and detail (e.g. the rejection's code, the
        breaker's state) less than :data:`ALERT_COALESCE` after an open one only counts up on that
        row; past :data:`ALERTS_KEPT` rows the oldest go."""
        t, details = to_epoch(at), json.dumps(detail, ensure_ascii=False)
        with self.transaction():
            row = self.db.execute(
                "SELECT id FROM alerts WHERE kind=? AND company_code IS ? AND detail=? AND cleared IS NULL"
                " AND at BETWEEN ? AND ? ORDER BY id DESC LIMIT 1",
                (kind, company_code, details, t - ALERT_COALESCE.total_seconds(), t)).fetchone()
            if row is not None:
                self.db.execute("UPDATE alerts SET count=count+1 WHERE id=?", (row[0],))
                return int(row[0])
            cur = self.db.execute(
                "INSERT INTO alerts(at, kind, company_code, message, message_ja, detail) VALUES(?,?,?,?,?,?)",
                (t, kind, company_code, message, message_ja, details))
            alert_id = int(cur.lastrowid)
            self.db.execute("DELETE FROM alerts WHERE id <= ?", (alert_id - ALERTS_KEPT,))
            return alert_id

    def prune_alerts(self, before: datetime) -> int:
        """Drop alerts raised before ``before`` (the readings' retention)."""
        with self.transaction():
            return self.db.execute("DELETE FROM alerts WHERE at < ?", (to_epoch(before),)).rowcount

    def alerts(self, include_cleared: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        q = "SELECT id, at, kind, company_code, message, message_ja, detail, cleared, count FROM alerts"
        if not include_cleared:
            q += " WHERE cleared IS NULL"
        rows = self.db.execute(q + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"id": r[0], "at": from_epoch(r[1]), "kind": r[2], "company_code": r[3], "message": r[4],
                 "message_ja": r[5], "detail": json.loads(r[6]), "cleared": r[7] is not None, "count": r[8]}
                for r in rows]

    def alert_counts(self) -> dict[str, int]:
        """Alerts kept (cleared or not, counted up when coalesced), by kind."""
        return {k: int(n) for k, n in self.db.execute("SELECT kind, SUM(count) FROM alerts GROUP BY kind")}

    def clear_alert(self, alert_id: int, at: datetime) -> None:
        self.db.execute("UPDATE alerts SET cleared=? WHERE id=? AND cleared IS NULL", (to_epoch(at), alert_id))

    # -- outbox (store-and-forward) -------------------------------------------------------
    def enqueue(self, topic: str, payload: dict[str, Any], release_at: datetime, company_code: str | None) -> None:
        self.db.execute(
            "INSERT INTO outbox(topic, payload, company_code, release_at) VALUES(?,?,?,?)",
            (topic, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), company_code,
             to_epoch(release_at)),
        )

    def released(self, now: datetime, after_id: int, limit: int, exclude_topics: tuple[str, ...] = ()) -> list[OutboxRow]:
        """Rows due by ``now`` with an id above ``after_id``, oldest first, none on ``exclude_topics``.

        A row never passes an earlier row of its topic that is not due yet: a company receives its
        messages in the order they were queued, even when one was queued with a later release time
        (an event stamped a moment after the step's ``now``, a send interval that changed)."""
        marks = ",".join("?" * len(exclude_topics))
        epoch = to_epoch(now)
        rows = self.db.execute(
            "SELECT id, topic, payload, company_code FROM outbox o WHERE id > ? AND release_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.topic = o.topic AND e.id < o.id AND e.release_at > ?)"
            + (f" AND topic NOT IN ({marks})" if exclude_topics else "") + " ORDER BY id LIMIT ?",
            (after_id, epoch, epoch, *exclude_topics, limit),
        ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def mark_delivered(self, rows: list[OutboxRow]) -> None:
        if not rows:
            return
        # A lost delete only means a resend that receivers drop as a duplicate, so this commit
        # need not wait for the disk (readings and changes still do).
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._delete_delivered(rows)
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def _delete_delivered(self, rows: list[OutboxRow]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM outbox WHERE id=?", [(r.id,) for r in rows])
            counts: dict[str, int] = {}
            for r in rows:
                key = r.company_code or "*"
                counts[key] = counts.get(key, 0) + 1
            self.db.executemany(
                "INSERT INTO delivered(company_code, count) VALUES(?, ?) ON CONFLICT(company_code)"
                " DO UPDATE SET count=count+excluded.count",
                list(counts.items()),
            )

    def outbox_size(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def oldest_due(self, now: datetime) -> datetime | None:
        """When the oldest queued message that is due by ``now`` became due (None: none is waiting).
        A message held for its company's send interval is not yet due, so it does not count."""
        t = self.db.execute("SELECT min(release_at) FROM outbox WHERE release_at <= ?", (to_epoch(now),)).fetchone()[0]
        return None if t is None else from_epoch(t)

    def outbox_by_company(self) -> dict[str, int]:
        return {k or "*": n for k, n in self.db.execute(
            "SELECT company_code, count(*) FROM outbox GROUP BY company_code")}

    def delivered_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT company_code, count FROM delivered"))


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None
